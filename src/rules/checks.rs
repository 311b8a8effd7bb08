//! The preflight check grammar: parsing `groups` and `checks` from the rules
//! JSON, and the compiled spec the event's Lua evaluator reads.
//! [`crate::preflight`] evaluates the parsed checks in Rust; the Lua in
//! [`crate::event`] evaluates the compiled spec inside Redis. Both read what
//! this module produces, so there is one grammar.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use super::graph::find_cycle;
use super::model::{Check, Group, Operand};
use super::validate::{check_keys, is_name, key_path, kind, Ctx};

/// Deepest nesting of `all` / `any` / `not` accepted.
const MAX_DEPTH: usize = 32;

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

/// The grammar's primitives; a check object holds exactly one of them.
const CHECK_PRIMITIVES: [&str; 9] = [
    "exists",
    "non_empty",
    "equals",
    "newer",
    "present",
    "all",
    "any",
    "not",
    "when",
];

/// What every per-primitive parser needs: the issue sink, the groups an
/// operand may name, and how deep the check is nested.
struct At<'a> {
    ctx: &'a mut Ctx,
    groups: &'a HashSet<String>,
    depth: usize,
}

fn parse_check(
    ctx: &mut Ctx,
    path: &str,
    v: &Value,
    groups: &HashSet<String>,
    depth: usize,
) -> Option<Check> {
    if depth > MAX_DEPTH {
        ctx.err(path, "checks nested deeper than 32 levels");
        return None;
    }
    let Value::Object(obj) = v else {
        ctx.err(path, format!("expected a check object, got {}", kind(v)));
        return None;
    };
    let prim = single_primitive(ctx, path, obj)?;
    let allowed: &[&str] = match prim {
        "newer" => &["newer", "than_all", "than_any"],
        "when" => &["when", "then"],
        _ => &[prim],
    };
    check_keys(ctx, path, obj, allowed);
    let body = obj.get(prim)?;
    let p = key_path(path, prim);
    let mut at = At { ctx, groups, depth };
    match prim {
        "exists" => field_name(at.ctx, &p, body).map(Check::Exists),
        "non_empty" => field_name(at.ctx, &p, body).map(Check::NonEmpty),
        "equals" => parse_equals(at.ctx, &p, body),
        "newer" => parse_newer(&mut at, path, obj),
        "present" => parse_operand(at.ctx, &p, body, groups).map(Check::Present),
        "all" | "any" => parse_list(&mut at, &p, body, prim == "all"),
        "when" => parse_when(&mut at, path, obj),
        _ => parse_check(at.ctx, &p, body, groups, depth + 1).map(|c| Check::Not(Box::new(c))),
    }
}

/// The one primitive key of a check object, or an issue.
fn single_primitive<'v>(
    ctx: &mut Ctx,
    path: &str,
    obj: &'v serde_json::Map<String, Value>,
) -> Option<&'v str> {
    let prims: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| CHECK_PRIMITIVES.contains(k))
        .collect();
    if let [prim] = prims[..] {
        return Some(prim);
    }
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
    None
}

/// `{"equals": {"field": ..., "value": ...}}`.
fn parse_equals(ctx: &mut Ctx, p: &str, body: &Value) -> Option<Check> {
    let Value::Object(eq) = body else {
        ctx.err(
            p,
            format!(
                "expected {{\"field\": ..., \"value\": ...}}, got {}",
                kind(body)
            ),
        );
        return None;
    };
    check_keys(ctx, p, eq, &["field", "value"]);
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

/// `{"newer": operand, "than_all" | "than_any": [operand...]}`.
fn parse_newer(at: &mut At, path: &str, obj: &serde_json::Map<String, Value>) -> Option<Check> {
    let subject = obj
        .get("newer")
        .and_then(|b| parse_operand(at.ctx, &key_path(path, "newer"), b, at.groups));
    let (all, list_key) = match (obj.get("than_all"), obj.get("than_any")) {
        (Some(_), None) => (true, "than_all"),
        (None, Some(_)) => (false, "than_any"),
        _ => {
            at.ctx.err(
                path,
                "\"newer\" needs exactly one of \"than_all\" or \"than_any\"",
            );
            return None;
        }
    };
    let others = parse_operands(
        at.ctx,
        &key_path(path, list_key),
        obj.get(list_key),
        at.groups,
    );
    Some(Check::Newer {
        subject: subject?,
        others,
        all,
    })
}

/// `{"all": [check...]}` / `{"any": [check...]}`.
fn parse_list(at: &mut At, p: &str, body: &Value, all: bool) -> Option<Check> {
    let Value::Array(items) = body else {
        at.ctx.err(
            p,
            format!("expected an array of checks, got {}", kind(body)),
        );
        return None;
    };
    if items.is_empty() {
        at.ctx.err(p, "expected a non-empty array of checks");
        return None;
    }
    let parsed: Vec<Option<Check>> = items
        .iter()
        .enumerate()
        .map(|(i, it)| parse_check(at.ctx, &format!("{p}[{i}]"), it, at.groups, at.depth + 1))
        .collect();
    let parsed: Option<Vec<Check>> = parsed.into_iter().collect();
    parsed.map(|c| if all { Check::All(c) } else { Check::Any(c) })
}

/// `{"when": check, "then": check}`: `then` applies only while `when` holds.
fn parse_when(at: &mut At, path: &str, obj: &serde_json::Map<String, Value>) -> Option<Check> {
    let when = obj
        .get("when")
        .and_then(|b| parse_check(at.ctx, &key_path(path, "when"), b, at.groups, at.depth + 1));
    let Some(then_body) = obj.get("then") else {
        at.ctx.err(path, "\"when\" needs a \"then\" check");
        return None;
    };
    let then = parse_check(
        at.ctx,
        &key_path(path, "then"),
        then_body,
        at.groups,
        at.depth + 1,
    );
    Some(Check::When {
        when: Box::new(when?),
        then: Box::new(then?),
    })
}

/// Parse `groups` (optional); reports group cycles. Returns the groups in
/// file order and every group name defined (for operands to refer to).
pub(super) fn parse_groups(
    ctx: &mut Ctx,
    v: Option<&Value>,
) -> (Vec<(String, Group)>, HashSet<String>) {
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
            let deps = g
                .operands()
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

/// Parse `checks` (optional), in file order.
pub(super) fn parse_checks(
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

// ------------------------------------------------------------ compiled spec

fn spec_operand(op: &Operand) -> Value {
    match op {
        Operand::Task(t) => json!(["t", t]),
        Operand::Group(g) => json!(["g", g]),
    }
}

fn spec_check(c: &Check) -> Value {
    match c {
        Check::Exists(f) => json!(["exists", f]),
        Check::NonEmpty(f) => json!(["nonempty", f]),
        Check::Equals { field, value } => json!(["eq", field, value]),
        Check::Newer {
            subject,
            others,
            all,
        } => json!([
            "newer",
            spec_operand(subject),
            others.iter().map(spec_operand).collect::<Vec<_>>(),
            all
        ]),
        Check::All(cs) => json!(["all", cs.iter().map(spec_check).collect::<Vec<_>>()]),
        Check::Any(cs) => json!(["any", cs.iter().map(spec_check).collect::<Vec<_>>()]),
        Check::Not(inner) => json!(["not", spec_check(inner)]),
        Check::Present(op) => json!(["present", spec_operand(op)]),
        Check::When { when, then } => json!(["when", spec_check(when), spec_check(then)]),
    }
}

/// The checks and groups compiled to the compact JSON the event's Lua
/// evaluator reads (once, at load: [`super::model::Rules::checks_spec`]):
/// `{"groups": {name: ["max"|"first", [operand...]]}, "checks": [[name, check]...]}`
/// with operands `["t", task]` / `["g", group]`.
pub fn checks_spec(groups: &[(String, Group)], checks: &[(String, Check)]) -> String {
    let groups: serde_json::Map<String, Value> = groups
        .iter()
        .map(|(name, g)| {
            let ops: Vec<Value> = g.operands().iter().map(spec_operand).collect();
            let tag = match g {
                Group::Max(_) => "max",
                Group::FirstPresent(_) => "first",
            };
            (name.clone(), json!([tag, ops]))
        })
        .collect();
    let checks: Vec<Value> = checks
        .iter()
        .map(|(name, c)| json!([name, spec_check(c)]))
        .collect();
    json!({"groups": groups, "checks": checks}).to_string()
}

#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;
