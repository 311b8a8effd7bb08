//! `Rules`: a loaded, validated rules file, and conversions to Python data.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::keys::key_text;
use crate::preflight::Preflight;
use crate::rules::render::{self, GraphFormat};
use crate::rules::{self, KeyPlan, Operand, Rules, RunFolder};

/// A validated cache-invalidation rules file (see docs/RULES.md).
#[pyclass(module = "redisprep._redisprep", name = "Rules", frozen)]
pub struct PyRules {
    pub inner: Arc<Rules>,
}

pub fn plans_to_py<'py>(
    py: Python<'py>,
    plans: &[KeyPlan],
    db: i64,
) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for p in plans {
        let d = PyDict::new(py);
        d.set_item("controller", &p.controller)?;
        d.set_item("via", p.via.clone())?;
        d.set_item("direct", p.direct())?;
        d.set_item("keys", p.keys.clone())?;
        d.set_item("patterns", p.patterns.clone())?;
        d.set_item("db", db)?;
        out.append(d)?;
    }
    Ok(out)
}

pub fn preflight_to_py<'py>(py: Python<'py>, p: &Preflight) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let checklist = PyDict::new(py);
    for (k, v) in &p.checklist {
        checklist.set_item(k, *v)?;
    }
    let locks = PyDict::new(py);
    for (k, v) in &p.lock_statuses {
        locks.set_item(k, *v)?;
    }
    d.set_item("checklist", checklist)?;
    d.set_item("lock_statuses", locks)?;
    d.set_item("last_modified", p.last_modified)?;
    Ok(d)
}

/// `{check: [reason, ...]}` for the false checks of an explained evaluation.
pub(crate) fn reasons_to_py<'py>(py: Python<'py>, p: &Preflight) -> PyResult<Bound<'py, PyDict>> {
    let e = PyDict::new(py);
    for (name, reasons) in &p.reasons {
        e.set_item(name, reasons.clone())?;
    }
    Ok(e)
}

/// A hash given as a dict or as `(field, value)` pairs.
fn hash_pairs(hash: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    if let Ok(d) = hash.cast::<PyDict>() {
        d.iter()
            .map(|(k, v)| Ok((k.extract()?, v.extract()?)))
            .collect()
    } else {
        hash.extract()
    }
}

#[pymethods]
impl PyRules {
    /// Load and validate: `path`, else `$REDISPREP_RULES`, else the packaged default.
    /// Raises `RulesError` listing every problem with its JSON path.
    #[staticmethod]
    #[pyo3(signature = (path=None))]
    fn load(py: Python<'_>, path: Option<std::path::PathBuf>) -> PyResult<PyRules> {
        let p = path.map(|p| p.to_string_lossy().into_owned());
        let r = py.detach(move || rules::load(p.as_deref()))?;
        Ok(PyRules { inner: Arc::new(r) })
    }

    /// Validate rules given as JSON text.
    #[staticmethod]
    #[pyo3(signature = (text, source="<string>"))]
    fn from_json(text: &str, source: &str) -> PyResult<PyRules> {
        Ok(PyRules {
            inner: Arc::new(rules::load::from_str(text, source)?),
        })
    }

    /// The format version.
    #[getter]
    fn version(&self) -> i64 {
        self.inner.version
    }

    /// Where the rules came from (a path, or `builtin:...`).
    #[getter]
    fn source(&self) -> &str {
        &self.inner.source
    }

    /// The Redis DB holding controller caches.
    #[getter]
    fn db(&self) -> i64 {
        self.inner.db
    }

    /// Controller names, in file order.
    #[getter]
    fn controllers(&self) -> Vec<String> {
        self.inner
            .controllers
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    /// Task names, in file order.
    #[getter]
    fn tasks(&self) -> Vec<String> {
        self.inner.tasks.iter().map(|t| t.name.clone()).collect()
    }

    /// Tasks marked `"legacy": true` (timestamps only older runs carry), in file order.
    #[getter]
    fn legacy_tasks(&self) -> Vec<String> {
        let tasks = self.inner.tasks.iter();
        tasks.filter(|t| t.legacy).map(|t| t.name.clone()).collect()
    }

    /// Check names, in file order.
    #[getter]
    fn checks(&self) -> Vec<String> {
        self.inner.checks.iter().map(|c| c.0.clone()).collect()
    }

    /// `{check: [task, ...]}`: every task each check reads (through groups), in order.
    fn check_tasks(&self) -> Vec<(String, Vec<String>)> {
        let r = &self.inner;
        r.checks
            .iter()
            .map(|(name, c)| (name.clone(), r.tasks_read(c)))
            .collect()
    }

    /// The controllers `task` makes stale (its own and via cascades).
    fn controllers_for(&self, task: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        Ok(self.inner.controllers_for(&key_text(task)?).to_vec())
    }

    /// The tasks `task` cascades to directly.
    fn cascades_of(&self, task: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        Ok(self
            .inner
            .task(&key_text(task)?)
            .map(|t| t.cascades.clone())
            .unwrap_or_default())
    }

    /// The exact cache keys `task` invalidates for the run folder `wd`.
    fn keys_for(&self, task: &Bound<'_, PyAny>, wd: &str) -> PyResult<Vec<String>> {
        let folder = RunFolder::of(wd);
        Ok(self.inner.keys_for(&key_text(task)?, &folder.vars()))
    }

    /// Why each controller is included: `[{"controller", "via", "direct", "keys", "patterns", "db"}]`.
    /// Keys are rendered for `wd` when given, else shown as templates.
    #[pyo3(signature = (task, wd=None))]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        task: &Bound<'py, PyAny>,
        wd: Option<&str>,
    ) -> PyResult<Bound<'py, PyList>> {
        let task = key_text(task)?;
        let folder = wd.map_or_else(RunFolder::placeholders, RunFolder::of);
        plans_to_py(py, &self.inner.plan(&task, &folder.vars()), self.inner.db)
    }

    /// Evaluate the checklist on a hash given as `(field, value)` pairs or a dict.
    #[pyo3(signature = (hash, explain=false))]
    fn evaluate_checks<'py>(
        &self,
        py: Python<'py>,
        hash: &Bound<'py, PyAny>,
        explain: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let p = crate::preflight::evaluate(&self.inner, &hash_pairs(hash)?, explain);
        let d = preflight_to_py(py, &p)?;
        if explain {
            d.set_item("explain", reasons_to_py(py, &p)?)?;
        }
        Ok(d)
    }

    /// The evaluator's explanation of the checklist on a hash (pairs or a dict):
    /// `evaluate_checks(hash, explain=True)` plus `"tasks"` (`{check: task | None}`,
    /// the task each check is about) and `"groups"` (`{name: {"max" |
    /// "first_present": [operand, ...]}}`, the groups the reasons name and the
    /// groups those use, as written in the rules file).
    fn explain_checks<'py>(
        &self,
        py: Python<'py>,
        hash: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let r = &self.inner;
        let p = crate::preflight::evaluate(r, &hash_pairs(hash)?, true);
        let d = preflight_to_py(py, &p)?;
        d.set_item("explain", reasons_to_py(py, &p)?)?;
        let tasks = PyDict::new(py);
        for (name, check) in &r.checks {
            tasks.set_item(name, r.check_task(check))?;
        }
        d.set_item("tasks", tasks)?;
        let groups = PyDict::new(py);
        for (name, group) in p.groups.iter().filter_map(|&i| r.groups.get(i)) {
            let ops: Vec<String> = group.operands().iter().map(Operand::label).collect();
            let def = PyDict::new(py);
            def.set_item(group.keyword(), ops)?;
            groups.set_item(name, def)?;
        }
        d.set_item("groups", groups)?;
        Ok(d)
    }

    /// The task -> controller graph as Mermaid (`fmt="mermaid"`) or DOT (`fmt="dot"`).
    #[pyo3(signature = (fmt="mermaid"))]
    fn graph(&self, fmt: &str) -> PyResult<String> {
        Ok(render::graph(&self.inner, fmt.parse::<GraphFormat>()?))
    }

    fn __repr__(&self) -> String {
        format!(
            "Rules(source={:?}, version={}, controllers={}, tasks={}, checks={})",
            self.inner.source,
            self.inner.version,
            self.inner.controllers.len(),
            self.inner.tasks.len(),
            self.inner.checks.len()
        )
    }
}
