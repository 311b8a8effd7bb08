//! Normalising task/key arguments: `str`, or any `Enum` (ours or wepppy's)
//! through `str()`. Anything else is refused before anything is written.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyType};

use crate::errors::CoreError;

static ENUM_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `str(key)` for a `str` or `Enum`; an `InvalidKeyError` otherwise.
pub fn key_text(key: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = key.cast::<PyString>() {
        return Ok(s.to_cow()?.into_owned());
    }
    let py = key.py();
    let enum_type = ENUM_TYPE.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        Ok(py
            .import("enum")?
            .getattr("Enum")?
            .cast_into::<PyType>()?
            .unbind())
    })?;
    if key.is_instance(enum_type.bind(py))? {
        let text = key.str().map_err(|e| {
            PyErr::from(CoreError::InvalidKey(format!(
                "str() of the task key failed: {e}"
            )))
        })?;
        return Ok(text.to_cow()?.into_owned());
    }
    let type_name = key
        .get_type()
        .name()
        .map_or_else(|_| "?".to_string(), |n| n.to_string());
    Err(CoreError::InvalidKey(format!(
        "a task key must be a str or an Enum (e.g. TaskEnum.build_climate), got {type_name}"
    ))
    .into())
}
