//! The Python binding: the `ferrograph._core` module. It wraps the pure-Rust crates and is the
//! only place that knows Python; the public API lives in the `ferrograph` package above it.

use pyo3::prelude::*;

pub mod codec;
mod errors;
mod graph;
mod value;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    graph::register(m)?;
    codec::register(m)?;
    Ok(())
}
