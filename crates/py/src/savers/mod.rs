//! Checkpoint savers on the Python side: conversions between the Rust checkpoint model and
//! LangGraph's Python shapes (`convert`), the native memory saver's Python class (`memory`),
//! and the adapter that serves any Python saver to the engine as a `CheckpointSaver`
//! (`adapter`).

pub mod adapter;
pub mod convert;
pub mod memory;

use pyo3::prelude::*;

pub use adapter::{registry_for, saver_for, take_py_error, PySaverAdapter};
pub use convert::{
    backend_error, checkpoint_from_py, checkpoint_from_py_for_put, checkpoint_to_py,
    config_from_py, config_to_py, list_config_from_py, list_config_to_py, metadata_from_py,
    metadata_to_py, saver_error, tuple_from_py, tuple_to_py, PyBackendError, SaverResultExt,
};
pub use memory::PyMemorySaver;

/// Registers the saver classes on the `_core` module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<memory::PyMemorySaver>()?;
    m.add_class::<memory::CheckpointTupleIter>()?;
    Ok(())
}
