//! The InferenceService's status as KServe reports it (Knative-style conditions, `url`,
//! `observedGeneration`), and what changed between two readings of it.

use std::fmt;

use kube::api::DynamicObject;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.kind, self.status)?;
        if let Some(reason) = &self.reason {
            write!(f, " ({reason})")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

/// What deploy reads of an InferenceService to know whether it serves.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceStatus {
    pub conditions: Vec<Condition>,
    pub url: Option<String>,
    generation: Option<i64>,
    observed_generation: Option<i64>,
}

impl ServiceStatus {
    pub fn of(object: &DynamicObject) -> Self {
        let status = object.data.get("status");
        let field = |name: &str| status.and_then(|s| s.get(name));
        Self {
            conditions: field("conditions")
                .and_then(|c| serde_json::from_value(c.clone()).ok())
                .unwrap_or_default(),
            url: field("url").and_then(Value::as_str).map(str::to_owned),
            generation: object.metadata.generation,
            observed_generation: field("observedGeneration").and_then(Value::as_i64),
        }
    }

    /// `Ready=True` for the spec deploy applied: a controller that reports which generation
    /// it has seen must have seen this one, or `Ready` still describes the previous spec.
    pub fn is_ready(&self) -> bool {
        let current = match (self.generation, self.observed_generation) {
            (Some(generation), Some(observed)) => observed >= generation,
            _ => true,
        };
        current
            && self
                .conditions
                .iter()
                .any(|c| c.kind == "Ready" && c.status == "True")
    }

    /// The conditions that are new or differ from `before`'s.
    pub fn changed_since<'a>(&'a self, before: &ServiceStatus) -> Vec<&'a Condition> {
        self.conditions
            .iter()
            .filter(|c| !before.conditions.contains(c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(generation: i64, status: Value) -> DynamicObject {
        let mut o: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "m", "generation": generation},
            "status": status,
        }))
        .unwrap();
        o.metadata.generation = Some(generation);
        o
    }

    #[test]
    fn ready_only_for_the_applied_generation() {
        let ready = json!([{"type": "Ready", "status": "True"}]);
        let stale = object(2, json!({"conditions": ready, "observedGeneration": 1}));
        assert!(!ServiceStatus::of(&stale).is_ready());
        let current = object(2, json!({"conditions": ready, "observedGeneration": 2}));
        assert!(ServiceStatus::of(&current).is_ready());
        let unreported = object(2, json!({"conditions": ready}));
        assert!(ServiceStatus::of(&unreported).is_ready());
        let not_ready = object(
            1,
            json!({"conditions": [{"type": "Ready", "status": "False"}]}),
        );
        assert!(!ServiceStatus::of(&not_ready).is_ready());
    }

    #[test]
    fn changes_and_their_display() {
        let before = ServiceStatus::of(&object(
            1,
            json!({"conditions": [{"type": "PredictorReady", "status": "False"}]}),
        ));
        let after = ServiceStatus::of(&object(
            1,
            json!({"conditions": [
                {"type": "PredictorReady", "status": "False"},
                {"type": "Ready", "status": "False", "reason": "RevisionMissing",
                 "message": "Configuration \"m-predictor\" is waiting for a Revision"},
            ], "url": "http://m.llm.svc"}),
        ));
        let changed: Vec<String> = after
            .changed_since(&before)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            changed,
            ["Ready=False (RevisionMissing): Configuration \"m-predictor\" is waiting for a Revision"]
        );
        assert_eq!(after.url.as_deref(), Some("http://m.llm.svc"));
    }
}
