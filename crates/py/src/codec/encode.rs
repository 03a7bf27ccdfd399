//! The codec's writer: walks a Python value and appends its typed JSON straight to a `String`
//! (no intermediate tree). Paths for error messages are built only while an error unwinds.

use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDate, PyDateAccess, PyDateTime, PyDelta, PyDeltaAccess, PyDict,
    PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString, PyTime, PyTimeAccess, PyTuple, PyTzInfo,
    PyTzInfoAccess, PyType,
};

use super::error::{CodecError, PathSeg, ValuePath};
use super::registry::{is_enum, Builtin, ClassEntry, ClassKind, Registry};
use super::stdtypes::{self, Shape, Std};
use super::{json, key_seg, repr_seg, text, type_name, DECIMAL_TYPE, TAG, TIMEZONE_TYPE, UUID_TYPE, ZONEINFO_TYPE};

const PY_TPFLAGS_HEAPTYPE: u64 = 1 << 9;

pub(super) struct Enc<'a, 'py> {
    pub py: Python<'py>,
    pub reg: &'a Registry,
    pub max: usize,
    pub out: String,
    pub keys: KeyTexts<'py>,
}

/// The JSON text (`"key":`) of the dict keys one encoding has written, by str object: a value's
/// dicts mostly repeat a few keys (a list of chat messages: `role`, `content`, `id`, ...), and a
/// str is immutable, so a key met again is copied from here instead of being read and scanned
/// for escapes again. Each key is held (a strong reference) so that its address cannot be taken
/// by another object while the encoding runs; at most `KEYS_KEPT` are kept, and only once a first
/// dict has been written (a value that is one small dict, as metadata, would pay for the
/// cache's buffers and never use them).
#[derive(Default)]
pub(super) struct KeyTexts<'py> {
    ready: bool,
    /// Each key, with the start and end of its text in `text`.
    kept: Vec<(Bound<'py, PyString>, usize, usize)>,
    text: String,
}

const KEYS_KEPT: usize = 32;

impl<'py> KeyTexts<'py> {
    fn find(&self, key: &Bound<'py, PyAny>) -> Option<&str> {
        self.kept.iter().find(|(k, _, _)| k.is(key)).map(|&(_, start, end)| &self.text[start..end])
    }

    fn keep(&mut self, key: &Bound<'py, PyString>, text: &str) {
        if self.ready && self.kept.len() < KEYS_KEPT {
            let start = self.text.len();
            self.text.push_str(text);
            self.kept.push((key.clone(), start, self.text.len()));
        }
    }
}

impl<'py> Enc<'_, 'py> {
    fn pyerr(&self, e: PyErr) -> CodecError {
        py_err(e)
    }

    fn too_deep(&self) -> CodecError {
        CodecError::TooDeep { path: ValuePath::default(), limit: self.max, writing: true }
    }

    /// `{"__fg__":"tag","v":` — the caller writes the body, any extra keys and the `}`.
    fn open_tag(&mut self, tag: &str) {
        self.out.push_str("{\"");
        self.out.push_str(TAG);
        self.out.push_str("\":");
        json::write_str(&mut self.out, tag);
        self.out.push_str(",\"v\":");
    }

    fn tagged_str(&mut self, tag: &str, body: &str) {
        self.open_tag(tag);
        json::write_str(&mut self.out, body);
        self.out.push('}');
    }

    pub fn value(&mut self, obj: &Bound<'py, PyAny>, depth: usize) -> Result<(), CodecError> {
        if let Ok(s) = obj.cast_exact::<PyString>() {
            return self.string(s);
        }
        if obj.is_exact_instance_of::<PyInt>() {
            return self.int(obj);
        }
        if obj.is_none() {
            self.out.push_str("null");
            return Ok(());
        }
        if let Ok(b) = obj.cast_exact::<PyBool>() {
            self.out.push_str(if b.is_true() { "true" } else { "false" });
            return Ok(());
        }
        if let Ok(f) = obj.cast_exact::<PyFloat>() {
            self.float(f.value());
            return Ok(());
        }
        if depth >= self.max {
            return Err(self.too_deep());
        }
        if let Ok(list) = obj.cast_exact::<PyList>() {
            return self.array(list.iter(), depth);
        }
        if let Ok(dict) = obj.cast_exact::<PyDict>() {
            // Called from here rather than from `dict`, so deep nesting costs two frames a level.
            if !self.dict(dict, depth)? {
                return self.dict_pairs(dict, depth);
            }
            return Ok(());
        }
        if let Ok(t) = obj.cast_exact::<PyTuple>() {
            self.open_tag("tuple");
            self.array(t.iter(), depth)?;
            self.out.push('}');
            return Ok(());
        }
        self.other(obj, depth)
    }

    fn array(&mut self, items: impl Iterator<Item = Bound<'py, PyAny>>, depth: usize) -> Result<(), CodecError> {
        self.out.push('[');
        for (i, item) in items.enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.value(&item, depth + 1).map_err(|e| e.at(PathSeg::Index(i)))?;
        }
        self.out.push(']');
        Ok(())
    }

    fn string(&mut self, s: &Bound<'py, PyString>) -> Result<(), CodecError> {
        match s.to_str() {
            Ok(t) => {
                json::write_str(&mut self.out, t);
                Ok(())
            }
            Err(_) => self.surrogate_string(s),
        }
    }

    /// A str with lone surrogates has no UTF-8 form: kept as its `surrogatepass` bytes.
    #[inline(never)]
    fn surrogate_string(&mut self, s: &Bound<'py, PyString>) -> Result<(), CodecError> {
        let b = s.call_method1("encode", ("utf-8", "surrogatepass")).map_err(|e| self.pyerr(e))?;
        let b = b.cast_into::<PyBytes>().map_err(|e| self.pyerr(e.into()))?;
        self.tagged_str("str", &text::b64_encode(b.as_bytes()));
        Ok(())
    }

    fn int(&mut self, obj: &Bound<'py, PyAny>) -> Result<(), CodecError> {
        if let Ok(i) = obj.extract::<i64>() {
            json::write_i64(&mut self.out, i);
            return Ok(());
        }
        self.big_int(obj)
    }

    #[inline(never)]
    fn big_int(&mut self, obj: &Bound<'py, PyAny>) -> Result<(), CodecError> {
        if let Ok(u) = obj.extract::<u64>() {
            json::write_u64(&mut self.out, u);
            return Ok(());
        }
        // Hex: exact at any size, and exempt from Python's int/str digit limit. int's own
        // `__format__`, so a subclass's override is not what decides the value.
        let format = self.py.get_type::<PyInt>().getattr("__format__").map_err(|e| self.pyerr(e))?;
        let hex = format.call1((obj, "x")).map_err(|e| self.pyerr(e))?;
        self.tagged_str("int", &hex.to_string());
        Ok(())
    }

    fn float(&mut self, f: f64) {
        if !json::write_f64(&mut self.out, f) {
            self.tagged_str("float", if f.is_nan() { "nan" } else if f > 0.0 { "inf" } else { "-inf" });
        }
    }

    /// Writes a dict whose keys are all str (and not the tag key) as a JSON object; false
    /// (nothing written) when it is not one.
    fn dict(&mut self, dict: &Bound<'py, PyDict>, depth: usize) -> Result<bool, CodecError> {
        let start = self.out.len();
        self.out.push('{');
        for (n, (k, v)) in dict.iter().enumerate() {
            if n > 0 {
                self.out.push(',');
            }
            if let Some(text) = self.keys.find(&k) {
                self.out.push_str(text);
                self.value(&v, depth + 1).map_err(|e| e.at(key_seg(k.cast::<PyString>().ok().and_then(|s| s.to_str().ok()).unwrap_or_default())))?;
                continue;
            }
            let key = match k.cast_exact::<PyString>() {
                Ok(s) => s.to_str().ok().filter(|t| *t != TAG).map(|t| (s, t)),
                Err(_) => None,
            };
            let Some((s, key)) = key else {
                self.out.truncate(start);
                return Ok(false);
            };
            let key_start = self.out.len();
            json::write_str(&mut self.out, key);
            self.out.push(':');
            self.keys.keep(s, &self.out[key_start..]);
            self.value(&v, depth + 1).map_err(|e| e.at(key_seg(key)))?;
        }
        self.out.push('}');
        self.keys.ready = true;
        Ok(true)
    }

    /// A dict with a key that is not a str (or is the tag key): `{"__fg__":"dict","v":[[k,v],..]}`.
    #[inline(never)]
    fn dict_pairs(&mut self, dict: &Bound<'py, PyDict>, depth: usize) -> Result<(), CodecError> {
        self.open_tag("dict");
        self.pairs(dict.iter(), depth)?;
        self.out.push('}');
        Ok(())
    }

    /// `[[k,v],...]`.
    fn pairs(&mut self, items: impl Iterator<Item = (Bound<'py, PyAny>, Bound<'py, PyAny>)>, depth: usize) -> Result<(), CodecError> {
        self.out.push('[');
        for (n, (k, v)) in items.enumerate() {
            self.out.push_str(if n > 0 { ",[" } else { "[" });
            self.value(&k, depth + 1).map_err(|e| e.at(repr_seg(&k)))?;
            self.out.push(',');
            self.value(&v, depth + 1).map_err(|e| e.at(repr_seg(&k)))?;
            self.out.push(']');
        }
        self.out.push(']');
        Ok(())
    }

    #[inline(never)]
    fn other(&mut self, obj: &Bound<'py, PyAny>, depth: usize) -> Result<(), CodecError> {
        let py = self.py;
        if let Ok(dt) = obj.cast_exact::<PyDateTime>() {
            return self.datetime(dt);
        }
        if let Ok(d) = obj.cast_exact::<PyDate>() {
            let mut s = String::with_capacity(10);
            text::fmt_date(&mut s, d.get_year(), d.get_month(), d.get_day());
            self.tagged_str("date", &s);
            return Ok(());
        }
        if let Ok(t) = obj.cast_exact::<PyTime>() {
            return self.time(t);
        }
        if let Ok(td) = obj.cast_exact::<PyDelta>() {
            self.open_tag("timedelta");
            self.out.push('[');
            json::write_i64(&mut self.out, td.get_days().into());
            self.out.push(',');
            json::write_i64(&mut self.out, td.get_seconds().into());
            self.out.push(',');
            json::write_i64(&mut self.out, td.get_microseconds().into());
            self.out.push_str("]}");
            return Ok(());
        }
        if let Ok(b) = obj.cast_exact::<PyBytes>() {
            self.tagged_str("bytes", &text::b64_encode(b.as_bytes()));
            return Ok(());
        }
        if let Ok(b) = obj.cast_exact::<PyByteArray>() {
            self.tagged_str("bytearray", &text::b64_encode(&b.to_vec()));
            return Ok(());
        }
        if let Ok(s) = obj.cast_exact::<PySet>() {
            self.open_tag("set");
            self.array(s.iter(), depth)?;
            self.out.push('}');
            return Ok(());
        }
        if let Ok(s) = obj.cast_exact::<PyFrozenSet>() {
            self.open_tag("frozenset");
            self.array(s.iter(), depth)?;
            self.out.push('}');
            return Ok(());
        }
        let ty = obj.get_type();
        if ty.is(UUID_TYPE.import(py, "uuid", "UUID").map_err(|e| self.pyerr(e))?) {
            let n: u128 = obj.getattr("int").and_then(|i| i.extract()).map_err(|e| self.pyerr(e))?;
            self.tagged_str("uuid", &uuid_text(n));
            return Ok(());
        }
        if ty.is(DECIMAL_TYPE.import(py, "decimal", "Decimal").map_err(|e| self.pyerr(e))?) {
            let s = obj.str().map_err(|e| self.pyerr(e))?;
            self.tagged_str("decimal", &s.to_string());
            return Ok(());
        }
        if let Some(std) = stdtypes::kind_of(&ty).map_err(|e| self.pyerr(e))? {
            return self.standard(obj, std, depth);
        }
        if let Some(entry) = self.reg.lookup_type(&ty).map_err(|e| self.pyerr(e))? {
            return self.instance(obj, &entry, depth);
        }
        if let Some(np) = stdtypes::numpy_if_loaded(py).map_err(|e| self.pyerr(e))? {
            if ty.is(np.ndarray.bind(py)) || obj.is_instance(np.generic.bind(py)).map_err(|e| self.pyerr(e))? {
                return self.numpy(obj, ty.is(np.ndarray.bind(py)));
            }
        }
        // A builtin type's subclass that is not allowlisted is stored as its builtin value, as
        // LangGraph stores it (LangChain's `TextAccessor` is a str). Enums and named tuples
        // are classes of their own: their type is what they mean.
        let record = is_enum(&ty).map_err(|e| self.pyerr(e))? || ty.hasattr("_fields").unwrap_or(false);
        if !record {
            if let Some(base) = Builtin::base_of(&ty).map_err(|e| self.pyerr(e))? {
                return self.builtin_value(obj, base, depth);
            }
        }
        Err(self.refuse(&ty))
    }

    fn refuse(&self, ty: &Bound<'py, PyType>) -> CodecError {
        let name = type_name(ty);
        let flags: u64 = ty.getattr("__flags__").and_then(|f| f.extract()).unwrap_or(0);
        if flags & PY_TPFLAGS_HEAPTYPE != 0 {
            return CodecError::NotAllowlisted { path: ValuePath::default(), class: name };
        }
        let reason = "cannot be serialized (supported: JSON types, the standard types listed in \
                      ferrograph.serde, numpy arrays, and allowed classes)"
            .to_owned();
        CodecError::Unsupported { path: ValuePath::default(), type_name: name, reason }
    }

    /// The builtin value of an instance of a builtin type's subclass, read from the object's
    /// own storage (a subclass's overridden methods are not called).
    fn builtin_value(&mut self, obj: &Bound<'py, PyAny>, base: Builtin, depth: usize) -> Result<(), CodecError> {
        let cast_err = |e: pyo3::CastError<'_, '_>| CodecError::Python { path: ValuePath::default(), message: e.to_string() };
        match base {
            Builtin::Str => return self.string(obj.cast::<PyString>().map_err(cast_err)?),
            Builtin::Int => return self.int(obj),
            Builtin::Float => self.float(obj.cast::<PyFloat>().map_err(cast_err)?.value()),
            Builtin::Bytes => self.tagged_str("bytes", &text::b64_encode(obj.cast::<PyBytes>().map_err(cast_err)?.as_bytes())),
            Builtin::List => return self.array(obj.cast::<PyList>().map_err(cast_err)?.iter(), depth),
            Builtin::Dict => {
                let dict = obj.cast::<PyDict>().map_err(cast_err)?;
                if !self.dict(dict, depth)? {
                    return self.dict_pairs(dict, depth);
                }
            }
            Builtin::Tuple => {
                self.open_tag("tuple");
                self.array(obj.cast::<PyTuple>().map_err(cast_err)?.iter(), depth)?;
                self.out.push('}');
            }
            Builtin::Set => {
                self.open_tag("set");
                self.array(obj.cast::<PySet>().map_err(cast_err)?.iter(), depth)?;
                self.out.push('}');
            }
            Builtin::FrozenSet => {
                self.open_tag("frozenset");
                self.array(obj.cast::<PyFrozenSet>().map_err(cast_err)?.iter(), depth)?;
                self.out.push('}');
            }
        }
        Ok(())
    }

    /// A standard type of [`stdtypes`], by its tag.
    #[inline(never)]
    fn standard(&mut self, obj: &Bound<'py, PyAny>, std: Std, depth: usize) -> Result<(), CodecError> {
        let py = self.py;
        let attr = |name: &str| obj.getattr(name).map_err(py_err);
        self.open_tag(std.tag());
        match std.shape() {
            Shape::Text => {
                let text = if std == Std::ZoneInfo {
                    let key = attr("key")?;
                    if key.is_none() {
                        return Err(CodecError::Unsupported {
                            path: ValuePath::default(),
                            type_name: std.name(),
                            reason: "cannot be serialized without a key (a zone read from a file): \
                                     use ZoneInfo(key)"
                                .to_owned(),
                        });
                    }
                    key.str()
                } else {
                    obj.str()
                };
                let text = text.map_err(py_err)?;
                json::write_str(&mut self.out, text.to_str().map_err(py_err)?);
            }
            Shape::Number => {
                let off = obj.call_method1("utcoffset", (py.None(),)).map_err(py_err)?;
                let off = off.cast_into::<PyDelta>().map_err(|e| py_err(e.into()))?;
                let us = delta_micros(&off);
                json::write_i64(&mut self.out, us);
                if let Some(name) = self.custom_tzname(obj, us)? {
                    self.out.push_str(",\"tzname\":");
                    json::write_str(&mut self.out, &name);
                }
            }
            Shape::Items => {
                let items: Vec<Bound<'py, PyAny>> = match std {
                    Std::Fraction => vec![attr("numerator")?, attr("denominator")?],
                    Std::Complex => {
                        let c = obj.cast::<pyo3::types::PyComplex>().map_err(|e| py_err(e.into()))?;
                        vec![PyFloat::new(py, c.real()).into_any(), PyFloat::new(py, c.imag()).into_any()]
                    }
                    Std::Range => vec![attr("start")?, attr("stop")?, attr("step")?],
                    Std::Pattern => vec![attr("pattern")?, attr("flags")?],
                    _ => obj.try_iter().and_then(|it| it.collect::<PyResult<_>>()).map_err(py_err)?,
                };
                self.array(items.into_iter(), depth)?;
                if std == Std::Deque {
                    let maxlen = attr("maxlen")?;
                    if !maxlen.is_none() {
                        self.out.push_str(",\"maxlen\":");
                        self.int(&maxlen)?;
                    }
                }
            }
            Shape::Pairs => {
                // Through `items()`: an OrderedDict's order is its own, not its dict's.
                let items: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)> = obj
                    .call_method0("items")
                    .and_then(|it| it.try_iter()?.map(|kv| kv?.extract()).collect::<PyResult<_>>())
                    .map_err(py_err)?;
                self.pairs(items.into_iter(), depth)?;
                if std == Std::DefaultDict {
                    let factory = attr("default_factory")?;
                    match stdtypes::factory_name(&factory).map_err(py_err)? {
                        Some(Some(name)) => {
                            self.out.push_str(",\"factory\":");
                            json::write_str(&mut self.out, name);
                        }
                        Some(None) => {}
                        None => {
                            return Err(CodecError::Unsupported {
                                path: ValuePath::default(),
                                type_name: std.name(),
                                reason: format!(
                                    "cannot be serialized with default_factory {}: only a builtin type \
                                     ({}) or None is stored",
                                    factory.repr().map(|r| r.to_string()).unwrap_or_default(),
                                    stdtypes::FACTORIES.join(", ")
                                ),
                            })
                        }
                    }
                }
            }
        }
        self.out.push('}');
        Ok(())
    }

    /// The name of a `datetime.timezone` when it is not the one its offset gets by default.
    fn custom_tzname(&self, tz: &Bound<'py, PyAny>, us: i64) -> Result<Option<String>, CodecError> {
        let name: String = tz
            .call_method1("tzname", (self.py.None(),))
            .and_then(|n| n.extract())
            .map_err(|e| self.pyerr(e))?;
        let mut default = String::from("UTC");
        if us != 0 {
            text::fmt_offset(&mut default, us);
        }
        Ok(if name == default { None } else { Some(name) })
    }

    /// A numpy array (dtype, shape and C-order bytes) or scalar (dtype and bytes). Arrays of
    /// objects hold arbitrary Python objects: refused.
    #[inline(never)]
    fn numpy(&mut self, obj: &Bound<'py, PyAny>, array: bool) -> Result<(), CodecError> {
        let dtype = obj.getattr("dtype").map_err(|e| self.pyerr(e))?;
        let refuse = |why: &str| CodecError::Unsupported {
            path: ValuePath::default(),
            type_name: type_name(&obj.get_type()),
            reason: format!("cannot be serialized: {why}"),
        };
        if dtype.getattr("hasobject").and_then(|h| h.is_truthy()).map_err(|e| self.pyerr(e))? {
            return Err(refuse("its dtype holds Python objects (only numeric, bool, str, bytes and time dtypes are stored)"));
        }
        if !dtype.getattr("fields").map_err(|e| self.pyerr(e))?.is_none() {
            return Err(refuse("structured dtypes are not stored"));
        }
        let dtype: String = dtype.getattr("str").and_then(|s| s.extract()).map_err(|e| self.pyerr(e))?;
        let data = obj.call_method0("tobytes").map_err(|e| self.pyerr(e))?;
        let data = data.cast_into::<PyBytes>().map_err(|e| self.pyerr(e.into()))?;
        self.open_tag(if array { "ndarray" } else { "npscalar" });
        json::write_str(&mut self.out, &text::b64_encode(data.as_bytes()));
        self.out.push_str(",\"dtype\":");
        json::write_str(&mut self.out, &dtype);
        if array {
            let shape: Vec<u64> = obj.getattr("shape").and_then(|s| s.extract()).map_err(|e| self.pyerr(e))?;
            self.out.push_str(",\"shape\":[");
            for (i, n) in shape.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                json::write_u64(&mut self.out, *n);
            }
            self.out.push(']');
        }
        self.out.push('}');
        Ok(())
    }

    /// Appends the tz offset of a datetime/time to `out`; returns the extra keys (zone key or a
    /// custom tz name) the tagged object carries.
    fn tz_parts(&self, tz: Option<Bound<'py, PyTzInfo>>, out: &mut String) -> Result<Vec<(&'static str, String)>, CodecError> {
        let Some(tz) = tz else { return Ok(Vec::new()) };
        let py = self.py;
        let tz_ty = tz.get_type();
        if tz_ty.is(TIMEZONE_TYPE.import(py, "datetime", "timezone").map_err(|e| self.pyerr(e))?) {
            let off = tz.call_method1("utcoffset", (py.None(),)).map_err(|e| self.pyerr(e))?;
            let off = off.cast_into::<PyDelta>().map_err(|e| self.pyerr(e.into()))?;
            let us = delta_micros(&off);
            text::fmt_offset(out, us);
            return Ok(self.custom_tzname(&tz, us)?.map(|name| vec![("tzname", name)]).unwrap_or_default());
        }
        let is_zoneinfo = match ZONEINFO_TYPE.import(py, "zoneinfo", "ZoneInfo") {
            Ok(zi) => tz_ty.is(zi),
            Err(_) => false,
        };
        if is_zoneinfo {
            if let Ok(key) = tz.getattr("key").and_then(|k| k.extract::<String>()) {
                return Ok(vec![("tz", key)]);
            }
        }
        Err(CodecError::Unsupported {
            path: ValuePath::default(),
            type_name: type_name(&tz_ty),
            reason: "cannot be serialized as a tzinfo (supported: datetime.timezone and \
                     zoneinfo.ZoneInfo with a key)"
                .to_owned(),
        })
    }

    fn with_extras(&mut self, tag: &str, s: &str, extras: Vec<(&'static str, String)>, fold: bool) {
        self.open_tag(tag);
        json::write_str(&mut self.out, s);
        for (k, x) in extras {
            self.out.push(',');
            json::write_str(&mut self.out, k);
            self.out.push(':');
            json::write_str(&mut self.out, &x);
        }
        if fold {
            self.out.push_str(",\"fold\":1");
        }
        self.out.push('}');
    }

    fn datetime(&mut self, dt: &Bound<'py, PyDateTime>) -> Result<(), CodecError> {
        let mut s = String::with_capacity(32);
        text::fmt_date(&mut s, dt.get_year(), dt.get_month(), dt.get_day());
        s.push('T');
        text::fmt_time(&mut s, dt.get_hour(), dt.get_minute(), dt.get_second(), dt.get_microsecond());
        let extras = self.tz_parts(dt.get_tzinfo(), &mut s)?;
        self.with_extras("datetime", &s, extras, dt.get_fold());
        Ok(())
    }

    fn time(&mut self, t: &Bound<'py, PyTime>) -> Result<(), CodecError> {
        let mut s = String::with_capacity(24);
        text::fmt_time(&mut s, t.get_hour(), t.get_minute(), t.get_second(), t.get_microsecond());
        let extras = self.tz_parts(t.get_tzinfo(), &mut s)?;
        self.with_extras("time", &s, extras, t.get_fold());
        Ok(())
    }

    /// One `"name":value` member of a fields object; `first` tracks the separator.
    fn field(&mut self, first: &mut bool, name: &str, v: &Bound<'py, PyAny>, depth: usize) -> Result<(), CodecError> {
        if !std::mem::take(first) {
            self.out.push(',');
        }
        json::write_str(&mut self.out, name);
        self.out.push(':');
        self.value(v, depth + 1).map_err(|e| e.at(PathSeg::Attr(name.to_owned())))
    }

    fn instance(&mut self, obj: &Bound<'py, PyAny>, entry: &ClassEntry, depth: usize) -> Result<(), CodecError> {
        let py = self.py;
        let tag = match &entry.kind {
            ClassKind::Enum => "enum",
            ClassKind::Dataclass { .. } => "dataclass",
            ClassKind::NamedTuple => "namedtuple",
            ClassKind::Pydantic => "pydantic",
            ClassKind::Subclass { .. } => "subclass",
            ClassKind::Object { .. } => "object",
        };
        self.out.push_str("{\"");
        self.out.push_str(TAG);
        self.out.push_str("\":");
        json::write_str(&mut self.out, tag);
        self.out.push_str(",\"cls\":");
        json::write_str(&mut self.out, &entry.name);
        self.out.push_str(",\"v\":");
        match &entry.kind {
            ClassKind::Enum => {
                let v = obj.getattr("_value_").map_err(|e| self.pyerr(e))?;
                self.value(&v, depth + 1).map_err(|e| e.at(PathSeg::Attr("value".into())))?;
            }
            ClassKind::Dataclass { init, no_init } => {
                self.out.push('{');
                let mut first = true;
                for name in init.iter().chain(no_init) {
                    let name = name.bind(py);
                    let key = name.to_str().map_err(|e| self.pyerr(e))?;
                    let v = obj.getattr(name).map_err(|e| self.pyerr(e).at(PathSeg::Attr(key.to_owned())))?;
                    self.field(&mut first, key, &v, depth)?;
                }
                self.out.push('}');
            }
            ClassKind::NamedTuple => {
                let t = obj.cast::<PyTuple>().map_err(|e| self.pyerr(e.into()))?;
                self.array(t.iter(), depth)?;
            }
            ClassKind::Pydantic => {
                let fields_set = self.pydantic(obj, depth)?;
                if let Some(names) = fields_set {
                    self.out.push_str(",\"set\":[");
                    for (i, n) in names.iter().enumerate() {
                        if i > 0 {
                            self.out.push(',');
                        }
                        json::write_str(&mut self.out, n);
                    }
                    self.out.push(']');
                }
            }
            ClassKind::Subclass { base } => {
                self.out.push('[');
                self.builtin_value(obj, *base, depth).map_err(|e| e.at(PathSeg::Attr(base.name().into())))?;
                self.out.push_str(",{");
                let mut first = true;
                if let Ok(d) = obj.getattr("__dict__") {
                    let d = d.cast_into::<PyDict>().map_err(|e| self.pyerr(e.into()))?;
                    self.attrs(&d, &mut first, depth)?;
                }
                self.out.push_str("}]");
            }
            ClassKind::Object { slots } => {
                self.out.push('{');
                let mut first = true;
                for name in slots {
                    let name = name.bind(py);
                    if let Ok(v) = obj.getattr(name) {
                        let key = name.to_str().map_err(|e| self.pyerr(e))?;
                        self.field(&mut first, key, &v, depth)?;
                    }
                }
                if let Ok(d) = obj.getattr("__dict__") {
                    let d = d.cast_into::<PyDict>().map_err(|e| self.pyerr(e.into()))?;
                    self.attrs(&d, &mut first, depth)?;
                }
                self.out.push('}');
            }
        }
        self.out.push('}');
        Ok(())
    }

    /// Writes the str-keyed entries of an instance dict as fields; returns how many.
    fn attrs(&mut self, d: &Bound<'py, PyDict>, first: &mut bool, depth: usize) -> Result<usize, CodecError> {
        for (k, v) in d.iter() {
            let k = k.cast_into::<PyString>().map_err(|e| self.pyerr(e.into()))?;
            let key = k.to_str().map_err(|e| self.pyerr(e))?;
            self.field(first, key, &v, depth)?;
        }
        Ok(d.len())
    }

    /// Writes the fields object of a pydantic v2 model (`__dict__`, extras, and private
    /// attributes under `__private__`); returns `fields_set`, sorted, when it is not all of them.
    fn pydantic(&mut self, obj: &Bound<'py, PyAny>, depth: usize) -> Result<Option<Vec<String>>, CodecError> {
        self.out.push('{');
        let mut first = true;
        let d = obj.getattr("__dict__").map_err(|e| self.pyerr(e))?;
        let mut count = self.attrs(&d.cast_into::<PyDict>().map_err(|e| self.pyerr(e.into()))?, &mut first, depth)?;
        if let Ok(extra) = obj.getattr("__pydantic_extra__") {
            if let Ok(extra) = extra.cast_into::<PyDict>() {
                count += self.attrs(&extra, &mut first, depth)?;
            }
        }
        let mut fields_set = None;
        if let Ok(fs) = obj.getattr("__pydantic_fields_set__") {
            let fs = fs.cast_into::<PySet>().map_err(|e| self.pyerr(e.into()))?;
            if fs.len() != count {
                let mut names: Vec<String> = fs.iter().filter_map(|n| n.extract().ok()).collect();
                names.sort();
                fields_set = Some(names);
            }
        }
        if let Ok(private) = obj.getattr("__pydantic_private__") {
            if let Ok(private) = private.cast_into::<PyDict>() {
                if !private.is_empty() {
                    if !first {
                        self.out.push(',');
                    }
                    self.out.push_str("\"__private__\":");
                    self.value(private.as_any(), depth + 1)
                        .map_err(|e| e.at(PathSeg::Attr("__pydantic_private__".into())))?;
                }
            }
        }
        self.out.push('}');
        Ok(fields_set)
    }
}

fn py_err(e: PyErr) -> CodecError {
    CodecError::Python { path: ValuePath::default(), message: e.to_string() }
}

pub(super) fn delta_micros(d: &Bound<'_, PyDelta>) -> i64 {
    (i64::from(d.get_days()) * 86_400 + i64::from(d.get_seconds())) * 1_000_000 + i64::from(d.get_microseconds())
}

pub(super) fn uuid_text(n: u128) -> String {
    let h = format!("{n:032x}");
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text_is_canonical() {
        assert_eq!(uuid_text(0x12345678_1234_5678_1234_567812345678), "12345678-1234-5678-1234-567812345678");
        assert_eq!(uuid_text(1), "00000000-0000-0000-0000-000000000001");
    }
}
