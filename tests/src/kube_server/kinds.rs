//! The kinds of object clients write here (server-side apply, merge patch, watch, delete):
//! KServe's InferenceService and LLMInferenceService, and the apps/v1 DaemonSet that
//! `deploy --prewarm` creates. One table, so that the routes, the errors and managedFields
//! name each exactly as the apiserver does.

use super::status::{Resource, KSERVE};

/// An object kind that is written through this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `serving.kserve.io/v1beta1` InferenceService.
    InferenceService,
    /// `serving.kserve.io/v1alpha2` LLMInferenceService (the CRD's storage version).
    LlmInferenceService,
    /// `apps/v1` DaemonSet.
    DaemonSet,
}

impl Kind {
    pub const ALL: [Kind; 3] = [
        Kind::InferenceService,
        Kind::LlmInferenceService,
        Kind::DaemonSet,
    ];

    /// The kind as objects name it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::InferenceService => "InferenceService",
            Kind::LlmInferenceService => "LLMInferenceService",
            Kind::DaemonSet => "DaemonSet",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Kind::InferenceService => "serving.kserve.io/v1beta1",
            Kind::LlmInferenceService => "serving.kserve.io/v1alpha2",
            Kind::DaemonSet => "apps/v1",
        }
    }

    pub(super) fn resource(self) -> Resource {
        match self {
            Kind::InferenceService => Resource {
                plural: "inferenceservices",
                group: KSERVE,
            },
            Kind::LlmInferenceService => Resource {
                plural: "llminferenceservices",
                group: KSERVE,
            },
            Kind::DaemonSet => Resource {
                plural: "daemonsets",
                group: "apps",
            },
        }
    }

    /// The kind whose collection is at `/apis/{group}/{version}/namespaces/{ns}/{plural}`.
    pub(super) fn at(group: &str, version: &str, plural: &str) -> Option<Kind> {
        let api_version = format!("{group}/{version}");
        Kind::ALL
            .into_iter()
            .find(|k| k.api_version() == api_version && k.resource().plural == plural)
    }
}
