//! Export settings: what `herder export` needs that running under herder does not, kept in
//! the manifest so that a directory exports the same way every time.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings for `herder export`; herder itself ignores them when it runs the child.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportSettings {
    /// Settings for `herder export kubernetes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesSettings>,
}

/// Settings for `herder export kubernetes`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSettings {
    /// Container image that holds this child's program, e.g. `registry.example.com/api:1.4`; overrides `herder export kubernetes --image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[^\s]+$"), length(min = 1, max = 512))]
    pub image: Option<String>,
}
