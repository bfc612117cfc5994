//! The request bodies of the model registry's spec, flattened from their `allOf`s, and the
//! checks the real server makes on them (unknown fields, types, required fields,
//! `MetadataValue`s).

use base64::prelude::{Engine, BASE64_STANDARD};
use serde_json::{Map, Value};

use crate::http_server::Reply;

/// The JSON type a field must have.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Str,
    /// A string of the spec's id pattern.
    Id,
    StrList,
    /// `customProperties`: name -> `MetadataValue`.
    Properties,
    /// A string from a fixed set (the spec's enums, and the `artifactType` discriminator).
    Enum(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Field {
    name: &'static str,
    ty: Ty,
    required: bool,
}

const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}

const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}

const ARTIFACT_STATES: &[&str] = &[
    "UNKNOWN",
    "PENDING",
    "LIVE",
    "MARKED_FOR_DELETION",
    "DELETED",
    "ABANDONED",
    "REFERENCE",
];
/// `RegisteredModelState` and `ModelVersionState`.
const MODEL_STATES: &[&str] = &["LIVE", "ARCHIVED"];

/// `BaseResourceUpdate`.
const BASE_RESOURCE_UPDATE: &[Field] = &[
    opt("customProperties", Ty::Properties),
    opt("description", Ty::Str),
    opt("externalId", Ty::Str),
];

/// `BaseModel` (its `description` and `customProperties` repeat `BaseResourceUpdate`'s).
const BASE_MODEL: &[Field] = &[
    opt("readme", Ty::Str),
    opt("maturity", Ty::Str),
    opt("language", Ty::StrList),
    opt("tasks", Ty::StrList),
    opt("provider", Ty::Str),
    opt("logo", Ty::Str),
    opt("license", Ty::Str),
    opt("licenseLink", Ty::Str),
    opt("libraryName", Ty::Str),
];

/// `ModelArtifactUpdate` beyond `BaseResourceUpdate`.
const MODEL_ARTIFACT_FIELDS: &[Field] = &[
    opt("artifactType", Ty::Enum(&["model-artifact"])),
    opt("modelFormatName", Ty::Str),
    opt("storageKey", Ty::Str),
    opt("storagePath", Ty::Str),
    opt("modelFormatVersion", Ty::Str),
    opt("serviceAccountName", Ty::Str),
    opt("modelSourceKind", Ty::Str),
    opt("modelSourceClass", Ty::Str),
    opt("modelSourceGroup", Ty::Str),
    opt("modelSourceId", Ty::Str),
    opt("modelSourceName", Ty::Str),
    opt("uri", Ty::Str),
    opt("state", Ty::Enum(ARTIFACT_STATES)),
];

/// `RegisteredModelCreate` = `BaseResourceCreate` + `RegisteredModelUpdate` + required `name`.
pub(super) fn registered_model_create() -> Vec<Field> {
    [
        BASE_RESOURCE_UPDATE,
        BASE_MODEL,
        &[
            req("name", Ty::Str),
            opt("owner", Ty::Str),
            opt("state", Ty::Enum(MODEL_STATES)),
        ],
    ]
    .concat()
}

/// `ModelVersionCreate` = `BaseResourceCreate` + `ModelVersionUpdate` + required `name` and
/// `registeredModelId`.
pub(super) fn model_version_create() -> Vec<Field> {
    [
        BASE_RESOURCE_UPDATE,
        &[
            req("name", Ty::Str),
            req("registeredModelId", Ty::Id),
            opt("state", Ty::Enum(MODEL_STATES)),
            opt("author", Ty::Str),
        ],
    ]
    .concat()
}

/// `ModelArtifactUpdate`, the PATCH body.
pub(super) fn model_artifact_update() -> Vec<Field> {
    [BASE_RESOURCE_UPDATE, MODEL_ARTIFACT_FIELDS].concat()
}

/// `ModelArtifact`, the `model-artifact` branch of `Artifact` (what the upsert endpoint
/// takes): `BaseArtifact` (with the output-only fields) + `ModelArtifactCreate`. The
/// discriminator `artifactType` selects the branch, so it is required here.
pub(super) fn model_artifact() -> Vec<Field> {
    [
        BASE_RESOURCE_UPDATE,
        MODEL_ARTIFACT_FIELDS,
        &[
            req("artifactType", Ty::Enum(&["model-artifact"])),
            opt("name", Ty::Str),
            opt("id", Ty::Id),
            opt("createTimeSinceEpoch", Ty::Str),
            opt("lastUpdateTimeSinceEpoch", Ty::Str),
            opt("experimentId", Ty::Id),
            opt("experimentRunId", Ty::Id),
        ],
    ]
    .concat()
}

/// A body that is a JSON object of `schema`, or the error the real server sends: 400 for bad
/// JSON, an unknown field or a wrong type (its decoder fails), then 422 for a required field
/// that is missing or empty (its `Assert...Required` fails; the body says "Bad Request").
pub(super) fn validate(body: &[u8], schema: &[Field]) -> Result<Map<String, Value>, Reply> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Reply::error(400, format!("request body is not JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(Reply::error(400, "request body is not a JSON object"));
    };
    for (name, value) in &object {
        // The last definition wins where `allOf` parts repeat a field (e.g. `artifactType`).
        let field = schema
            .iter()
            .rev()
            .find(|f| f.name == name)
            .ok_or_else(|| Reply::error(400, format!("json: unknown field {name:?}")))?;
        check_type(field, value).map_err(|message| Reply::error(400, message))?;
    }
    for field in schema.iter().filter(|f| f.required) {
        let missing = match object.get(field.name) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(_) => false,
        };
        if missing {
            return Err(Reply::error_with_code(
                422,
                400,
                format!("required field '{}' is zero value.", field.name),
            ));
        }
    }
    Ok(object)
}

fn check_type(field: &Field, value: &Value) -> Result<(), String> {
    let name = field.name;
    let wrong = |expected: &str| format!("field {name:?} must be {expected}, not {value}");
    match (field.ty, value) {
        (Ty::Str, Value::String(_)) => Ok(()),
        (Ty::Id, Value::String(s)) if is_id(s) => Ok(()),
        (Ty::Id, _) => Err(wrong("an id string matching ^[1-9][0-9]{0,8}$")),
        (Ty::StrList, Value::Array(items)) if items.iter().all(Value::is_string) => Ok(()),
        (Ty::StrList, _) => Err(wrong("an array of strings")),
        (Ty::Enum(allowed), Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        (Ty::Enum(allowed), _) => Err(wrong(&format!("one of {allowed:?}"))),
        (Ty::Properties, Value::Object(properties)) => properties
            .iter()
            .try_for_each(|(key, v)| check_metadata_value(key, v)),
        (Ty::Properties, _) => Err(wrong("an object of MetadataValue")),
        (Ty::Str, _) => Err(wrong("a string")),
    }
}

/// A field of a `MetadataValue` variant and the check its value must pass.
type ValueField = (&'static str, fn(&Value) -> bool);

/// A `MetadataValue`: `oneOf` selected by `metadataType`, each variant with
/// `additionalProperties: false` and both of its fields required.
fn check_metadata_value(key: &str, value: &Value) -> Result<(), String> {
    let bad = |why: String| format!("customProperties[{key:?}]: {why}");
    let Value::Object(fields) = value else {
        return Err(bad(format!("must be a MetadataValue object, not {value}")));
    };
    let Some(Value::String(kind)) = fields.get("metadataType") else {
        return Err(bad("metadataType (a string) is required".into()));
    };
    let expected: &[ValueField] = match kind.as_str() {
        "MetadataStringValue" => &[("string_value", Value::is_string)],
        "MetadataIntValue" => &[("int_value", is_int32_string)],
        "MetadataDoubleValue" => &[("double_value", Value::is_number)],
        "MetadataBoolValue" => &[("bool_value", Value::is_boolean)],
        "MetadataStructValue" => &[("struct_value", is_base64)],
        "MetadataProtoValue" => &[("type", Value::is_string), ("proto_value", is_base64)],
        other => return Err(bad(format!("unknown metadataType {other:?}"))),
    };
    for name in fields.keys().filter(|n| *n != "metadataType") {
        if !expected.iter().any(|(n, _)| n == name) {
            return Err(bad(format!("unknown field {name:?} in {kind}")));
        }
    }
    for (name, is_valid) in expected {
        match fields.get(*name) {
            None => return Err(bad(format!("{kind} requires {name:?}"))),
            Some(v) if !is_valid(v) => return Err(bad(format!("{name:?} is invalid: {v}"))),
            Some(_) => {}
        }
    }
    Ok(())
}

/// `int_value`: an int32 carried as a string, pattern `^-?([1-9][0-9]{0,8}|0)$`.
fn is_int32_string(value: &Value) -> bool {
    let Some(text) = value.as_str() else {
        return false;
    };
    let digits = text.strip_prefix('-').unwrap_or(text);
    digits == "0" || is_id(digits)
}

/// `struct_value` / `proto_value`: base64 bytes (`format: byte`).
fn is_base64(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|text| BASE64_STANDARD.decode(text).is_ok())
}

/// The spec's id pattern `^[1-9][0-9]{0,8}$`.
pub(super) fn is_id(text: &str) -> bool {
    (1..=9).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_digit())
        && !text.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_follow_the_spec_pattern() {
        assert!(is_id("1") && is_id("123456789"));
        assert!(!is_id("0") && !is_id("01") && !is_id("1234567890") && !is_id("a"));
    }

    #[test]
    fn int_values_are_int32_strings() {
        assert!(is_int32_string(&json!("0")) && is_int32_string(&json!("-42")));
        assert!(!is_int32_string(&json!(42)) && !is_int32_string(&json!("1.5")));
        assert!(!is_int32_string(&json!("007")));
    }

    #[test]
    fn metadata_values_are_checked_by_their_discriminator() {
        let ok = json!({"metadataType": "MetadataStructValue", "struct_value": "e30="});
        assert_eq!(check_metadata_value("k", &ok), Ok(()));
        let extra = json!({"metadataType": "MetadataBoolValue", "bool_value": true, "x": 1});
        assert!(check_metadata_value("k", &extra).is_err());
        let wrong = json!({"metadataType": "MetadataDoubleValue", "double_value": "1.5"});
        assert!(check_metadata_value("k", &wrong).is_err());
        let untyped = json!({"string_value": "v"});
        assert!(check_metadata_value("k", &untyped).is_err());
    }
}
