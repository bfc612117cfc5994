use super::patterns::is_quantity;
use super::*;

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
spec:
  group: example.com
  names: {kind: Widget}
  versions:
  - {name: v0, served: false, schema: {openAPIV3Schema: {type: object}}}
  - {name: v2, served: true}
  - name: v1
    served: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object, properties: {name: {type: string, maxLength: 8}}}
          spec:
            type: object
            required: [size, mode]
            x-kubernetes-validations: [{rule: "self.size > 0"}]
            properties:
              size: {type: integer, format: int32, minimum: 1, maximum: 10}
              mode: {type: string, enum: [fast, slow], default: fast}
              note: {type: string, maxLength: 5, nullable: true}
              host: {type: string, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'}
              url: {type: string, pattern: '^https://'}
              labels: {type: object, additionalProperties: {type: string}}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
              anything: {x-kubernetes-preserve-unknown-fields: true}
              limits:
                type: object
                additionalProperties:
                  anyOf: [{type: integer}, {type: string}]
                  pattern: '^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$'
                  x-kubernetes-int-or-string: true
              ports:
                type: array
                maxItems: 2
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [port, protocol]
                items:
                  type: object
                  required: [port]
                  properties: {port: {type: integer}, protocol: {type: string, default: TCP}}
              tags: {type: array, items: {type: string}, x-kubernetes-list-type: set}
              source:
                type: object
                properties: {uri: {type: string}, path: {type: string}}
                oneOf: [{required: [uri]}, {required: [path]}]
              target:
                type: object
                properties: {a: {type: string}, b: {type: string}, c: {type: string}}
                anyOf: [{required: [a]}, {required: [b]}]
                allOf: [{not: {required: [c]}}]
              big: {type: integer, format: int32}
              dns: {type: string, pattern: '^[a-z]([-a-z0-9]*[a-z0-9])?$'}
              free: {type: object, additionalProperties: true}
              resource: {type: object, x-kubernetes-embedded-resource: true, properties: {spec: {type: object}}}
"#;

fn schema() -> CrdSchema {
    CrdSchema::from_yaml(CRD, "v1").expect("test CRD parses")
}

/// The violations of a Widget with this spec (YAML flow mapping).
fn check(spec: &str) -> Vec<String> {
    let spec: Value = serde_yaml_ng::from_str(spec).expect("test spec parses");
    schema().violations(&json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}))
}

#[test]
fn reads_the_version_asked_for() {
    let crd = schema();
    assert_eq!(
        (crd.api_version().as_str(), crd.kind()),
        ("example.com/v1", "Widget")
    );
    let error = |version| CrdSchema::from_yaml(CRD, version).err().unwrap_or_default();
    assert_eq!(error("v3"), "Widget has no version v3, only v0, v2, v1");
    assert_eq!(error("v0"), "Widget version v0 is not served");
    assert_eq!(error("v2"), "Widget v2 has no schema.openAPIV3Schema");
    assert!(CrdSchema::from_yaml("kind: Pod", "v1")
        .is_err_and(|e| e.contains("CustomResourceDefinition")));
}

#[test]
fn accepts_a_valid_object() {
    assert_eq!(check("{size: 3, mode: slow, note: null, labels: {a: b}, extra: {x: {y: 1}}, anything: [1], tags: [a, b]}"), Vec::<String>::new());
}

#[test]
fn reports_unknown_fields_types_and_required_fields() {
    assert_eq!(check("{size: 3, sise: 3}"), ["spec.sise: unknown field"]);
    assert_eq!(
        check("{size: '3'}"),
        ["spec.size: expected integer, got string"]
    );
    assert_eq!(
        check("{size: 2.5}"),
        ["spec.size: expected integer, got number"]
    );
    assert_eq!(
        check("{size: 2.0, labels: {a: 1}}"),
        ["spec.labels[a]: expected string, got number"]
    );
    assert_eq!(check("{mode: fast}"), ["spec.size: required field missing"]); // mode has a default
    assert_eq!(
        check("{size: null}"),
        ["spec.size: expected integer, got null"]
    );
    assert_eq!(
        check("{size: 1, anything: null, extra: {a: null}}"),
        Vec::<String>::new()
    );
    assert_eq!(check("[]"), ["spec: expected object, got array"]);
}

#[test]
fn checks_value_restrictions() {
    assert_eq!(
        check("{size: 0}"),
        ["spec.size: 0 is less than the minimum 1"]
    );
    assert_eq!(
        check("{size: 11}"),
        ["spec.size: 11 is greater than the maximum 10"]
    );
    assert_eq!(
        check("{size: 3, mode: slower}"),
        [r#"spec.mode: "slower" is not one of "fast", "slow""#]
    );
    assert_eq!(
        check("{size: 3, note: toolong}"),
        ["spec.note: has 7 characters, more than the maximum 5"]
    );
    assert_eq!(
        check("{size: 3, host: My-host}"),
        [r#"spec.host: "My-host" is not a DNS-1123 label"#]
    );
    let ports = "{size: 3, ports: [{port: 1}, {port: 1, protocol: UDP}, {port: 1, protocol: TCP}]}";
    assert_eq!(
        check(ports),
        [
            "spec.ports: has 3 items, more than the maximum 2",
            "spec.ports[2]: duplicate entry port=1, protocol=\"TCP\""
        ]
    );
    assert_eq!(
        check("{size: 3, tags: [a, a]}"),
        [r#"spec.tags[1]: duplicate entry "a""#]
    );
}

#[test]
fn accepts_quantities_as_integers_or_strings() {
    assert_eq!(
        check("{size: 1, limits: {cpu: 1, memory: 96Gi, gpu: '1', x: 500m, y: 1e3, z: '.5'}}"),
        Vec::<String>::new()
    );
    assert_eq!(
        check("{size: 1, limits: {memory: 96GB}}"),
        [r#"spec.limits[memory]: "96GB" is not a quantity such as 1, 500m or 96Gi"#]
    );
    assert_eq!(
        check("{size: 1, limits: {cpu: true}}"),
        ["spec.limits[cpu]: expected integer or string, got boolean"]
    );
    for bad in ["", ".", "1.2.3", "1Ki2", "e3", "1e", "+-1", "1 Gi"] {
        assert!(!is_quantity(bad), "{bad:?}");
    }
    for good in ["0", "1.", "-.5", "+2.5e-3", "1E", "1E3", "7Ei", "3n"] {
        assert!(is_quantity(good), "{good:?}");
    }
}

#[test]
fn checks_one_of_in_value_validation_branches() {
    assert_eq!(check("{size: 1, source: {uri: a}}"), Vec::<String>::new());
    let both = check("{size: 1, source: {uri: a, path: b}}");
    assert_eq!(
        both,
        [
            r#"spec.source: matches 2 of oneOf [{"required":["uri"]},{"required":["path"]}], not one"#
        ]
    );
    assert_eq!(check("{size: 1, source: {}}").len(), 1);
}

#[test]
fn checks_any_of_all_of_and_not() {
    assert_eq!(check("{size: 1, target: {b: x}}"), Vec::<String>::new());
    let none = [r#"spec.target: matches none of anyOf [{"required":["a"]},{"required":["b"]}]"#];
    assert_eq!(check("{size: 1, target: {}}"), none);
    let c = [r#"spec.target: must not match {"required":["c"]}"#];
    assert_eq!(check("{size: 1, target: {a: x, c: y}}"), c);
}

#[test]
fn checks_formats_labels_and_open_objects() {
    assert_eq!(
        check("{size: 1, big: 2147483648}"),
        ["spec.big: 2147483648 does not fit int32"]
    );
    assert_eq!(
        check("{size: 1, dns: 1st}"),
        [r#"spec.dns: "1st" is not a DNS-1035 label"#]
    );
    let open =
        "{size: 1, dns: a-1, free: {x: [1]}, resource: {apiVersion: v1, kind: Pod, spec: {}}}";
    assert_eq!(check(open), Vec::<String>::new());
    assert_eq!(
        check("{size: 1, resource: {status: {}}}"),
        ["spec.resource.status: unknown field"]
    );
}

#[test]
fn checks_identity_and_object_meta() {
    let crd = schema();
    let object = json!({"apiVersion": "example.com/v2", "kind": "Gadget", "metadata": {"namespace": "n", "labels": {"a": 1}, "nmae": "x", "finalizers": null}, "spec": {"size": 1}});
    assert_eq!(
        crd.violations(&object),
        [
            r#"apiVersion: expected "example.com/v1", got "example.com/v2""#,
            r#"kind: expected "Widget", got "Gadget""#,
            "metadata.name: required field missing",
            "metadata.labels[a]: expected string, got number",
            "metadata.nmae: unknown field",
        ]
    );
    let named = |metadata: Value| {
        crd.violations(
            &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": metadata}),
        )
    };
    assert_eq!(
        named(json!({"generateName": "w-", "creationTimestamp": null})),
        Vec::<String>::new()
    );
    assert_eq!(
        named(json!({"name": "much-too-long"})),
        ["metadata.name: has 13 characters, more than the maximum 8"]
    );
    assert_eq!(
        crd.violations(&json!({"apiVersion": "example.com/v1", "kind": "Widget"})),
        ["metadata: required field missing"]
    );
    assert_eq!(
        crd.violations(&json!([])),
        ["(root): expected object, got array"]
    );
}

#[test]
fn counts_rules_it_cannot_evaluate() {
    let object = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1, "url": "https://x"}});
    let report = schema().check(&object);
    assert_eq!((report.violations.len(), report.unchecked_rules), (0, 2)); // one CEL rule, one pattern
}
