//! Tests of `preflight` (a file of their own to keep the module short).

use super::*;
use crate::rules::{load, BUILTIN_SOURCE, BUILTIN_TEXT};

fn run(pairs: &[(&str, &str)]) -> HashMap<String, bool> {
    let rules = load::from_str(BUILTIN_TEXT, BUILTIN_SOURCE).unwrap();
    let hash: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    evaluate(&rules, &hash, true)
        .checklist
        .into_iter()
        .collect()
}

#[test]
fn parse_int_per_spec() {
    assert_eq!(parse_int("017"), Some(17));
    assert_eq!(parse_int("+5"), Some(5));
    assert_eq!(parse_int("-5"), Some(-5));
    for bad in [
        " 7",
        "x12",
        "1_000",
        "",
        "+",
        "-",
        "99999999999999999999",
        "1.0",
        "７",
    ] {
        assert_eq!(parse_int(bad), None, "{bad}");
    }
}

#[test]
fn wepp_falls_back_to_run_wepp() {
    let base = [
        ("timestamps:build_landuse", "10"),
        ("timestamps:build_soils", "10"),
        ("timestamps:build_climate", "10"),
    ];
    let mut h = base.to_vec();
    h.push(("timestamps:run_wepp", "11"));
    assert!(run(&h)["wepp"]);
    h.push(("timestamps:run_wepp_watershed", ""));
    assert!(run(&h)["wepp"], "empty run_wepp_watershed falls back");
    h.pop();
    h.push(("timestamps:run_wepp_watershed", "abc"));
    assert!(!run(&h)["wepp"], "non-integer W compares false");
}

/// wepppy's checklist_test.go examples (services/preflight2), by check.
#[test]
fn newer_wepppy_checks() {
    let t = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| {
                let key = if k.contains(':') {
                    k.to_string()
                } else {
                    format!("timestamps:{k}")
                };
                (key, v.to_string())
            })
            .collect()
    };
    let rules = load::from_str(BUILTIN_TEXT, BUILTIN_SOURCE).unwrap();
    let eval = |pairs: &[(&str, &str)], check: &str| -> bool {
        let p = evaluate(&rules, &t(pairs), true);
        p.checklist.iter().find(|c| c.0 == check).unwrap().1
    };
    let lsc = [
        ("build_landuse", "100"),
        ("build_soils", "200"),
        ("build_climate", "300"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        lsc.iter().chain(extra).copied().collect()
    };
    assert!(eval(&with(&[("run_geneva", "400")]), "geneva"));
    assert!(!eval(&with(&[("run_geneva", "250")]), "geneva"));
    let sbs = [("run_geneva", "350"), ("init_sbs_map", "360")];
    assert!(!eval(
        &[with(&sbs), vec![("attrs:has_sbs", "true")]].concat(),
        "geneva"
    ));
    assert!(eval(
        &[with(&sbs), vec![("attrs:has_sbs", "false")]].concat(),
        "geneva"
    ));
    assert!(!eval(
        &with(&[("run_geneva", "350"), ("attrs:has_sbs", "true")]),
        "geneva"
    ));
    let rusle = [("build_climate", "100"), ("run_wepp_watershed", "200")];
    assert!(eval(
        &[&rusle[..], &[("build_rusle", "250")]].concat(),
        "rusle"
    ));
    assert!(!eval(
        &[
            ("build_climate", "300"),
            ("run_wepp_watershed", "200"),
            ("build_rusle", "250")
        ],
        "rusle"
    ));
    let gridded = [
        ("build_landuse", "100"),
        ("build_soils", "110"),
        ("build_climate", "120"),
        ("build_rusle", "130"),
    ];
    assert!(eval(&gridded, "rusle") && eval(&gridded, "wepp"));
    let stale = [
        ("build_landuse", "100"),
        ("build_soils", "110"),
        ("build_climate", "140"),
        ("build_rusle", "130"),
    ];
    assert!(!eval(&stale, "wepp"));
    assert!(eval(
        &[("run_wepp_watershed", "200"), ("run_roads", "210")],
        "roads"
    ));
    assert!(!eval(&[("run_roads", "210")], "roads"));
}

#[test]
fn when_explains_its_then_only_when_it_applies() {
    let rules = load::from_str(BUILTIN_TEXT, BUILTIN_SOURCE).unwrap();
    let hash: Vec<(String, String)> = [
        ("attrs:has_sbs", "true"),
        ("timestamps:run_geneva", "350"),
        ("timestamps:build_landuse", "1"),
        ("timestamps:build_soils", "1"),
        ("timestamps:build_climate", "1"),
        ("timestamps:init_sbs_map", "360"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let p = evaluate(&rules, &hash, true);
    let geneva = &p.reasons.iter().find(|r| r.0 == "geneva").unwrap().1;
    assert_eq!(
        geneva,
        &["run_geneva (350) is not newer than init_sbs_map (360)"]
    );
    let p = evaluate(&rules, &hash[..1], true);
    let rusle = &p.reasons.iter().find(|r| r.0 == "rusle").unwrap().1;
    assert_eq!(
        rusle,
        &["build_rusle (missing) is not newer than build_climate (missing)"]
    );
}

#[test]
fn outlet_max_over_parseable() {
    let h = [
        ("timestamps:build_channels", "5"),
        ("timestamps:set_outlet", "x"),
        ("timestamps:find_outlet", "6"),
    ];
    assert!(run(&h)["outlet"]);
    assert!(
        !run(&[
            ("timestamps:build_channels", "5"),
            ("timestamps:set_outlet", "x")
        ])["outlet"]
    );
}

#[test]
fn locks_and_last_modified() {
    let rules = load::from_str(BUILTIN_TEXT, BUILTIN_SOURCE).unwrap();
    let hash = vec![
        ("locked:wepp.nodb".to_string(), "true".to_string()),
        ("locked:x".to_string(), "True".to_string()),
        ("timestamps:a".to_string(), "7".to_string()),
        ("timestamps:b".to_string(), "x9".to_string()),
    ];
    let p = evaluate(&rules, &hash, false);
    assert_eq!(
        p.lock_statuses,
        [("wepp.nodb".to_string(), true), ("x".to_string(), false)]
    );
    assert_eq!(p.last_modified, Some(7));
}

#[test]
fn reasons_name_inputs() {
    let rules = load::from_str(BUILTIN_TEXT, BUILTIN_SOURCE).unwrap();
    let hash = vec![
        ("timestamps:run_wepp_watershed".to_string(), "5".to_string()),
        ("timestamps:build_climate".to_string(), "9".to_string()),
    ];
    let p = evaluate(&rules, &hash, true);
    let wepp = &p.reasons.iter().find(|r| r.0 == "wepp").unwrap().1;
    assert!(
        wepp.iter()
            .any(|r| r.contains("@W (5) is not newer than build_climate (9); @W is present (5);")),
        "{wepp:?}"
    );
}

#[test]
fn explanations_name_the_groups_their_reasons_use() {
    let rules = load::from_str(BUILTIN_TEXT, BUILTIN_SOURCE).unwrap();
    let names = |p: &Preflight| -> Vec<String> {
        p.groups
            .iter()
            .map(|&i| rules.groups[i].0.clone())
            .collect()
    };
    let hash = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (format!("timestamps:{k}"), v.to_string()))
            .collect()
    };
    // wepp fails against build_climate ("@W (5) is not newer than ..."), outlet
    // and dss_export fail on their groups too.
    let p = evaluate(
        &rules,
        &hash(&[("run_wepp_watershed", "5"), ("build_climate", "9")]),
        true,
    );
    assert_eq!(names(&p), ["W", "outlet_time", "dss_inputs"]);
    let p = evaluate(&rules, &hash(&[]), false);
    assert!(p.groups.is_empty(), "not asked: no groups");
    // Only the failing comparisons are named: observed is newer than
    // build_landuse and build_climate, not than build_soils and @W.
    let p = evaluate(
        &rules,
        &hash(&[
            ("build_channels", "1"),
            ("set_outlet", "2"),
            ("abstract_watershed", "2"),
            ("build_landuse", "3"),
            ("build_soils", "5"),
            ("build_climate", "3"),
            ("run_wepp_watershed", "6"),
            ("run_observed", "4"),
        ]),
        true,
    );
    let observed = &p.reasons.iter().find(|r| r.0 == "observed").unwrap().1;
    assert_eq!(
        observed,
        &[
            "run_observed (4) is not newer than build_soils (5)".to_string(),
            "run_observed (4) is not newer than @W (6)".to_string()
        ]
    );
    assert_eq!(names(&p), ["W", "dss_inputs"]);
}

#[test]
fn nested_groups_are_spelled_out_with_their_dependencies() {
    let text = r#"{"version": 1, "controllers": {}, "tasks": {},
      "groups": {"inner": {"max": ["a", "b"]}, "outer": {"first_present": ["@inner", "c"]}, "unused": {"max": ["a"]}},
      "checks": {"x": {"any": [{"newer": "d", "than_all": ["@outer"]}, {"exists": "f"}]}}}"#;
    let rules = load::from_str(text, "t").unwrap();
    let pairs = vec![
        ("timestamps:d".to_string(), "1".to_string()),
        ("timestamps:a".to_string(), "3".to_string()),
    ];
    let p = evaluate(&rules, &pairs, true);
    assert_eq!(
        p.reasons,
        [(
            "x".to_string(),
            vec!["none of: d (1) is not newer than @outer (3); f is missing".to_string()]
        )]
    );
    assert_eq!(p.groups, [0, 1]);
}
