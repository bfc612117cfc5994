//! Validates a Kubernetes object against the structural OpenAPI v3 schema of one version of a
//! CustomResourceDefinition, the way the API server does (k8s.io/apiextensions-apiserver
//! pkg/apiserver/schema), so that a manifest the cluster would refuse fails in a unit test instead.
//!
//! It is stricter than the API server in two places, both on purpose: a field the schema does not
//! know is an error (the API server silently prunes it unless asked for `fieldValidation=Strict`),
//! and so is a `null` where the schema does not say `nullable: true` (the API server silently drops
//! it). Either way the field would not reach the controller, which is never what the author meant.
//!
//! Not evaluated: CEL rules (`x-kubernetes-validations`) and `pattern`s other than the few in
//! [`patterns`]; [`Report::unchecked_rules`] counts the ones met on the way.

mod patterns;
#[cfg(test)]
mod tests;

use patterns::PATTERNS;

use serde_json::{json, Map, Number, Value};
use std::collections::HashSet;
use std::fmt::Display;

/// The schema of one served version of a CRD, read from its YAML (as KServe ships it under
/// `config/crd/full/`).
pub struct CrdSchema {
    group: String,
    version: String,
    kind: String,
    schema: Value,
    /// ObjectMeta as the API server checks it, with the CRD's own restrictions on name and
    /// generateName (the only metadata a structural schema may constrain) merged in.
    metadata: Value,
}

/// The outcome of [`CrdSchema::check`].
#[derive(Debug, Default)]
pub struct Report {
    /// Each as `"<json path>: <what is wrong>"`; empty means valid.
    pub violations: Vec<String>,
    /// CEL rules and unrecognised `pattern`s that applied to the object but were not evaluated.
    pub unchecked_rules: usize,
}

/// Top-level fields checked against the CRD's identity and ObjectMeta rather than its schema.
const ROOT_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

impl CrdSchema {
    /// Parses the CRD YAML (one document, kind CustomResourceDefinition) and keeps the schema of
    /// `version`.
    ///
    /// # Errors
    /// If the YAML is not a CRD, or `version` is missing, not served or has no openAPIV3Schema.
    pub fn from_yaml(crd_yaml: &str, version: &str) -> Result<Self, String> {
        let mut crd: Value =
            serde_yaml_ng::from_str(crd_yaml).map_err(|e| format!("CRD YAML: {e}"))?;
        if crd["kind"] != "CustomResourceDefinition" {
            return Err(format!(
                "kind is {}, not CustomResourceDefinition",
                crd["kind"]
            ));
        }
        let text = |pointer| Some(crd.pointer(pointer)?.as_str()?.to_owned());
        let group = text("/spec/group").ok_or("CRD has no spec.group")?;
        let kind = text("/spec/names/kind").ok_or("CRD has no spec.names.kind")?;
        let versions = elements(&crd["spec"]["versions"]);
        let Some(i) = versions.iter().position(|v| v["name"] == version) else {
            let names: Vec<&str> = versions.iter().filter_map(|v| v["name"].as_str()).collect();
            return Err(format!(
                "{kind} has no version {version}, only {}",
                names.join(", ")
            ));
        };
        if versions[i]["served"] == false {
            return Err(format!("{kind} version {version} is not served"));
        }
        let pointer = format!("/spec/versions/{i}/schema/openAPIV3Schema");
        let schema = crd.pointer_mut(&pointer).map(Value::take);
        let Some(schema) = schema.filter(Value::is_object) else {
            return Err(format!("{kind} {version} has no schema.openAPIV3Schema"));
        };
        let metadata = object_meta_schema(&schema["properties"]["metadata"]);
        let version = version.to_owned();
        Ok(Self {
            group,
            version,
            kind,
            schema,
            metadata,
        })
    }

    /// `group/version`, what the object's apiVersion must be.
    #[must_use]
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    #[must_use]
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Every violation, each as `"<json path>: <what is wrong>"`; empty means valid.
    #[must_use]
    pub fn violations(&self, object: &Value) -> Vec<String> {
        self.check(object).violations
    }

    /// The violations and how many rules could not be evaluated.
    #[must_use]
    pub fn check(&self, object: &Value) -> Report {
        let mut walker = Walker::new(true);
        let Some(fields) = object.as_object() else {
            walker.error("", format!("expected object, got {}", json_type(object)));
            return walker.report;
        };
        walker.constant(fields, "apiVersion", &self.api_version());
        walker.constant(fields, "kind", &self.kind);
        walker.metadata(&self.metadata, fields.get("metadata"));
        let mut rest = fields.clone();
        rest.retain(|k, _| !ROOT_FIELDS.contains(&k.as_str()));
        walker.value(&self.schema, &Value::Object(rest), "");
        walker.report
    }
}

/// The fields of ObjectMeta; all may be null, which Go decodes to the zero value.
fn object_meta_schema(crd_metadata: &Value) -> Value {
    let text = json!({"type": "string", "nullable": true});
    let int = json!({"type": "integer", "nullable": true});
    let list = json!({"type": "array", "nullable": true});
    let map =
        json!({"type": "object", "nullable": true, "additionalProperties": {"type": "string"}});
    let mut meta = json!({"type": "object", "properties": {
        "name": text, "generateName": text, "namespace": text, "uid": text, "selfLink": text,
        "resourceVersion": text, "creationTimestamp": text, "deletionTimestamp": text,
        "generation": int, "deletionGracePeriodSeconds": int, "labels": map, "annotations": map,
        "finalizers": {"type": "array", "nullable": true, "items": {"type": "string"}},
        "ownerReferences": list, "managedFields": list,
    }});
    for name in ["name", "generateName"] {
        if let Some(restricted) = crd_metadata["properties"].get(name) {
            meta["properties"][name] = restricted.clone();
        }
    }
    meta
}

/// Collects the violations of one object while walking it alongside its schema.
struct Walker {
    report: Report,
    /// False inside allOf/anyOf/oneOf/not branches, which only restrict values: a branch that
    /// lists no properties does not make every field unknown.
    strict: bool,
}

impl Walker {
    fn new(strict: bool) -> Self {
        Self {
            report: Report::default(),
            strict,
        }
    }

    fn error(&mut self, path: &str, what: impl Display) {
        let path = if path.is_empty() { "(root)" } else { path };
        self.report.violations.push(format!("{path}: {what}"));
    }

    /// apiVersion and kind must name this CRD exactly.
    fn constant(&mut self, fields: &Map<String, Value>, key: &str, want: &str) {
        match fields.get(key) {
            None => self.error(key, "required field missing"),
            Some(v) if v.as_str() == Some(want) => {}
            Some(v) => self.error(key, format!("expected {want:?}, got {v}")),
        }
    }

    /// The API server requires a name, or a generateName to make one from.
    fn metadata(&mut self, schema: &Value, metadata: Option<&Value>) {
        let Some(metadata) = metadata else {
            return self.error("metadata", "required field missing");
        };
        let named = |k| metadata.get(k).is_some_and(|v| !v.is_null());
        if metadata.is_object() && !named("name") && !named("generateName") {
            self.error("metadata.name", "required field missing");
        }
        self.value(schema, metadata, "metadata");
    }

    fn value(&mut self, schema: &Value, v: &Value, path: &str) {
        let rules = schema["x-kubernetes-validations"].as_array();
        self.report.unchecked_rules += rules.map_or(0, Vec::len);
        let nullable = schema["nullable"] == true;
        match expected_type(schema) {
            Some(want) if !(has_type(v, want) || (v.is_null() && nullable)) => {
                return self.error(path, format!("expected {want}, got {}", json_type(v)));
            }
            _ if v.is_null() => return,
            _ => {}
        }
        if let Some(allowed) = schema["enum"].as_array().filter(|a| !a.contains(v)) {
            let allowed: Vec<String> = allowed.iter().map(Value::to_string).collect();
            self.error(path, format!("{v} is not one of {}", allowed.join(", ")));
        }
        match v {
            Value::String(s) => self.string(schema, s, path),
            Value::Number(n) => self.number(schema, n, path),
            Value::Array(items) => self.array(schema, items, path),
            Value::Object(fields) => self.object(schema, fields, path),
            _ => {}
        }
        self.combinators(schema, v, path);
    }

    fn string(&mut self, schema: &Value, s: &str, path: &str) {
        self.bounds(schema, "Length", s.chars().count(), "characters", path);
        let Some(regex) = schema["pattern"].as_str() else {
            return;
        };
        match PATTERNS.iter().find(|(p, _, _)| *p == regex) {
            Some((_, what, matches)) if !matches(s) => {
                self.error(path, format!("{s:?} is not {what}"))
            }
            Some(_) => {}
            None => self.report.unchecked_rules += 1,
        }
    }

    fn number(&mut self, schema: &Value, n: &Number, path: &str) {
        let Some(x) = n.as_f64() else { return };
        if let Some(min) = schema["minimum"].as_f64() {
            if x < min || (schema["exclusiveMinimum"] == true && x <= min) {
                self.error(path, format!("{n} is less than the minimum {min}"));
            }
        }
        if let Some(max) = schema["maximum"].as_f64() {
            if x > max || (schema["exclusiveMaximum"] == true && x >= max) {
                self.error(path, format!("{n} is greater than the maximum {max}"));
            }
        }
        let format = schema["format"].as_str().unwrap_or_default();
        let fits = match format {
            "int32" => (f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&x),
            "int64" => !n.is_u64() || n.as_i64().is_some(),
            _ => true,
        };
        if !fits {
            self.error(path, format!("{n} does not fit {format}"));
        }
    }

    fn array(&mut self, schema: &Value, items: &[Value], path: &str) {
        self.bounds(schema, "Items", items.len(), "items", path);
        if schema["items"].is_object() {
            for (i, item) in items.iter().enumerate() {
                self.value(&schema["items"], item, &format!("{path}[{i}]"));
            }
        }
        self.unique(schema, items, path);
    }

    /// `x-kubernetes-list-type: set` items, and `map` items' keys (defaulted where absent, as the
    /// API server defaults before it validates), must be unique.
    fn unique(&mut self, schema: &Value, items: &[Value], path: &str) {
        let keys: Vec<&str> = match schema["x-kubernetes-list-type"].as_str() {
            Some("set") => Vec::new(),
            Some("map") => strings(&schema["x-kubernetes-list-map-keys"]).collect(),
            _ => return,
        };
        let default = |k: &str| schema["items"]["properties"][k].get("default");
        let mut seen = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let key = |k: &&str| item.get(*k).or(default(k)).unwrap_or(&Value::Null);
            let id = match keys.is_empty() {
                true => item.to_string(),
                false => keys
                    .iter()
                    .map(|k| format!("{k}={}", key(k)))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            if !seen.insert(id.clone()) {
                self.error(&format!("{path}[{i}]"), format!("duplicate entry {id}"));
            }
        }
    }

    fn object(&mut self, schema: &Value, fields: &Map<String, Value>, path: &str) {
        for name in strings(&schema["required"]) {
            // A defaulted field is filled in by the API server before validation.
            if !fields.contains_key(name) && schema["properties"][name].get("default").is_none() {
                self.error(&join(path, name), "required field missing");
            }
        }
        self.bounds(schema, "Properties", fields.len(), "fields", path);
        let extra = &schema["additionalProperties"];
        let open = schema["x-kubernetes-preserve-unknown-fields"] == true || *extra == true;
        let embedded = schema["x-kubernetes-embedded-resource"] == true;
        for (name, v) in fields {
            if let Some(field_schema) = schema["properties"].get(name) {
                self.value(field_schema, v, &join(path, name));
            } else if extra.is_object() {
                self.value(extra, v, &format!("{path}[{name}]"));
            } else if self.strict && !open && !(embedded && ROOT_FIELDS.contains(&name.as_str())) {
                self.error(&join(path, name), "unknown field");
            }
        }
    }

    /// minLength/maxLength, minItems/maxItems, minProperties/maxProperties.
    fn bounds(&mut self, schema: &Value, suffix: &str, len: usize, unit: &str, path: &str) {
        let len = len as u64;
        let limit = |key: String| schema[key].as_u64();
        if let Some(min) = limit(format!("min{suffix}")).filter(|&min| len < min) {
            self.error(
                path,
                format!("has {len} {unit}, fewer than the minimum {min}"),
            );
        }
        if let Some(max) = limit(format!("max{suffix}")).filter(|&max| len > max) {
            self.error(
                path,
                format!("has {len} {unit}, more than the maximum {max}"),
            );
        }
    }

    /// allOf: every branch; anyOf: at least one; oneOf: exactly one; not: none. KServe's CRDs use
    /// only int-or-string's `anyOf: [{type: integer}, {type: string}]`, which the type check has
    /// settled already, but other CRDs say `anyOf: [{required: [a]}, {required: [b]}]`.
    fn combinators(&mut self, schema: &Value, v: &Value, path: &str) {
        let branches = |key| elements(&schema[key]);
        for branch in branches("allOf") {
            let mut sub = Walker::new(false);
            sub.value(branch, v, path);
            self.report.violations.append(&mut sub.report.violations);
        }
        let passing = |key| branches(key).iter().filter(|b| passes(b, v, path)).count();
        if !branches("anyOf").is_empty() && passing("anyOf") == 0 {
            self.error(path, format!("matches none of anyOf {}", schema["anyOf"]));
        }
        let (one_of, alternatives) = (passing("oneOf"), &schema["oneOf"]);
        if !branches("oneOf").is_empty() && one_of != 1 {
            self.error(
                path,
                format!("matches {one_of} of oneOf {alternatives}, not one"),
            );
        }
        if schema["not"].is_object() && passes(&schema["not"], v, path) {
            self.error(path, format!("must not match {}", schema["not"]));
        }
    }
}

fn passes(branch: &Value, v: &Value, path: &str) -> bool {
    let mut sub = Walker::new(false);
    sub.value(branch, v, path);
    sub.report.violations.is_empty()
}

/// The elements of a JSON array; none if it is absent.
fn elements(list: &Value) -> &[Value] {
    list.as_array().map_or(&[], Vec::as_slice)
}

/// The strings in a JSON array such as `required`.
fn strings(list: &Value) -> impl Iterator<Item = &str> {
    elements(list).iter().filter_map(Value::as_str)
}

fn join(path: &str, name: &str) -> String {
    format!("{path}{}{name}", if path.is_empty() { "" } else { "." })
}

/// The type the schema asks for; None when it allows any value (no `type`, as under
/// `x-kubernetes-preserve-unknown-fields`, or in an anyOf branch that only restricts values).
fn expected_type(schema: &Value) -> Option<&str> {
    if schema["x-kubernetes-int-or-string"] == true {
        Some("integer or string")
    } else {
        schema["type"].as_str()
    }
}

fn has_type(v: &Value, want: &str) -> bool {
    match want {
        "integer or string" => is_integer(v) || v.is_string(),
        "integer" => is_integer(v),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true, // not a structural-schema type; the API server refuses such a CRD
    }
}

/// Like go-openapi, a float with no fractional part (e.g. `2.0`) counts as an integer.
fn is_integer(v: &Value) -> bool {
    let whole = |n: &Number| n.as_f64().is_some_and(|x| x.fract() == 0.0);
    v.as_number()
        .is_some_and(|n| n.is_i64() || n.is_u64() || whole(n))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The KServe release the fixtures come from (`tests/fixtures/kserve/README.md`).
pub const KSERVE_COMMIT: &str = "aaac4e294dae2c7b1aa1886447793f3aa1c30912";

/// KServe's own CRD for `kind` (`InferenceService` or `LLMInferenceService`) at
/// [`KSERVE_COMMIT`], schema of `version`: from the repository's gzipped copy of
/// `config/crd/full/...`, read with Debian's gzip (no decompression crate for two files).
pub fn kserve(kind: &str, version: &str) -> CrdSchema {
    let file = match kind {
        "InferenceService" => "serving.kserve.io_inferenceservices.yaml.gz",
        "LLMInferenceService" => "serving.kserve.io_llminferenceservices.yaml.gz",
        other => panic!("no KServe CRD fixture for {other}"),
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/kserve")
        .join(file);
    let out = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("gzip -dc {}: {e}", path.display()));
    assert!(out.status.success(), "gzip -dc {} failed", path.display());
    let yaml = String::from_utf8(out.stdout).expect("a CRD is UTF-8");
    CrdSchema::from_yaml(&yaml, version).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
