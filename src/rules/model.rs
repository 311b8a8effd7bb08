//! The validated, load-time-compiled rules.

use std::collections::{HashMap, HashSet};

use super::template::{RunVars, Template};
use crate::errors::{CoreError, CoreResult};

/// The cache DB when the rules file names none: where wepppy's controllers
/// cache their `.nodb` state (DB 13).
pub const DEFAULT_CACHE_DB: i64 = 13;

/// Deepest group-in-group chain followed when resolving an operand
/// (validation refuses group cycles; this bounds the walk regardless).
pub const MAX_GROUP_DEPTH: usize = 64;

/// A controller and its cache key templates.
#[derive(Debug, Clone)]
pub struct Controller {
    pub name: String,
    pub keys: Vec<Template>,
    pub patterns: Vec<Template>,
    pub global: bool,
    pub description: Option<String>,
}

/// Why a controller is in a task's closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// Index into [`Rules::controllers`].
    pub controller: usize,
    /// The cascade path from the task to the task that names the controller
    /// (just `[task]` when named directly).
    pub via: Vec<String>,
}

/// A task with its closure computed at load time.
#[derive(Debug, Clone)]
pub struct TaskRule {
    pub name: String,
    pub invalidates: Vec<String>,
    pub cascades: Vec<String>,
    pub description: Option<String>,
    /// A timestamp only older runs carry (the application's task enum no longer
    /// has it); `rules check --task-enum` does not report it as stray.
    pub legacy: bool,
    /// Every controller made stale, in a stable order, each once.
    pub closure: Vec<Reason>,
    /// `closure` as controller names.
    pub closure_names: Vec<String>,
}

/// An operand of a comparison: a task's timestamp field or a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// `timestamps:<task>`.
    Task(String),
    /// `@name`.
    Group(String),
}

impl Operand {
    /// How the operand is written in the rules.
    pub fn label(&self) -> String {
        match self {
            Operand::Task(t) => t.clone(),
            Operand::Group(g) => format!("@{g}"),
        }
    }
}

/// A derived value over several operands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Group {
    Max(Vec<Operand>),
    FirstPresent(Vec<Operand>),
}

impl Group {
    /// The group's operands, in file order.
    pub fn operands(&self) -> &[Operand] {
        match self {
            Group::Max(ops) | Group::FirstPresent(ops) => ops,
        }
    }

    /// The rules file's key for this kind of group (`max` or `first_present`).
    pub fn keyword(&self) -> &'static str {
        match self {
            Group::Max(_) => "max",
            Group::FirstPresent(_) => "first_present",
        }
    }
}

/// A preflight check expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Exists(String),
    NonEmpty(String),
    Equals {
        field: String,
        value: String,
    },
    Newer {
        subject: Operand,
        others: Vec<Operand>,
        all: bool,
    },
    /// The operand has a value: a task's timestamp field is non-empty; a
    /// `first_present` group has a present member; a `max` group has a
    /// member that parses as an integer.
    Present(Operand),
    All(Vec<Check>),
    Any(Vec<Check>),
    Not(Box<Check>),
    /// `when` implies `then`: true when `when` is false, else `then`.
    When {
        when: Box<Check>,
        then: Box<Check>,
    },
}

/// A loaded, validated rules file.
#[derive(Debug, Clone)]
pub struct Rules {
    pub version: i64,
    pub db: i64,
    /// Where the rules came from (a path, or `builtin:` for the packaged default).
    pub source: String,
    pub description: Option<String>,
    pub controllers: Vec<Controller>,
    pub controller_index: HashMap<String, usize>,
    pub tasks: Vec<TaskRule>,
    pub task_index: HashMap<String, usize>,
    pub groups: Vec<(String, Group)>,
    pub group_index: HashMap<String, usize>,
    pub checks: Vec<(String, Check)>,
    /// `groups` + `checks` compiled once at load for the event's Lua
    /// evaluator (see [`super::checks::checks_spec`]).
    pub checks_spec: String,
}

/// A rendered key with its origin, for `explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPlan {
    pub controller: String,
    pub via: Vec<String>,
    /// Exact keys to delete.
    pub keys: Vec<String>,
    /// SCAN MATCH patterns whose matches are deleted.
    pub patterns: Vec<String>,
}

impl KeyPlan {
    /// True when the task names the controller itself (not through a cascade).
    pub fn direct(&self) -> bool {
        self.via.len() <= 1
    }
}

impl Rules {
    /// The task's rule, if the file has one.
    pub fn task(&self, task: &str) -> Option<&TaskRule> {
        self.task_index.get(task).map(|&i| &self.tasks[i])
    }

    /// Controller names made stale by `task` (empty for unknown tasks).
    pub fn controllers_for(&self, task: &str) -> &[String] {
        self.task(task).map_or(&[], |t| t.closure_names.as_slice())
    }

    fn plan_for(&self, reason: &Reason, vars: &RunVars<'_>) -> KeyPlan {
        let c = &self.controllers[reason.controller];
        KeyPlan {
            controller: c.name.clone(),
            via: reason.via.clone(),
            keys: c.keys.iter().map(|t| t.render(vars, &c.name)).collect(),
            patterns: c
                .patterns
                .iter()
                .map(|t| t.render_pattern(vars, &c.name))
                .collect(),
        }
    }

    /// What `task` invalidates for one run, controller by controller.
    pub fn plan(&self, task: &str, vars: &RunVars<'_>) -> Vec<KeyPlan> {
        match self.task(task) {
            None => Vec::new(),
            Some(t) => t.closure.iter().map(|r| self.plan_for(r, vars)).collect(),
        }
    }

    /// The exact cache keys `task` invalidates for one run (deduplicated, ordered).
    pub fn keys_for(&self, task: &str, vars: &RunVars<'_>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(t) = self.task(task) {
            for r in &t.closure {
                let c = &self.controllers[r.controller];
                for k in &c.keys {
                    let key = k.render(vars, &c.name);
                    if !out.contains(&key) {
                        out.push(key);
                    }
                }
            }
        }
        out
    }

    /// The controller's plan for one run; `UnknownController` if the rules
    /// have no such controller.
    pub fn controller_plan(&self, controller: &str, vars: &RunVars<'_>) -> CoreResult<KeyPlan> {
        match self.controller_index.get(controller) {
            Some(&i) => Ok(self.plan_for(
                &Reason {
                    controller: i,
                    via: Vec::new(),
                },
                vars,
            )),
            None => Err(CoreError::UnknownController {
                name: controller.to_string(),
                rules: self.source.clone(),
            }),
        }
    }

    /// Every controller's plan for one run.
    pub fn all_plans(&self, vars: &RunVars<'_>) -> Vec<KeyPlan> {
        (0..self.controllers.len())
            .map(|i| {
                self.plan_for(
                    &Reason {
                        controller: i,
                        via: Vec::new(),
                    },
                    vars,
                )
            })
            .collect()
    }

    fn operand_task<'a>(&'a self, op: &'a Operand, depth: usize) -> Option<&'a str> {
        match op {
            Operand::Task(t) => Some(t),
            Operand::Group(g) if depth < MAX_GROUP_DEPTH => {
                let &i = self.group_index.get(g)?;
                let first = self.groups.get(i)?.1.operands().first()?;
                self.operand_task(first, depth + 1)
            }
            Operand::Group(_) => None,
        }
    }

    /// The task a check is about: the first task whose timestamp it reads (a
    /// `newer`'s subject, through a group's first operand; a `timestamps:<task>`
    /// field of `exists` / `non_empty` / `equals`; the first such task of an
    /// `all` / `any`; the negated check's). `None` when it reads no timestamp.
    pub fn check_task<'a>(&'a self, check: &'a Check) -> Option<&'a str> {
        match check {
            Check::Newer { subject, .. } | Check::Present(subject) => self.operand_task(subject, 0),
            Check::When { when, then } => self.check_task(then).or_else(|| self.check_task(when)),
            Check::Exists(f) | Check::NonEmpty(f) | Check::Equals { field: f, .. } => {
                f.strip_prefix("timestamps:")
            }
            Check::All(cs) | Check::Any(cs) => cs.iter().find_map(|c| self.check_task(c)),
            Check::Not(inner) => self.check_task(inner),
        }
    }

    /// Every task a check reads, in first-seen order: its operands (a group's
    /// through its members, recursively) and the `timestamps:<task>` fields it
    /// names. What `preflight` compares with the application's task list.
    pub fn tasks_read(&self, check: &Check) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        self.collect_tasks(check, &mut out);
        out
    }

    fn collect_tasks(&self, check: &Check, out: &mut Vec<String>) {
        let mut push = |t: &str| {
            if !out.iter().any(|o| o == t) {
                out.push(t.to_string());
            }
        };
        match check {
            Check::Exists(f) | Check::NonEmpty(f) | Check::Equals { field: f, .. } => {
                if let Some(t) = f.strip_prefix("timestamps:") {
                    push(t);
                }
            }
            Check::Newer {
                subject, others, ..
            } => {
                for op in std::iter::once(subject).chain(others) {
                    self.operand_tasks(op, 0, out);
                }
            }
            Check::Present(op) => self.operand_tasks(op, 0, out),
            Check::All(cs) | Check::Any(cs) => cs.iter().for_each(|c| self.collect_tasks(c, out)),
            Check::Not(inner) => self.collect_tasks(inner, out),
            Check::When { when, then } => {
                self.collect_tasks(when, out);
                self.collect_tasks(then, out);
            }
        }
    }

    fn operand_tasks(&self, op: &Operand, depth: usize, out: &mut Vec<String>) {
        match op {
            Operand::Task(t) => {
                if !out.contains(t) {
                    out.push(t.clone());
                }
            }
            Operand::Group(g) if depth < MAX_GROUP_DEPTH => {
                if let Some((_, group)) = self.group_index.get(g).and_then(|&i| self.groups.get(i))
                {
                    for o in group.operands() {
                        self.operand_tasks(o, depth + 1, out);
                    }
                }
            }
            Operand::Group(_) => {}
        }
    }

    /// The groups `seeds` (indices into [`Rules::groups`]) and every group they
    /// use, directly or through other groups, as sorted indices.
    pub fn groups_with_dependencies(&self, seeds: &[usize]) -> Vec<usize> {
        let mut seen: HashSet<usize> = HashSet::new();
        let mut stack: Vec<usize> = seeds.to_vec();
        while let Some(i) = stack.pop() {
            let Some((_, group)) = self.groups.get(i) else {
                continue;
            };
            if !seen.insert(i) {
                continue;
            }
            for op in group.operands() {
                if let Operand::Group(g) = op {
                    if let Some(&d) = self.group_index.get(g) {
                        stack.push(d);
                    }
                }
            }
        }
        let mut out: Vec<usize> = seen.into_iter().collect();
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::{load, BUILTIN_SOURCE, BUILTIN_TEXT};

    use crate::rules::test_rules::SMALL;

    #[test]
    fn tasks_read_follow_groups_and_fields() {
        let r = load::from_str(BUILTIN_TEXT, BUILTIN_SOURCE).unwrap();
        let of = |name: &str| r.tasks_read(&r.checks.iter().find(|c| c.0 == name).unwrap().1);
        assert_eq!(
            of("rusle"),
            [
                "build_rusle",
                "build_climate",
                "run_wepp_watershed",
                "run_wepp"
            ]
        );
        assert_eq!(
            of("geneva"),
            [
                "run_geneva",
                "build_landuse",
                "build_soils",
                "build_climate",
                "init_sbs_map"
            ]
        );
        assert_eq!(of("channels"), ["build_channels"]);
        assert!(of("sbs_map").is_empty());
    }

    #[test]
    fn subject_tasks() {
        let r = load::from_str(SMALL, "t").unwrap();
        let got: Vec<(&str, Option<&str>)> = r
            .checks
            .iter()
            .map(|(n, c)| (n.as_str(), r.check_task(c)))
            .collect();
        assert_eq!(
            got,
            [
                ("plain", Some("a")),
                ("nested", Some("x")),
                ("via_group", Some("a")),
                ("flag", None)
            ]
        );
        let b = load::from_str(BUILTIN_TEXT, BUILTIN_SOURCE).unwrap();
        let subject = |name: &str| {
            let (_, c) = b.checks.iter().find(|(n, _)| n == name).unwrap();
            b.check_task(c)
        };
        assert_eq!(subject("outlet"), Some("set_outlet"));
        assert_eq!(subject("wepp"), Some("run_wepp_watershed"));
        assert_eq!(subject("channels"), Some("build_channels"));
        assert_eq!(subject("soils"), Some("build_soils"));
        assert_eq!(subject("sbs_map"), None);
    }

    #[test]
    fn group_dependencies_are_transitive() {
        let r = load::from_str(SMALL, "t").unwrap();
        let outer = r.group_index["outer"];
        let solo = r.group_index["solo"];
        assert_eq!(r.groups_with_dependencies(&[outer]), [0, 1]);
        assert_eq!(r.groups_with_dependencies(&[solo, solo]), [2]);
        assert!(r.groups_with_dependencies(&[]).is_empty());
        assert!(r.groups_with_dependencies(&[99]).is_empty());
    }
}
