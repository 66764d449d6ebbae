//! Manifests: the model (serde + schemars types), loading a directory of YAML files with
//! source spans, validation (JSON Schema, then semantic checks over the whole set) and
//! diagnostics that carry `file:line:col`.
//!
//! ```text
//! bytes ─▶ load::parse_file ─▶ yaml_json::parse_documents ─▶ schema::check_schema ─▶ serde ─▶ validate::check_manifest
//!                                                                         (per file: ParsedFile)
//! [ManifestDoc] ─▶ validate::check_set ─▶ desired::desired_set ─▶ DesiredSet
//! ```

pub mod desired;
pub mod diagnostic;
pub mod export;
pub mod load;
pub mod model;
pub mod schema;
pub mod selector;
pub mod spans;
pub mod suggest;
pub mod units;
pub mod validate;
mod validate_graph;
mod validate_ports;
mod validate_schedule;
mod validate_secrets;
mod yaml_input;
pub mod yaml_json;

pub use desired::{ChildSpec, DesiredSet, child_specs, desired_set, replica_names};
pub use diagnostic::{Code, Diagnostic, Location, Report, Severity};
pub use load::{
    LoadError, Loaded, ManifestDoc, ParsedFile, list_manifest_files, load_dir, load_file,
    load_paths, parse_file,
};
pub use model::Manifest;
pub use schema::{manifest_schema, schema_text};
pub use validate::{check_manifest, check_set};
