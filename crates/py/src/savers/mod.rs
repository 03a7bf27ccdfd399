//! Checkpoint savers on the Python side: conversions between the Rust checkpoint model and
//! LangGraph's Python shapes (`convert`), the native memory saver's Python class (`memory`), the
//! SQL savers' reader of a page of rows (`page`), their put planner (`plan`) and the Postgres
//! savers' array literals (`pg_arrays`).

pub(crate) mod convert;
pub(crate) mod encoded;
pub(crate) mod memory;
pub(crate) mod page;
pub(crate) mod pg_arrays;
pub(crate) mod plan;

use pyo3::prelude::*;


/// Registers the saver classes on the `_core` module, and the saver protocol's vocabulary
/// (special channels, the expect-latest mark, metadata from config, channel versions), whose
/// one home is `ferrograph_checkpoint`: Python takes it from here (checkpointers/base.py).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let special = pyo3::types::PyDict::new(py);
    for (channel, index) in ferrograph_checkpoint::SPECIAL_WRITES {
        special.set_item(channel, index)?;
    }
    m.add("WRITES_IDX_MAP", special)?;
    m.add("EXPECT_LATEST", ferrograph_checkpoint::EXPECT_LATEST)?;
    m.add("NO_WRITES", ferrograph_checkpoint::NO_WRITES)?;
    m.add_function(wrap_pyfunction!(convert::checkpoint_metadata, m)?)?;
    m.add_function(wrap_pyfunction!(convert::next_version, m)?)?;
    m.add_function(wrap_pyfunction!(plan::plan_put, m)?)?;
    m.add_function(wrap_pyfunction!(plan::write_rows, m)?)?;
    m.add_class::<plan::Stored>()?;
    m.add_function(wrap_pyfunction!(pg_arrays::pg_array, m)?)?;
    m.add_function(wrap_pyfunction!(pg_arrays::pg_array_columns, m)?)?;
    m.add_class::<encoded::EncodedCheckpoint>()?;
    m.add_class::<memory::PyMemorySaver>()?;
    m.add_class::<memory::CheckpointTupleIter>()?;
    m.add_class::<memory::MemoryRunSink>()?;
    m.add_class::<page::RowPage>()?;
    m.add_class::<page::RowPageTuples>()?;
    Ok(())
}
