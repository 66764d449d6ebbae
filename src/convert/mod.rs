//! Translations between herder manifests and the formats around them: an export of a
//! manifest directory to Kubernetes objects, and imports from docker compose,
//! process-compose and Procfiles into manifest files.
//!
//! Everything here is a pure function over data (parsed manifests in, objects or manifest
//! documents out); reading and writing files is the CLI's job. Whatever cannot be carried
//! over faithfully is reported as a [`Note`] with the source location, never dropped
//! silently.

pub mod import;
pub mod kubernetes;
pub mod names;
pub mod note;
pub mod yaml;

pub use note::Note;
