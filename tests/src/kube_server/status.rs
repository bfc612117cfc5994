//! `metav1.Status`: the body of every error the apiserver sends, and of a watch's `ERROR`
//! event. Clients decide what to do from `code` and `reason` (kube-rs turns the body into
//! `Error::Api(Status)`), and people read `message`, so all three are written exactly as
//! `k8s.io/apimachinery/pkg/api/errors` builds them; `details` is left out when the
//! apiserver leaves it out.

use serde_json::{json, Map, Value};

use crate::http_server::Reply;

/// The group of the KServe resources.
pub(super) const KSERVE: &str = "serving.kserve.io";

/// A resource as errors name it: plural and group (`""` for the core group).
#[derive(Debug, Clone, Copy)]
pub(super) struct Resource {
    pub plural: &'static str,
    pub group: &'static str,
}

pub(super) const NAMESPACES: Resource = Resource {
    plural: "namespaces",
    group: "",
};
pub(super) const PODS: Resource = Resource {
    plural: "pods",
    group: "",
};
pub(super) const SERVING_RUNTIMES: Resource = Resource {
    plural: "servingruntimes",
    group: KSERVE,
};
pub(super) const CLUSTER_SERVING_RUNTIMES: Resource = Resource {
    plural: "clusterservingruntimes",
    group: KSERVE,
};
pub(super) const CONFIG_MAPS: Resource = Resource {
    plural: "configmaps",
    group: "",
};
pub(super) const EVENTS: Resource = Resource {
    plural: "events",
    group: "",
};

impl Resource {
    /// `inferenceservices.serving.kserve.io`, or `namespaces` for the core group
    /// (`schema.GroupResource.String()`).
    pub fn qualified(self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `details` naming an object of this resource: the apiserver puts the plural in `kind`.
    fn details(self, name: &str) -> Value {
        let mut details = Map::new();
        if !name.is_empty() {
            details.insert("name".into(), name.into());
        }
        if !self.group.is_empty() {
            details.insert("group".into(), self.group.into());
        }
        details.insert("kind".into(), self.plural.into());
        Value::Object(details)
    }
}

/// An error: the Status body (with `details` only if given) and its code.
#[derive(Debug, Clone)]
pub(super) struct Failure {
    pub code: u16,
    pub body: Value,
}

impl Failure {
    fn new(code: u16, reason: &str, message: impl Into<String>, details: Option<Value>) -> Self {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message.into(),
            "reason": reason,
        });
        if let Some(details) = details {
            body["details"] = details;
        }
        body["code"] = code.into();
        Self { code, body }
    }

    /// `errors.NewNotFound`: `inferenceservices.serving.kserve.io "x" not found`.
    pub fn not_found(resource: Resource, name: &str) -> Self {
        let message = format!("{} {name:?} not found", resource.qualified());
        Self::new(404, "NotFound", message, Some(resource.details(name)))
    }

    /// What the apiserver answers for a path it does not serve.
    pub fn no_route() -> Self {
        let message = "the server could not find the requested resource";
        Self::new(404, "NotFound", message, Some(json!({})))
    }

    /// `errors.NewBadRequest`: no details.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message, None)
    }

    /// An unauthenticated request: no details, the message is the reason.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized", None)
    }

    /// RBAC's refusal (`errors.NewForbidden` with the authorizer's reason) of `verb` on
    /// `resource` in `ns`, for the test's user.
    pub fn forbidden(resource: Resource, name: &str, verb: &str, ns: &str) -> Self {
        let object = match name {
            "" => resource.qualified(),
            name => format!("{} {name:?}", resource.qualified()),
        };
        let message = format!(
            "{object} is forbidden: User \"system:serviceaccount:default:test\" cannot {verb} \
             resource {:?} in API group {:?} in the namespace {ns:?}",
            resource.plural, resource.group
        );
        Self::new(403, "Forbidden", message, Some(resource.details(name)))
    }

    /// `errors.NewMethodNotSupported` for a verb (`create`, `delete`...) a resource lacks here.
    pub fn method_not_allowed(resource: Resource, verb: &str) -> Self {
        let message = format!(
            "{verb} is not supported on resources of kind {:?}",
            resource.qualified()
        );
        Self::new(405, "MethodNotAllowed", message, Some(resource.details("")))
    }

    /// `negotiation.NewUnsupportedMediaTypeError` for a PATCH content type not served.
    pub fn unsupported_patch_type(accepted: &[&str]) -> Self {
        let message = format!(
            "the body of the request was in an unknown format - accepted media types include: {}",
            accepted.join(", ")
        );
        Self::new(415, "UnsupportedMediaType", message, None)
    }

    /// `errors.NewInvalid` of the `PatchOptions` of a request, e.g. an apply without
    /// `fieldManager`: 422, each `(field, cause reason, message)` a cause.
    pub fn invalid_patch_options(causes: &[(&str, &str, &str)]) -> Self {
        let listed: Vec<String> = causes
            .iter()
            .map(|(field, _, message)| format!("{field}: {message}"))
            .collect();
        let listed = if listed.len() == 1 {
            listed[0].clone()
        } else {
            format!("[{}]", listed.join(", "))
        };
        let message = format!("PatchOptions.meta.k8s.io \"\" is invalid: {listed}");
        let causes: Vec<Value> = causes
            .iter()
            .map(|(field, reason, message)| {
                json!({"reason": reason, "message": message, "field": field})
            })
            .collect();
        let details = json!({"group": "meta.k8s.io", "kind": "PatchOptions", "causes": causes});
        Self::new(422, "Invalid", message, Some(details))
    }

    /// `errors.NewInvalid` of an object with one invalid field: 422 naming it.
    pub fn invalid(resource: Resource, kind: &str, name: &str, field: &str, detail: &str) -> Self {
        let message = format!("{kind} {name:?} is invalid: {field}: {detail}");
        let cause = json!({"reason": "FieldValueRequired", "message": detail, "field": field});
        let mut details = resource.details(name);
        details["kind"] = kind.into();
        details["causes"] = json!([cause]);
        Self::new(422, "Invalid", message, Some(details))
    }

    /// `errors.NewConflict` for a stale `metadata.resourceVersion` precondition.
    pub fn modified(resource: Resource, name: &str) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {} {name:?}: the object has been modified; \
             please apply your changes to the latest version and try again",
            resource.qualified()
        );
        Self::new(409, "Conflict", message, Some(resource.details(name)))
    }

    /// `errors.NewApplyConflict`: only causes in the details.
    pub fn apply_conflict(message: String, causes: Vec<Value>) -> Self {
        Self::new(409, "Conflict", message, Some(json!({"causes": causes})))
    }

    /// The watch cache's answer to a resourceVersion older than its history, sent as a
    /// watch's `ERROR` event: `too old resource version: 3 (7)`.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        let message = format!("too old resource version: {requested} ({oldest})");
        Self::new(410, "Expired", message, None)
    }

    pub fn reply(&self) -> Reply {
        Reply::json(self.code, &self.body)
    }
}
