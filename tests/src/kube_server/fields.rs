//! Field ownership, as server-side apply keeps it (`sigs.k8s.io/structured-merge-diff`),
//! simplified for a CRD without list-type markers: maps merge field by field, and lists and
//! scalars are atomic leaves. Each manager (a field manager name and an operation, `Apply`
//! or `Update`) owns a set of leaf paths; that is what decides whether an apply conflicts,
//! which fields it may remove, and what `metadata.managedFields` shows.
//!
//! Pure functions on JSON values: the request handling around them is in [`super::apply`].

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::objects::rfc3339;
use super::status::Failure;

/// A field by its map keys from the object's root: `["spec", "predictor", "model", "args"]`.
pub(super) type FieldPath = Vec<String>;

/// How a manager last wrote its fields: `Apply` is server-side apply, `Update` any other
/// write (here a merge patch). The apiserver keeps the two apart even for the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Operation {
    Apply,
    Update,
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Manager {
    pub name: String,
    pub operation: Operation,
    /// When its field set last changed (Unix seconds): an apply that changes nothing leaves
    /// it, so that a no-op apply is a no-op.
    pub time: u64,
    pub fields: BTreeSet<FieldPath>,
}

impl Manager {
    fn is(&self, name: &str, operation: Operation) -> bool {
        self.name == name && self.operation == operation
    }
}

/// How conflict messages name a manager (`printManager`): an applier by name only, an
/// updater with the version it wrote.
fn describe(name: &str, operation: Operation, api_version: &str) -> String {
    match operation {
        Operation::Apply => format!("{name:?}"),
        Operation::Update => format!("{name:?} using {api_version}"),
    }
}

/// An object (without `metadata.managedFields`) and who owns which of its fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Owned {
    pub object: Value,
    pub managers: Vec<Manager>,
}

/// Fields of another manager an apply would change, in an object of `api_version` (the only
/// version of each kind served here, so every manager wrote that version).
#[derive(Debug, Clone)]
pub(super) struct Conflicts {
    api_version: String,
    fields: Vec<(String, Operation, FieldPath)>,
}

impl Owned {
    /// Server-side apply of `config` (already validated, nulls and server-owned fields
    /// gone) by `manager`. Conflicts are fields owned by another manager whose value the
    /// apply changes; `force` takes them over instead. Fields the manager applied before and
    /// no longer does are removed, unless someone else owns them too.
    pub fn apply(
        &self,
        config: &Value,
        manager: &str,
        force: bool,
        now: u64,
    ) -> Result<Owned, Conflicts> {
        let claimed = tracked_leaves(config);
        let mut merged = self.object.clone();
        merge(&mut merged, config);
        let mut managers = self.managers.clone();
        let changed = |path: &FieldPath| changes(&self.object, &merged, path);
        let mut conflicts = Vec::new();
        for other in managers.iter().filter(|m| !m.is(manager, Operation::Apply)) {
            for path in other.fields.iter().filter(|p| changed(p)) {
                conflicts.push((other.name.clone(), other.operation, path.clone()));
            }
        }
        if !conflicts.is_empty() && !force {
            conflicts.sort();
            return Err(Conflicts {
                api_version: self.api_version().to_owned(),
                fields: conflicts,
            });
        }
        for other in managers.iter_mut() {
            if !other.is(manager, Operation::Apply) {
                other.fields.retain(|p| !changed(p));
            }
        }
        let before = managers
            .iter()
            .find(|m| m.is(manager, Operation::Apply))
            .map(|m| m.fields.clone())
            .unwrap_or_default();
        let kept: BTreeSet<FieldPath> = managers
            .iter()
            .filter(|m| !m.is(manager, Operation::Apply))
            .flat_map(|m| m.fields.iter().cloned())
            .chain(claimed.iter().cloned())
            .collect();
        for path in before.difference(&claimed) {
            if !kept.iter().any(|k| related(k, path)) {
                remove(&mut merged, path, &kept);
            }
        }
        set_fields(&mut managers, manager, Operation::Apply, claimed, now);
        Ok(Owned::pruned(merged, managers))
    }

    /// A write of `object` by `manager` that is not an apply (operation `Update`): it owns
    /// every leaf whose value it changed, and nobody owns a field it changed any more.
    pub fn update(&self, object: Value, manager: &str, now: u64) -> Owned {
        let changed: BTreeSet<FieldPath> = tracked_leaves(&object)
            .into_iter()
            .filter(|p| get(&self.object, p) != get(&object, p))
            .collect();
        let mut managers = self.managers.clone();
        for m in &mut managers {
            m.fields.retain(|p| !changes(&self.object, &object, p));
        }
        let mut fields = managers
            .iter()
            .find(|m| m.is(manager, Operation::Update))
            .map(|m| m.fields.clone())
            .unwrap_or_default();
        fields.extend(changed);
        set_fields(&mut managers, manager, Operation::Update, fields, now);
        Owned::pruned(object, managers)
    }

    /// Ownership only of fields that exist; no manager without fields (as the apiserver
    /// drops them).
    fn pruned(object: Value, mut managers: Vec<Manager>) -> Owned {
        for m in &mut managers {
            m.fields.retain(|p| get(&object, p).is_some());
        }
        managers.retain(|m| !m.fields.is_empty());
        Owned { object, managers }
    }

    fn api_version(&self) -> &str {
        self.object["apiVersion"].as_str().unwrap_or_default()
    }

    /// `metadata.managedFields` as the apiserver renders it: appliers first, then by time
    /// and name; each field set as nested `f:<key>` maps.
    pub fn managed_fields(&self) -> Value {
        let mut managers: Vec<&Manager> = self.managers.iter().collect();
        managers
            .sort_by(|a, b| (a.operation, a.time, &a.name).cmp(&(b.operation, b.time, &b.name)));
        let entries: Vec<Value> = managers
            .into_iter()
            .map(|m| {
                json!({
                    "manager": m.name,
                    "operation": match m.operation {
                        Operation::Apply => "Apply",
                        Operation::Update => "Update",
                    },
                    "apiVersion": self.api_version(),
                    "time": rfc3339(m.time),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": fields_v1(&m.fields),
                })
            })
            .collect();
        Value::Array(entries)
    }
}

impl Conflicts {
    /// The 409 the apiserver sends (`NewConflictError` in `managedfields/internal`).
    pub fn failure(&self) -> Failure {
        let n = self.fields.len();
        let describe = |name: &str, operation| describe(name, operation, &self.api_version);
        let message = if let [(name, operation, path)] = self.fields.as_slice() {
            format!(
                "Apply failed with 1 conflict: conflict with {}: {}",
                describe(name, *operation),
                path_string(path)
            )
        } else {
            let mut lines = Vec::new();
            let mut last = None;
            for (name, operation, path) in &self.fields {
                if last != Some((name, operation)) {
                    lines.push(format!("conflicts with {}:", describe(name, *operation)));
                    last = Some((name, operation));
                }
                lines.push(format!("- {}", path_string(path)));
            }
            format!("Apply failed with {n} conflicts: {}", lines.join("\n"))
        };
        let causes = self
            .fields
            .iter()
            .map(|(name, operation, path)| {
                json!({
                    "reason": "FieldManagerConflict",
                    "message": format!("conflict with {}", describe(name, *operation)),
                    "field": path_string(path),
                })
            })
            .collect();
        Failure::apply_conflict(message, causes)
    }
}

/// `.spec.predictor.model.args`, as `fieldpath.Path.String()` writes a path of field names.
pub(super) fn path_string(path: &FieldPath) -> String {
    path.iter().map(|k| format!(".{k}")).collect()
}

/// Leaves of `value` that ownership is about: not the type and identity of the object
/// (apiVersion, kind, name, namespace), not what the server fills in, not the status.
pub(super) fn tracked_leaves(value: &Value) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    collect_leaves(value, &mut Vec::new(), &mut out);
    out.retain(|p| !is_untracked(p));
    out
}

fn is_untracked(path: &FieldPath) -> bool {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    matches!(
        p.as_slice(),
        ["apiVersion" | "kind" | "status", ..]
            | [
                "metadata",
                "name"
                    | "namespace"
                    | "uid"
                    | "resourceVersion"
                    | "generation"
                    | "creationTimestamp"
                    | "managedFields",
                ..
            ]
    )
}

/// A non-empty map is a parent; anything else (scalar, list, null, `{}`) a leaf.
fn collect_leaves(value: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                prefix.push(key.clone());
                collect_leaves(child, prefix, out);
                prefix.pop();
            }
        }
        _ if !prefix.is_empty() => {
            out.insert(prefix.clone());
        }
        _ => {}
    }
}

/// Whether the field at `path` differs between `before` and `after`. A map that stays a
/// map has not changed as a field of its own: its fields are owned one by one (someone who
/// applied `labels: {}` does not conflict with a label added to it).
fn changes(before: &Value, after: &Value, path: &[String]) -> bool {
    match (get(before, path), get(after, path)) {
        (Some(Value::Object(_)), Some(Value::Object(_))) => false,
        (before, after) => before != after,
    }
}

pub(super) fn get<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |v, key| v.as_object()?.get(key))
}

/// One path is the other or lies under it: owning one means owning part of the other.
fn related(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Apply's merge: maps field by field, everything else replaced.
fn merge(target: &mut Value, config: &Value) {
    match (target, config) {
        (Value::Object(target), Value::Object(config)) => {
            for (key, value) in config {
                match target.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge(existing, value)
                    }
                    _ => {
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (target, config) => *target = config.clone(),
    }
}

/// Removes `path`, then the maps it leaves empty that nobody owns (never the root).
fn remove(object: &mut Value, path: &[String], owned: &BTreeSet<FieldPath>) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let Some(map) = get_mut(object, parent).and_then(Value::as_object_mut) else {
        return;
    };
    map.shift_remove(last);
    let emptied = map.is_empty();
    if emptied && !parent.is_empty() && !owned.contains(parent) {
        remove(object, parent, owned);
    }
}

fn get_mut<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter()
        .try_fold(value, |v, key| v.as_object_mut()?.get_mut(key))
}

/// Replaces the fields of one manager (the time only if they changed), adding it if new.
fn set_fields(
    managers: &mut Vec<Manager>,
    name: &str,
    operation: Operation,
    fields: BTreeSet<FieldPath>,
    now: u64,
) {
    match managers.iter_mut().find(|m| m.is(name, operation)) {
        Some(m) if m.fields == fields => {}
        Some(m) => {
            m.fields = fields;
            m.time = now;
        }
        None => managers.push(Manager {
            name: name.to_owned(),
            operation,
            time: now,
            fields,
        }),
    }
}

/// `fieldsV1`: `{"f:spec":{"f:predictor":{...}}}`, a leaf `{}`; a field owned itself and
/// through children too gets the `".": {}` member marker.
fn fields_v1(fields: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    // Sorted, so a path comes before the paths under it.
    for path in fields {
        let mut node = &mut root;
        for key in path {
            node = node
                .entry(format!("f:{key}"))
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("fieldsV1 nodes are maps");
        }
        let has_children = fields
            .range(path.clone()..)
            .nth(1)
            .is_some_and(|next| next.starts_with(path));
        if has_children {
            node.insert(".".into(), json!({}));
        }
    }
    Value::Object(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> FieldPath {
        p.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn an_update_takes_fields_from_an_applier_and_renders_member_markers() {
        let applied = Owned::default()
            .apply(&json!({"spec": {"a": {}, "b": 1}}), "deploy", false, 1)
            .unwrap();
        let updated = applied.update(json!({"spec": {"a": {"x": 2}, "b": 1}}), "edit", 2);
        let owners: Vec<(&str, Vec<FieldPath>)> = updated
            .managers
            .iter()
            .map(|m| (m.name.as_str(), m.fields.iter().cloned().collect()))
            .collect();
        assert_eq!(
            owners,
            [
                ("deploy", vec![path("spec.a"), path("spec.b")]),
                ("edit", vec![path("spec.a.x")])
            ]
        );
        let both: BTreeSet<FieldPath> = [path("spec.a"), path("spec.a.x")].into();
        assert_eq!(
            fields_v1(&both),
            json!({"f:spec": {"f:a": {".": {}, "f:x": {}}}})
        );
    }
}
