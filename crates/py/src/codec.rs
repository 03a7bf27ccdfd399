//! The checkpoint codec: Python values to typed JSON text and back, walking objects directly
//! in Rust with no intermediate tree (`encode` writes, `decode` reads, `json` holds the text
//! primitives). JSON-native values stay plain JSON; everything else is an object
//! `{"__fg__": tag, "v": body}` (classes add `"cls": "module:qualname"`). Classes are written
//! and rebuilt only when allowlisted in a [`Registry`]; reading never imports a module named
//! by the data and never calls anything but allowlisted constructors and fixed stdlib ones.

mod cache;
mod decode;
mod encode;
mod error;
pub(crate) mod json;
mod registry;
mod stdtypes;
mod text;

use std::cell::Cell;
use std::sync::{Arc, LazyLock, OnceLock};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{IntoPyDict, PyByteArray, PyBytes, PyString, PyTuple, PyType};
use serde_json::Value;

pub use cache::{DecodeCache, TextCache};
pub use error::{CodecError, PathSeg, ValuePath};
pub use registry::{Registry, DEFAULT_MAX_DEPTH};

/// The key that marks a tagged JSON object (always its first key). A plain dict holding this
/// key is written in the `dict` (list of pairs) form, so it still round-trips.
pub const TAG: &str = "__fg__";

/// The process-wide registry behind `ferrograph.serde.allow`; every `Serializer` stands on it.
pub fn default_registry() -> &'static Arc<Registry> {
    static DEFAULT: OnceLock<Arc<Registry>> = OnceLock::new();
    DEFAULT.get_or_init(|| Arc::new(Registry::new(DEFAULT_MAX_DEPTH)))
}

/// `ContextVar.get` of the context variable holding the serializer that saver calls made in
/// this context use (`ferrograph.serde.using`; a graph run sets it around its saver calls).
static ACTIVE_VAR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn active_var(py: Python<'_>) -> PyResult<&Py<PyAny>> {
    ACTIVE_VAR.get_or_try_init(py, || {
        let var = py.import("contextvars")?.getattr("ContextVar")?.call(
            ("ferrograph_serializer",),
            Some(&[("default", py.None())].into_py_dict(py)?),
        )?;
        Ok(var.unbind())
    })
}

/// The registry saver calls in this context use: the active serializer's, or `fallback`
/// (the saver's own) when none is active.
pub fn active_registry(py: Python<'_>, fallback: &Arc<Registry>) -> PyResult<Arc<Registry>> {
    let active = active_var(py)?.bind(py).call_method0("get")?;
    Ok(match active.cast::<PySerializer>() {
        Ok(s) => s.get().registry.clone(),
        Err(_) => fallback.clone(),
    })
}

thread_local! {
    /// The encoder's output buffer, kept between calls so steady-state encoding does not grow
    /// a fresh one. Taken while in use, so a re-entrant encode simply starts its own.
    static BUFFER: Cell<String> = const { Cell::new(String::new()) };
}

/// Encodes a Python value as typed JSON and hands the text to `f` (it is only borrowed: the
/// buffer is reused). `context` names the root in error paths (`state['items'][3]`); it
/// defaults to `value`.
pub fn encode_with<R>(
    obj: &Bound<'_, PyAny>,
    registry: &Registry,
    context: Option<&str>,
    f: impl FnOnce(&str) -> R,
) -> Result<R, CodecError> {
    let mut out = BUFFER.with(Cell::take);
    out.clear();
    let mut enc = encode::Enc { py: obj.py(), reg: registry, max: registry.max_depth(), out, keys: Default::default() };
    let result = enc.value(obj, 0).map(|()| f(&enc.out)).map_err(|e| e.with_root(context));
    let mut out = enc.out;
    if out.capacity() <= 1 << 20 {
        out.clear();
        BUFFER.with(|b| b.set(out));
    }
    result
}

/// Rebuilds a Python value from typed JSON bytes. Errors are read errors
/// (`CorruptCheckpointError`), with the path from the root.
pub fn from_json<'py>(py: Python<'py>, data: &[u8], registry: &Registry) -> Result<Bound<'py, PyAny>, CodecError> {
    decode::Dec::new(py, registry, data).document()
}

/// Encodes a Python value as a `serde_json::Value` (for metadata, which savers inspect).
pub fn to_value(obj: &Bound<'_, PyAny>, registry: &Registry, context: Option<&str>) -> Result<Value, CodecError> {
    encode_with(obj, registry, context, |text| {
        let mut de = serde_json::Deserializer::from_str(text);
        // The writer already bounded the nesting.
        de.disable_recursion_limit();
        <Value as serde::Deserialize>::deserialize(&mut de)
    })?
    .map_err(|e| CodecError::Python { path: ValuePath::default(), message: e.to_string() })
}

/// Rebuilds a Python value from a `serde_json::Value` holding typed JSON.
pub fn from_value<'py>(py: Python<'py>, value: &Value, registry: &Registry) -> Result<Bound<'py, PyAny>, CodecError> {
    let text = serde_json::to_vec(value).map_err(|e| CodecError::InvalidJson { message: e.to_string() })?;
    from_json(py, &text, registry)
}

/// Maps a codec error to `ferrograph.errors.SerializationError` (write) or
/// `CorruptCheckpointError` (read).
pub fn to_py_err(py: Python<'_>, e: &CodecError) -> PyErr {
    let class = if e.is_write() { "SerializationError" } else { "CorruptCheckpointError" };
    crate::errors::new_error(py, class, e.to_string())
}

fn key_seg(s: &str) -> PathSeg {
    PathSeg::Key(format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")))
}

fn repr_seg(k: &Bound<'_, PyAny>) -> PathSeg {
    match k.repr() {
        Ok(r) => PathSeg::Key(r.to_string()),
        Err(_) => PathSeg::Key("<key>".to_owned()),
    }
}

fn type_name(ty: &Bound<'_, PyType>) -> String {
    registry::class_name(ty).unwrap_or_else(|_| "<unknown>".to_owned())
}

static UUID_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DECIMAL_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TIMEZONE_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static ZONEINFO_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn bytes_of<'a>(data: &'a Bound<'_, PyAny>) -> PyResult<std::borrow::Cow<'a, [u8]>> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(std::borrow::Cow::Borrowed(b.as_bytes()));
    }
    if let Ok(s) = data.cast::<PyString>() {
        return Ok(std::borrow::Cow::Borrowed(s.to_str()?.as_bytes()));
    }
    if let Ok(b) = data.cast::<PyByteArray>() {
        return Ok(std::borrow::Cow::Owned(b.to_vec()));
    }
    Err(PyTypeError::new_err(format!(
        "loads() expects bytes or str, not {}",
        data.get_type().name().map(|n| n.to_string()).unwrap_or_default()
    )))
}

/// A codec with its own allowlist and depth limit: `Serializer(allowed=[...], max_depth=1000)`
/// allows its classes on top of the process-wide allowlist (stdlib types, ferrograph's and
/// LangChain's classes, and whatever `ferrograph.serde.allow` added).
#[pyclass(frozen, module = "ferrograph._core", name = "Serializer")]
pub struct PySerializer {
    registry: Arc<Registry>,
}

impl PySerializer {
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn from_registry(registry: Arc<Registry>) -> Self {
        PySerializer { registry }
    }
}

#[pymethods]
impl PySerializer {
    #[new]
    #[pyo3(signature = (allowed = None, *, max_depth = DEFAULT_MAX_DEPTH))]
    fn new(allowed: Option<Vec<Bound<'_, PyType>>>, max_depth: usize) -> PyResult<Self> {
        if max_depth == 0 {
            return Err(PyValueError::new_err("max_depth must be at least 1"));
        }
        let registry = Registry::child(default_registry().clone(), max_depth);
        for cls in allowed.unwrap_or_default() {
            registry.allow_class(&cls)?;
        }
        Ok(PySerializer { registry: Arc::new(registry) })
    }

    #[getter]
    fn max_depth(&self) -> usize {
        self.registry.max_depth()
    }

    #[pyo3(signature = (obj, *, context = None))]
    fn dumps<'py>(&self, obj: &Bound<'py, PyAny>, context: Option<&str>) -> PyResult<Bound<'py, PyBytes>> {
        dumps_with(obj, &self.registry, context)
    }

    fn loads(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        loads_with(py, data, &self.registry)
    }

    /// Allows `classes` in this serializer; returns the class when given one, so it also works
    /// as a decorator.
    #[pyo3(signature = (*classes))]
    fn allow<'py>(&self, py: Python<'py>, classes: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
        allow_in(py, &self.registry, classes)
    }

    /// Every `module:qualname` this serializer may rebuild (its own and the process-wide ones).
    fn allowed_classes(&self) -> Vec<String> {
        self.registry.allowed_names()
    }

    /// The `module:qualname`s allowed by this serializer itself, not the process-wide ones.
    fn own_classes(&self) -> Vec<String> {
        self.registry.own_names()
    }

    /// This serializer's own classes on top of `base` (its classes and depth limit) instead
    /// of the process-wide allowlist: what a graph's saver calls use.
    fn over(&self, base: &Bound<'_, PySerializer>) -> Self {
        PySerializer { registry: Arc::new(self.registry.over(base.get().registry.clone())) }
    }

    fn __repr__(&self) -> String {
        format!("Serializer(allowed={:?}, max_depth={})", self.registry.own_names(), self.registry.max_depth())
    }
}

fn allow_in<'py>(py: Python<'py>, reg: &Registry, classes: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
    if classes.is_empty() {
        return Err(PyTypeError::new_err("allow() needs at least one class"));
    }
    for cls in classes.iter() {
        let cls = cls.cast_into::<PyType>().map_err(|e| {
            let got = e.into_inner();
            PyTypeError::new_err(format!(
                "allow() takes classes, got {}",
                got.repr().map(|r| r.to_string()).unwrap_or_else(|_| "<object>".to_owned())
            ))
        })?;
        reg.allow_class(&cls)?;
    }
    Ok(if classes.len() == 1 { classes.get_item(0)? } else { py.None().into_bound(py) })
}

fn dumps_with<'py>(obj: &Bound<'py, PyAny>, reg: &Registry, context: Option<&str>) -> PyResult<Bound<'py, PyBytes>> {
    let py = obj.py();
    encode_with(obj, reg, context, |text| PyBytes::new(py, text.as_bytes())).map_err(|e| to_py_err(py, &e))
}

fn loads_with(py: Python<'_>, data: &Bound<'_, PyAny>, reg: &Registry) -> PyResult<Py<PyAny>> {
    let bytes = bytes_of(data)?;
    from_json(py, &bytes, reg).map(Bound::unbind).map_err(|e| to_py_err(py, &e))
}

/// Serializes a value to typed JSON bytes with the active serializer (the process-wide one
/// outside `ferrograph.serde.using`). `context` names the root in error messages.
#[pyfunction]
#[pyo3(signature = (obj, *, context = None))]
pub fn dumps<'py>(obj: &Bound<'py, PyAny>, context: Option<&str>) -> PyResult<Bound<'py, PyBytes>> {
    dumps_with(obj, &*active_registry(obj.py(), default_registry())?, context)
}

/// Rebuilds a value from typed JSON (bytes or str) with the active serializer.
#[pyfunction]
pub fn loads(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    loads_with(py, data, &*active_registry(py, default_registry())?)
}

/// The values SQL savers read, by their bytes (see [`TextCache`]): at most this many bytes of
/// encoded text, with the decoded values they stand for.
static READ_VALUES: LazyLock<TextCache> = LazyLock::new(|| TextCache::new(16 << 20));

/// [`loads`] for the values and pending writes SQL savers read: a text read before is not parsed
/// again, its value decoded then is copied (containers new, immutable leaves shared).
#[pyfunction]
pub fn loads_cached(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let reg = active_registry(py, default_registry())?;
    load_read_value(py, &bytes_of(data)?, &reg).map(Bound::unbind)
}

/// [`loads_cached`] of encoded bytes with `reg`: what the SQL savers' page reader decodes
/// values and pending writes with.
pub fn load_read_value<'py>(py: Python<'py>, text: &[u8], reg: &Registry) -> PyResult<Bound<'py, PyAny>> {
    READ_VALUES.get_or_decode(py, text, reg.max_depth(), || from_json(py, text, reg).map_err(|e| to_py_err(py, &e)))
}

/// Allows classes process-wide; returns the class when given one (a decorator too).
#[pyfunction]
#[pyo3(signature = (*classes))]
pub fn allow<'py>(py: Python<'py>, classes: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
    allow_in(py, default_registry(), classes)
}

/// The `module:qualname` of every class the process-wide allowlist may rebuild.
#[pyfunction]
pub fn allowed_classes() -> Vec<String> {
    default_registry().allowed_names()
}

/// The process-wide serializer (`ferrograph.serde.allow` extends it).
#[pyfunction]
pub fn default_serializer() -> PySerializer {
    PySerializer { registry: default_registry().clone() }
}

/// Registers the codec's functions and class on the `_core` module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(dumps, m)?)?;
    m.add_function(wrap_pyfunction!(loads, m)?)?;
    m.add_function(wrap_pyfunction!(loads_cached, m)?)?;
    m.add_function(wrap_pyfunction!(allow, m)?)?;
    m.add_function(wrap_pyfunction!(allowed_classes, m)?)?;
    m.add_function(wrap_pyfunction!(default_serializer, m)?)?;
    m.add_class::<PySerializer>()?;
    m.add("active_serializer", active_var(m.py())?.clone_ref(m.py()))?;
    Ok(())
}
