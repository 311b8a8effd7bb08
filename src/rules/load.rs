//! Loading a rules file: the entry points ([`from_str`], [`from_path`]), the
//! top level, `controllers` and `tasks`. The check grammar (`groups`,
//! `checks`) is in [`super::checks`], cycles and closures in `graph`,
//! the shared validation helpers in `validate`. Every problem is
//! collected with its JSON path; nothing here panics on any input.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::checks::{checks_spec, parse_checks, parse_groups};
use super::graph::{cascade_cycle, compute_closures};
use super::model::{Check, Controller, Group, Rules, TaskRule, DEFAULT_CACHE_DB};
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

/// An optional boolean field of `obj` (`global`, `legacy`): false when left out.
fn parse_flag(ctx: &mut Ctx, path: &str, obj: &Map<String, Value>, key: &str) -> bool {
    match obj.get(key) {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            ctx.err(
                format!("{path}.{key}"),
                format!("expected a boolean, got {}", kind(other)),
            );
            false
        }
    }
}

/// One controller's `keys` and `patterns` (a pattern must not glob past the run).
fn parse_key_templates(
    ctx: &mut Ctx,
    path: &str,
    obj: &Map<String, Value>,
    global: bool,
) -> (Vec<Template>, Vec<Template>) {
    let key_texts = string_list(ctx, &format!("{path}.keys"), obj.get("keys"), true);
    let pattern_texts = string_list(ctx, &format!("{path}.patterns"), obj.get("patterns"), false);
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
    (keys, patterns)
}

/// One named entry of `section` (`controllers`, `tasks`): its JSON path and its
/// object, or `None` when the name or the body is refused (the problem is in `ctx`).
fn entry<'a>(
    ctx: &mut Ctx,
    section: &str,
    what: &str,
    name: &str,
    body: &'a Value,
) -> Option<(String, &'a Map<String, Value>)> {
    let path = key_path(section, name);
    if !is_name(name) {
        ctx.err(
            &path,
            format!("{what} names use letters, digits, '_', '-' and '.'"),
        );
        return None;
    }
    let Value::Object(obj) = body else {
        ctx.err(&path, format!("expected an object, got {}", kind(body)));
        return None;
    };
    Some((path, obj))
}

/// One entry of `controllers`, or `None` (the problems are in `ctx`).
fn parse_controller(ctx: &mut Ctx, name: &str, body: &Value) -> Option<Controller> {
    let (path, obj) = entry(ctx, "controllers", "controller", name, body)?;
    check_keys(
        ctx,
        &path,
        obj,
        &["keys", "patterns", "global", "description"],
    );
    let global = parse_flag(ctx, &path, obj, "global");
    let (keys, patterns) = parse_key_templates(ctx, &path, obj, global);
    let description = opt_string(ctx, &path, obj, "description");
    Some(Controller {
        name: name.to_string(),
        keys,
        patterns,
        global,
        description,
    })
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
    map.iter()
        .filter_map(|(name, body)| parse_controller(ctx, name, body))
        .collect()
}

/// A task's `invalidates`: names of defined controllers.
fn parse_invalidates(
    ctx: &mut Ctx,
    path: &str,
    obj: &Map<String, Value>,
    controllers: &HashMap<String, usize>,
) -> Vec<String> {
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
    invalidates
}

/// A task's `cascades`: other tasks of the file (`tasks`).
fn parse_cascades(
    ctx: &mut Ctx,
    path: &str,
    name: &str,
    obj: &Map<String, Value>,
    tasks: &Map<String, Value>,
) -> Vec<String> {
    let cascades = string_list(ctx, &format!("{path}.cascades"), obj.get("cascades"), false);
    for (i, t) in cascades.iter().enumerate() {
        if !tasks.contains_key(t) {
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
    cascades
}

/// One entry of `tasks`, or `None` (the problems are in `ctx`).
fn parse_task(
    ctx: &mut Ctx,
    (name, body): (&String, &Value),
    tasks: &Map<String, Value>,
    controllers: &HashMap<String, usize>,
) -> Option<TaskRule> {
    let (path, obj) = entry(ctx, "tasks", "task", name, body)?;
    check_keys(
        ctx,
        &path,
        obj,
        &["invalidates", "cascades", "description", "legacy"],
    );
    let invalidates = parse_invalidates(ctx, &path, obj, controllers);
    let cascades = parse_cascades(ctx, &path, name, obj, tasks);
    let description = opt_string(ctx, &path, obj, "description");
    let legacy = parse_flag(ctx, &path, obj, "legacy");
    Some(TaskRule {
        name: name.clone(),
        invalidates,
        cascades,
        description,
        legacy,
        closure: Vec::new(),
        closure_names: Vec::new(),
    })
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
    map.iter()
        .filter_map(|entry| parse_task(ctx, entry, map, controllers))
        .collect()
}

/// One problem that stops loading at once (size, JSON syntax, top-level shape).
fn fatal(source: &str, path: &str, message: String) -> CoreError {
    CoreError::Rules {
        source_name: source.to_string(),
        issues: vec![RuleIssue {
            path: path.to_string(),
            message,
        }],
    }
}

/// The size limit, the JSON syntax and the top-level object.
fn parse_top(text: &str, source: &str) -> CoreResult<Map<String, Value>> {
    if text.len() > MAX_RULES_BYTES {
        let msg = format!(
            "file is {} bytes; the limit is {MAX_RULES_BYTES}",
            text.len()
        );
        return Err(fatal(source, "", msg));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| fatal(source, "", format!("not valid JSON: {e}")))?;
    match value {
        Value::Object(top) => Ok(top),
        other => Err(fatal(
            source,
            "",
            format!(
                "expected a JSON object at the top level, got {}",
                kind(&other)
            ),
        )),
    }
}

/// `version`: [`SUPPORTED_VERSION`], else an issue (and 0).
fn parse_version(ctx: &mut Ctx, top: &Map<String, Value>) -> i64 {
    match top.get("version") {
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
    }
}

/// `db`: the cache DB, 0..=15 ([`DEFAULT_CACHE_DB`] when left out).
fn parse_db(ctx: &mut Ctx, top: &Map<String, Value>) -> i64 {
    match top.get("db") {
        None => DEFAULT_CACHE_DB,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(d) if (0..=15).contains(&d) => d,
            _ => {
                ctx.err("db", format!("expected an integer 0..=15, got {n}"));
                DEFAULT_CACHE_DB
            }
        },
        Some(other) => {
            ctx.err("db", format!("expected an integer, got {}", kind(other)));
            DEFAULT_CACHE_DB
        }
    }
}

/// Name -> position, for a list in file order.
fn index_of<'a>(names: impl Iterator<Item = &'a String>) -> HashMap<String, usize> {
    names.enumerate().map(|(i, n)| (n.clone(), i)).collect()
}

/// The parts of a rules file, validated, before the closures are computed.
struct Parsed {
    version: i64,
    db: i64,
    description: Option<String>,
    controllers: Vec<Controller>,
    tasks: Vec<TaskRule>,
    groups: Vec<(String, Group)>,
    checks: Vec<(String, Check)>,
}

/// Every section, each problem collected in `ctx` with its JSON path.
fn parse_sections(ctx: &mut Ctx, top: &Map<String, Value>) -> Parsed {
    check_keys(ctx, "", top, &TOP_KEYS);
    let version = parse_version(ctx, top);
    let db = parse_db(ctx, top);
    let description = opt_string(ctx, "", top, "description");
    let controllers = parse_controllers(ctx, top.get("controllers"));
    let tasks = parse_tasks(
        ctx,
        top.get("tasks"),
        &index_of(controllers.iter().map(|c| &c.name)),
    );
    if let Some(cycle) = cascade_cycle(&tasks) {
        ctx.err("tasks", format!("cascade cycle: {cycle}"));
    }
    if let Some(Value::Object(map)) = top.get("tasks") {
        ctx.task_names = map.keys().cloned().collect();
    }
    let (groups, group_names) = parse_groups(ctx, top.get("groups"));
    let checks = parse_checks(ctx, top.get("checks"), &group_names);
    Parsed {
        version,
        db,
        description,
        controllers,
        tasks,
        groups,
        checks,
    }
}

/// The validated parts as [`Rules`]: closures, names and indexes computed.
fn build(p: Parsed, source: &str) -> Rules {
    let Parsed {
        version,
        db,
        description,
        controllers,
        mut tasks,
        groups,
        checks,
    } = p;
    let controller_index = index_of(controllers.iter().map(|c| &c.name));
    compute_closures(&mut tasks, &controller_index);
    for t in &mut tasks {
        t.closure_names = t
            .closure
            .iter()
            .map(|r| controllers[r.controller].name.clone())
            .collect();
    }
    Rules {
        checks_spec: checks_spec(&groups, &checks),
        version,
        db,
        source: source.to_string(),
        description,
        task_index: index_of(tasks.iter().map(|t| &t.name)),
        group_index: index_of(groups.iter().map(|(n, _)| n)),
        controllers,
        controller_index,
        tasks,
        groups,
        checks,
    }
}

/// Parse and validate rules text. `source` names it in errors.
pub fn from_str(text: &str, source: &str) -> CoreResult<Rules> {
    let top = parse_top(text, source)?;
    let mut ctx = Ctx::new();
    let parsed = parse_sections(&mut ctx, &top);
    if !ctx.issues.is_empty() {
        return Err(CoreError::Rules {
            source_name: source.to_string(),
            issues: ctx.issues,
        });
    }
    Ok(build(parsed, source))
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
