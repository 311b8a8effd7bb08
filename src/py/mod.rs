//! The thin PyO3 layer: wrappers around core types, nothing clever.

mod errors;
mod keys;
mod prep;
mod rules;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::conn::{self, Overrides};

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

/// Configure the connection (and runtime rules) for this process. Arguments
/// left out come from the environment (SPEC section 8). Idle connections are
/// closed; the next call uses the new settings.
#[pyfunction]
#[pyo3(signature = (url=None, *, prep_db=None, connect_timeout=None, timeout=None, retries=None, fsync=None, events=None, events_channel=None, tls_ca_file=None, min_replicas=None, replica_timeout=None))]
#[allow(clippy::too_many_arguments)]
fn configure(
    url: Option<String>,
    prep_db: Option<i64>,
    connect_timeout: Option<f64>,
    timeout: Option<f64>,
    retries: Option<u32>,
    fsync: Option<bool>,
    events: Option<bool>,
    events_channel: Option<String>,
    tls_ca_file: Option<String>,
    min_replicas: Option<i64>,
    replica_timeout: Option<f64>,
) -> PyResult<()> {
    if let Some(u) = url.as_deref().filter(|u| u.starts_with("redis+cluster://")) {
        // Redis Cluster has one keyspace (no DB to select) and the cluster
        // client here speaks plain TCP: refuse rather than silently ignore.
        if prep_db.is_some() || tls_ca_file.is_some() {
            return Err(crate::errors::CoreError::Config(
                "prep_db and tls_ca_file do not apply to the cluster layout \
                 (one keyspace; plain TCP)"
                    .into(),
            )
            .into());
        }
        let (nodes, password) = crate::cluster::parse_cluster_url(u).ok_or_else(|| {
            crate::errors::CoreError::Config("cannot parse the redis+cluster:// URL".into())
        })?;
        crate::cluster::configure(crate::cluster::ClusterOverrides {
            nodes,
            password,
            connect_timeout,
            timeout,
            retries,
            fsync,
            events,
            events_channel,
            min_replicas,
            replica_timeout,
        })?;
        return Ok(());
    }
    let reset_to_env = url.is_none();
    conn::configure(Overrides {
        url,
        prep_db,
        connect_timeout,
        timeout,
        retries,
        fsync,
        events,
        events_channel,
        tls_ca_file,
        min_replicas,
        replica_timeout,
    })?;
    // only once the new settings are valid: a refused configure() keeps the layout in force
    crate::cluster::disable(reset_to_env);
    Ok(())
}

/// The settings in force, with the password redacted.
#[pyfunction]
fn connection_info(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    if crate::cluster::enabled() {
        let s = crate::cluster::settings()?;
        d.set_item("layout", "cluster")?;
        d.set_item("nodes", s.nodes.clone())?;
        d.set_item("prep_db", 0)?;
        d.set_item("fsync", s.fsync)?;
        d.set_item("events", s.events)?;
        d.set_item("events_channel", &s.events_channel)?;
        d.set_item("connect_timeout", s.connect_timeout.as_secs_f64())?;
        d.set_item("timeout", s.timeout.as_secs_f64())?;
        d.set_item("min_replicas", s.replication.min_replicas)?;
        d.set_item("replica_timeout", s.replication.timeout.as_secs_f64())?;
        return Ok(d);
    }
    let s = conn::settings()?;
    d.set_item("layout", "standalone")?;
    d.set_item("url", &s.redacted_url)?;
    d.set_item("address", &s.addr)?;
    d.set_item("prep_db", s.prep_db)?;
    d.set_item("connect_timeout", s.connect_timeout.as_secs_f64())?;
    d.set_item("timeout", s.timeout.as_secs_f64())?;
    d.set_item("retries", s.retries)?;
    d.set_item("fsync", s.fsync)?;
    d.set_item("events", s.events)?;
    d.set_item("events_channel", &s.events_channel)?;
    d.set_item("min_replicas", s.replication.min_replicas)?;
    d.set_item("replica_timeout", s.replication.timeout.as_secs_f64())?;
    Ok(d)
}

/// Close idle connections and re-read the environment at the next call.
#[pyfunction]
fn reset_connections() {
    conn::reset();
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
    m.add_function(wrap_pyfunction!(connection_info, m)?)?;
    m.add_function(wrap_pyfunction!(reset_connections, m)?)?;
    m.add_function(wrap_pyfunction!(set_rules_path, m)?)?;
    m.add_function(wrap_pyfunction!(active_rules, m)?)?;
    m.add_function(wrap_pyfunction!(stats, m)?)?;
    m.add_function(wrap_pyfunction!(dumps_pairs, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
