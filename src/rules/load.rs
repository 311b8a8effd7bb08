//! Loading a rules file: the entry points ([`from_str`], [`from_path`]), the
//! top level, `controllers` and `tasks`. The check grammar (`groups`,
//! `checks`) is in [`super::checks`], cycles and closures in `graph`,
//! the shared validation helpers in `validate`. Every problem is
//! collected with its JSON path; nothing here panics on any input.

use std::collections::HashMap;

use serde_json::Value;

use super::checks::{checks_spec, parse_checks, parse_groups};
use super::graph::{cascade_cycle, compute_closures};
use super::model::{Controller, Rules, TaskRule};
use super::template::Template;
use super::validate::{check_keys, is_name, key_path, kind, opt_string, string_list, Ctx};
use crate::errors::{CoreError, CoreResult, RuleIssue};

/// Rules files larger than this are refused (the default is ~15 KB).
pub const MAX_RULES_BYTES: usize = 4 * 1024 * 1024;
/// The only format version understood.
pub const SUPPORTED_VERSION: i64 = 1;

const TOP_KEYS: [&str; 8] = [
    "$schema",
    "version",
    "description",
    "db",
    "controllers",
    "tasks",
    "groups",
    "checks",
];

fn parse_templates(ctx: &mut Ctx, path: &str, names: Vec<String>, global: bool) -> Vec<Template> {
    let mut out = Vec::new();
    for (i, text) in names.into_iter().enumerate() {
        let p = format!("{path}[{i}]");
        match Template::parse(&text) {
            Err(msg) => ctx.err(p, msg),
            Ok(t) if !t.is_run_scoped() && !global => ctx.err(
                p,
                format!(
                    "template {text:?} has neither {{wd}} nor {{run_id}}: it would touch every run's keys (set \"global\": true on the controller if that is intended)"
                ),
            ),
            Ok(t) => out.push(t),
        }
    }
    out
}

fn parse_controllers(ctx: &mut Ctx, v: Option<&Value>) -> Vec<Controller> {
    let Some(v) = v else {
        ctx.err("controllers", "missing (expected an object of controllers)");
        return Vec::new();
    };
    let Value::Object(map) = v else {
        ctx.err(
            "controllers",
            format!("expected an object, got {}", kind(v)),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, body) in map {
        let path = key_path("controllers", name);
        if !is_name(name) {
            ctx.err(
                &path,
                "controller names use letters, digits, '_', '-' and '.'",
            );
            continue;
        }
        let Value::Object(obj) = body else {
            ctx.err(&path, format!("expected an object, got {}", kind(body)));
            continue;
        };
        check_keys(
            ctx,
            &path,
            obj,
            &["keys", "patterns", "global", "description"],
        );
        let global = match obj.get("global") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                ctx.err(
                    format!("{path}.global"),
                    format!("expected a boolean, got {}", kind(other)),
                );
                false
            }
        };
        let key_texts = string_list(ctx, &format!("{path}.keys"), obj.get("keys"), true);
        let pattern_texts =
            string_list(ctx, &format!("{path}.patterns"), obj.get("patterns"), false);
        if key_texts.is_empty() && pattern_texts.is_empty() && obj.contains_key("keys") {
            ctx.err(
                format!("{path}.keys"),
                "a controller needs at least one key or pattern",
            );
        }
        let keys = parse_templates(ctx, &format!("{path}.keys"), key_texts, global);
        let patterns = parse_templates(ctx, &format!("{path}.patterns"), pattern_texts, global);
        for (i, t) in patterns.iter().enumerate() {
            if !global && t.globs_past_run() {
                ctx.err(
                    format!("{path}.patterns[{i}]"),
                    format!(
                        "pattern {:?} puts a wildcard right after {{wd}} or {{run_id}}: it would also match other runs whose name starts with this one (put a separator such as '/' or ':' first)",
                        t.text
                    ),
                );
            }
        }
        let description = opt_string(ctx, &path, obj, "description");
        out.push(Controller {
            name: name.clone(),
            keys,
            patterns,
            global,
            description,
        });
    }
    out
}

fn parse_tasks(
    ctx: &mut Ctx,
    v: Option<&Value>,
    controllers: &HashMap<String, usize>,
) -> Vec<TaskRule> {
    let Some(v) = v else {
        ctx.err("tasks", "missing (expected an object of tasks)");
        return Vec::new();
    };
    let Value::Object(map) = v else {
        ctx.err("tasks", format!("expected an object, got {}", kind(v)));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, body) in map {
        let path = key_path("tasks", name);
        if !is_name(name) {
            ctx.err(&path, "task names use letters, digits, '_', '-' and '.'");
            continue;
        }
        let Value::Object(obj) = body else {
            ctx.err(&path, format!("expected an object, got {}", kind(body)));
            continue;
        };
        check_keys(
            ctx,
            &path,
            obj,
            &["invalidates", "cascades", "description", "legacy"],
        );
        let invalidates = string_list(
            ctx,
            &format!("{path}.invalidates"),
            obj.get("invalidates"),
            true,
        );
        for (i, c) in invalidates.iter().enumerate() {
            if !controllers.contains_key(c) {
                ctx.err(
                    format!("{path}.invalidates[{i}]"),
                    format!("unknown controller {c:?}"),
                );
            }
        }
        let cascades = string_list(ctx, &format!("{path}.cascades"), obj.get("cascades"), false);
        for (i, t) in cascades.iter().enumerate() {
            if !map.contains_key(t) {
                ctx.err(
                    format!("{path}.cascades[{i}]"),
                    format!("unknown task {t:?}"),
                );
            } else if t == name {
                ctx.err(
                    format!("{path}.cascades[{i}]"),
                    format!("task {t:?} cascades to itself"),
                );
            }
        }
        let description = opt_string(ctx, &path, obj, "description");
        let legacy = match obj.get("legacy") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                ctx.err(
                    format!("{path}.legacy"),
                    format!("expected true or false, got {}", kind(other)),
                );
                false
            }
        };
        out.push(TaskRule {
            name: name.clone(),
            invalidates,
            cascades,
            description,
            legacy,
            closure: Vec::new(),
            closure_names: Vec::new(),
        });
    }
    out
}

/// Parse and validate rules text. `source` names it in errors.
pub fn from_str(text: &str, source: &str) -> CoreResult<Rules> {
    let fail = |path: &str, message: String| CoreError::Rules {
        source_name: source.to_string(),
        issues: vec![RuleIssue {
            path: path.to_string(),
            message,
        }],
    };
    if text.len() > MAX_RULES_BYTES {
        return Err(fail(
            "",
            format!(
                "file is {} bytes; the limit is {MAX_RULES_BYTES}",
                text.len()
            ),
        ));
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| fail("", format!("not valid JSON: {e}")))?;
    let Value::Object(top) = value else {
        return Err(fail(
            "",
            format!(
                "expected a JSON object at the top level, got {}",
                kind(&value)
            ),
        ));
    };
    let mut ctx = Ctx::new();
    check_keys(&mut ctx, "", &top, &TOP_KEYS);
    let version = match top.get("version") {
        Some(Value::Number(n)) if n.as_i64() == Some(SUPPORTED_VERSION) => SUPPORTED_VERSION,
        Some(Value::Number(n)) => {
            ctx.err("version", format!("unsupported version {n} (this redisprep understands version {SUPPORTED_VERSION})"));
            0
        }
        Some(other) => {
            ctx.err(
                "version",
                format!("expected an integer, got {}", kind(other)),
            );
            0
        }
        None => {
            ctx.err("version", "missing (expected 1)");
            0
        }
    };
    let db = match top.get("db") {
        None => 13,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(d) if (0..=15).contains(&d) => d,
            _ => {
                ctx.err("db", format!("expected an integer 0..=15, got {n}"));
                13
            }
        },
        Some(other) => {
            ctx.err("db", format!("expected an integer, got {}", kind(other)));
            13
        }
    };
    let description = opt_string(&mut ctx, "", &top, "description");
    let controllers = parse_controllers(&mut ctx, top.get("controllers"));
    let controller_index: HashMap<String, usize> = controllers
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), i))
        .collect();
    let mut tasks = parse_tasks(&mut ctx, top.get("tasks"), &controller_index);
    if let Some(cycle) = cascade_cycle(&tasks) {
        ctx.err("tasks", format!("cascade cycle: {cycle}"));
    }
    if let Some(Value::Object(map)) = top.get("tasks") {
        ctx.task_names = map.keys().cloned().collect();
    }
    let (groups, group_names) = parse_groups(&mut ctx, top.get("groups"));
    let checks = parse_checks(&mut ctx, top.get("checks"), &group_names);
    if !ctx.issues.is_empty() {
        return Err(CoreError::Rules {
            source_name: source.to_string(),
            issues: ctx.issues,
        });
    }
    compute_closures(&mut tasks, &controller_index);
    for t in &mut tasks {
        t.closure_names = t
            .closure
            .iter()
            .map(|r| controllers[r.controller].name.clone())
            .collect();
    }
    let task_index = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let group_index = groups
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.clone(), i))
        .collect();
    Ok(Rules {
        checks_spec: checks_spec(&groups, &checks),
        version,
        db,
        source: source.to_string(),
        description,
        controllers,
        controller_index,
        tasks,
        task_index,
        groups,
        group_index,
        checks,
    })
}

/// Load and validate a rules file from disk.
pub fn from_path(path: &str) -> CoreResult<Rules> {
    let meta = std::fs::metadata(path).map_err(|e| CoreError::Rules {
        source_name: path.to_string(),
        issues: vec![RuleIssue {
            path: String::new(),
            message: format!("cannot read: {e}"),
        }],
    })?;
    if meta.len() > MAX_RULES_BYTES as u64 {
        return Err(CoreError::Rules {
            source_name: path.to_string(),
            issues: vec![RuleIssue {
                path: String::new(),
                message: format!(
                    "file is {} bytes; the limit is {MAX_RULES_BYTES}",
                    meta.len()
                ),
            }],
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| CoreError::Rules {
        source_name: path.to_string(),
        issues: vec![RuleIssue {
            path: String::new(),
            message: format!("cannot read: {e}"),
        }],
    })?;
    from_str(&text, path)
}
