//! `PySaverAdapter`: any Python object speaking the saver protocol, served to the engine as a
//! Rust `CheckpointSaver`. Each call attaches to the interpreter, converts with `convert`, and
//! calls the object's sync method. An exception the Python saver raises travels back inside
//! `SaverError::Backend` and `saver_error` re-raises that very exception object.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrograph_checkpoint::{
    Checkpoint, CheckpointConfig, CheckpointMetadata, CheckpointSaver, CheckpointTuple, ListConfig,
    PruneStrategy, RawJson, Result, SaverError,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};
use serde_json::{Map, Value};

use super::convert::{
    backend_error, checkpoint_to_py, config_from_py, config_to_py, list_config_to_py,
    metadata_to_py, tuple_from_py, version_from_py, version_to_py, versions_to_py,
};
use super::memory::PyMemorySaver;
use crate::codec::{self, default_registry, Registry};

/// A Python saver behind the `CheckpointSaver` trait.
pub struct PySaverAdapter {
    obj: Py<PyAny>,
    registry: Arc<Registry>,
}

impl PySaverAdapter {
    /// `registry` decodes the engine's values for the Python saver and encodes what it returns.
    pub fn new(obj: Py<PyAny>, registry: Arc<Registry>) -> Self {
        PySaverAdapter { obj, registry }
    }

    /// The wrapped Python saver.
    pub fn object(&self) -> &Py<PyAny> {
        &self.obj
    }

    fn call<T>(
        &self,
        f: impl FnOnce(Python<'_>, &Bound<'_, PyAny>, &Registry) -> PyResult<T>,
    ) -> Result<T> {
        Python::attach(|py| f(py, self.obj.bind(py), &self.registry)).map_err(backend_error)
    }
}

fn object_to_py<'py>(
    py: Python<'py>,
    map: &Map<String, Value>,
    registry: &Registry,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in map {
        let v = codec::from_value(py, v, registry).map_err(|e| codec::to_py_err(py, &e))?;
        d.set_item(k, v)?;
    }
    Ok(d)
}

impl CheckpointSaver for PySaverAdapter {
    fn get_tuple(&self, config: &CheckpointConfig) -> Result<Option<CheckpointTuple>> {
        self.call(|py, saver, reg| {
            let found =
                saver.call_method1(intern!(py, "get_tuple"), (config_to_py(py, config)?,))?;
            if found.is_none() {
                return Ok(None);
            }
            tuple_from_py(&found, reg).map(Some)
        })
    }

    fn list(
        &self,
        config: Option<&ListConfig>,
        filter: Option<&Map<String, Value>>,
        before: Option<&CheckpointConfig>,
        limit: Option<usize>,
    ) -> Result<Vec<CheckpointTuple>> {
        self.call(|py, saver, reg| {
            let config = match config {
                Some(c) => list_config_to_py(py, c)?.into_any(),
                None => py.None().into_bound(py),
            };
            let kwargs = PyDict::new(py);
            if let Some(f) = filter {
                kwargs.set_item(intern!(py, "filter"), object_to_py(py, f, reg)?)?;
            }
            if let Some(b) = before {
                kwargs.set_item(intern!(py, "before"), config_to_py(py, b)?)?;
            }
            if let Some(l) = limit {
                kwargs.set_item(intern!(py, "limit"), l)?;
            }
            let found = saver.call_method(intern!(py, "list"), (config,), Some(&kwargs))?;
            let mut out = Vec::new();
            for t in found.try_iter()? {
                out.push(tuple_from_py(&t?, reg)?);
                if limit.is_some_and(|l| out.len() >= l) {
                    break;
                }
            }
            Ok(out)
        })
    }

    fn put(
        &self,
        config: &CheckpointConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: &BTreeMap<String, String>,
    ) -> Result<CheckpointConfig> {
        self.call(|py, saver, reg| {
            let args = (
                config_to_py(py, config)?,
                checkpoint_to_py(py, &checkpoint, reg, None)?,
                metadata_to_py(py, &metadata, reg)?,
                versions_to_py(py, new_versions)?,
            );
            let stored = saver.call_method1(intern!(py, "put"), args)?;
            config_from_py(&stored)
        })
    }

    fn put_writes(
        &self,
        config: &CheckpointConfig,
        writes: Vec<(String, RawJson)>,
        task_id: &str,
        task_path: &str,
    ) -> Result<()> {
        self.call(|py, saver, reg| {
            let list = PyList::empty(py);
            for (channel, value) in &writes {
                let value = codec::from_json(py, value.as_bytes(), reg)
                    .map_err(|e| codec::to_py_err(py, &e))?;
                list.append(PyTuple::new(
                    py,
                    [channel.into_pyobject(py)?.into_any(), value],
                )?)?;
            }
            saver.call_method1(
                intern!(py, "put_writes"),
                (config_to_py(py, config)?, list, task_id, task_path),
            )?;
            Ok(())
        })
    }

    fn delete_thread(&self, thread_id: &str) -> Result<()> {
        self.call(|py, saver, _| {
            saver
                .call_method1(intern!(py, "delete_thread"), (thread_id,))
                .map(drop)
        })
    }

    fn copy_thread(&self, source_thread_id: &str, target_thread_id: &str) -> Result<()> {
        self.call(|py, saver, _| {
            saver
                .call_method1(
                    intern!(py, "copy_thread"),
                    (source_thread_id, target_thread_id),
                )
                .map(drop)
        })
    }

    fn prune(&self, thread_ids: &[String], strategy: PruneStrategy) -> Result<()> {
        let strategy = match strategy {
            PruneStrategy::KeepLatest => "keep_latest",
            PruneStrategy::Delete => "delete",
        };
        self.call(|py, saver, _| {
            let kwargs = PyDict::new(py);
            kwargs.set_item(intern!(py, "strategy"), strategy)?;
            saver
                .call_method(
                    intern!(py, "prune"),
                    (PyList::new(py, thread_ids)?,),
                    Some(&kwargs),
                )
                .map(drop)
        })
    }

    fn delete_for_runs(&self, run_ids: &[String]) -> Result<()> {
        self.call(|py, saver, _| {
            saver
                .call_method1(intern!(py, "delete_for_runs"), (PyList::new(py, run_ids)?,))
                .map(drop)
        })
    }

    fn next_version(&self, current: Option<&str>) -> Result<String> {
        self.call(|py, saver, _| {
            let current = match current {
                Some(c) => version_to_py(py, c)?,
                None => py.None().into_bound(py),
            };
            let next = saver.call_method1(intern!(py, "get_next_version"), (current, py.None()))?;
            version_from_py(&next, &|| "get_next_version()".to_owned())
        })
    }
}

static NATIVE_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// True when `obj` is our memory saver and none of its protocol methods is overridden in
/// Python, so the engine may call the native saver directly.
fn is_plain_native(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    if obj.cast::<PyMemorySaver>().is_err() {
        return Ok(false);
    }
    let py = obj.py();
    let native = NATIVE_TYPE
        .get_or_init(py, || py.get_type::<PyMemorySaver>().unbind())
        .bind(py);
    let ty = obj.get_type();
    for name in [
        "get_tuple",
        "list",
        "put",
        "put_writes",
        "delete_thread",
        "copy_thread",
        "prune",
        "delete_for_runs",
        "get_next_version",
    ] {
        if !ty.getattr(name)?.is(&native.getattr(name)?) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The saver behind a Python checkpointer object: the native `Arc` for a `MemorySaver` (no
/// Python on the hot path), an adapter calling its methods for any other object.
pub fn saver_for(obj: &Bound<'_, PyAny>) -> PyResult<Arc<dyn CheckpointSaver>> {
    if is_plain_native(obj)? {
        let native = obj.cast::<PyMemorySaver>()?;
        return Ok(native.get().saver().clone());
    }
    Ok(Arc::new(PySaverAdapter::new(
        obj.clone().unbind(),
        default_registry().clone(),
    )))
}

/// The codec registry values for `obj` must be encoded with: a `MemorySaver`'s own (it may have
/// been given a `Serializer`), the process-wide default otherwise.
pub fn registry_for(obj: &Bound<'_, PyAny>) -> Arc<Registry> {
    match obj.cast::<PyMemorySaver>() {
        Ok(native) => native.get().registry().clone(),
        Err(_) => default_registry().clone(),
    }
}

/// Takes the Python exception out of a saver error, if a Python saver raised one.
pub fn take_py_error(py: Python<'_>, err: &SaverError) -> Option<PyErr> {
    match err {
        SaverError::Backend(b) => b
            .downcast_ref::<super::convert::PyBackendError>()
            .map(|e| e.0.clone_ref(py)),
        _ => None,
    }
}
