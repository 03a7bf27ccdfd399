//! The Python binding: the `ferrograph._core` module. It wraps the pure-Rust crates and is the
//! only place that knows Python; the public API lives in the `ferrograph` package above it.

use pyo3::prelude::*;

mod codec;
mod crypt;
mod errors;
mod graph;
mod later;
mod run;
mod savers;
mod value;

/// A fresh, strictly increasing checkpoint id and the current time (ISO-8601, UTC).
#[pyfunction]
fn new_checkpoint_id() -> (String, String) {
    (ferrograph_checkpoint::checkpoint_id(), ferrograph_checkpoint::now_iso8601())
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    graph::register(m)?;
    later::register(m)?;
    run::register(m)?;
    codec::register(m)?;
    crypt::register(m)?;
    savers::register(m)?;
    m.add_function(wrap_pyfunction!(new_checkpoint_id, m)?)?;
    Ok(())
}
