//! The rules engine: model, loading + validation, closure, key rendering,
//! and the process-wide active rules with hot reload.
//!
//! Modules, each one concept, none using a later one in this list:
//! `template` (key templates), `model` (the validated rules), `validate`
//! (issue collection, JSON helpers), `graph` (cycles, closures), `checks`
//! (the preflight check grammar and its compiled spec), `load` (the entry
//! points), `render` (the dependency graph as text for people).

pub mod checks;
mod graph;
pub mod load;
pub mod model;
pub mod render;
pub mod template;
#[cfg(test)]
mod test_rules;
mod validate;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub use model::{Check, Group, KeyPlan, Operand, Rules};
pub use template::{RunFolder, RunVars};

use crate::errors::CoreResult;

/// The default rules, compiled in from the top-level `rules/` folder (their source of
/// truth, also shipped in the wheel) so they are always available.
pub const BUILTIN_TEXT: &str = include_str!("../../rules/cache_invalidation_rules.json");
/// `Rules::source` of the packaged default.
pub const BUILTIN_SOURCE: &str = "builtin:cache_invalidation_rules.json";

/// Load rules: `path`, else `REDISPREP_RULES`, else the packaged default.
pub fn load(path: Option<&str>) -> CoreResult<Rules> {
    match resolve_path(path) {
        Some(p) => load::from_path(&p),
        None => load::from_str(BUILTIN_TEXT, BUILTIN_SOURCE),
    }
}

fn resolve_path(path: Option<&str>) -> Option<String> {
    path.map(str::to_string)
        .or_else(|| crate::env::env("REDISPREP_RULES"))
}

type Stamp = Option<(SystemTime, u64)>;

struct Active {
    initialised: bool,
    configured_path: Option<String>,
    path: Option<String>,
    rules: Option<Arc<Rules>>,
    stamp: Stamp,
    last_check: Option<Instant>,
    warned_stamp: Option<Stamp>,
    interval: Duration,
}

static ACTIVE: Mutex<Active> = Mutex::new(Active {
    initialised: false,
    configured_path: None,
    path: None,
    rules: None,
    stamp: None,
    last_check: None,
    warned_stamp: None,
    interval: DEFAULT_RELOAD_INTERVAL,
});

fn stamp_of(path: &str) -> Stamp {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
}

/// How often the rules file is checked for changes when no interval is set.
const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// `REDISPREP_RULES_RELOAD_INTERVAL`, read by the settings' parser. A bad
/// value cannot fail a write (the rules never do): it is logged as the
/// `ConfigError` it would be, and the default is used.
fn reload_interval() -> Duration {
    match crate::env::env_interval("REDISPREP_RULES_RELOAD_INTERVAL") {
        Ok(v) => v.unwrap_or(DEFAULT_RELOAD_INTERVAL),
        Err(e) => {
            log::warn!(
                "redisprep: {e}; checking the rules file every {} s",
                DEFAULT_RELOAD_INTERVAL.as_secs()
            );
            DEFAULT_RELOAD_INTERVAL
        }
    }
}

/// Use `path` for the runtime rules (`None`: `REDISPREP_RULES`, else default).
/// Takes effect at the next use.
pub fn set_active_path(path: Option<String>) {
    let mut a = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
    a.configured_path = path;
    a.initialised = false;
    a.rules = None;
    a.warned_stamp = None;
}

fn try_load(a: &mut Active) {
    let result = match &a.path {
        Some(p) => load::from_path(p),
        None => load::from_str(BUILTIN_TEXT, BUILTIN_SOURCE),
    };
    match result {
        Ok(r) => {
            if a.rules.is_some() {
                crate::stats::RULES_RELOADS.incr();
                log::info!(
                    "redisprep: reloaded cache invalidation rules from {}",
                    r.source
                );
            }
            a.rules = Some(Arc::new(r));
            a.warned_stamp = None;
        }
        Err(e) => {
            if a.warned_stamp != Some(a.stamp) {
                a.warned_stamp = Some(a.stamp);
                if a.rules.is_some() {
                    log::warn!("redisprep: rules file changed but is invalid; keeping the last good rules. {e}");
                } else {
                    log::warn!("redisprep: no valid cache invalidation rules, invalidation is skipped (timestamps are still recorded). {e}");
                }
            }
        }
    }
}

/// [`active`], or a `Config` error saying that no valid rules are loaded.
pub fn require_active() -> CoreResult<Arc<Rules>> {
    active().ok_or_else(|| {
        crate::errors::CoreError::Config(
            "no valid cache invalidation rules are loaded (see the logged warning)".into(),
        )
    })
}

/// The rules in force, reloaded if the file changed (checked at most once per
/// `REDISPREP_RULES_RELOAD_INTERVAL` seconds, default 1). `None` when no valid
/// rules were ever loaded (a warning was logged).
pub fn active() -> Option<Arc<Rules>> {
    let mut a = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
    if !a.initialised {
        a.initialised = true;
        a.path = resolve_path(a.configured_path.as_deref());
        a.interval = reload_interval();
        a.stamp = a.path.as_deref().and_then(stamp_of);
        a.last_check = Some(Instant::now());
        try_load(&mut a);
        return a.rules.clone();
    }
    if let Some(path) = a.path.clone() {
        let due = a.last_check.is_none_or(|t| t.elapsed() >= a.interval);
        if due {
            a.last_check = Some(Instant::now());
            let stamp = stamp_of(&path);
            if stamp != a.stamp {
                a.stamp = stamp;
                try_load(&mut a);
            }
        }
    }
    a.rules.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::CoreError;

    fn issues(text: &str) -> Vec<String> {
        match load::from_str(text, "t.json") {
            Err(CoreError::Rules { issues, .. }) => issues.iter().map(|i| i.to_string()).collect(),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => Vec::new(),
        }
    }

    const BASE: &str = r#"{"version": 1,
      "controllers": {"climate": {"keys": ["{wd}/climate.nodb"]}, "wepp": {"keys": ["{wd}/wepp.nodb"]},
                      "watershed": {"keys": ["{wd}/watershed.nodb", "x:{run_id}"]}},
      "tasks": {"build_climate": {"invalidates": ["climate"], "cascades": ["run_wepp_watershed"]},
                "run_wepp_watershed": {"invalidates": ["wepp"]},
                "abstract_watershed": {"invalidates": ["watershed"], "cascades": ["build_climate"]}}}"#;

    fn vars() -> RunVars<'static> {
        RunVars {
            wd: "/runs/ab",
            run_id: "ab",
        }
    }

    #[test]
    fn builtin_rules_validate() {
        let r = load::from_str(BUILTIN_TEXT, BUILTIN_SOURCE).unwrap();
        assert_eq!(r.version, 1);
        assert_eq!(r.db, 13);
        assert!(r
            .controllers_for("build_climate")
            .contains(&"climate".to_string()));
        assert_eq!(r.checks.len(), 21);
        for input in [
            "build_landuse",
            "build_soils",
            "build_climate",
            "init_sbs_map",
        ] {
            assert!(
                r.controllers_for(input).contains(&"geneva".to_string()),
                "{input} makes geneva stale"
            );
        }
        assert_eq!(r.controllers_for("run_geneva"), ["geneva"]);
    }

    #[test]
    fn closure_follows_cascades_with_paths() {
        let r = load::from_str(BASE, "t").unwrap();
        assert_eq!(
            r.controllers_for("abstract_watershed"),
            ["watershed", "climate", "wepp"]
        );
        let plan = r.plan("abstract_watershed", &vars());
        assert_eq!(
            plan[2].via,
            ["abstract_watershed", "build_climate", "run_wepp_watershed"]
        );
        assert_eq!(plan[0].keys, ["/runs/ab/watershed.nodb", "x:ab"]);
        assert_eq!(
            r.keys_for("build_climate", &vars()),
            ["/runs/ab/climate.nodb", "/runs/ab/wepp.nodb"]
        );
        assert!(r.controllers_for("unknown_task").is_empty());
    }

    #[test]
    fn an_unknown_controller_is_named_with_the_rules() {
        let r = load::from_str(BASE, "t.json").unwrap();
        assert!(r.controller_plan("climate", &vars()).is_ok());
        match r.controller_plan("climat", &vars()) {
            Err(CoreError::UnknownController { name, rules }) => {
                assert_eq!((name.as_str(), rules.as_str()), ("climat", "t.json"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn direct_is_the_tasks_own_controller() {
        let r = load::from_str(BASE, "t").unwrap();
        let plan = r.plan("abstract_watershed", &vars());
        let direct: Vec<bool> = plan.iter().map(KeyPlan::direct).collect();
        assert_eq!(direct, [true, false, false]);
    }

    #[test]
    fn error_unknown_controller_has_path() {
        let text = BASE.replace(r#"["climate"]"#, r#"["climate", "climat"]"#);
        assert_eq!(
            issues(&text),
            [r#"tasks.build_climate.invalidates[1]: unknown controller "climat""#]
        );
    }

    #[test]
    fn error_unknown_top_level_key() {
        let text = BASE.replacen("{\"version\": 1,", "{\"version\": 1, \"extra\": 1,", 1);
        assert!(issues(&text)[0].starts_with("extra: unknown key \"extra\""));
    }

    #[test]
    fn error_unknown_version() {
        let text = BASE.replacen("\"version\": 1", "\"version\": 2", 1);
        assert_eq!(
            issues(&text),
            ["version: unsupported version 2 (this redisprep understands version 1)"]
        );
    }

    #[test]
    fn error_unknown_placeholder() {
        let text = BASE.replace("{wd}/climate.nodb", "{wdir}/climate.nodb");
        let got = issues(&text);
        assert!(
            got[0].starts_with("controllers.climate.keys[0]: unknown placeholder {wdir}"),
            "{got:?}"
        );
    }

    #[test]
    fn error_template_without_run() {
        let text = BASE.replace("{wd}/climate.nodb", "climate.nodb");
        assert!(issues(&text)[0].contains("neither {wd} nor {run_id}"));
        let ok = BASE.replace(
            r#"{"keys": ["{wd}/climate.nodb"]}"#,
            r#"{"keys": ["climate.nodb"], "global": true}"#,
        );
        assert!(issues(&ok).is_empty());
    }

    #[test]
    fn error_duplicates() {
        let text = BASE.replace(r#"["climate"]"#, r#"["climate", "climate"]"#);
        assert_eq!(
            issues(&text),
            [r#"tasks.build_climate.invalidates[1]: duplicate entry "climate""#]
        );
    }

    #[test]
    fn error_cycle_is_named() {
        let text = BASE.replace(
            r#""invalidates": ["wepp"]"#,
            r#""invalidates": ["wepp"], "cascades": ["abstract_watershed"]"#,
        );
        let got = issues(&text);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with("tasks: cascade cycle: "), "{got:?}");
        for t in ["abstract_watershed", "build_climate", "run_wepp_watershed"] {
            assert!(got[0].contains(t));
        }
    }

    #[test]
    fn error_unknown_cascade_and_wrong_types() {
        let text = BASE.replace(
            r#""cascades": ["run_wepp_watershed"]"#,
            r#""cascades": ["nope", 3]"#,
        );
        let got = issues(&text);
        assert!(
            got.contains(&r#"tasks.build_climate.cascades[0]: unknown task "nope""#.to_string())
        );
        assert!(got.contains(
            &"tasks.build_climate.cascades[1]: expected a string, got a number".to_string()
        ));
    }

    #[test]
    fn every_error_is_reported() {
        let text = r#"{"version": 1, "bogus": 0, "controllers": {"c": {"keys": ["{x}"]}}, "tasks": {"t": {"invalidates": ["d"]}}}"#;
        assert_eq!(issues(text).len(), 3);
    }

    #[test]
    fn malformed_input_never_panics() {
        for text in [
            "",
            "{",
            "[]",
            "null",
            "{\"version\": \"1\"}",
            "{\"version\":1,\"controllers\":[],\"tasks\":7}",
        ] {
            assert!(!issues(text).is_empty(), "{text}");
        }
        let deep = "[".repeat(100_000);
        assert!(!issues(&deep).is_empty());
        let big = format!(
            "{{\"version\": 1, \"description\": \"{}\"}}",
            "x".repeat(5 * 1024 * 1024)
        );
        assert!(issues(&big)[0].contains("limit"));
    }

    #[test]
    fn check_errors() {
        let text = BASE.replacen(
            "\"tasks\"",
            r#""groups": {"a": {"max": ["@b"]}, "b": {"first_present": ["@a"]}},
               "checks": {"x": {"bogus": 1}, "y": {"newer": "@zz", "than_all": ["build_climate"]}, "z": {"newer": "build_climate"},
                          "u": {"newer": "build_climat", "than_all": ["build_climate"]}},
               "tasks""#,
            1,
        );
        let got = issues(&text).join("\n");
        assert!(got.contains("group cycle: "), "{got}");
        assert!(
            got.contains("checks.x.bogus: unknown check primitive"),
            "{got}"
        );
        assert!(
            got.contains("checks.y.newer: unknown group \"@zz\""),
            "{got}"
        );
        assert!(
            got.contains("checks.z: \"newer\" needs exactly one of"),
            "{got}"
        );
        assert!(
            got.contains("checks.u.newer: unknown task \"build_climat\""),
            "{got}"
        );
    }

    proptest::proptest! {
        #[test]
        fn rendered_keys_contain_the_folder_literally(name in "[a-zA-Z0-9 *?\\[\\]\\\\{}é中._-]{1,40}") {
            let r = load::from_str(BASE, "t").unwrap();
            let wd = format!("/runs/{name}");
            let v = RunVars { wd: &wd, run_id: &name };
            for key in r.keys_for("abstract_watershed", &v) {
                let ok = key.starts_with(&format!("{wd}/")) || key == format!("x:{name}");
                proptest::prop_assert!(ok, "key {} escapes run {}", key, wd);
            }
        }
    }
}
