//! Loading and validating a rules file. Every problem is collected with its
//! JSON path; nothing here panics on any input.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::model::{Check, Controller, Group, Operand, Reason, Rules, TaskRule};
use super::template::Template;
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

struct Ctx {
    issues: Vec<RuleIssue>,
    /// Names defined under `tasks`, for check operands (empty: not checked).
    task_names: HashSet<String>,
}

impl Ctx {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(RuleIssue {
            path: path.into(),
            message: message.into(),
        });
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn key_path(base: &str, key: &str) -> String {
    if is_name(key) {
        if base.is_empty() {
            key.to_string()
        } else {
            format!("{base}.{key}")
        }
    } else {
        format!("{base}[{key:?}]")
    }
}

fn check_keys(ctx: &mut Ctx, path: &str, obj: &Map<String, Value>, allowed: &[&str]) {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            ctx.err(
                key_path(path, k),
                format!("unknown key {k:?} (allowed: {})", allowed.join(", ")),
            );
        }
    }
}

fn opt_string(ctx: &mut Ctx, path: &str, obj: &Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            ctx.err(
                key_path(path, key),
                format!("expected a string, got {}", kind(other)),
            );
            None
        }
    }
}

/// A list of unique strings; reports wrong types and duplicates.
fn string_list(ctx: &mut Ctx, path: &str, v: Option<&Value>, required: bool) -> Vec<String> {
    let Some(v) = v else {
        if required {
            ctx.err(path, "missing (expected an array of strings)");
        }
        return Vec::new();
    };
    let Value::Array(items) = v else {
        ctx.err(
            path,
            format!("expected an array of strings, got {}", kind(v)),
        );
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) if out.contains(s) => {
                ctx.err(format!("{path}[{i}]"), format!("duplicate entry {s:?}"))
            }
            Value::String(s) => out.push(s.clone()),
            other => ctx.err(
                format!("{path}[{i}]"),
                format!("expected a string, got {}", kind(other)),
            ),
        }
    }
    out
}

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
        check_keys(ctx, &path, obj, &["invalidates", "cascades", "description"]);
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
        out.push(TaskRule {
            name: name.clone(),
            invalidates,
            cascades,
            description,
            closure: Vec::new(),
            closure_names: Vec::new(),
        });
    }
    out
}

/// Find one cycle in a name graph; returns it as `a -> b -> a`.
fn find_cycle<'a>(nodes: &[&'a str], edges: &HashMap<&'a str, Vec<&'a str>>) -> Option<String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = nodes.iter().map(|n| (*n, Mark::New)).collect();
    for &start in nodes {
        if marks.get(start) != Some(&Mark::New) {
            continue;
        }
        // iterative DFS: (node, next edge index)
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        marks.insert(start, Mark::Active);
        while let Some(&mut (node, ref mut idx)) = stack.last_mut() {
            let next = edges.get(node).and_then(|e| e.get(*idx)).copied();
            *idx += 1;
            match next {
                None => {
                    marks.insert(node, Mark::Done);
                    stack.pop();
                }
                Some(n) => match marks.get(n).copied() {
                    Some(Mark::New) => {
                        marks.insert(n, Mark::Active);
                        stack.push((n, 0));
                    }
                    Some(Mark::Active) => {
                        let pos = stack.iter().position(|(s, _)| *s == n).unwrap_or(0);
                        let mut names: Vec<&str> = stack[pos..].iter().map(|(s, _)| *s).collect();
                        names.push(n);
                        return Some(names.join(" -> "));
                    }
                    _ => {}
                },
            }
        }
    }
    None
}

fn compute_closures(tasks: &mut [TaskRule], controllers: &HashMap<String, usize>) {
    let index: HashMap<String, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut closures = Vec::with_capacity(tasks.len());
    for t in tasks.iter() {
        let mut seen_tasks: HashSet<&str> = HashSet::new();
        let mut out: Vec<Reason> = Vec::new();
        // breadth-first, so each controller's `via` is a shortest cascade path
        let mut queue: std::collections::VecDeque<(usize, Vec<String>)> =
            std::collections::VecDeque::from([(index[&t.name], vec![t.name.clone()])]);
        seen_tasks.insert(&t.name);
        while let Some((ti, via)) = queue.pop_front() {
            let task = &tasks[ti];
            for c in &task.invalidates {
                if let Some(&ci) = controllers.get(c) {
                    if !out.iter().any(|r| r.controller == ci) {
                        out.push(Reason {
                            controller: ci,
                            via: via.clone(),
                        });
                    }
                }
            }
            for next in &task.cascades {
                if let Some(&ni) = index.get(next) {
                    if seen_tasks.insert(&tasks[ni].name) {
                        let mut v = via.clone();
                        v.push(next.clone());
                        queue.push_back((ni, v));
                    }
                }
            }
        }
        closures.push(out);
    }
    for (t, closure) in tasks.iter_mut().zip(closures) {
        t.closure = closure;
    }
}

fn parse_operand(
    ctx: &mut Ctx,
    path: &str,
    v: &Value,
    groups: &HashSet<String>,
) -> Option<Operand> {
    let Value::String(s) = v else {
        ctx.err(
            path,
            format!("expected a task name or \"@group\", got {}", kind(v)),
        );
        return None;
    };
    if let Some(g) = s.strip_prefix('@') {
        if !groups.contains(g) {
            ctx.err(path, format!("unknown group {s:?}"));
            return None;
        }
        Some(Operand::Group(g.to_string()))
    } else if !ctx.task_names.is_empty() && !ctx.task_names.contains(s) {
        ctx.err(
            path,
            format!("unknown task {s:?} (not defined under \"tasks\")"),
        );
        None
    } else if is_name(s) {
        Some(Operand::Task(s.clone()))
    } else {
        ctx.err(path, format!("invalid task name {s:?}"));
        None
    }
}

fn parse_operands(
    ctx: &mut Ctx,
    path: &str,
    v: Option<&Value>,
    groups: &HashSet<String>,
) -> Vec<Operand> {
    match v {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .filter_map(|(i, it)| parse_operand(ctx, &format!("{path}[{i}]"), it, groups))
            .collect(),
        Some(Value::Array(_)) => {
            ctx.err(path, "expected a non-empty array");
            Vec::new()
        }
        Some(other) => {
            ctx.err(path, format!("expected an array, got {}", kind(other)));
            Vec::new()
        }
        None => {
            ctx.err(path, "missing");
            Vec::new()
        }
    }
}

fn field_name(ctx: &mut Ctx, path: &str, v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        other => {
            ctx.err(
                path,
                format!("expected a hash field name, got {}", kind(other)),
            );
            None
        }
    }
}

const CHECK_PRIMITIVES: [&str; 7] = [
    "exists",
    "non_empty",
    "equals",
    "newer",
    "all",
    "any",
    "not",
];

fn parse_check(
    ctx: &mut Ctx,
    path: &str,
    v: &Value,
    groups: &HashSet<String>,
    depth: usize,
) -> Option<Check> {
    if depth > 32 {
        ctx.err(path, "checks nested deeper than 32 levels");
        return None;
    }
    let Value::Object(obj) = v else {
        ctx.err(path, format!("expected a check object, got {}", kind(v)));
        return None;
    };
    let prims: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| CHECK_PRIMITIVES.contains(k))
        .collect();
    if prims.len() != 1 {
        ctx.err(
            path,
            format!(
                "a check has exactly one of: {} (found {})",
                CHECK_PRIMITIVES.join(", "),
                prims.len()
            ),
        );
        if prims.is_empty() {
            for k in obj.keys() {
                ctx.err(key_path(path, k), format!("unknown check primitive {k:?}"));
            }
        }
        return None;
    }
    let prim = prims[0];
    let allowed: &[&str] = if prim == "newer" {
        &["newer", "than_all", "than_any"]
    } else {
        &[prim]
    };
    check_keys(ctx, path, obj, allowed);
    let body = &obj[prim];
    let p = key_path(path, prim);
    match prim {
        "exists" => field_name(ctx, &p, body).map(Check::Exists),
        "non_empty" => field_name(ctx, &p, body).map(Check::NonEmpty),
        "equals" => {
            let Value::Object(eq) = body else {
                ctx.err(
                    &p,
                    format!(
                        "expected {{\"field\": ..., \"value\": ...}}, got {}",
                        kind(body)
                    ),
                );
                return None;
            };
            check_keys(ctx, &p, eq, &["field", "value"]);
            let field = eq
                .get("field")
                .and_then(|f| field_name(ctx, &format!("{p}.field"), f));
            let value = match eq.get("value") {
                Some(Value::String(s)) => Some(s.clone()),
                other => {
                    ctx.err(
                        format!("{p}.value"),
                        format!("expected a string, got {}", other.map_or("nothing", kind)),
                    );
                    None
                }
            };
            Some(Check::Equals {
                field: field?,
                value: value?,
            })
        }
        "newer" => {
            let subject = parse_operand(ctx, &p, body, groups);
            let (all, list_key) = match (obj.get("than_all"), obj.get("than_any")) {
                (Some(_), None) => (true, "than_all"),
                (None, Some(_)) => (false, "than_any"),
                _ => {
                    ctx.err(
                        path,
                        "\"newer\" needs exactly one of \"than_all\" or \"than_any\"",
                    );
                    return None;
                }
            };
            let others = parse_operands(ctx, &key_path(path, list_key), obj.get(list_key), groups);
            Some(Check::Newer {
                subject: subject?,
                others,
                all,
            })
        }
        "all" | "any" => {
            let Value::Array(items) = body else {
                ctx.err(
                    &p,
                    format!("expected an array of checks, got {}", kind(body)),
                );
                return None;
            };
            if items.is_empty() {
                ctx.err(&p, "expected a non-empty array of checks");
                return None;
            }
            let parsed: Vec<Option<Check>> = items
                .iter()
                .enumerate()
                .map(|(i, it)| parse_check(ctx, &format!("{p}[{i}]"), it, groups, depth + 1))
                .collect();
            let parsed: Option<Vec<Check>> = parsed.into_iter().collect();
            parsed.map(|c| {
                if prim == "all" {
                    Check::All(c)
                } else {
                    Check::Any(c)
                }
            })
        }
        _ => parse_check(ctx, &p, body, groups, depth + 1).map(|c| Check::Not(Box::new(c))),
    }
}

fn parse_groups(ctx: &mut Ctx, v: Option<&Value>) -> (Vec<(String, Group)>, HashSet<String>) {
    let mut out = Vec::new();
    let Some(v) = v else {
        return (out, HashSet::new());
    };
    let Value::Object(map) = v else {
        ctx.err("groups", format!("expected an object, got {}", kind(v)));
        return (out, HashSet::new());
    };
    let names: HashSet<String> = map.keys().cloned().collect();
    for (name, body) in map {
        let path = key_path("groups", name);
        if !is_name(name) {
            ctx.err(&path, "group names use letters, digits, '_', '-' and '.'");
            continue;
        }
        let Value::Object(obj) = body else {
            ctx.err(&path, format!("expected an object, got {}", kind(body)));
            continue;
        };
        check_keys(ctx, &path, obj, &["max", "first_present"]);
        let group = match (obj.get("max"), obj.get("first_present")) {
            (Some(m), None) => {
                Group::Max(parse_operands(ctx, &format!("{path}.max"), Some(m), &names))
            }
            (None, Some(f)) => Group::FirstPresent(parse_operands(
                ctx,
                &format!("{path}.first_present"),
                Some(f),
                &names,
            )),
            _ => {
                ctx.err(
                    &path,
                    "a group has exactly one of \"max\" or \"first_present\"",
                );
                continue;
            }
        };
        out.push((name.clone(), group));
    }
    let edges: HashMap<&str, Vec<&str>> = out
        .iter()
        .map(|(n, g)| {
            let ops = match g {
                Group::Max(o) | Group::FirstPresent(o) => o,
            };
            let deps = ops
                .iter()
                .filter_map(|o| match o {
                    Operand::Group(d) => Some(d.as_str()),
                    Operand::Task(_) => None,
                })
                .collect();
            (n.as_str(), deps)
        })
        .collect();
    let nodes: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
    if let Some(cycle) = find_cycle(&nodes, &edges) {
        ctx.err("groups", format!("group cycle: {cycle}"));
    }
    (out, names)
}

fn parse_checks(
    ctx: &mut Ctx,
    v: Option<&Value>,
    groups: &HashSet<String>,
) -> Vec<(String, Check)> {
    let Some(v) = v else { return Vec::new() };
    let Value::Object(map) = v else {
        ctx.err("checks", format!("expected an object, got {}", kind(v)));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, body) in map {
        let path = key_path("checks", name);
        if !is_name(name) {
            ctx.err(&path, "check names use letters, digits, '_', '-' and '.'");
            continue;
        }
        if let Some(c) = parse_check(ctx, &path, body, groups, 0) {
            out.push((name.clone(), c));
        }
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
    let mut ctx = Ctx {
        issues: Vec::new(),
        task_names: HashSet::new(),
    };
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
    let edges: HashMap<&str, Vec<&str>> = tasks
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.cascades.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let nodes: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    if let Some(cycle) = find_cycle(&nodes, &edges) {
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
    let checks_spec = crate::event::checks_spec(&groups, &checks);
    Ok(Rules {
        checks_spec,
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
