//! `labelSelector` and `fieldSelector` of lists and watches, parsed and matched as the
//! apiserver does for what a client sends: equality (`k=v`, `k==v`, `k!=v`), and for labels
//! also existence (`k`, `!k`) and sets (`k in (a,b)`, `k notin (a,b)`). A field a resource
//! cannot be selected by is a 400, as on a cluster, so a client cannot rely on filtering
//! that only this server does.

use serde_json::Value;

use super::status::Failure;
use crate::http_server::Request;

/// The fields a custom resource can be selected by.
pub(super) const CUSTOM_RESOURCE_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// The fields a pod can be selected by (`pkg/registry/core/pod` `PodToSelectableFields`).
pub(super) const POD_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];

/// The fields an event can be selected by (`pkg/registry/core/event` `ToSelectableFields`).
pub(super) const EVENT_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

#[derive(Debug, Clone)]
enum Test {
    Equals(String),
    Differs(String),
    Exists,
    Missing,
    In(Vec<String>),
    NotIn(Vec<String>),
}

/// Both selectors of a request.
#[derive(Debug, Clone, Default)]
pub(super) struct Selector {
    fields: Vec<(String, Test)>,
    labels: Vec<(String, Test)>,
}

impl Selector {
    /// The selectors of `request`, for a resource selectable by `fields`.
    pub fn from_request(request: &Request, fields: &[&str]) -> Result<Self, Failure> {
        let mut selector = Self::default();
        if let Some(text) = request.param("fieldSelector") {
            for part in split_top_level(text) {
                let (key, test) = parse_field(part)?;
                if !fields.contains(&key.as_str()) {
                    return Err(Failure::bad_request(format!(
                        "field label not supported: {key}"
                    )));
                }
                selector.fields.push((key, test));
            }
        }
        if let Some(text) = request.param("labelSelector") {
            for part in split_top_level(text) {
                selector.labels.push(parse_label(part)?);
            }
        }
        Ok(selector)
    }

    pub fn matches(&self, object: &Value) -> bool {
        let field = |key: &str| {
            let value = key.split('.').try_fold(object, |v, k| v.get(k))?;
            Some(match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        let label = |key: &str| {
            object["metadata"]["labels"][key]
                .as_str()
                .map(str::to_owned)
        };
        self.fields.iter().all(|(k, t)| passes(t, field(k)))
            && self.labels.iter().all(|(k, t)| passes(t, label(k)))
    }
}

fn passes(test: &Test, value: Option<String>) -> bool {
    let value = value.as_deref();
    match test {
        Test::Equals(v) => value == Some(v.as_str()),
        // A missing field or label differs from any value.
        Test::Differs(v) => value != Some(v.as_str()),
        Test::Exists => value.is_some(),
        Test::Missing => value.is_none(),
        Test::In(set) => value.is_some_and(|v| set.iter().any(|s| s == v)),
        Test::NotIn(set) => value.is_none_or(|v| set.iter().all(|s| s != v)),
    }
}

/// Requirements are separated by commas outside the parentheses of a set.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn parse_field(part: &str) -> Result<(String, Test), Failure> {
    let parsed = if let Some((k, v)) = part.split_once("!=") {
        Some((k, Test::Differs(v.trim().into())))
    } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        Some((k, Test::Equals(v.trim().into())))
    } else {
        None
    };
    match parsed {
        Some((key, test)) if !key.trim().is_empty() => Ok((key.trim().into(), test)),
        _ => Err(Failure::bad_request(format!(
            "invalid selector: '{part}'; can't understand '{part}'"
        ))),
    }
}

fn parse_label(part: &str) -> Result<(String, Test), Failure> {
    let invalid = || {
        Failure::bad_request(format!(
            "unable to parse requirement: found '{part}', expected: '=', '!=', '==', 'in', notin'"
        ))
    };
    if let Some(key) = part.strip_prefix('!') {
        return Ok((key.trim().into(), Test::Missing));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok((k.trim().into(), Test::Differs(v.trim().into())));
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok((k.trim().into(), Test::Equals(v.trim().into())));
    }
    let words: Vec<&str> = part.splitn(3, char::is_whitespace).collect();
    match words.as_slice() {
        [key] => Ok(((*key).into(), Test::Exists)),
        [key, op @ ("in" | "notin"), set] => {
            let set = set
                .trim()
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .ok_or_else(invalid)?;
            let values = set.split(',').map(|v| v.trim().to_owned()).collect();
            let test = if *op == "in" {
                Test::In(values)
            } else {
                Test::NotIn(values)
            };
            Ok(((*key).into(), test))
        }
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn selector(query: &str, fields: &[&str]) -> Result<Selector, Failure> {
        Selector::from_request(
            &Request::from_head(&format!("GET /x?{query} HTTP/1.1")),
            fields,
        )
    }

    #[test]
    fn selectors_match_like_the_apiserver() {
        let pod = json!({"metadata": {"name": "p", "labels": {"app": "a", "tier": "web"}},
                         "status": {"phase": "Running"}});
        let yes = |q: &str| selector(q, POD_FIELDS).unwrap().matches(&pod);
        assert!(yes("labelSelector=app%3Da,tier%3D%3Dweb"));
        assert!(yes("labelSelector=app,!gone,tier+in+(db,web)"));
        assert!(yes(
            "labelSelector=tier+notin+(db)&fieldSelector=status.phase%3DRunning"
        ));
        assert!(!yes("labelSelector=app!%3Da"));
        assert!(!yes("fieldSelector=metadata.name%3Dq"));
        let refused = selector("fieldSelector=spec.x%3D1", CUSTOM_RESOURCE_FIELDS).unwrap_err();
        assert_eq!(refused.body["message"], "field label not supported: spec.x");
    }
}
