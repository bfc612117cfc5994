//! Every golden manifest `dry_run.rs` writes is valid against KServe's own CRD for its kind
//! and version (kserve/kserve `config/crd/full`, gzipped in `tests/fixtures/kserve`), with no
//! field the CRD does not know, and its storage URI names the OCI mode its file name says, as
//! KServe's `ParseOciScheme` reads it (a bare `oci://` is modelcar under KServe's default).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use deploy::{parse_oci_uri, OciMode};
use modelcar_testkit::crd_schema::{self, CrdSchema};
use serde_json::Value;

fn goldens() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut goldens: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, serde_yaml_ng::from_str(&text).unwrap())
        })
        .collect();
    goldens.sort_by(|a, b| a.0.cmp(&b.0));
    goldens
}

/// The CRD schema for the object's kind and version.
fn schema_of<'a>(cache: &'a mut BTreeMap<String, CrdSchema>, object: &Value) -> &'a CrdSchema {
    let kind = object["kind"].as_str().unwrap().to_owned();
    let version = object["apiVersion"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    cache
        .entry(format!("{kind}/{version}"))
        .or_insert_with(|| crd_schema::kserve(&kind, version))
}

fn storage_uri(object: &Value) -> &str {
    let uri = match object["kind"].as_str() {
        Some("InferenceService") => &object["spec"]["predictor"]["model"]["storageUri"],
        _ => &object["spec"]["model"]["uri"],
    };
    uri.as_str().expect("a storage URI")
}

#[test]
fn every_golden_manifest_is_valid_against_kserves_crd_and_names_its_mode() {
    let mut cache = BTreeMap::new();
    let mut covered = BTreeSet::new();
    for (name, object) in goldens() {
        let violations = schema_of(&mut cache, &object).violations(&object);
        assert!(violations.is_empty(), "{name}: {violations:#?}");
        let (mode, _) = parse_oci_uri(storage_uri(&object)).expect("an OCI URI");
        let mode = mode.unwrap_or_default();
        let named = match name.trim_end_matches(".yaml").rsplit('-').next() {
            Some("native") => OciMode::Native,
            Some("fetch") => OciMode::Fetch,
            _ => OciMode::Modelcar,
        };
        assert_eq!(mode, named, "{name}: {}", storage_uri(&object));
        covered.insert((
            object["kind"].as_str().unwrap().to_owned(),
            mode.to_string(),
        ));
    }
    let want: BTreeSet<(String, String)> = [
        ("InferenceService", "modelcar"),
        ("InferenceService", "native"),
        ("InferenceService", "fetch"),
        ("LLMInferenceService", "modelcar"),
        ("LLMInferenceService", "native"),
    ]
    .into_iter()
    .map(|(k, m)| (k.to_owned(), m.to_owned()))
    .collect();
    assert_eq!(covered, want, "a golden manifest for every kind and mode");
}

/// The check has teeth on the real CRDs: a misspelled field is refused where the API server
/// would have pruned it silently.
#[test]
fn a_field_kserve_does_not_know_is_refused() {
    let mut cache = BTreeMap::new();
    for (name, mut object) in goldens() {
        let model = match object["kind"].as_str() {
            Some("InferenceService") => &mut object["spec"]["predictor"]["model"],
            _ => &mut object["spec"]["template"]["containers"][0],
        };
        let map = model.as_object_mut().unwrap();
        let resources = map.shift_remove("resources").unwrap();
        map.insert("resource".into(), resources);
        let violations = schema_of(&mut cache, &object).violations(&object);
        assert_eq!(violations.len(), 1, "{name}: {violations:#?}");
        assert!(
            violations[0].ends_with(".resource: unknown field"),
            "{name}: {violations:?}"
        );
    }
}
