//! Manifests: the model (serde + schemars types), loading a directory of YAML files with
//! source spans, validation (JSON Schema, then semantic checks over the whole set) and
//! diagnostics that carry `file:line:col`.

pub mod desired;
pub mod model;
pub mod units;

pub use desired::{ChildSpec, DesiredSet};
pub use model::Manifest;
