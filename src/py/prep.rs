//! `PrepCore`: the native base class of Python's `RedisPrep`. Every method
//! releases the GIL around its Redis round trip and file write.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyType};

use super::keys::key_text;
use super::rules::{plans_to_py, preflight_to_py, reasons_to_py};
use crate::errors::CoreError;
use crate::fields;
use crate::prep::Prep;
use crate::rules;

/// Native core of `RedisPrep`; use `redisprep.RedisPrep`.
#[pyclass(subclass, module = "redisprep._redisprep", name = "PrepCore")]
pub struct PyPrep {
    inner: Arc<Prep>,
    cfg_fn: Option<Py<PyAny>>,
}

fn active_rules(py: Python<'_>) -> PyResult<Arc<rules::Rules>> {
    super::sync_log_levels(py);
    Ok(rules::require_active()?)
}

fn int_of(py: Python<'_>, text: &str) -> PyResult<Py<PyAny>> {
    match text.parse::<i64>() {
        Ok(i) if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') => {
            Ok(i.into_pyobject(py)?.into_any().unbind())
        }
        // exact `int(v)` semantics (whitespace, underscores, big ints, ValueError)
        _ => Ok(py.get_type::<pyo3::types::PyInt>().call1((text,))?.unbind()),
    }
}

fn value_text(value: &Bound<'_, PyAny>) -> PyResult<String> {
    // what redis-py stores for HSET: str as is, int/float via str()/repr(), bytes decoded
    if value.is_instance_of::<pyo3::types::PyBool>() || value.is_none() {
        return Err(CoreError::InvalidKey(format!(
            "invalid value {}: use an int timestamp or a str",
            value.repr()?
        ))
        .into());
    }
    if let Ok(b) = value.cast::<pyo3::types::PyBytes>() {
        return String::from_utf8(b.as_bytes().to_vec())
            .map_err(|_| CoreError::InvalidKey("bytes value is not UTF-8".into()).into());
    }
    if value.is_instance_of::<pyo3::types::PyFloat>() {
        return Ok(value.repr()?.to_string());
    }
    if value.is_instance_of::<pyo3::types::PyString>()
        || value.is_instance_of::<pyo3::types::PyInt>()
    {
        // to_cow() refuses lone surrogates (UnicodeEncodeError, like redis-py);
        // Display would replace them silently. (Not to_str(): the abi3-py39
        // limited API has no borrowed UTF-8 view of a str before 3.10.)
        return Ok(value.str()?.to_cow()?.into_owned());
    }
    Err(CoreError::InvalidKey(format!(
        "invalid value of type {}: use an int timestamp or a str",
        value.get_type().name()?
    ))
    .into())
}

impl PyPrep {
    fn mutate_set(&self, py: Python<'_>, field: String, value: String) -> PyResult<()> {
        super::sync_log_levels(py);
        let inner = self.inner.clone();
        py.detach(move || inner.set_fields(&[(field, value)]))?;
        Ok(())
    }

    fn mutate_del(&self, py: Python<'_>, fields: Vec<String>) -> PyResult<()> {
        super::sync_log_levels(py);
        let inner = self.inner.clone();
        py.detach(move || inner.del_fields(&fields))?;
        Ok(())
    }

    fn hget(&self, py: Python<'_>, field: String) -> PyResult<Option<String>> {
        let inner = self.inner.clone();
        Ok(py.detach(move || inner.hget(&field))?)
    }
}

#[pymethods]
impl PyPrep {
    /// `PrepCore(wd, cfg_fn=None)`: touches neither Redis nor the disk
    /// (`RedisPrep.__init__` adds the legacy constructor's side effect).
    #[new]
    #[pyo3(signature = (wd, cfg_fn=None))]
    fn new(wd: String, cfg_fn: Option<Py<PyAny>>) -> Self {
        PyPrep {
            inner: Arc::new(Prep::new(&wd)),
            cfg_fn,
        }
    }

    /// The legacy constructor's side effect: set `attrs:loaded` (and dump)
    /// when the run folder has no dump file yet.
    fn _init_run(&self, py: Python<'_>) -> PyResult<()> {
        let inner = self.inner.clone();
        Ok(py.detach(move || inner.init())?)
    }

    /// `getInstance` fast path: construct (`__new__` only) and lazy-load in as
    /// few round trips as legacy allows.
    #[classmethod]
    fn _get_instance(cls: &Bound<'_, PyType>, wd: String) -> PyResult<Py<PyAny>> {
        let py = cls.py();
        let obj = cls.call_method1("__new__", (cls, wd))?;
        {
            let this = obj.cast::<PyPrep>()?.borrow();
            let inner = this.inner.clone();
            py.detach(move || inner.open())?;
        }
        Ok(obj.unbind())
    }

    /// The run folder, as given.
    #[getter]
    fn wd(&self) -> &str {
        &self.inner.wd
    }

    /// The `cfg_fn` given at construction.
    #[getter]
    fn cfg_fn(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.cfg_fn.as_ref().map(|c| c.clone_ref(py))
    }

    #[setter]
    fn set_cfg_fn(&mut self, value: Option<Py<PyAny>>) {
        self.cfg_fn = value;
    }

    /// Last component of `wd.rstrip('/')`: the Redis hash key.
    #[getter]
    fn run_id(&self) -> &str {
        &self.inner.run_id
    }

    /// The Redis key of this run's hash (`run_id`, or `prep:{run_id}` on the cluster layout).
    #[getter]
    fn hash_key(&self) -> PyResult<String> {
        Ok(self.inner.hash_key()?)
    }

    /// `os.path.join(wd, 'redisprep.dump')`.
    #[getter]
    fn dump_filepath(&self) -> String {
        self.inner.dump_filepath()
    }

    /// Legacy `lazy_load()`: load the dump into Redis unless `attrs:loaded` is true.
    fn lazy_load(&self, py: Python<'_>) -> PyResult<()> {
        let inner = self.inner.clone();
        Ok(py.detach(move || inner.lazy_load())?)
    }

    /// Legacy `dump()`: write the hash (minus `locked:*`) to `redisprep.dump`, atomically.
    fn dump(&self, py: Python<'_>) -> PyResult<()> {
        let inner = self.inner.clone();
        Ok(py.detach(move || inner.dump())?)
    }

    fn _get_bool_config(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let field = fields::attr(&key_text(key)?);
        Ok(fields::is_true(self.hget(py, field)?.as_deref()))
    }

    fn _set_bool_config(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let field = fields::attr(&key_text(key)?);
        let v = fields::bool_text(value.is_truthy()?);
        self.mutate_set(py, field, v.to_string())
    }

    /// `attrs:sbs_required` as a bool.
    #[getter]
    fn get_sbs_required(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(fields::is_true(
            self.hget(py, fields::attr("sbs_required"))?.as_deref(),
        ))
    }

    #[setter]
    fn set_sbs_required(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = fields::bool_text(value.is_truthy()?);
        self.mutate_set(py, fields::attr("sbs_required"), v.into())
    }

    /// `attrs:has_sbs` as a bool.
    #[getter]
    fn get_has_sbs(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(fields::is_true(
            self.hget(py, fields::attr("has_sbs"))?.as_deref(),
        ))
    }

    #[setter]
    fn set_has_sbs(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = fields::bool_text(value.is_truthy()?);
        self.mutate_set(py, fields::attr("has_sbs"), v.into())
    }

    /// Record `int(time.time())` for `key` and delete the controller caches
    /// the rules name for it, in one Redis round trip; then write the dump.
    /// `invalidate=False` records the timestamp only (legacy behaviour).
    #[pyo3(signature = (key, invalidate=true))]
    fn timestamp(&self, py: Python<'_>, key: &Bound<'_, PyAny>, invalidate: bool) -> PyResult<()> {
        let task = key_text(key)?;
        super::sync_log_levels(py);
        let inner = self.inner.clone();
        py.detach(move || inner.timestamp(&task, invalidate, None))?;
        Ok(())
    }

    /// `timestamp(key)`, returning the fresh preflight checklist computed from
    /// the hash read in the same transaction (no extra round trip).
    fn timestamp_and_preflight<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let task = key_text(key)?;
        super::sync_log_levels(py);
        let inner = self.inner.clone();
        let p = py.detach(move || inner.timestamp_and_preflight(&task))?;
        preflight_to_py(py, &p)
    }

    /// The checklist of the hash read by this instance's last write, or None.
    #[getter]
    fn last_preflight<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.inner
            .last_preflight()
            .map(|p| preflight_to_py(py, &p))
            .transpose()
    }

    /// Legacy `__setitem__`: HSET `timestamps:<key>` (no invalidation) + dump.
    fn __setitem__(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let field = fields::timestamp(&key_text(key)?);
        let v = value_text(value)?;
        self.mutate_set(py, field, v)
    }

    /// Legacy `__getitem__`: `int` of `timestamps:<key>`, or None.
    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        let field = fields::timestamp(&key_text(key)?);
        match self.hget(py, field)? {
            None => Ok(None),
            Some(v) => int_of(py, &v).map(Some),
        }
    }

    /// Legacy `remove_timestamp`: HDEL `timestamps:<key>` + dump.
    fn remove_timestamp(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let field = fields::timestamp(&key_text(key)?);
        self.mutate_del(py, vec![field])
    }

    /// HDEL several fields in one transaction + dump.
    fn _remove_fields(&self, py: Python<'_>, fields: Vec<String>) -> PyResult<()> {
        self.mutate_del(py, fields)
    }

    /// HMGET fields in one round trip.
    fn _hmget(&self, py: Python<'_>, fields: Vec<String>) -> PyResult<Vec<Option<String>>> {
        let inner = self.inner.clone();
        Ok(py.detach(move || inner.hmget(&fields))?)
    }

    /// HGETALL as a list of pairs in Redis order.
    fn _hgetall(&self, py: Python<'_>) -> PyResult<Vec<(String, String)>> {
        let inner = self.inner.clone();
        Ok(py.detach(move || inner.hgetall())?)
    }

    /// Legacy `set_rq_job_id`: HSET `rq:<key>` + dump.
    fn set_rq_job_id(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        job_id: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let field = fields::rq(&key_text(key)?);
        self.mutate_set(py, field, value_text(job_id)?)
    }

    /// Legacy `get_rq_job_id`.
    fn get_rq_job_id(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
        let field = fields::rq(&key_text(key)?);
        self.hget(py, field)
    }

    /// Legacy `get_rq_job_ids`: every `rq:` field without its prefix.
    fn get_rq_job_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let inner = self.inner.clone();
        let all = py.detach(move || inner.hgetall())?;
        let d = PyDict::new(py);
        for (k, v) in all {
            if let Some(name) = fields::rq_name(&k) {
                d.set_item(name, v)?;
            }
        }
        Ok(d)
    }

    /// Legacy `set_archive_job_id`.
    fn set_archive_job_id(&self, py: Python<'_>, job_id: &Bound<'_, PyAny>) -> PyResult<()> {
        self.mutate_set(py, fields::ARCHIVE_JOB_ID.into(), value_text(job_id)?)
    }

    /// Legacy `get_archive_job_id`.
    fn get_archive_job_id(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.hget(py, fields::ARCHIVE_JOB_ID.into())
    }

    /// Legacy `clear_archive_job_id`.
    fn clear_archive_job_id(&self, py: Python<'_>) -> PyResult<()> {
        self.mutate_del(py, vec![fields::ARCHIVE_JOB_ID.into()])
    }

    /// Delete the caches the rules name for `task` (no timestamp). Returns the
    /// keys that existed and were deleted.
    fn invalidate_caches_for_task(
        &self,
        py: Python<'_>,
        task: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<String>> {
        let task = key_text(task)?;
        let rules = active_rules(py)?;
        let inner = self.inner.clone();
        Ok(py.detach(move || inner.invalidate_task(&rules, &task))?)
    }

    /// Delete one controller's caches for this run. Returns the keys deleted.
    fn refresh_controller_cache(
        &self,
        py: Python<'_>,
        controller: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<String>> {
        let name = key_text(controller)?;
        let rules = active_rules(py)?;
        let inner = self.inner.clone();
        Ok(py.detach(move || inner.refresh_controller(&rules, &name))?)
    }

    /// Delete every controller's caches for this run (patterns via SCAN, never KEYS).
    fn clear_all_caches(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let rules = active_rules(py)?;
        let inner = self.inner.clone();
        Ok(py.detach(move || inner.clear_all(&rules))?)
    }

    /// Dry run: which keys `timestamp(task)` would delete for this run, and why.
    fn explain<'py>(
        &self,
        py: Python<'py>,
        task: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let task = key_text(task)?;
        let rules = active_rules(py)?;
        let inner = self.inner.clone();
        let r = rules.clone();
        let plans = py.detach(move || inner.plan(&r, &task))?;
        plans_to_py(py, &plans, rules.db)
    }

    /// wepppy's dependency checklist from one HGETALL:
    /// `{"checklist": {...}, "lock_statuses": {...}, "last_modified": int | None}`
    /// (plus `"explain": {check: [reasons]}` for false checks when asked).
    #[pyo3(signature = (explain=false))]
    fn preflight<'py>(&self, py: Python<'py>, explain: bool) -> PyResult<Bound<'py, PyDict>> {
        let rules = active_rules(py)?;
        let inner = self.inner.clone();
        let r = rules.clone();
        let p = py.detach(move || inner.preflight(&r, explain))?;
        let d = preflight_to_py(py, &p)?;
        if explain {
            d.set_item("explain", reasons_to_py(py, &p)?)?;
        }
        Ok(d)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let cls = slf.get_type().name()?;
        Ok(format!("{cls}(wd={:?})", slf.borrow().inner.wd))
    }
}
