//! Writes to the objects clients write ([`Kind`]): the PATCH endpoint (server-side apply and merge patch, which
//! the test API shares), the controller's status writes and deletion. This is where the
//! apiserver's checks and server-filled metadata live; who owns which field is
//! [`super::fields`].
//!
//! Faithful where a client can tell: apply without `fieldManager` is the apiserver's 422,
//! an unknown patch type its 415, a body naming another object its 400, a create in a
//! missing namespace its 404; `status` and server-filled metadata in a patch are ignored
//! (status is a subresource of each kind); `generation` moves only when something
//! outside metadata and status changes; a write that changes nothing is not stored.

use serde_json::{Map, Value};

use super::fields::Owned;
use super::objects::{self, now, rfc3339};
use super::status::{Failure, NAMESPACES};
use super::{Key, Shared, State};
use crate::http_server::{Reply, Request};

const APPLY_PATCH: &str = "application/apply-patch+yaml";
const MERGE_PATCH: &str = "application/merge-patch+json";

/// Metadata only the server writes: ignored in a patch.
const SERVER_METADATA: [&str; 4] = ["uid", "resourceVersion", "generation", "creationTimestamp"];

/// The object as the API returns it: `managedFields` rendered, keys sorted as Go writes
/// the unstructured objects of custom resources.
pub(super) fn served(owned: &Owned) -> Value {
    let mut object = owned.object.clone();
    if !owned.managers.is_empty() {
        object["metadata"]["managedFields"] = owned.managed_fields();
    }
    objects::sorted(&object)
}

/// `PATCH .../{plural}/{name}`: dispatched on the patch type.
pub(super) fn patch(request: &Request, shared: &Shared, key: Key) -> Reply {
    let content_type = request.header("content-type").unwrap_or_default();
    let content_type = content_type.split(';').next().unwrap_or_default().trim();
    let manager = request.param("fieldManager").unwrap_or_default();
    // `strconv.ParseBool`'s spellings of true.
    let force = request
        .param("force")
        .map(|f| matches!(f, "1" | "t" | "T" | "true" | "TRUE" | "True"));
    let outcome = match content_type.to_ascii_lowercase().as_str() {
        APPLY_PATCH if manager.is_empty() => Err(Failure::invalid_patch_options(&[(
            "fieldManager",
            "FieldValueRequired",
            "Required value: is required for apply patch",
        )])),
        APPLY_PATCH => match serde_yaml_ng::from_slice::<Value>(&request.body) {
            Ok(config) => {
                shared.change(|state| state.apply(&key, manager, force.unwrap_or(false), config))
            }
            Err(e) => Err(Failure::bad_request(format!("error decoding YAML: {e}"))),
        },
        MERGE_PATCH if force.is_some() => Err(Failure::invalid_patch_options(&[(
            "force",
            "FieldValueForbidden",
            "Forbidden: may not be specified for non-apply patch",
        )])),
        MERGE_PATCH => {
            // Without fieldManager the apiserver names the manager after the User-Agent.
            let agent = request.header("user-agent").unwrap_or_default();
            let manager = request
                .param("fieldManager")
                .unwrap_or_else(|| agent.split('/').next().unwrap_or_default());
            match serde_json::from_slice::<Value>(&request.body) {
                Ok(patch) => shared
                    .change(|state| state.merge_patch(&key, manager, &patch))
                    .map(|object| (200, object)),
                Err(e) => Err(Failure::bad_request(format!("error decoding patch: {e}"))),
            }
        }
        _ => Err(Failure::unsupported_patch_type(&[MERGE_PATCH, APPLY_PATCH])),
    };
    match outcome {
        Ok((code, object)) => Reply::json(code, &object),
        Err(failure) => failure.reply(),
    }
}

impl State {
    /// Server-side apply of `config` by `manager`: 201 and the new object, or 200 and the
    /// object (unchanged, and not stored again, when the apply changes nothing).
    pub(super) fn apply(
        &mut self,
        key: &Key,
        manager: &str,
        force: bool,
        config: Value,
    ) -> Result<(u16, Value), Failure> {
        if !config.is_object() {
            return Err(Failure::bad_request(
                "error decoding YAML: the apply patch is not an object",
            ));
        }
        let (kind, ns, name) = (key.0, key.1.as_str(), key.2.as_str());
        let (expected, expected_kind) = (kind.api_version(), kind.name());
        let api_version = config["apiVersion"].as_str().unwrap_or_default();
        if api_version != expected {
            return Err(Failure::bad_request(format!(
                "Incorrect version specified in apply patch. Specified patch version: \
                 {api_version}, expected: {expected}"
            )));
        }
        let named = config["kind"].as_str().unwrap_or_default();
        if named != expected_kind {
            return Err(Failure::bad_request(format!(
                "failed to create typed patch object ({expected}, Kind={named}): \
                 no corresponding type for {expected}, Kind={named}"
            )));
        }
        check_identity(&config, ns, name)?;
        if !self.namespaces.contains_key(ns) {
            return Err(Failure::not_found(NAMESPACES, ns));
        }
        let live = self.objects.get(key).cloned();
        check_precondition(&config, live.as_ref(), key)?;
        let base = live.clone().unwrap_or_else(|| Owned {
            object: serde_json::json!({
                "apiVersion": expected,
                "kind": expected_kind,
                "metadata": {"name": name, "namespace": ns},
            }),
            managers: Vec::new(),
        });
        let applied = base
            .apply(&cleaned(config), manager, force, now())
            .map_err(|conflicts| conflicts.failure())?;
        if live.is_some() && applied == base {
            return Ok((200, served(&base)));
        }
        let code = if live.is_some() { 200 } else { 201 };
        Ok((code, self.store(key.clone(), applied, live)))
    }

    /// An RFC 7386 merge patch by `manager` (an `Update`): the object, stored unless nothing
    /// changed. The object must exist.
    pub(super) fn merge_patch(
        &mut self,
        key: &Key,
        manager: &str,
        patch: &Value,
    ) -> Result<Value, Failure> {
        let (kind, ns, name) = (key.0, key.1.as_str(), key.2.as_str());
        let Some(live) = self.objects.get(key).cloned() else {
            return Err(Failure::not_found(kind.resource(), name));
        };
        if !patch.is_object() {
            return Err(Failure::bad_request(
                "error decoding patch: a merge patch of an object is an object",
            ));
        }
        check_precondition(patch, Some(&live), key)?;
        let mut object = live.object.clone();
        merge_patch_into(&mut object, patch);
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let named = object["kind"].as_str().unwrap_or_default();
        if api_version != kind.api_version() || named != kind.name() {
            return Err(Failure::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected \
                 API version ({}), or the kind ({named}) the expected kind ({})",
                kind.api_version(),
                kind.name()
            )));
        }
        check_identity(&object, ns, name)?;
        // What the patch may not change: server metadata, and the status subresource.
        let metadata = object["metadata"]
            .as_object_mut()
            .expect("checked: metadata has the name");
        metadata.remove("managedFields");
        for key in SERVER_METADATA {
            metadata.insert(key.into(), live.object["metadata"][key].clone());
        }
        let status = live.object.get("status").cloned();
        let map = object.as_object_mut().expect("checked: an object");
        match status {
            Some(status) => map.insert("status".into(), status),
            None => map.remove("status"),
        };
        let updated = live.update(object, manager, now());
        if updated == live {
            return Ok(served(&live));
        }
        Ok(self.store(key.clone(), updated, Some(live)))
    }

    /// The controller's status write; see [`super::KubeServer::set_status`].
    pub(super) fn set_status(&mut self, key: &Key, conditions: Value, url: Option<&str>) {
        let Value::Array(conditions) = conditions else {
            panic!("KubeServer::set_status: conditions are a JSON array, not {conditions}");
        };
        self.write_status(key, |status| {
            let stamped = stamped(&status["conditions"], conditions);
            status["conditions"] = Value::Array(stamped);
            if let Some(url) = url {
                status["url"] = url.into();
            }
        });
    }

    /// A controller's write of the status subresource: `write` changes `status` (an object),
    /// then `observedGeneration` is the generation; a new resourceVersion and a MODIFIED
    /// event, managedFields untouched. Panics if the object does not exist.
    pub(super) fn write_status(&mut self, key: &Key, write: impl FnOnce(&mut Value)) {
        let Some(mut owned) = self.objects.get(key).cloned() else {
            panic!(
                "KubeServer: there is no {} {}/{}",
                key.0.name(),
                key.1,
                key.2
            );
        };
        let generation = owned.object["metadata"]["generation"].clone();
        if !owned.object["status"].is_object() {
            owned.object["status"] = Value::Object(Map::new());
        }
        let status = &mut owned.object["status"];
        write(status);
        status["observedGeneration"] = generation;
        let rv = self.bump();
        owned.object["metadata"]["resourceVersion"] = rv.to_string().into();
        self.record(key.0, "MODIFIED", served(&owned));
        self.objects.insert(key.clone(), owned);
    }

    /// Deletes at once (no finalizers here): a DELETED event with the last state.
    pub(super) fn delete(&mut self, key: &Key) -> bool {
        let Some(mut owned) = self.objects.remove(key) else {
            return false;
        };
        let rv = self.bump();
        owned.object["metadata"]["resourceVersion"] = rv.to_string().into();
        self.record(key.0, "DELETED", served(&owned));
        true
    }

    /// Stores a changed object under a new resourceVersion, filling in what the server
    /// owns, and tells the watchers; the object as served.
    fn store(&mut self, key: Key, mut owned: Owned, before: Option<Owned>) -> Value {
        let rv = self.bump();
        let generation = match &before {
            None => 1,
            Some(before) => {
                let generation = before.object["metadata"]["generation"]
                    .as_u64()
                    .unwrap_or(1);
                generation
                    + u64::from(outside_metadata(&before.object) != outside_metadata(&owned.object))
            }
        };
        let metadata = owned.object["metadata"]
            .as_object_mut()
            .expect("a stored object has metadata");
        if before.is_none() {
            metadata.extend(objects::server_metadata(&key.2, Some(&key.1), rv));
        }
        metadata.insert("resourceVersion".into(), rv.to_string().into());
        metadata.insert("generation".into(), generation.into());
        let object = served(&owned);
        let event = if before.is_none() {
            "ADDED"
        } else {
            "MODIFIED"
        };
        self.record(key.0, event, object.clone());
        self.objects.insert(key, owned);
        object
    }
}

/// `conditions` as a controller writes them: each gets a `lastTransitionTime`, kept from
/// `before` while its status stays the same.
fn stamped(before: &Value, conditions: Vec<Value>) -> Vec<Value> {
    conditions
        .into_iter()
        .map(|mut condition| {
            assert!(
                condition["type"].is_string() && condition["status"].is_string(),
                "KubeServer::set_status: a condition has a string type and status: {condition}"
            );
            let same = before.as_array().into_iter().flatten().find(|old| {
                old["type"] == condition["type"] && old["status"] == condition["status"]
            });
            let time = same
                .map(|old| old["lastTransitionTime"].clone())
                .unwrap_or_else(|| rfc3339(now()).into());
            condition["lastTransitionTime"] = time;
            condition
        })
        .collect()
}

/// The name in the body must be the one in the URL, and a namespace, if any, too
/// (`checkName` in the apiserver's patch handler).
fn check_identity(object: &Value, ns: &str, name: &str) -> Result<(), Failure> {
    let object_name = object["metadata"]["name"].as_str().unwrap_or_default();
    if object_name != name {
        return Err(Failure::bad_request(format!(
            "the name of the object ({object_name}) does not match the name on the URL ({name})"
        )));
    }
    match object["metadata"]["namespace"].as_str() {
        Some(other) if !other.is_empty() && other != ns => Err(Failure::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

/// A `metadata.resourceVersion` in a patch is a precondition on the stored object.
fn check_precondition(patch: &Value, live: Option<&Owned>, key: &Key) -> Result<(), Failure> {
    let Some(wanted) = patch["metadata"]["resourceVersion"].as_str() else {
        return Ok(());
    };
    let (resource, name) = (key.0.resource(), key.2.as_str());
    match live {
        None => Err(Failure::not_found(resource, name)),
        Some(live) if live.object["metadata"]["resourceVersion"] != wanted => {
            Err(Failure::modified(resource, name))
        }
        Some(_) => Ok(()),
    }
}

/// An apply configuration without what the server ignores in it: status, server-filled
/// metadata, and null fields (custom resources do not store nulls).
fn cleaned(mut config: Value) -> Value {
    let object = config.as_object_mut().expect("checked: an object");
    object.remove("status");
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in SERVER_METADATA.iter().chain(&["managedFields", "selfLink"]) {
            metadata.remove(*key);
        }
    }
    drop_nulls(&mut config);
    config
}

fn drop_nulls(value: &mut Value) {
    if let Value::Object(map) = value {
        map.retain(|_, v| !v.is_null());
        map.values_mut().for_each(drop_nulls);
    }
}

/// RFC 7386: maps merge key by key, `null` deletes, anything else replaces.
fn merge_patch_into(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target = target.as_object_mut().expect("made an object");
    for (key, value) in patch {
        if value.is_null() {
            target.shift_remove(key);
        } else {
            merge_patch_into(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// What `generation` tracks: everything but metadata and status.
fn outside_metadata(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    object
}
