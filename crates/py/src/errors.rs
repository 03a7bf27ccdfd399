//! Where Rust errors become Python exceptions: each core, saver and codec error maps to one class of
//! `ferrograph.errors`, and an exception raised by user code (a reducer) is handed back as is.

use ferrograph_checkpoint::SaverError;
use ferrograph_core::{GraphError, HostError};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// An exception class of `ferrograph.errors`, by name.
pub fn error_class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    let module = ERRORS.get_or_try_init(py, || {
        PyResult::Ok(py.import("ferrograph.errors")?.unbind())
    })?;
    Ok(module.bind(py).getattr(name)?.cast_into::<PyType>()?)
}

pub fn new_error(py: Python<'_>, name: &str, message: String) -> PyErr {
    match error_class(py, name) {
        Ok(class) => PyErr::from_type(class, message),
        Err(e) => e,
    }
}

/// Carries a Python exception through the core inside a [`HostError`].
#[derive(Debug)]
pub struct PyHostError(pub PyErr);

impl std::fmt::Display for PyHostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for PyHostError {}

pub fn host_error(err: PyErr) -> HostError {
    HostError(Box::new(PyHostError(err)))
}

pub fn graph_error(py: Python<'_>, err: GraphError) -> PyErr {
    match err {
        GraphError::InvalidGraph(m) => new_error(py, "GraphValidationError", m),
        GraphError::InvalidUpdate(m) => new_error(py, "InvalidUpdateError", m),
        e @ GraphError::Recursion { .. } => new_error(py, "GraphRecursionError", e.to_string()),
        GraphError::State(m) => PyRuntimeError::new_err(m),
        GraphError::Host(HostError(inner)) => match inner.downcast::<PyHostError>() {
            Ok(py_err) => py_err.0,
            Err(other) => new_error(py, "FerrographError", other.to_string()),
        },
    }
}

/// `?`-friendly conversion for results of the core.
pub trait IntoPyResult<T> {
    fn py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, GraphError> {
    fn py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| graph_error(py, e))
    }
}

/// The Python exception for a saver error: one `ferrograph.errors` class per variant.
pub fn saver_error(py: Python<'_>, err: SaverError) -> PyErr {
    match err {
        SaverError::NotFound(m) => new_error(py, "CheckpointNotFoundError", m),
        SaverError::InvalidConfig(m) => new_error(py, "InvalidConfigError", m),
        SaverError::InvalidCheckpoint(m) => new_error(py, "InvalidCheckpointError", m),
        e @ SaverError::InvalidVersion(_) => new_error(py, "InvalidCheckpointError", e.to_string()),
        e @ SaverError::Corrupt { .. } => new_error(py, "CorruptCheckpointError", e.to_string()),
        SaverError::Storage(m) => new_error(py, "CheckpointStorageError", m),
        e @ SaverError::Conflict { .. } => new_error(py, "ConcurrentUpdateError", e.to_string()),
        SaverError::Deleted(m) => new_error(py, "ThreadDeletedError", m),
        SaverError::Backend(b) => new_error(py, "CheckpointStorageError", b.to_string()),
    }
}

/// `?`-friendly conversion of saver results.
pub trait SaverResultExt<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> SaverResultExt<T> for Result<T, SaverError> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| saver_error(py, e))
    }
}
