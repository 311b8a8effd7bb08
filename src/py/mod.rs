//! The thin PyO3 layer: wrappers around core types, nothing clever.

mod convert;
mod errors;
mod keys;
mod layout;
mod prep;
mod rules;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::backend;
use crate::settings::{Kind, OptionValue, Options, OPTIONS};

static LOG_RESET: std::sync::OnceLock<pyo3_log::ResetHandle> = std::sync::OnceLock::new();
static LOG_LOGGER: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
static LOG_SEEN: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(i64::MIN);

/// pyo3-log caches each Rust target's Python level at first use, so a later
/// `logging.getLogger("redisprep").setLevel(...)` (or `logging.disable`) would be
/// ignored. Called with the GIL held before work that may log: when the
/// `redisprep` logger's effective level or the global disable level changed,
/// the bridge's cache is reset (two attribute reads per call).
pub(crate) fn sync_log_levels(py: Python<'_>) {
    let Some(handle) = LOG_RESET.get() else {
        return;
    };
    let seen = (|| -> PyResult<i64> {
        let logger = LOG_LOGGER.get_or_try_init(py, || {
            py.import("logging")?
                .call_method1("getLogger", ("redisprep",))
                .map(Bound::unbind)
        })?;
        let logger = logger.bind(py);
        let level: i64 = logger.call_method0("getEffectiveLevel")?.extract()?;
        let disabled: i64 = logger.getattr("manager")?.getattr("disable")?.extract()?;
        Ok(level.saturating_mul(1 << 20).saturating_add(disabled))
    })();
    if let Ok(seen) = seen {
        if LOG_SEEN.swap(seen, std::sync::atomic::Ordering::Relaxed) != seen {
            handle.reset();
        }
    }
}

fn options(url: Option<String>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Options> {
    let mut o = Options {
        url,
        ..Options::default()
    };
    let Some(kwargs) = kwargs else {
        return Ok(o);
    };
    for (name, value) in kwargs.iter() {
        let name: String = name.extract()?;
        let kind = OPTIONS
            .iter()
            .find(|(n, _)| *n == name && *n != "url")
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                pyo3::exceptions::PyTypeError::new_err(format!(
                    "configure() got an unexpected keyword argument '{name}'"
                ))
            })?;
        let value = if value.is_none() {
            None
        } else {
            Some(match kind {
                Kind::Str => OptionValue::Str(value.extract()?),
                Kind::Int => OptionValue::Int(value.extract()?),
                Kind::Float => OptionValue::Float(value.extract()?),
                Kind::Bool => OptionValue::Bool(value.extract()?),
            })
        };
        o.set(&name, value)?;
    }
    Ok(o)
}

/// Configure the connection for this process. Arguments left out come from
/// the environment, in wepppy's order (`REDIS_URL`, `RQ_REDIS_URL`, `SESSION_REDIS_URL`,
/// then `REDIS_HOST`/`REDIS_PORT`; the password from the URL, `REDIS_PASSWORD` or the file
/// `REDIS_PASSWORD_FILE` names: docs/DEPLOY.md); the options are `configure_options()`.
/// A refused configuration changes nothing; otherwise idle connections are
/// closed and the next call uses the new settings.
#[pyfunction]
#[pyo3(signature = (url=None, **kwargs))]
fn configure(url: Option<String>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
    backend::configure(options(url, kwargs)?)?;
    Ok(())
}

/// The `configure()` options as `(name, python type)` pairs, in order.
#[pyfunction]
fn configure_options() -> Vec<(&'static str, &'static str)> {
    OPTIONS.iter().map(|(n, k)| (*n, k.python())).collect()
}

/// The settings in force, with the password redacted.
#[pyfunction]
fn connection_info(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    convert::dict(py, &backend::current()?.info())
}

/// The parameters a redis-py client is built from (with credentials): of the
/// backend in force, or, given `url`/options, of what `configure(url, ...)`
/// would resolve to (nothing is switched).
#[pyfunction]
#[pyo3(signature = (url=None, **kwargs))]
fn connection_params<'py>(
    py: Python<'py>,
    url: Option<String>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let params = if url.is_none() && kwargs.is_none_or(|k| k.is_empty()) {
        backend::current()?.params()
    } else {
        let o = options(url, kwargs)?;
        py.detach(move || backend::params_for(&o))?
    };
    convert::dict(py, &params)
}

/// Facts about the server in force for `doctor` (PING times, INFO, CONFIG,
/// the prep and `cache_db` DBs, MULTI/EXEC, EVALSHA; CLUSTER INFO); reads only.
#[pyfunction]
#[pyo3(signature = (cache_db=None))]
fn server_probe(py: Python<'_>, cache_db: Option<i64>) -> PyResult<Bound<'_, PyDict>> {
    let backend = backend::current()?;
    let probe = py.detach(move || backend.probe(cache_db))?;
    convert::dict(py, &probe)
}

/// Close idle connections and re-read the environment at the next call.
#[pyfunction]
fn reset_connections() {
    backend::reset();
}

/// Use this rules file at runtime (`None`: `$REDISPREP_RULES`, else the packaged default).
#[pyfunction]
#[pyo3(signature = (path=None))]
fn set_rules_path(path: Option<std::path::PathBuf>) {
    crate::rules::set_active_path(path.map(|p| p.to_string_lossy().into_owned()));
}

/// The runtime rules (the ones `timestamp()` uses), or None if none are valid.
#[pyfunction]
fn active_rules() -> Option<rules::PyRules> {
    crate::rules::active().map(|inner| rules::PyRules { inner })
}

/// Process-wide counters: timestamps, invalidations, keys_deleted, failures, ...
#[pyfunction]
fn stats(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in crate::stats::snapshot() {
        d.set_item(k, v)?;
    }
    Ok(d)
}

/// Serialise pairs exactly as CPython's `json.dumps(dict(pairs))`.
#[pyfunction]
fn dumps_pairs(pairs: Vec<(String, String)>) -> String {
    crate::pyjson::dumps_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

// Free-threading stance: `gil_used = true`. No free-threaded CPython (3.13t) is
// tested, so one that builds this module from source re-enables the GIL on
// import (the abi3 wheel itself does not load there).
#[pymodule(gil_used = true)]
fn _redisprep(m: &Bound<'_, PyModule>) -> PyResult<()> {
    if let Ok(handle) = pyo3_log::try_init() {
        let _ = LOG_RESET.set(handle);
    }
    m.add_class::<prep::PyPrep>()?;
    m.add_class::<rules::PyRules>()?;
    m.add_function(wrap_pyfunction!(configure, m)?)?;
    m.add_function(wrap_pyfunction!(configure_options, m)?)?;
    m.add_function(wrap_pyfunction!(connection_info, m)?)?;
    m.add_function(wrap_pyfunction!(connection_params, m)?)?;
    m.add_function(wrap_pyfunction!(reset_connections, m)?)?;
    m.add_function(wrap_pyfunction!(server_probe, m)?)?;
    m.add_function(wrap_pyfunction!(set_rules_path, m)?)?;
    m.add_function(wrap_pyfunction!(active_rules, m)?)?;
    m.add_function(wrap_pyfunction!(stats, m)?)?;
    m.add_function(wrap_pyfunction!(dumps_pairs, m)?)?;
    m.add_function(wrap_pyfunction!(layout::hash_key, m)?)?;
    m.add_function(wrap_pyfunction!(layout::cache_key, m)?)?;
    m.add_function(wrap_pyfunction!(layout::run_id_of_hash_key, m)?)?;
    m.add_function(wrap_pyfunction!(layout::hash_key_pattern, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
