//! The `ferrograph._core` extension module.

pub mod codec;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    codec::register(m)?;
    Ok(())
}
