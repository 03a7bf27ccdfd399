//! `EncodedCheckpoint`: a step's checkpoint as a run hands it to a first-party saver, in one
//! crossing: the Rust checkpoint with only the new versions' values, already encoded by the
//! codec. The native memory saver stores it as it is; the SQL savers take each value's bytes
//! and the checkpoint's JSON from it. A third-party saver never sees one (the run gives it
//! LangGraph's dict instead).

use ferrograph_checkpoint::Checkpoint;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[pyclass(frozen, module = "ferrograph._core")]
pub struct EncodedCheckpoint {
    pub checkpoint: Checkpoint,
}

#[pymethods]
impl EncodedCheckpoint {
    #[getter]
    fn id(&self) -> &str {
        &self.checkpoint.id
    }

    /// The encoded value of `channel` at its new version; None when the channel has no
    /// value there (or no new version).
    fn value<'py>(&self, py: Python<'py>, channel: &str) -> Option<Bound<'py, PyBytes>> {
        self.checkpoint
            .channel_values
            .get(channel)
            .map(|v| PyBytes::new(py, v.as_bytes()))
    }

    /// The total length of the encoded values it holds (what a background writer holding it
    /// keeps alive), without a bytes object made per value.
    #[getter]
    fn values_size(&self) -> usize {
        self.checkpoint.channel_values.values().map(|v| v.as_bytes().len()).sum()
    }

    /// The checkpoint's JSON without its values (they are stored apart).
    fn json_without_values(&self) -> String {
        self.checkpoint.json_without_values()
    }

    fn __repr__(&self) -> String {
        format!(
            "EncodedCheckpoint(id={:?}, new values for {:?})",
            self.checkpoint.id,
            self.checkpoint.channel_values.keys().collect::<Vec<_>>()
        )
    }
}
