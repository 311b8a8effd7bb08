//! The one place where core errors become Python exceptions (the classes
//! live in `redisprep/errors.py` so they can inherit two bases).

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::errors::CoreError;

static ERRORS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn class(py: Python<'_>, name: &str) -> PyResult<Py<PyType>> {
    let module =
        ERRORS_MODULE.get_or_try_init(py, || py.import("redisprep.errors").map(Bound::unbind))?;
    module
        .bind(py)
        .getattr(name)?
        .cast_into::<PyType>()
        .map(Bound::unbind)
        .map_err(PyErr::from)
}

fn build(py: Python<'_>, err: CoreError) -> PyResult<PyErr> {
    let msg = err.to_string();
    Ok(match err {
        CoreError::Connection { .. } => {
            PyErr::from_type(class(py, "RedisConnectionError")?.into_bound(py), msg)
        }
        CoreError::Timeout { .. } => {
            PyErr::from_type(class(py, "RedisTimeoutError")?.into_bound(py), msg)
        }
        CoreError::Command(_) | CoreError::Data(_) => {
            PyErr::from_type(class(py, "RedisCommandError")?.into_bound(py), msg)
        }
        CoreError::DumpIo { op, path, source } => {
            let errno = source.raw_os_error().unwrap_or(0);
            let text = format!("{op}: {source}");
            PyErr::from_type(
                class(py, "DumpError")?.into_bound(py),
                (errno, text, path.to_string_lossy().into_owned()),
            )
        }
        CoreError::DumpFormat { .. } => {
            PyErr::from_type(class(py, "DumpFormatError")?.into_bound(py), msg)
        }
        CoreError::Rules { issues, .. } => {
            let list: Vec<(String, String)> =
                issues.into_iter().map(|i| (i.path, i.message)).collect();
            PyErr::from_type(class(py, "RulesError")?.into_bound(py), (msg, list))
        }
        CoreError::InvalidKey(_) => {
            PyErr::from_type(class(py, "InvalidKeyError")?.into_bound(py), msg)
        }
        CoreError::UnknownController { .. } => {
            PyErr::from_type(class(py, "UnknownControllerError")?.into_bound(py), msg)
        }
        CoreError::Config(_) => PyErr::from_type(class(py, "ConfigError")?.into_bound(py), msg),
        CoreError::Replication { acked, wanted, .. } => PyErr::from_type(
            class(py, "ReplicationError")?.into_bound(py),
            (msg, acked, wanted),
        ),
    })
}

impl From<CoreError> for PyErr {
    fn from(err: CoreError) -> PyErr {
        Python::attach(|py| {
            let fallback = err.to_string();
            build(py, err).unwrap_or_else(|e| PyRuntimeError::new_err(format!("{fallback} ({e})")))
        })
    }
}
