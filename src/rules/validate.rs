//! The shared vocabulary of rules validation: the issue collector and the
//! JSON helpers every section parser uses (kinds, names, paths, key lists).
//! Every problem is collected with its JSON path; nothing here panics.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::errors::RuleIssue;

/// Collects every problem found while validating one rules file.
pub(super) struct Ctx {
    pub(super) issues: Vec<RuleIssue>,
    /// Names defined under `tasks`, for check operands (empty: not checked).
    pub(super) task_names: HashSet<String>,
}

impl Ctx {
    pub(super) fn new() -> Ctx {
        Ctx {
            issues: Vec::new(),
            task_names: HashSet::new(),
        }
    }

    pub(super) fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(RuleIssue {
            path: path.into(),
            message: message.into(),
        });
    }
}

/// "a string", "an object", ... for messages.
pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Controller, task, group and check names: 1 to 128 of `[A-Za-z0-9_.-]`.
pub(super) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `base.key`, or `base["key"]` when the key is not a plain name.
pub(super) fn key_path(base: &str, key: &str) -> String {
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

/// Report every key of `obj` that is not in `allowed`.
pub(super) fn check_keys(ctx: &mut Ctx, path: &str, obj: &Map<String, Value>, allowed: &[&str]) {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            ctx.err(
                key_path(path, k),
                format!("unknown key {k:?} (allowed: {})", allowed.join(", ")),
            );
        }
    }
}

/// An optional string member.
pub(super) fn opt_string(
    ctx: &mut Ctx,
    path: &str,
    obj: &Map<String, Value>,
    key: &str,
) -> Option<String> {
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
pub(super) fn string_list(
    ctx: &mut Ctx,
    path: &str,
    v: Option<&Value>,
    required: bool,
) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(ctx: &Ctx) -> Vec<String> {
        ctx.issues.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn names_and_paths() {
        assert!(is_name("build_climate") && is_name("a.b-c_9"));
        assert!(!is_name("") && !is_name("a b") && !is_name("é") && !is_name(&"x".repeat(129)));
        assert_eq!(key_path("", "tasks"), "tasks");
        assert_eq!(key_path("tasks", "build_climate"), "tasks.build_climate");
        assert_eq!(key_path("tasks", "a b"), "tasks[\"a b\"]");
    }

    #[test]
    fn string_lists_report_types_and_duplicates() {
        let mut ctx = Ctx::new();
        let v = json!(["a", 1, "a", "b"]);
        assert_eq!(string_list(&mut ctx, "x", Some(&v), true), ["a", "b"]);
        assert_eq!(
            messages(&ctx),
            [
                "x[1]: expected a string, got a number",
                "x[2]: duplicate entry \"a\""
            ]
        );
        let mut ctx = Ctx::new();
        assert!(string_list(&mut ctx, "x", None, false).is_empty());
        assert!(ctx.issues.is_empty());
        assert!(string_list(&mut ctx, "x", None, true).is_empty());
        assert!(string_list(&mut ctx, "y", Some(&json!({})), false).is_empty());
        assert_eq!(
            messages(&ctx),
            [
                "x: missing (expected an array of strings)",
                "y: expected an array of strings, got an object"
            ]
        );
    }

    #[test]
    fn unknown_keys_and_optional_strings() {
        let mut ctx = Ctx::new();
        let Value::Object(obj) = json!({"keys": [], "bogus": 1, "description": 7}) else {
            unreachable!()
        };
        check_keys(&mut ctx, "controllers.c", &obj, &["keys", "description"]);
        assert_eq!(
            opt_string(&mut ctx, "controllers.c", &obj, "description"),
            None
        );
        assert_eq!(opt_string(&mut ctx, "controllers.c", &obj, "absent"), None);
        assert_eq!(
            messages(&ctx),
            [
                "controllers.c.bogus: unknown key \"bogus\" (allowed: keys, description)",
                "controllers.c.description: expected a string, got a number"
            ]
        );
    }
}
