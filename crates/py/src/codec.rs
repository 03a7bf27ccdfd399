//! The checkpoint codec: Python values to typed JSON (`serde_json::Value`) and back, walking
//! objects directly in Rust. JSON-native values stay plain JSON; everything else is an object
//! `{"__fg__": tag, "v": body}` (classes add `"cls": "module:qualname"`). Classes are written
//! and rebuilt only when allowlisted in a [`Registry`]; reading never imports a module named
//! by the data and never calls anything but allowlisted constructors and fixed stdlib ones.

mod error;
mod registry;
mod text;

use std::sync::{Arc, OnceLock};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDate, PyDateAccess, PyDateTime, PyDelta, PyDeltaAccess,
    PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString, PyTime, PyTimeAccess, PyTuple,
    PyTzInfo, PyTzInfoAccess, PyType,
};
use serde_json::{Map, Value};

pub use error::{CodecError, PathSeg, ValuePath};
pub use registry::{ClassEntry, ClassKind, Registry, DEFAULT_CLASS_PATHS, DEFAULT_MAX_DEPTH};

/// The key that marks a tagged JSON object. A plain dict holding this key is written in the
/// `dict` (list of pairs) form, so it still round-trips.
pub const TAG: &str = "__fg__";

/// The process-wide registry behind the module-level `dumps`/`loads`/`allow_class`.
pub fn default_registry() -> &'static Arc<Registry> {
    static DEFAULT: OnceLock<Arc<Registry>> = OnceLock::new();
    DEFAULT.get_or_init(|| Arc::new(Registry::new(DEFAULT_MAX_DEPTH)))
}

/// Encodes a Python value as typed JSON. `context` names the root in error paths
/// (`state['items'][3]`); it defaults to `value`.
pub fn encode(obj: &Bound<'_, PyAny>, registry: &Registry, context: Option<&str>) -> Result<Value, CodecError> {
    let enc = Enc { py: obj.py(), reg: registry, max: registry.max_depth() };
    enc.value(obj, 0).map_err(|e| e.with_root(context))
}

/// Rebuilds a Python value from typed JSON, raising `CorruptCheckpointError` on bad data.
pub fn decode(py: Python<'_>, value: &Value, registry: &Registry) -> PyResult<Py<PyAny>> {
    decode_value(py, value, registry, None).map_err(|e| to_py_err(py, &e))
}

/// [`decode`] with the error kept as a [`CodecError`]; `context` names the root in error paths.
pub fn decode_value(
    py: Python<'_>,
    value: &Value,
    registry: &Registry,
    context: Option<&str>,
) -> Result<Py<PyAny>, CodecError> {
    let dec = Dec { py, reg: registry, max: registry.max_depth() };
    dec.value(value, 0).map(Bound::unbind).map_err(|e| e.with_root(context))
}

/// Encodes to JSON bytes.
pub fn to_json_bytes(obj: &Bound<'_, PyAny>, registry: &Registry, context: Option<&str>) -> Result<Vec<u8>, CodecError> {
    let value = encode(obj, registry, context)?;
    let py = obj.py();
    py.detach(|| serde_json::to_vec(&value)).map_err(|e| CodecError::Python {
        path: ValuePath::default(),
        message: e.to_string(),
    })
}

/// Parses JSON bytes (refusing nesting deeper than the registry allows before parsing) and
/// rebuilds the value.
pub fn from_json_bytes(py: Python<'_>, data: &[u8], registry: &Registry) -> Result<Py<PyAny>, CodecError> {
    // A Python level takes at most three JSON levels (the `dict` pairs form).
    let json_limit = registry.max_depth().saturating_mul(3).saturating_add(8);
    let value = py.detach(|| {
        if text::json_depth_exceeds(data, json_limit) {
            return Err(CodecError::TooDeep { path: ValuePath::default(), limit: registry.max_depth(), writing: false });
        }
        let mut de = serde_json::Deserializer::from_slice(data);
        de.disable_recursion_limit();
        let value = <Value as serde::Deserialize>::deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v))
            .map_err(|e| CodecError::InvalidJson { message: e.to_string() })?;
        Ok(value)
    })?;
    decode_value(py, &value, registry, None)
}

/// Maps a codec error to `ferrograph.errors.SerializationError` (write) or
/// `CorruptCheckpointError` (read).
pub fn to_py_err(py: Python<'_>, e: &CodecError) -> PyErr {
    static SER: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    static CORRUPT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let msg = e.to_string();
    let cls = if e.is_write() {
        SER.import(py, "ferrograph.errors", "SerializationError")
    } else {
        CORRUPT.import(py, "ferrograph.errors", "CorruptCheckpointError")
    };
    match cls {
        Ok(cls) => PyErr::from_type(cls.clone(), msg),
        Err(_) if e.is_write() => PyTypeError::new_err(msg),
        Err(_) => PyValueError::new_err(msg),
    }
}

fn tagged(tag: &str, v: Value) -> Value {
    let mut m = Map::with_capacity(2);
    m.insert(TAG.to_owned(), Value::String(tag.to_owned()));
    m.insert("v".to_owned(), v);
    Value::Object(m)
}

fn class_tagged(tag: &str, cls: &str, v: Value) -> Value {
    let mut m = Map::with_capacity(3);
    m.insert(TAG.to_owned(), Value::String(tag.to_owned()));
    m.insert("cls".to_owned(), Value::String(cls.to_owned()));
    m.insert("v".to_owned(), v);
    Value::Object(m)
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

const PY_TPFLAGS_HEAPTYPE: u64 = 1 << 9;

struct Enc<'a, 'py> {
    py: Python<'py>,
    reg: &'a Registry,
    max: usize,
}

impl<'py> Enc<'_, 'py> {
    fn pyerr(&self, e: PyErr) -> CodecError {
        CodecError::Python { path: ValuePath::default(), message: e.to_string() }
    }

    fn too_deep(&self) -> CodecError {
        CodecError::TooDeep { path: ValuePath::default(), limit: self.max, writing: true }
    }

    fn value(&self, obj: &Bound<'py, PyAny>, depth: usize) -> Result<Value, CodecError> {
        if let Ok(s) = obj.cast_exact::<PyString>() {
            return self.string(s);
        }
        if obj.is_none() {
            return Ok(Value::Null);
        }
        if let Ok(b) = obj.cast_exact::<PyBool>() {
            return Ok(Value::Bool(b.is_true()));
        }
        if obj.is_exact_instance_of::<PyInt>() {
            return self.int(obj);
        }
        if let Ok(f) = obj.cast_exact::<PyFloat>() {
            return Ok(float_value(f.value()));
        }
        if depth >= self.max {
            return Err(self.too_deep());
        }
        if let Ok(list) = obj.cast_exact::<PyList>() {
            let mut out = Vec::with_capacity(list.len());
            for (i, item) in list.iter().enumerate() {
                out.push(self.value(&item, depth + 1).map_err(|e| e.at(PathSeg::Index(i)))?);
            }
            return Ok(Value::Array(out));
        }
        if let Ok(dict) = obj.cast_exact::<PyDict>() {
            return self.dict(dict, depth);
        }
        if let Ok(t) = obj.cast_exact::<PyTuple>() {
            return Ok(tagged("tuple", self.items(t.iter(), t.len(), depth)?));
        }
        self.other(obj, depth)
    }

    fn items(
        &self,
        it: impl Iterator<Item = Bound<'py, PyAny>>,
        len: usize,
        depth: usize,
    ) -> Result<Value, CodecError> {
        let mut out = Vec::with_capacity(len);
        for (i, item) in it.enumerate() {
            out.push(self.value(&item, depth + 1).map_err(|e| e.at(PathSeg::Index(i)))?);
        }
        Ok(Value::Array(out))
    }

    fn string(&self, s: &Bound<'py, PyString>) -> Result<Value, CodecError> {
        match s.to_str() {
            Ok(t) => Ok(Value::String(t.to_owned())),
            Err(_) => self.surrogate_string(s),
        }
    }

    /// A str with lone surrogates has no UTF-8 form: kept as its `surrogatepass` bytes.
    #[inline(never)]
    fn surrogate_string(&self, s: &Bound<'py, PyString>) -> Result<Value, CodecError> {
        let b = s.call_method1("encode", ("utf-8", "surrogatepass")).map_err(|e| self.pyerr(e))?;
        let b = b.cast_into::<PyBytes>().map_err(|e| self.pyerr(e.into()))?;
        Ok(tagged("str", Value::String(text::b64_encode(b.as_bytes()))))
    }

    fn int(&self, obj: &Bound<'py, PyAny>) -> Result<Value, CodecError> {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        // Hex: exact at any size, and exempt from Python's int/str digit limit.
        let hex = obj.call_method1("__format__", ("x",)).map_err(|e| self.pyerr(e))?;
        Ok(tagged("int", Value::String(hex.to_string())))
    }

    fn dict(&self, dict: &Bound<'py, PyDict>, depth: usize) -> Result<Value, CodecError> {
        let mut map = Map::with_capacity(dict.len());
        let mut pairs: Option<Vec<Value>> = None;
        for (k, v) in dict.iter() {
            let plain_key = match (&pairs, k.cast_exact::<PyString>()) {
                (None, Ok(s)) => s.to_str().ok().filter(|s| *s != TAG),
                _ => None,
            };
            if let Some(key) = plain_key {
                let val = self.value(&v, depth + 1).map_err(|e| e.at(key_seg(key)))?;
                map.insert(key.to_owned(), val);
                continue;
            }
            let pairs = pairs.get_or_insert_with(|| {
                std::mem::take(&mut map)
                    .into_iter()
                    .map(|(k, v)| Value::Array(vec![Value::String(k), v]))
                    .collect()
            });
            let kv = self.value(&k, depth + 1).map_err(|e| e.at(repr_seg(&k)))?;
            let vv = self.value(&v, depth + 1).map_err(|e| e.at(repr_seg(&k)))?;
            pairs.push(Value::Array(vec![kv, vv]));
        }
        Ok(match pairs {
            Some(p) => tagged("dict", Value::Array(p)),
            None => Value::Object(map),
        })
    }

    #[inline(never)]
    fn other(&self, obj: &Bound<'py, PyAny>, depth: usize) -> Result<Value, CodecError> {
        let py = self.py;
        if let Ok(dt) = obj.cast_exact::<PyDateTime>() {
            return self.datetime(dt);
        }
        if let Ok(d) = obj.cast_exact::<PyDate>() {
            let mut s = String::with_capacity(10);
            text::fmt_date(&mut s, d.get_year(), d.get_month(), d.get_day());
            return Ok(tagged("date", Value::String(s)));
        }
        if let Ok(t) = obj.cast_exact::<PyTime>() {
            return self.time(t);
        }
        if let Ok(td) = obj.cast_exact::<PyDelta>() {
            let v = vec![td.get_days().into(), td.get_seconds().into(), td.get_microseconds().into()];
            return Ok(tagged("timedelta", Value::Array(v)));
        }
        if let Ok(b) = obj.cast_exact::<PyBytes>() {
            return Ok(tagged("bytes", Value::String(text::b64_encode(b.as_bytes()))));
        }
        if let Ok(b) = obj.cast_exact::<PyByteArray>() {
            return Ok(tagged("bytearray", Value::String(text::b64_encode(&b.to_vec()))));
        }
        if let Ok(s) = obj.cast_exact::<PySet>() {
            return Ok(tagged("set", self.items(s.iter(), s.len(), depth)?));
        }
        if let Ok(s) = obj.cast_exact::<PyFrozenSet>() {
            return Ok(tagged("frozenset", self.items(s.iter(), s.len(), depth)?));
        }
        let ty = obj.get_type();
        if ty.is(UUID_TYPE.import(py, "uuid", "UUID").map_err(|e| self.pyerr(e))?) {
            let n: u128 = obj.getattr("int").and_then(|i| i.extract()).map_err(|e| self.pyerr(e))?;
            return Ok(tagged("uuid", Value::String(uuid_text(n))));
        }
        if ty.is(DECIMAL_TYPE.import(py, "decimal", "Decimal").map_err(|e| self.pyerr(e))?) {
            let s = obj.str().map_err(|e| self.pyerr(e))?;
            return Ok(tagged("decimal", Value::String(s.to_string())));
        }
        if let Some(entry) = self.reg.lookup_type(&ty).map_err(|e| self.pyerr(e))? {
            return self.instance(obj, &entry, depth);
        }
        Err(self.refuse(&ty))
    }

    fn refuse(&self, ty: &Bound<'py, PyType>) -> CodecError {
        let name = type_name(ty);
        let flags: u64 = ty.getattr("__flags__").and_then(|f| f.extract()).unwrap_or(0);
        let builtin_base = ["dict", "list", "tuple", "str", "int", "float", "set", "frozenset", "bytes"]
            .into_iter()
            .find(|b| ty.mro().iter().skip(1).any(|t| t.cast::<PyType>().is_ok_and(|t| type_name(t) == format!("builtins:{b}"))));
        let is_enum = ty.mro().iter().any(|t| t.cast::<PyType>().is_ok_and(|t| type_name(t) == "enum:Enum"));
        if flags & PY_TPFLAGS_HEAPTYPE != 0 && (is_enum || builtin_base.is_none()) {
            return CodecError::NotAllowlisted { path: ValuePath::default(), class: name };
        }
        let reason = match builtin_base {
            Some(b) => format!(
                "cannot be serialized: it subclasses {b}, and only exact {b} values round-trip \
                 (allowlist it if it is an enum, a NamedTuple or a model)"
            ),
            None => "cannot be serialized (supported: JSON types, tuple, set, frozenset, bytes, \
                     bytearray, datetime types, UUID, Decimal, and allowlisted classes)"
                .to_owned(),
        };
        CodecError::Unsupported { path: ValuePath::default(), type_name: name, reason }
    }

    /// Writes the tz suffix of a datetime/time: offset in the text, zone key or custom name
    /// as extra keys. Returns those extra keys.
    fn tz_parts(
        &self,
        tz: Option<Bound<'py, PyTzInfo>>,
        owner: &Bound<'py, PyAny>,
        out: &mut String,
    ) -> Result<Vec<(&'static str, Value)>, CodecError> {
        let Some(tz) = tz else { return Ok(Vec::new()) };
        let py = self.py;
        let tz_ty = tz.get_type();
        if tz_ty.is(TIMEZONE_TYPE.import(py, "datetime", "timezone").map_err(|e| self.pyerr(e))?) {
            let off = tz.call_method1("utcoffset", (py.None(),)).map_err(|e| self.pyerr(e))?;
            let off = off.cast_into::<PyDelta>().map_err(|e| self.pyerr(e.into()))?;
            let us = delta_micros(&off);
            text::fmt_offset(out, us);
            let name: String = tz
                .call_method1("tzname", (py.None(),))
                .and_then(|n| n.extract())
                .map_err(|e| self.pyerr(e))?;
            let mut default = String::from("UTC");
            if us != 0 {
                text::fmt_offset(&mut default, us);
            }
            return Ok(if name == default { Vec::new() } else { vec![("tzname", Value::String(name))] });
        }
        let is_zoneinfo = match ZONEINFO_TYPE.import(py, "zoneinfo", "ZoneInfo") {
            Ok(zi) => tz_ty.is(zi),
            Err(_) => false,
        };
        if is_zoneinfo {
            if let Ok(key) = tz.getattr("key").and_then(|k| k.extract::<String>()) {
                return Ok(vec![("tz", Value::String(key))]);
            }
        }
        let _ = owner;
        Err(CodecError::Unsupported {
            path: ValuePath::default(),
            type_name: type_name(&tz_ty),
            reason: "cannot be serialized as a tzinfo (supported: datetime.timezone and \
                     zoneinfo.ZoneInfo with a key)"
                .to_owned(),
        })
    }

    fn with_extras(&self, tag: &str, s: String, extras: Vec<(&'static str, Value)>, fold: bool) -> Value {
        let mut v = tagged(tag, Value::String(s));
        if let Value::Object(m) = &mut v {
            for (k, x) in extras {
                m.insert(k.to_owned(), x);
            }
            if fold {
                m.insert("fold".to_owned(), Value::from(1));
            }
        }
        v
    }

    fn datetime(&self, dt: &Bound<'py, PyDateTime>) -> Result<Value, CodecError> {
        let mut s = String::with_capacity(32);
        text::fmt_date(&mut s, dt.get_year(), dt.get_month(), dt.get_day());
        s.push('T');
        text::fmt_time(&mut s, dt.get_hour(), dt.get_minute(), dt.get_second(), dt.get_microsecond());
        let extras = self.tz_parts(dt.get_tzinfo(), dt.as_any(), &mut s)?;
        Ok(self.with_extras("datetime", s, extras, dt.get_fold()))
    }

    fn time(&self, t: &Bound<'py, PyTime>) -> Result<Value, CodecError> {
        let mut s = String::with_capacity(24);
        text::fmt_time(&mut s, t.get_hour(), t.get_minute(), t.get_second(), t.get_microsecond());
        let extras = self.tz_parts(t.get_tzinfo(), t.as_any(), &mut s)?;
        Ok(self.with_extras("time", s, extras, t.get_fold()))
    }

    fn instance(&self, obj: &Bound<'py, PyAny>, entry: &ClassEntry, depth: usize) -> Result<Value, CodecError> {
        let py = self.py;
        let attr = |name: &Bound<'py, PyString>| -> Result<Value, CodecError> {
            let v = obj.getattr(name).map_err(|e| self.pyerr(e))?;
            self.value(&v, depth + 1)
        };
        let (tag, body, extra): (&str, Value, Option<(&str, Value)>) = match &entry.kind {
            ClassKind::Enum => {
                let v = obj.getattr("_value_").map_err(|e| self.pyerr(e))?;
                ("enum", self.value(&v, depth + 1).map_err(|e| e.at(PathSeg::Attr("value".into())))?, None)
            }
            ClassKind::Dataclass { init, no_init } => {
                let mut m = Map::with_capacity(init.len() + no_init.len());
                for name in init.iter().chain(no_init) {
                    let name = name.bind(py);
                    let key = name.to_string();
                    let v = attr(name).map_err(|e| e.at(PathSeg::Attr(key.clone())))?;
                    m.insert(key, v);
                }
                ("dataclass", Value::Object(m), None)
            }
            ClassKind::NamedTuple => {
                let t = obj.cast::<PyTuple>().map_err(|e| self.pyerr(e.into()))?;
                ("namedtuple", self.items(t.iter(), t.len(), depth)?, None)
            }
            ClassKind::Pydantic => {
                let (m, fields_set) = self.pydantic(obj, depth)?;
                ("pydantic", Value::Object(m), fields_set.map(|s| ("set", s)))
            }
            ClassKind::Object { slots } => {
                let mut m = Map::new();
                for name in slots {
                    let name = name.bind(py);
                    if let Ok(v) = obj.getattr(name) {
                        let key = name.to_string();
                        let v = self.value(&v, depth + 1).map_err(|e| e.at(PathSeg::Attr(key.clone())))?;
                        m.insert(key, v);
                    }
                }
                if let Ok(d) = obj.getattr("__dict__") {
                    let d = d.cast_into::<PyDict>().map_err(|e| self.pyerr(e.into()))?;
                    self.attrs_into(&d, &mut m, depth)?;
                }
                ("object", Value::Object(m), None)
            }
        };
        let mut v = class_tagged(tag, &entry.name, body);
        if let (Value::Object(m), Some((k, x))) = (&mut v, extra) {
            m.insert(k.to_owned(), x);
        }
        Ok(v)
    }

    fn attrs_into(&self, d: &Bound<'py, PyDict>, m: &mut Map<String, Value>, depth: usize) -> Result<(), CodecError> {
        for (k, v) in d.iter() {
            let k = k.cast_into::<PyString>().map_err(|e| self.pyerr(e.into()))?;
            let key = k.to_str().map_err(|e| self.pyerr(e))?.to_owned();
            let v = self.value(&v, depth + 1).map_err(|e| e.at(PathSeg::Attr(key.clone())))?;
            m.insert(key, v);
        }
        Ok(())
    }

    /// Fields and extras of a pydantic v2 model, plus `fields_set` when it is not all of them
    /// and private attributes under `__private__`.
    fn pydantic(&self, obj: &Bound<'py, PyAny>, depth: usize) -> Result<(Map<String, Value>, Option<Value>), CodecError> {
        let mut m = Map::new();
        let d = obj.getattr("__dict__").map_err(|e| self.pyerr(e))?;
        self.attrs_into(&d.cast_into::<PyDict>().map_err(|e| self.pyerr(e.into()))?, &mut m, depth)?;
        if let Ok(extra) = obj.getattr("__pydantic_extra__") {
            if let Ok(extra) = extra.cast_into::<PyDict>() {
                self.attrs_into(&extra, &mut m, depth)?;
            }
        }
        let mut fields_set = None;
        if let Ok(fs) = obj.getattr("__pydantic_fields_set__") {
            let fs = fs.cast_into::<PySet>().map_err(|e| self.pyerr(e.into()))?;
            if fs.len() != m.len() {
                let mut names: Vec<String> = fs.iter().filter_map(|n| n.extract().ok()).collect();
                names.sort();
                fields_set = Some(Value::Array(names.into_iter().map(Value::String).collect()));
            }
        }
        if let Ok(private) = obj.getattr("__pydantic_private__") {
            if let Ok(private) = private.cast_into::<PyDict>() {
                if !private.is_empty() {
                    let v = self.value(private.as_any(), depth + 1).map_err(|e| e.at(PathSeg::Attr("__pydantic_private__".into())))?;
                    m.insert("__private__".to_owned(), v);
                }
            }
        }
        Ok((m, fields_set))
    }
}

fn float_value(f: f64) -> Value {
    match serde_json::Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None => tagged(
            "float",
            Value::String(if f.is_nan() { "nan" } else if f > 0.0 { "inf" } else { "-inf" }.to_owned()),
        ),
    }
}

fn delta_micros(d: &Bound<'_, PyDelta>) -> i64 {
    (i64::from(d.get_days()) * 86_400 + i64::from(d.get_seconds())) * 1_000_000 + i64::from(d.get_microseconds())
}

fn uuid_text(n: u128) -> String {
    let h = format!("{n:032x}");
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

struct Dec<'a, 'py> {
    py: Python<'py>,
    reg: &'a Registry,
    max: usize,
}

fn rebuild_err(what: &str) -> impl Fn(PyErr) -> CodecError + '_ {
    move |e| CodecError::Rebuild { path: ValuePath::default(), what: what.to_owned(), message: e.to_string() }
}

impl<'py> Dec<'_, 'py> {
    fn value(&self, v: &Value, depth: usize) -> Result<Bound<'py, PyAny>, CodecError> {
        let py = self.py;
        Ok(match v {
            Value::Null => py.None().into_bound(py),
            Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
            Value::String(s) => PyString::new(py, s).into_any(),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    i.into_pyobject(py).map(Bound::into_any).unwrap_or_else(|e| match e {})
                } else if let Some(u) = n.as_u64() {
                    u.into_pyobject(py).map(Bound::into_any).unwrap_or_else(|e| match e {})
                } else {
                    PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any()
                }
            }
            Value::Array(items) => {
                self.check_depth(depth)?;
                let list = PyList::empty(py);
                for (i, item) in items.iter().enumerate() {
                    let x = self.value(item, depth + 1).map_err(|e| e.at(PathSeg::Index(i)))?;
                    list.append(x).map_err(rebuild_err("list"))?;
                }
                list.into_any()
            }
            Value::Object(m) => {
                self.check_depth(depth)?;
                if let Some(tag) = m.get(TAG) {
                    return self.tagged(tag, m, depth);
                }
                let dict = PyDict::new(py);
                for (k, x) in m {
                    let x = self.value(x, depth + 1).map_err(|e| e.at(key_seg(k)))?;
                    dict.set_item(k, x).map_err(rebuild_err("dict"))?;
                }
                dict.into_any()
            }
        })
    }

    fn check_depth(&self, depth: usize) -> Result<(), CodecError> {
        if depth >= self.max {
            return Err(CodecError::TooDeep { path: ValuePath::default(), limit: self.max, writing: false });
        }
        Ok(())
    }

    fn items(&self, tag: &str, v: &Value, depth: usize) -> Result<Vec<Bound<'py, PyAny>>, CodecError> {
        let Value::Array(a) = v else { return Err(CodecError::malformed(tag, "expected a list")) };
        a.iter()
            .enumerate()
            .map(|(i, x)| self.value(x, depth + 1).map_err(|e| e.at(PathSeg::Index(i))))
            .collect()
    }

    fn str_body<'v>(&self, tag: &str, v: &'v Value) -> Result<&'v str, CodecError> {
        v.as_str().ok_or_else(|| CodecError::malformed(tag, "expected a string"))
    }

    fn b64(&self, tag: &str, v: &Value) -> Result<Vec<u8>, CodecError> {
        text::b64_decode(self.str_body(tag, v)?).ok_or_else(|| CodecError::malformed(tag, "invalid base64"))
    }

    fn tagged(&self, tag: &Value, m: &Map<String, Value>, depth: usize) -> Result<Bound<'py, PyAny>, CodecError> {
        let py = self.py;
        let Some(tag) = tag.as_str() else {
            return Err(CodecError::malformed("?", format!("the {TAG} key must hold a string")));
        };
        let body = m.get("v").ok_or_else(|| CodecError::malformed(tag, "missing \"v\""))?;
        let bad = |msg: &str| CodecError::malformed(tag, msg);
        Ok(match tag {
            "tuple" => PyTuple::new(py, self.items(tag, body, depth)?).map_err(rebuild_err("tuple"))?.into_any(),
            "set" => PySet::new(py, self.items(tag, body, depth)?).map_err(rebuild_err("set"))?.into_any(),
            "frozenset" => PyFrozenSet::new(py, self.items(tag, body, depth)?).map_err(rebuild_err("frozenset"))?.into_any(),
            "dict" => {
                let Value::Array(pairs) = body else { return Err(bad("expected a list of pairs")) };
                let dict = PyDict::new(py);
                for (i, p) in pairs.iter().enumerate() {
                    let Some([k, x]) = p.as_array().map(Vec::as_slice).and_then(|s| <&[Value; 2]>::try_from(s).ok()) else {
                        return Err(bad("expected [key, value] pairs").at(PathSeg::Index(i)));
                    };
                    let k = self.value(k, depth + 1).map_err(|e| e.at(PathSeg::Index(i)))?;
                    let x = self.value(x, depth + 1).map_err(|e| e.at(repr_seg(&k)))?;
                    dict.set_item(&k, x).map_err(|e| rebuild_err("dict key")(e).at(repr_seg(&k)))?;
                }
                dict.into_any()
            }
            "int" => {
                let s = self.str_body(tag, body)?;
                let digits = s.strip_prefix('-').unwrap_or(s);
                if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad("expected hex digits"));
                }
                py.get_type::<PyInt>().call1((s, 16)).map_err(rebuild_err("int"))?
            }
            "float" => PyFloat::new(
                py,
                match self.str_body(tag, body)? {
                    "nan" => f64::NAN,
                    "inf" => f64::INFINITY,
                    "-inf" => f64::NEG_INFINITY,
                    _ => return Err(bad("expected nan, inf or -inf")),
                },
            )
            .into_any(),
            "str" => PyBytes::new(py, &self.b64(tag, body)?)
                .call_method1("decode", ("utf-8", "surrogatepass"))
                .map_err(rebuild_err("str"))?,
            "bytes" => PyBytes::new(py, &self.b64(tag, body)?).into_any(),
            "bytearray" => PyByteArray::new(py, &self.b64(tag, body)?).into_any(),
            "date" => {
                let d = text::parse_date(self.str_body(tag, body)?).ok_or_else(|| bad("expected YYYY-MM-DD"))?;
                PyDate::new(py, d.year, d.month, d.day).map_err(rebuild_err("date"))?.into_any()
            }
            "datetime" => {
                let (d, c) = text::parse_datetime(self.str_body(tag, body)?).ok_or_else(|| bad("expected an ISO-8601 datetime"))?;
                let tz = self.tzinfo(tag, m, c.offset_us)?;
                PyDateTime::new_with_fold(py, d.year, d.month, d.day, c.hour, c.minute, c.second, c.micro, tz.as_ref(), self.fold(m))
                    .map_err(rebuild_err("datetime"))?
                    .into_any()
            }
            "time" => {
                let c = text::parse_time(self.str_body(tag, body)?).ok_or_else(|| bad("expected an ISO-8601 time"))?;
                let tz = self.tzinfo(tag, m, c.offset_us)?;
                PyTime::new_with_fold(py, c.hour, c.minute, c.second, c.micro, tz.as_ref(), self.fold(m))
                    .map_err(rebuild_err("time"))?
                    .into_any()
            }
            "timedelta" => {
                let parts: Option<Vec<i32>> = body
                    .as_array()
                    .filter(|a| a.len() == 3)
                    .and_then(|a| a.iter().map(|x| x.as_i64().and_then(|x| i32::try_from(x).ok())).collect());
                let Some([d, s, us]) = parts.as_deref().and_then(|p| <[i32; 3]>::try_from(p).ok()) else {
                    return Err(bad("expected [days, seconds, microseconds]"));
                };
                PyDelta::new(py, d, s, us, true).map_err(rebuild_err("timedelta"))?.into_any()
            }
            "uuid" => {
                let s = self.str_body(tag, body)?;
                if s.len() != 36 || !s.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-') {
                    return Err(bad("expected a canonical UUID string"));
                }
                let cls = UUID_TYPE.import(py, "uuid", "UUID").map_err(rebuild_err("uuid.UUID"))?;
                cls.call1((s,)).map_err(rebuild_err("uuid.UUID"))?
            }
            "decimal" => {
                let cls = DECIMAL_TYPE.import(py, "decimal", "Decimal").map_err(rebuild_err("decimal.Decimal"))?;
                cls.call1((self.str_body(tag, body)?,)).map_err(rebuild_err("decimal.Decimal"))?
            }
            "enum" | "dataclass" | "pydantic" | "namedtuple" | "object" => self.instance(tag, m, body, depth)?,
            other => return Err(CodecError::UnknownTag { path: ValuePath::default(), tag: other.to_owned() }),
        })
    }

    fn fold(&self, m: &Map<String, Value>) -> bool {
        m.get("fold").and_then(Value::as_i64) == Some(1)
    }

    fn tzinfo(&self, tag: &str, m: &Map<String, Value>, offset_us: Option<i64>) -> Result<Option<Bound<'py, PyTzInfo>>, CodecError> {
        let py = self.py;
        if let Some(key) = m.get("tz") {
            let key = key.as_str().ok_or_else(|| CodecError::malformed(tag, "\"tz\" must be a string"))?;
            return PyTzInfo::timezone(py, key).map(Some).map_err(rebuild_err("zoneinfo.ZoneInfo"));
        }
        let Some(us) = offset_us else { return Ok(None) };
        let delta = PyDelta::new(py, 0, 0, 0, true)
            .and_then(|_| PyDelta::new(py, (us.div_euclid(86_400_000_000)) as i32, (us.rem_euclid(86_400_000_000) / 1_000_000) as i32, (us % 1_000_000).rem_euclid(1_000_000) as i32, true))
            .map_err(rebuild_err("timedelta"))?;
        match m.get("tzname") {
            None => PyTzInfo::fixed_offset(py, delta).map(Some).map_err(rebuild_err("datetime.timezone")),
            Some(name) => {
                let name = name.as_str().ok_or_else(|| CodecError::malformed(tag, "\"tzname\" must be a string"))?;
                let cls = TIMEZONE_TYPE.import(py, "datetime", "timezone").map_err(rebuild_err("datetime.timezone"))?;
                let tz = cls.call1((delta, name)).map_err(rebuild_err("datetime.timezone"))?;
                tz.cast_into::<PyTzInfo>().map(Some).map_err(|e| rebuild_err("datetime.timezone")(e.into()))
            }
        }
    }

    fn instance(&self, tag: &str, m: &Map<String, Value>, body: &Value, depth: usize) -> Result<Bound<'py, PyAny>, CodecError> {
        let py = self.py;
        let name = m
            .get("cls")
            .and_then(Value::as_str)
            .ok_or_else(|| CodecError::malformed(tag, "missing \"cls\" string"))?;
        let entry = match self.reg.lookup_name(py, name).map_err(rebuild_err(name))? {
            Ok(Some(e)) => e,
            Ok(None) => return Err(CodecError::ClassNotAllowed { path: ValuePath::default(), class: name.to_owned() }),
            Err(()) => return Err(CodecError::ClassNotLoaded { path: ValuePath::default(), class: name.to_owned() }),
        };
        let cls = entry.cls.bind(py);
        let fields = |body: &Value| -> Result<Vec<(String, Bound<'py, PyAny>)>, CodecError> {
            let Value::Object(f) = body else { return Err(CodecError::malformed(tag, "expected an object of fields")) };
            f.iter()
                .map(|(k, x)| Ok((k.clone(), self.value(x, depth + 1).map_err(|e| e.at(PathSeg::Attr(k.clone())))?)))
                .collect()
        };
        let rebuild = rebuild_err(name);
        let obj = match (&entry.kind, tag) {
            (ClassKind::Enum, "enum") => {
                let v = self.value(body, depth + 1)?;
                cls.call1((v,)).map_err(&rebuild)?
            }
            (ClassKind::NamedTuple, "namedtuple") => {
                let items = PyTuple::new(py, self.items(tag, body, depth)?).map_err(&rebuild)?;
                cls.call1(items).map_err(&rebuild)?
            }
            (ClassKind::Dataclass { init, .. }, "dataclass") => {
                let kw = PyDict::new(py);
                let mut late = Vec::new();
                for (k, v) in fields(body)? {
                    if init.iter().any(|n| n.bind(py).to_str().ok() == Some(k.as_str())) {
                        kw.set_item(k, v).map_err(&rebuild)?;
                    } else {
                        late.push((k, v));
                    }
                }
                let obj = cls.call((), Some(&kw)).map_err(&rebuild)?;
                set_attrs(&obj, late).map_err(&rebuild)?;
                obj
            }
            (ClassKind::Pydantic, "pydantic") => {
                let kw = PyDict::new(py);
                let mut private = None;
                for (k, v) in fields(body)? {
                    if k == "__private__" {
                        private = Some(v);
                    } else {
                        kw.set_item(k, v).map_err(&rebuild)?;
                    }
                }
                if let Some(set) = m.get("set") {
                    let names: Option<Vec<&str>> = set.as_array().and_then(|a| a.iter().map(Value::as_str).collect());
                    let names = names.ok_or_else(|| CodecError::malformed(tag, "\"set\" must be a list of names"))?;
                    kw.set_item("_fields_set", PySet::new(py, names).map_err(&rebuild)?).map_err(&rebuild)?;
                }
                let obj = cls.call_method("model_construct", (), Some(&kw)).map_err(&rebuild)?;
                if let Some(p) = private {
                    set_attrs(&obj, vec![("__pydantic_private__".to_owned(), p)]).map_err(&rebuild)?;
                }
                obj
            }
            (ClassKind::Object { .. }, "object") => {
                let obj = cls.call_method1("__new__", (cls,)).map_err(&rebuild)?;
                set_attrs(&obj, fields(body)?).map_err(&rebuild)?;
                obj
            }
            _ => return Err(CodecError::malformed(tag, format!("class '{name}' is not of this kind"))),
        };
        Ok(obj)
    }
}

/// Sets attributes the way `copy` does, bypassing `__setattr__` (frozen dataclasses, models).
fn set_attrs<'py>(obj: &Bound<'py, PyAny>, attrs: Vec<(String, Bound<'py, PyAny>)>) -> PyResult<()> {
    if attrs.is_empty() {
        return Ok(());
    }
    let setattr = obj.py().get_type::<pyo3::types::PyAny>().getattr("__setattr__");
    let setattr = match setattr {
        Ok(s) => s,
        Err(_) => obj.py().eval(c"object.__setattr__", None, None)?,
    };
    for (k, v) in attrs {
        setattr.call1((obj, k, v))?;
    }
    Ok(())
}

fn bytes_of<'a>(data: &'a Bound<'_, PyAny>) -> PyResult<std::borrow::Cow<'a, [u8]>> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(std::borrow::Cow::Borrowed(b.as_bytes()));
    }
    if let Ok(s) = data.cast::<PyString>() {
        return Ok(std::borrow::Cow::Owned(s.to_str()?.as_bytes().to_vec()));
    }
    if let Ok(b) = data.cast::<PyByteArray>() {
        return Ok(std::borrow::Cow::Owned(b.to_vec()));
    }
    Err(PyTypeError::new_err(format!(
        "loads() expects bytes or str, not {}",
        data.get_type().name().map(|n| n.to_string()).unwrap_or_default()
    )))
}

/// A codec with its own allowlist and depth limit. `Serializer(allowed=[...], max_depth=1000)`
/// starts from the default allowlist (stdlib types, ferrograph's and LangChain's classes).
#[pyclass(frozen, module = "ferrograph._core", name = "Serializer")]
pub struct PySerializer {
    registry: Arc<Registry>,
}

impl PySerializer {
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
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
        let registry = Registry::new(max_depth);
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

    fn allow_class<'py>(&self, cls: Bound<'py, PyType>) -> PyResult<Bound<'py, PyType>> {
        self.registry.allow_class(&cls)?;
        Ok(cls)
    }

    fn allowed_classes(&self) -> Vec<String> {
        self.registry.allowed_names()
    }
}

fn dumps_with<'py>(obj: &Bound<'py, PyAny>, reg: &Registry, context: Option<&str>) -> PyResult<Bound<'py, PyBytes>> {
    let py = obj.py();
    let bytes = to_json_bytes(obj, reg, context).map_err(|e| to_py_err(py, &e))?;
    Ok(PyBytes::new(py, &bytes))
}

fn loads_with(py: Python<'_>, data: &Bound<'_, PyAny>, reg: &Registry) -> PyResult<Py<PyAny>> {
    let bytes = bytes_of(data)?;
    from_json_bytes(py, &bytes, reg).map_err(|e| to_py_err(py, &e))
}

/// Serializes a value to typed JSON bytes with the default allowlist. `context` names the root
/// in error messages.
#[pyfunction]
#[pyo3(signature = (obj, *, context = None))]
pub fn dumps<'py>(obj: &Bound<'py, PyAny>, context: Option<&str>) -> PyResult<Bound<'py, PyBytes>> {
    dumps_with(obj, default_registry(), context)
}

/// Rebuilds a value from typed JSON (bytes or str) with the default allowlist.
#[pyfunction]
pub fn loads(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    loads_with(py, data, default_registry())
}

/// Allowlists a class for the default codec; returns it, so it also works as a decorator.
#[pyfunction]
pub fn allow_class(cls: Bound<'_, PyType>) -> PyResult<Bound<'_, PyType>> {
    default_registry().allow_class(&cls)?;
    Ok(cls)
}

/// The `module:qualname` of every class the default codec may rebuild.
#[pyfunction]
pub fn allowed_classes() -> Vec<String> {
    default_registry().allowed_names()
}

/// Registers the codec's functions and class on the `_core` module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(dumps, m)?)?;
    m.add_function(wrap_pyfunction!(loads, m)?)?;
    m.add_function(wrap_pyfunction!(allow_class, m)?)?;
    m.add_function(wrap_pyfunction!(allowed_classes, m)?)?;
    m.add_class::<PySerializer>()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_outside_json_are_tagged() {
        assert_eq!(float_value(1.5), Value::from(1.5));
        assert_eq!(float_value(f64::NAN)["v"], "nan");
        assert_eq!(float_value(f64::NEG_INFINITY)["v"], "-inf");
        assert_eq!(float_value(f64::INFINITY)[TAG], "float");
    }

    #[test]
    fn uuid_text_is_canonical() {
        assert_eq!(uuid_text(0x12345678_1234_5678_1234_567812345678), "12345678-1234-5678-1234-567812345678");
        assert_eq!(uuid_text(1), "00000000-0000-0000-0000-000000000001");
    }
}
