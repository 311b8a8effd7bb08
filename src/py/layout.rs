//! The key layout's functions (`crate::layout`), for Python: the keys
//! `migrate-layout` and the audit need, named by the core.

use pyo3::prelude::*;

use crate::backend;
use crate::layout::Layout;

/// `layout` by name, or the layout in force when `None`.
fn layout_of(layout: Option<&str>) -> PyResult<Layout> {
    Ok(match layout {
        Some(name) => name.parse()?,
        None => backend::current()?.layout(),
    })
}

/// The Redis key of a run's prep hash on `layout` ("standalone" or
/// "cluster"; default: the layout in force).
#[pyfunction]
#[pyo3(signature = (run_id, *, layout=None))]
pub fn hash_key(run_id: &str, layout: Option<&str>) -> PyResult<String> {
    Ok(layout_of(layout)?.hash_key(run_id))
}

/// The Redis key of a run's cache whose rendered template is `rendered`.
#[pyfunction]
#[pyo3(signature = (run_id, rendered, *, layout=None))]
pub fn cache_key(run_id: &str, rendered: &str, layout: Option<&str>) -> PyResult<String> {
    Ok(layout_of(layout)?.cache_key(run_id, rendered))
}

/// The run id whose prep hash is `key`, or None when `key` is not one.
#[pyfunction]
#[pyo3(signature = (key, *, layout=None))]
pub fn run_id_of_hash_key(key: &str, layout: Option<&str>) -> PyResult<Option<String>> {
    Ok(layout_of(layout)?.run_id_of_hash_key(key))
}

/// The SCAN `MATCH` pattern of every prep hash key on `layout`.
#[pyfunction]
#[pyo3(signature = (*, layout=None))]
pub fn hash_key_pattern(layout: Option<&str>) -> PyResult<&'static str> {
    Ok(layout_of(layout)?.hash_key_pattern())
}
