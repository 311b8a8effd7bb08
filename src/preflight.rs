//! wepppy's dependency checklist (the checks wepppy's preflight service
//! computes; see docs/COMPATIBILITY.md), evaluated from one hash
//! snapshot against the checks declared in the rules file.

use std::collections::HashMap;

use crate::rules::model::MAX_GROUP_DEPTH;
use crate::rules::{Check, Group, Operand, Rules};

/// The checklist for one run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Preflight {
    pub checklist: Vec<(String, bool)>,
    /// For checks that are false (only when asked): why, for a person.
    pub reasons: Vec<(String, Vec<String>)>,
    /// The groups (`@name`) the reasons mention, and the groups those use,
    /// as indices into `Rules::groups` in file order (only when asked).
    pub groups: Vec<usize>,
    pub lock_statuses: Vec<(String, bool)>,
    pub last_modified: Option<i64>,
}

/// wepppy's preflight integer: optional sign, ASCII digits, signed 64-bit.
pub fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[derive(Debug, Clone)]
enum Val<'a> {
    Raw(Option<&'a str>),
    Int(Option<i64>),
}

impl Val<'_> {
    fn int(&self) -> Option<i64> {
        match self {
            Val::Raw(r) => r.and_then(parse_int),
            Val::Int(i) => *i,
        }
    }
    fn present(&self) -> bool {
        match self {
            Val::Raw(r) => r.is_some_and(|s| !s.is_empty()),
            Val::Int(i) => i.is_some(),
        }
    }
    fn show(&self) -> String {
        match self {
            Val::Raw(None) | Val::Int(None) => "missing".to_string(),
            Val::Raw(Some(s)) if parse_int(s).is_none() => format!("{s:?}, not an integer"),
            Val::Raw(Some(s)) => s.to_string(),
            Val::Int(Some(i)) => i.to_string(),
        }
    }
}

struct Eval<'a> {
    rules: &'a Rules,
    hash: HashMap<&'a str, &'a str>,
    ts: HashMap<&'a str, &'a str>,
}

impl<'a> Eval<'a> {
    fn operand(&self, op: &Operand, depth: usize) -> Val<'a> {
        match op {
            Operand::Task(t) => Val::Raw(self.ts.get(t.as_str()).copied()),
            Operand::Group(g) => {
                let Some(&i) = self.rules.group_index.get(g) else {
                    return Val::Raw(None);
                };
                if depth > MAX_GROUP_DEPTH {
                    return Val::Raw(None);
                }
                match &self.rules.groups[i].1 {
                    Group::Max(ops) => Val::Int(
                        ops.iter()
                            .filter_map(|o| self.operand(o, depth + 1).int())
                            .max(),
                    ),
                    Group::FirstPresent(ops) => ops
                        .iter()
                        .map(|o| self.operand(o, depth + 1))
                        .find(Val::present)
                        .unwrap_or(Val::Raw(None)),
                }
            }
        }
    }

    fn check(&self, c: &Check, why: &mut Option<Notes>) -> bool {
        match c {
            Check::Exists(f) => self.exists(f, why),
            Check::NonEmpty(f) => self.non_empty(f, why),
            Check::Equals { field, value } => self.equals(field, value, why),
            Check::Newer {
                subject,
                others,
                all,
            } => self.newer(subject, others, *all, why),
            Check::Present(op) => self.present(op, why),
            Check::All(cs) => self.all(cs, why),
            Check::Any(cs) => self.any(cs, why),
            Check::Not(inner) => {
                let ok = !self.check(inner, &mut None);
                if !ok {
                    note(why, || self.holds(inner));
                }
                ok
            }
            Check::When { when, then } => !self.check(when, &mut None) || self.check(then, why),
        }
    }

    /// Why a negated check is false: its condition holds.
    fn holds(&self, inner: &Check) -> String {
        match inner {
            Check::Present(op) => {
                format!("{} is present ({})", op.label(), self.operand(op, 0).show())
            }
            Check::Exists(f) => format!("{f} exists"),
            Check::Equals { field, value } => format!("{field} is {value:?}"),
            _ => "negated condition holds".to_string(),
        }
    }

    fn exists(&self, f: &str, why: &mut Option<Notes>) -> bool {
        let ok = self.hash.contains_key(f);
        if !ok {
            note(why, || format!("{f} is missing"));
        }
        ok
    }

    fn non_empty(&self, f: &str, why: &mut Option<Notes>) -> bool {
        let ok = self.hash.get(f).is_some_and(|v| !v.is_empty());
        if !ok {
            note(why, || format!("{f} is missing or empty"));
        }
        ok
    }

    fn equals(&self, field: &str, value: &str, why: &mut Option<Notes>) -> bool {
        let got = self.hash.get(field).copied();
        let ok = got == Some(value);
        if !ok {
            note(why, || match got {
                None => format!("{field} is missing (expected {value:?})"),
                Some(g) => format!("{field} is {g:?}, not {value:?}"),
            });
        }
        ok
    }

    fn present(&self, op: &Operand, why: &mut Option<Notes>) -> bool {
        let ok = self.operand(op, 0).present();
        if !ok {
            self.mention(why, [op]);
            note(why, || format!("{} is missing", op.label()));
        }
        ok
    }

    fn all(&self, cs: &[Check], why: &mut Option<Notes>) -> bool {
        let mut ok = true;
        for c in cs {
            ok &= self.check(c, why);
            if !ok && why.is_none() {
                break;
            }
        }
        ok
    }

    fn any(&self, cs: &[Check], why: &mut Option<Notes>) -> bool {
        let mut sub: Option<Notes> = why.as_ref().map(|_| Notes::default());
        let ok = cs.iter().any(|c| self.check(c, &mut sub));
        if !ok {
            if let (Some(w), Some(s)) = (why.as_mut(), sub) {
                w.lines.push(format!("none of: {}", s.lines.join("; ")));
                w.groups.extend(s.groups);
            }
        }
        ok
    }

    fn newer(
        &self,
        subject: &Operand,
        others: &[Operand],
        all: bool,
        why: &mut Option<Notes>,
    ) -> bool {
        let s = self.operand(subject, 0);
        let si = s.int();
        let results: Vec<(&Operand, Val<'a>, bool)> = others
            .iter()
            .map(|o| {
                let v = self.operand(o, 0);
                let ok = matches!((si, v.int()), (Some(a), Some(b)) if a > b);
                (o, v, ok)
            })
            .collect();
        let ok = if all {
            results.iter().all(|r| r.2)
        } else {
            results.iter().any(|r| r.2)
        };
        if !ok && why.is_some() {
            let failing: Vec<_> = results.iter().filter(|r| !r.2).collect();
            self.explain_newer(subject, &s, &failing, all, why);
        }
        ok
    }

    /// The reasons of a false `newer`: one line per failing comparison for
    /// `than_all`, one line listing them all for `than_any`.
    fn explain_newer(
        &self,
        subject: &Operand,
        s: &Val<'_>,
        failing: &[&(&Operand, Val<'_>, bool)],
        all: bool,
        why: &mut Option<Notes>,
    ) {
        if all {
            for (o, v, _) in failing {
                self.mention(why, [subject, *o]);
                note(why, || {
                    format!(
                        "{} ({}) is not newer than {} ({})",
                        subject.label(),
                        s.show(),
                        o.label(),
                        v.show()
                    )
                });
            }
            return;
        }
        self.mention(why, failing.iter().map(|r| r.0).chain([subject]));
        note(why, || {
            let list: Vec<String> = failing
                .iter()
                .map(|(o, v, _)| format!("{} ({})", o.label(), v.show()))
                .collect();
            format!(
                "{} ({}) is not newer than any of {}",
                subject.label(),
                s.show(),
                list.join(", ")
            )
        });
    }
}

impl Eval<'_> {
    /// Record the groups among `ops` that a reason is about to name.
    fn mention<'o>(&self, why: &mut Option<Notes>, ops: impl IntoIterator<Item = &'o Operand>) {
        if let Some(w) = why {
            for op in ops {
                if let Operand::Group(g) = op {
                    if let Some(&i) = self.rules.group_index.get(g) {
                        w.groups.push(i);
                    }
                }
            }
        }
    }
}

/// The explanation of one check being built: reasons, and the groups they name.
#[derive(Default)]
struct Notes {
    lines: Vec<String>,
    groups: Vec<usize>,
}

fn note(why: &mut Option<Notes>, f: impl FnOnce() -> String) {
    if let Some(w) = why {
        w.lines.push(f());
    }
}

/// Evaluate every check of `rules` on one hash snapshot.
pub fn evaluate(rules: &Rules, hash: &[(String, String)], explain: bool) -> Preflight {
    let map: HashMap<&str, &str> = hash.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let ts: HashMap<&str, &str> = hash
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("timestamps:").map(|t| (t, v.as_str())))
        .collect();
    let ev = Eval {
        rules,
        hash: map,
        ts,
    };
    let mut out = Preflight::default();
    let mut named_groups: Vec<usize> = Vec::new();
    for (name, check) in &rules.checks {
        let mut why = explain.then(Notes::default);
        let ok = ev.check(check, &mut why);
        out.checklist.push((name.clone(), ok));
        if let (false, Some(w)) = (ok, why) {
            out.reasons.push((name.clone(), w.lines));
            named_groups.extend(w.groups);
        }
    }
    out.groups = rules.groups_with_dependencies(&named_groups);
    out.lock_statuses = hash
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("locked:")
                .map(|n| (n.to_string(), v == "true"))
        })
        .collect();
    out.last_modified = ev
        .hash
        .get("last_modified")
        .and_then(|v| parse_int(v))
        .or_else(|| ev.ts.values().filter_map(|v| parse_int(v)).max());
    out
}

#[cfg(test)]
#[path = "preflight_tests.rs"]
mod tests;
