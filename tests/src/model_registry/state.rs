//! What the server stores: every object as the JSON the API returns, and how many of each
//! kind it has created.

use serde_json::Value;

/// How many objects of each kind the server has created so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Created {
    pub registered_models: usize,
    pub model_versions: usize,
    pub model_artifacts: usize,
}

/// Everything stored, as the JSON objects the API returns.
#[derive(Default)]
pub(super) struct State {
    /// Registered models and model versions share this sequence, as in the real server.
    pub(super) last_context_id: u64,
    pub(super) last_artifact_id: u64,
    pub(super) registered_models: Vec<Value>,
    pub(super) model_versions: Vec<Value>,
    pub(super) model_artifacts: Vec<Value>,
    /// `(model version id, artifact id)` associations, in the order they were made.
    pub(super) version_artifacts: Vec<(String, String)>,
    pub(super) created: Created,
}
