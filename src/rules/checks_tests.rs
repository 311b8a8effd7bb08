//! Tests of `checks` (a file of their own to keep the module short).

use super::*;
use crate::rules::load;

use crate::rules::test_rules::SMALL;

#[test]
fn the_spec_is_compact_json_of_groups_and_checks() {
    let r = load::from_str(SMALL, "t").unwrap();
    let spec: Value = serde_json::from_str(&r.checks_spec).unwrap();
    assert_eq!(
        spec,
        json!({
            "groups": {
                "inner": ["max", [["t", "a"], ["t", "b"]]],
                "outer": ["first", [["g", "inner"], ["t", "x"]]],
                "solo": ["max", [["t", "x"]]]
            },
            "checks": [
                ["plain", ["newer", ["t", "a"], [["t", "b"], ["g", "outer"]], true]],
                ["nested", ["all", [
                    ["not", ["exists", "attrs:x"]],
                    ["any", [["nonempty", "timestamps:x"], ["eq", "f", "v"]]]
                ]]],
                ["via_group", ["newer", ["g", "outer"], [["t", "x"]], false]],
                ["flag", ["eq", "attrs:has_sbs", "true"]]
            ]
        })
    );
    assert_eq!(r.checks_spec, checks_spec(&r.groups, &r.checks));
}

#[test]
fn grammar_errors_carry_paths() {
    let text = SMALL.replace(
        r#""flag": {"equals": {"field": "attrs:has_sbs", "value": "true"}}"#,
        r#""flag": {"equals": {"field": "", "value": 3}}, "two": {"exists": "a", "not": {}},
           "empty": {"any": []}, "deep": {"newer": "a", "than_all": []}"#,
    );
    let Err(crate::errors::CoreError::Rules { issues, .. }) = load::from_str(&text, "t") else {
        panic!("accepted")
    };
    let got: Vec<String> = issues.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "checks.flag.equals.field: expected a hash field name, got a string",
            "checks.flag.equals.value: expected a string, got a number",
            "checks.two: a check has exactly one of: exists, non_empty, equals, newer, present, all, any, not, when (found 2)",
            "checks.empty.any: expected a non-empty array of checks",
            "checks.deep.than_all: expected a non-empty array",
        ]
    );
}

#[test]
fn present_and_when_compile_and_need_their_parts() {
    let text = SMALL.replace(
        r#""flag": {"equals": {"field": "attrs:has_sbs", "value": "true"}}"#,
        r#""flag": {"when": {"present": "@outer"}, "then": {"newer": "a", "than_all": ["x"]}}"#,
    );
    let r = load::from_str(&text, "t").unwrap();
    let spec: Value = serde_json::from_str(&r.checks_spec).unwrap();
    assert_eq!(
        spec["checks"][3],
        json!([
            "flag",
            [
                "when",
                ["present", ["g", "outer"]],
                ["newer", ["t", "a"], [["t", "x"]], true]
            ]
        ])
    );
    let bad = SMALL.replace(
        r#""flag": {"equals": {"field": "attrs:has_sbs", "value": "true"}}"#,
        r#""flag": {"when": {"present": "zz"}}, "p": {"present": "@nope"},
           "t": {"then": {"exists": "f"}}, "w": {"when": {"exists": "f"}, "then": {}, "x": 1}"#,
    );
    let Err(crate::errors::CoreError::Rules { issues, .. }) = load::from_str(&bad, "t") else {
        panic!("accepted")
    };
    let got: Vec<String> = issues.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "checks.flag.when.present: unknown task \"zz\" (not defined under \"tasks\")",
            "checks.flag: \"when\" needs a \"then\" check",
            "checks.p.present: unknown group \"@nope\"",
            "checks.t: a check has exactly one of: exists, non_empty, equals, newer, present, all, any, not, when (found 0)",
            "checks.t.then: unknown check primitive \"then\"",
            "checks.w.x: unknown key \"x\" (allowed: when, then)",
            "checks.w.then: a check has exactly one of: exists, non_empty, equals, newer, present, all, any, not, when (found 0)",
        ]
    );
}

#[test]
fn nesting_is_bounded() {
    let mut check = r#"{"exists": "f"}"#.to_string();
    for _ in 0..40 {
        check = format!(r#"{{"not": {check}}}"#);
    }
    let text = SMALL.replacen(
        r#""plain": "#,
        &format!(r#""too_deep": {check}, "plain": "#),
        1,
    );
    let Err(crate::errors::CoreError::Rules { issues, .. }) = load::from_str(&text, "t") else {
        panic!("accepted")
    };
    assert!(issues[0].message.contains("deeper than 32"), "{issues:?}");
}
