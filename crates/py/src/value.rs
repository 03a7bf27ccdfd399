//! The opaque value type Python objects travel through the core as.

use std::sync::Arc;

use pyo3::prelude::*;

/// A Python object shared without touching its reference count: cloning is an `Arc` clone,
/// so the core can copy values around while the GIL is released.
#[derive(Clone)]
pub struct PyValue(pub Arc<Py<PyAny>>);

impl PyValue {
    pub fn new(obj: Bound<'_, PyAny>) -> Self {
        PyValue(Arc::new(obj.unbind()))
    }

    pub fn bind<'py>(&self, py: Python<'py>) -> &Bound<'py, PyAny> {
        self.0.bind(py)
    }
}

impl std::fmt::Debug for PyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PyValue")
    }
}
