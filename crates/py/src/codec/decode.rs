//! The codec's reader: parses typed JSON bytes straight into Python objects (no intermediate
//! tree). Nesting is counted in Python levels and refused past the limit as it is met, so
//! hostile depth never reaches the stack. A tagged object is one whose first key is the tag.

use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::{
    IntoPyDict, PyBool, PyByteArray, PyBytes, PyDate, PyDateTime, PyDelta, PyDict, PyFloat, PyFrozenSet,
    PyInt, PyList, PySet, PyString, PyTime, PyTuple, PyTzInfo,
};
use serde_json::{Map, Value};

use super::error::{CodecError, PathSeg, ValuePath};
use super::json::{Number, Reader, SyntaxError};
use super::registry::{Builtin, ClassEntry, ClassKind, Registry};
use super::stdtypes::{self, Shape, Std};
use super::{key_seg, repr_seg, text, DECIMAL_TYPE, TAG, TIMEZONE_TYPE, UUID_TYPE};

/// Every tag the reader knows besides those of [`Std`]; anything else is refused before its
/// body is read.
const TAGS: &[&str] = &[
    "tuple", "set", "frozenset", "dict", "int", "float", "str", "bytes", "bytearray", "date", "datetime", "time",
    "timedelta", "uuid", "decimal", "enum", "dataclass", "pydantic", "namedtuple", "subclass", "object", "ndarray",
    "npscalar",
];

fn rebuild_err(what: &str) -> impl Fn(PyErr) -> CodecError + '_ {
    move |e| CodecError::Rebuild { path: ValuePath::default(), what: what.to_owned(), message: e.to_string() }
}

/// Dict keys recur across documents (`role`, `content`, ...): one Python str per distinct key
/// is kept here and reused, so a key costs a hash and a compare instead of a new str.
struct KeyCache {
    slots: Vec<Option<CachedKey>>,
}

/// A key's UTF-8 bytes and its str.
type CachedKey = (Box<[u8]>, Py<PyString>);

const KEY_SLOTS: usize = 1024;
const MAX_CACHED_KEY: usize = 64;

static KEYS: Mutex<KeyCache> = Mutex::new(KeyCache { slots: Vec::new() });

fn key_hash(s: &[u8]) -> usize {
    let h = s.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, c| (h ^ u64::from(*c)).wrapping_mul(0x100_0000_01b3));
    (h ^ (h >> 32)) as usize % KEY_SLOTS
}

/// The key's str; `None` when the bytes are not UTF-8.
fn key_str<'py>(cache: &mut Option<MutexGuard<'static, KeyCache>>, py: Python<'py>, s: &[u8]) -> Option<Bound<'py, PyString>> {
    let Some(cache) = cache.as_mut().filter(|_| s.len() <= MAX_CACHED_KEY) else {
        return PyString::from_bytes(py, s).ok();
    };
    if cache.slots.is_empty() {
        cache.slots.resize_with(KEY_SLOTS, || None);
    }
    let slot = &mut cache.slots[key_hash(s)];
    if let Some((k, v)) = slot {
        if **k == *s {
            return Some(v.bind(py).clone());
        }
    }
    let v = PyString::intern(py, std::str::from_utf8(s).ok()?);
    *slot = Some((s.into(), v.clone().unbind()));
    Some(v)
}

/// The `v` member of a tagged object, read in the shape its tag calls for.
enum Body<'py> {
    /// Containers are built as soon as their body is read (a namedtuple's items as a tuple).
    Built(Bound<'py, PyAny>),
    /// The fields of a dataclass, model or object, in order.
    Fields(Vec<(String, Bound<'py, PyAny>)>),
    /// The small JSON body of a scalar tag (`"int"`, `"datetime"`, `"timedelta"`, ...).
    Json(Value),
    /// A builtin subclass's builtin value and its attributes.
    Subclass(Bound<'py, PyAny>, Vec<(String, Bound<'py, PyAny>)>),
}

enum Member {
    Body,
    Class,
    Extra(String),
}

pub(super) struct Dec<'a, 'py> {
    py: Python<'py>,
    reg: &'a Registry,
    max: usize,
    r: Reader<'a>,
    /// Unescaped bytes of the string being read.
    scratch: Vec<u8>,
    /// Items of the lists being read, innermost last.
    stack: Vec<Bound<'py, PyAny>>,
    /// `None` when another decode (on another thread, or a constructor re-entering the codec)
    /// holds the cache: keys are then simply not cached.
    keys: Option<MutexGuard<'static, KeyCache>>,
}

impl<'a, 'py> Dec<'a, 'py> {
    pub fn new(py: Python<'py>, reg: &'a Registry, data: &'a [u8]) -> Self {
        Dec {
            py,
            reg,
            max: reg.max_depth(),
            r: Reader::new(data),
            scratch: Vec::new(),
            stack: Vec::new(),
            keys: KEYS.try_lock().ok(),
        }
    }

    /// The one value the bytes hold; only whitespace may follow it.
    pub fn document(mut self) -> Result<Bound<'py, PyAny>, CodecError> {
        let v = self.value(0)?;
        self.r.end()?;
        Ok(v)
    }

    fn check_depth(&self, depth: usize) -> Result<(), CodecError> {
        if depth >= self.max {
            return Err(CodecError::TooDeep { path: ValuePath::default(), limit: self.max, writing: false });
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Bound<'py, PyAny>, CodecError> {
        let py = self.py;
        match self.r.peek() {
            Some(b'"') => {
                let at = self.r.pos();
                let s = self.r.string(&mut self.scratch)?;
                // Python's UTF-8 decoder checks the bytes as it copies them.
                match PyString::from_bytes(py, s) {
                    Ok(s) => Ok(s.into_any()),
                    Err(_) => Err(SyntaxError { pos: at, what: "invalid UTF-8 in string" }.into()),
                }
            }
            // A tagged object is finished from here rather than from `object`, so deep nesting
            // costs fewer frames a level.
            Some(b'{') => match self.object(depth)? {
                Some(dict) => Ok(dict),
                None => self.tagged(depth),
            },
            Some(b'[') => self.list(depth),
            Some(b'-' | b'0'..=b'9') => Ok(match self.r.number()? {
                Number::Int(i) => i.into_pyobject(py).unwrap_or_else(|e| match e {}).into_any(),
                Number::UInt(u) => u.into_pyobject(py).unwrap_or_else(|e| match e {}).into_any(),
                Number::Float(f) => PyFloat::new(py, f).into_any(),
            }),
            Some(b't') => {
                self.r.literal("true")?;
                Ok(PyBool::new(py, true).to_owned().into_any())
            }
            Some(b'f') => {
                self.r.literal("false")?;
                Ok(PyBool::new(py, false).to_owned().into_any())
            }
            Some(b'n') => {
                self.r.literal("null")?;
                Ok(py.None().into_bound(py))
            }
            _ => Err(self.r.err("expected value").into()),
        }
    }

    fn list(&mut self, depth: usize) -> Result<Bound<'py, PyAny>, CodecError> {
        self.check_depth(depth)?;
        let base = self.items(depth)?;
        let list = PyList::new(self.py, self.stack.drain(base..)).map_err(rebuild_err("list"))?;
        Ok(list.into_any())
    }

    /// Reads `[v, ...]` (the `[` is next) onto the stack, items one level down; returns where
    /// they start.
    fn items(&mut self, depth: usize) -> Result<usize, CodecError> {
        self.r.bump();
        let base = self.stack.len();
        if self.r.eat(b']') {
            return Ok(base);
        }
        loop {
            let i = self.stack.len() - base;
            let x = self.value(depth + 1).map_err(|e| e.at(PathSeg::Index(i)))?;
            self.stack.push(x);
            if !self.r.eat(b',') {
                self.r.expect(b']', "expected ',' or ']'")?;
                return Ok(base);
            }
        }
    }

    /// A plain object as a dict; `None` when its first key is the tag, with the cursor after
    /// that key (the caller goes on with [`Dec::tagged`]).
    fn object(&mut self, depth: usize) -> Result<Option<Bound<'py, PyAny>>, CodecError> {
        self.check_depth(depth)?;
        self.r.bump();
        let py = self.py;
        let dict = PyDict::new(py);
        if self.r.eat(b'}') {
            return Ok(Some(dict.into_any()));
        }
        let mut first = true;
        loop {
            if self.r.peek() != Some(b'"') {
                return Err(self.r.err("expected a string key").into());
            }
            let at = self.r.pos();
            let s = self.r.string(&mut self.scratch)?;
            if first && s == TAG.as_bytes() {
                return Ok(None);
            }
            first = false;
            let Some(key) = key_str(&mut self.keys, py, s) else {
                return Err(SyntaxError { pos: at, what: "invalid UTF-8 in string" }.into());
            };
            self.r.expect(b':', "expected ':'")?;
            let v = self.value(depth + 1).map_err(|e| e.at(key_seg(key.to_str().unwrap_or("?"))))?;
            dict.set_item(key, v).map_err(rebuild_err("dict"))?;
            if !self.r.eat(b',') {
                self.r.expect(b'}', "expected ',' or '}'")?;
                return Ok(Some(dict.into_any()));
            }
        }
    }

    /// The rest of an object whose first key is the tag (the `:` is next).
    #[inline(never)]
    fn tagged(&mut self, depth: usize) -> Result<Bound<'py, PyAny>, CodecError> {
        self.r.expect(b':', "expected ':'")?;
        if self.r.peek() != Some(b'"') {
            return Err(CodecError::malformed("?", format!("the {TAG} key must hold a string")));
        }
        let name = self.r.string_str(&mut self.scratch)?;
        let Some(tag) = TAGS.iter().find(|t| **t == name).copied().or_else(|| Std::from_tag(name).map(Std::tag)) else {
            return Err(CodecError::UnknownTag { path: ValuePath::default(), tag: name.to_owned() });
        };
        let is_class = matches!(tag, "enum" | "dataclass" | "pydantic" | "namedtuple" | "subclass" | "object");
        let (mut body, mut entry, mut extras) = (None, None, Map::new());
        while self.r.eat(b',') {
            if self.r.peek() != Some(b'"') {
                return Err(self.r.err("expected a string key").into());
            }
            let member = match self.r.string_str(&mut self.scratch)? {
                "v" => Member::Body,
                "cls" if is_class => Member::Class,
                other => Member::Extra(other.to_owned()),
            };
            self.r.expect(b':', "expected ':'")?;
            match member {
                Member::Body => body = Some(self.body(tag, depth)?),
                // The class is checked as soon as it is named, before its body is read.
                Member::Class if self.r.peek() == Some(b'"') => {
                    let name = self.r.string_str(&mut self.scratch)?.to_owned();
                    entry = Some(self.class(&name)?);
                }
                Member::Class => {
                    self.extra()?;
                }
                Member::Extra(k) => {
                    let v = self.extra()?;
                    extras.insert(k, v);
                }
            }
        }
        self.r.expect(b'}', "expected ',' or '}'")?;
        let body = body.ok_or_else(|| CodecError::malformed(tag, "missing \"v\""))?;
        if let Some(std) = Std::from_tag(tag) {
            return self.standard(std, body, &extras);
        }
        match body {
            Body::Built(obj) if !is_class => Ok(obj),
            Body::Json(v) => self.scalar(tag, &v, &extras),
            body => self.instance(tag, entry, body, &extras),
        }
    }

    /// A member other than `v` and `cls`: small, read flat and parsed as plain JSON.
    fn extra(&mut self) -> Result<Value, CodecError> {
        if self.r.peek().is_none() {
            return Err(self.r.err("expected value").into());
        }
        let span = self.r.skip_value()?;
        serde_json::from_slice(span).map_err(|e| CodecError::InvalidJson { message: e.to_string() })
    }

    fn class(&self, name: &str) -> Result<Arc<ClassEntry>, CodecError> {
        match self.reg.lookup_name(self.py, name).map_err(rebuild_err(name))? {
            Ok(Some(e)) => Ok(e),
            Ok(None) => Err(CodecError::ClassNotAllowed { path: ValuePath::default(), class: name.to_owned() }),
            Err(()) => Err(CodecError::ClassNotLoaded { path: ValuePath::default(), class: name.to_owned() }),
        }
    }

    fn body(&mut self, tag: &'static str, depth: usize) -> Result<Body<'py>, CodecError> {
        let py = self.py;
        if let Some(std) = Std::from_tag(tag) {
            return Ok(match std.shape() {
                Shape::Items => {
                    if self.r.peek() != Some(b'[') {
                        return Err(CodecError::malformed(tag, "expected a list"));
                    }
                    let base = self.items(depth)?;
                    Body::Built(PyTuple::new(py, self.stack.drain(base..)).map_err(rebuild_err(tag))?.into_any())
                }
                Shape::Pairs => Body::Built(self.pairs(depth)?),
                Shape::Text | Shape::Number => Body::Json(self.extra()?),
            });
        }
        Ok(match tag {
            "tuple" | "set" | "frozenset" | "namedtuple" => {
                if self.r.peek() != Some(b'[') {
                    return Err(CodecError::malformed(tag, "expected a list"));
                }
                let base = self.items(depth)?;
                let items = self.stack.drain(base..);
                Body::Built(match tag {
                    "set" => PySet::new(py, items).map_err(rebuild_err("set"))?.into_any(),
                    "frozenset" => PyFrozenSet::new(py, items).map_err(rebuild_err("frozenset"))?.into_any(),
                    _ => PyTuple::new(py, items).map_err(rebuild_err("tuple"))?.into_any(),
                })
            }
            "dict" => Body::Built(self.pairs(depth)?),
            "enum" => Body::Built(self.value(depth + 1)?),
            "dataclass" | "pydantic" | "object" => Body::Fields(self.fields(tag, depth)?),
            "subclass" => {
                let bad = || CodecError::malformed(tag, "expected [value, {attributes}]");
                if !self.r.eat(b'[') {
                    return Err(bad());
                }
                let value = self.value(depth + 1)?;
                if !self.r.eat(b',') {
                    return Err(bad());
                }
                let fields = self.fields(tag, depth)?;
                if !self.r.eat(b']') {
                    return Err(bad());
                }
                Body::Subclass(value, fields)
            }
            _ if self.r.peek() == Some(b'"') => Body::Json(Value::String(self.r.string_str(&mut self.scratch)?.to_owned())),
            _ => Body::Json(self.extra()?),
        })
    }

    /// `[[key, value], ...]`, a dict whose keys are not all str.
    fn pairs(&mut self, depth: usize) -> Result<Bound<'py, PyAny>, CodecError> {
        let bad = || CodecError::malformed("dict", "expected [key, value] pairs");
        if self.r.peek() != Some(b'[') {
            return Err(CodecError::malformed("dict", "expected a list of pairs"));
        }
        self.r.bump();
        let dict = PyDict::new(self.py);
        if self.r.eat(b']') {
            return Ok(dict.into_any());
        }
        for i in 0.. {
            if !self.r.eat(b'[') {
                return Err(bad().at(PathSeg::Index(i)));
            }
            let k = self.value(depth + 1).map_err(|e| e.at(PathSeg::Index(i)))?;
            if !self.r.eat(b',') {
                return Err(bad().at(PathSeg::Index(i)));
            }
            let x = self.value(depth + 1).map_err(|e| e.at(repr_seg(&k)))?;
            if !self.r.eat(b']') {
                return Err(bad().at(PathSeg::Index(i)));
            }
            dict.set_item(&k, x).map_err(|e| rebuild_err("dict key")(e).at(repr_seg(&k)))?;
            if !self.r.eat(b',') {
                break;
            }
        }
        self.r.expect(b']', "expected ',' or ']'")?;
        Ok(dict.into_any())
    }

    fn fields(&mut self, tag: &str, depth: usize) -> Result<Vec<(String, Bound<'py, PyAny>)>, CodecError> {
        if self.r.peek() != Some(b'{') {
            return Err(CodecError::malformed(tag, "expected an object of fields"));
        }
        self.r.bump();
        let mut out = Vec::new();
        if self.r.eat(b'}') {
            return Ok(out);
        }
        loop {
            if self.r.peek() != Some(b'"') {
                return Err(self.r.err("expected a string key").into());
            }
            let k = self.r.string_str(&mut self.scratch)?.to_owned();
            self.r.expect(b':', "expected ':'")?;
            match self.value(depth + 1) {
                Ok(v) => out.push((k, v)),
                Err(e) => return Err(e.at(PathSeg::Attr(k))),
            }
            if !self.r.eat(b',') {
                self.r.expect(b'}', "expected ',' or '}'")?;
                return Ok(out);
            }
        }
    }

    fn str_body<'v>(&self, tag: &str, v: &'v Value) -> Result<&'v str, CodecError> {
        v.as_str().ok_or_else(|| CodecError::malformed(tag, "expected a string"))
    }

    fn b64(&self, tag: &str, v: &Value) -> Result<Vec<u8>, CodecError> {
        text::b64_decode(self.str_body(tag, v)?).ok_or_else(|| CodecError::malformed(tag, "invalid base64"))
    }

    /// A tagged value whose body is a small JSON scalar (or, for timedelta, a short list).
    #[inline(never)]
    fn scalar(&self, tag: &str, body: &Value, m: &Map<String, Value>) -> Result<Bound<'py, PyAny>, CodecError> {
        let py = self.py;
        let bad = |msg: &str| CodecError::malformed(tag, msg);
        Ok(match tag {
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
                PyDateTime::new_with_fold(py, d.year, d.month, d.day, c.hour, c.minute, c.second, c.micro, tz.as_ref(), fold(m))
                    .map_err(rebuild_err("datetime"))?
                    .into_any()
            }
            "time" => {
                let c = text::parse_time(self.str_body(tag, body)?).ok_or_else(|| bad("expected an ISO-8601 time"))?;
                let tz = self.tzinfo(tag, m, c.offset_us)?;
                PyTime::new_with_fold(py, c.hour, c.minute, c.second, c.micro, tz.as_ref(), fold(m))
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
            "ndarray" | "npscalar" => self.numpy(tag, body, m)?,
            // Container and class tags never carry a JSON body.
            _ => return Err(bad("unexpected body")),
        })
    }

    /// A standard type of [`stdtypes`], rebuilt with its own constructor.
    #[inline(never)]
    fn standard(&self, std: Std, body: Body<'py>, m: &Map<String, Value>) -> Result<Bound<'py, PyAny>, CodecError> {
        let py = self.py;
        let tag = std.tag();
        let name = std.name();
        let rebuild = rebuild_err(&name);
        let cls = std.class(py).map_err(&rebuild)?;
        Ok(match (std.shape(), body) {
            (Shape::Text, Body::Json(v)) => cls.call1((self.str_body(tag, &v)?,)).map_err(&rebuild)?,
            (Shape::Number, Body::Json(v)) => {
                let us = v.as_i64().ok_or_else(|| CodecError::malformed(tag, "expected an offset in microseconds"))?;
                let delta = micros_delta(py, us).map_err(&rebuild)?;
                match m.get("tzname") {
                    None => cls.call1((delta,)),
                    Some(n) => cls.call1((delta, n.as_str().ok_or_else(|| CodecError::malformed(tag, "\"tzname\" must be a string"))?)),
                }
                .map_err(&rebuild)?
            }
            (Shape::Items, Body::Built(items)) => {
                let items = items.cast_into::<PyTuple>().map_err(|e| rebuild(e.into()))?;
                match std {
                    Std::Deque => {
                        let maxlen = match m.get("maxlen") {
                            None => None,
                            Some(v) => Some(v.as_u64().ok_or_else(|| CodecError::malformed(tag, "\"maxlen\" must be a count"))?),
                        };
                        cls.call1((items, maxlen)).map_err(&rebuild)?
                    }
                    Std::Pattern => {
                        let pattern = py.import("re").and_then(|re| re.getattr("compile")).map_err(&rebuild)?;
                        pattern.call1(items).map_err(&rebuild)?
                    }
                    Std::Fraction | Std::Range => {
                        if !items.iter().all(|x| x.is_exact_instance_of::<PyInt>()) {
                            return Err(CodecError::malformed(tag, "expected ints"));
                        }
                        cls.call1(items).map_err(&rebuild)?
                    }
                    _ => {
                        if !items.iter().all(|x| x.is_exact_instance_of::<PyFloat>()) || items.len() != 2 {
                            return Err(CodecError::malformed(tag, "expected [real, imag]"));
                        }
                        cls.call1(items).map_err(&rebuild)?
                    }
                }
            }
            (Shape::Pairs, Body::Built(dict)) => match std {
                Std::DefaultDict => {
                    let factory = match m.get("factory") {
                        None => py.None().into_bound(py),
                        Some(f) => {
                            let f = f.as_str().ok_or_else(|| CodecError::malformed(tag, "\"factory\" must be a string"))?;
                            stdtypes::factory(py, f)
                                .map_err(&rebuild)?
                                .ok_or_else(|| CodecError::malformed(tag, format!("{f:?} is not a builtin type")))?
                        }
                    };
                    cls.call1((factory, dict)).map_err(&rebuild)?
                }
                _ => cls.call1((dict,)).map_err(&rebuild)?,
            },
            _ => return Err(CodecError::malformed(tag, "unexpected body")),
        })
    }

    /// A numpy array or scalar (numpy is imported to rebuild it: a fixed module, never one the
    /// data names). A dtype holding Python objects is refused.
    fn numpy(&self, tag: &str, body: &Value, m: &Map<String, Value>) -> Result<Bound<'py, PyAny>, CodecError> {
        let py = self.py;
        let rebuild = rebuild_err("numpy array");
        let data = self.b64(tag, body)?;
        let dtype_str = m.get("dtype").and_then(Value::as_str).ok_or_else(|| CodecError::malformed(tag, "missing \"dtype\""))?;
        let np = py.import("numpy").map_err(&rebuild)?;
        let dtype = np.getattr("dtype").and_then(|d| d.call1((dtype_str,))).map_err(&rebuild)?;
        if dtype.getattr("hasobject").and_then(|h| h.is_truthy()).map_err(&rebuild)? {
            return Err(CodecError::malformed(tag, "a dtype holding Python objects is never rebuilt"));
        }
        let shape: Option<Vec<u64>> = m.get("shape").and_then(Value::as_array).and_then(|a| a.iter().map(Value::as_u64).collect());
        if dtype.getattr("itemsize").and_then(|n| n.extract::<usize>()).map_err(&rebuild)? == 0 {
            // Empty strings (`<U0`): no bytes to read, every item is the empty value.
            return match shape {
                Some(shape) if tag == "ndarray" => np.getattr("zeros").and_then(|z| z.call1((shape, dtype))).map_err(&rebuild),
                _ => dtype.getattr("type").and_then(|t| t.call0()).map_err(&rebuild),
            };
        }
        if tag == "npscalar" {
            // numpy drops trailing NULs when it reads fixed-width text back, but a str_/bytes_
            // scalar is a Python str/bytes that keeps them: rebuild it from its exact text.
            let kind: String = dtype.getattr("kind").and_then(|k| k.extract()).map_err(&rebuild)?;
            let exact = match kind.as_str() {
                "U" => {
                    let text = utf32_text(&data, dtype_str.starts_with('>')).ok_or_else(|| CodecError::malformed(tag, "not UTF-32 text"))?;
                    Some(PyString::new(py, &text).into_any())
                }
                "S" => Some(PyBytes::new(py, &data).into_any()),
                _ => None,
            };
            if let Some(exact) = exact {
                return dtype.getattr("type").and_then(|t| t.call1((exact,))).map_err(&rebuild);
            }
        }
        let flat = np
            .getattr("frombuffer")
            .and_then(|f| f.call((PyBytes::new(py, &data),), Some(&[("dtype", &dtype)].into_py_dict(py)?)))
            .map_err(&rebuild)?;
        if tag == "npscalar" {
            return flat.get_item(0).map_err(&rebuild);
        }
        let shape = shape.ok_or_else(|| CodecError::malformed(tag, "\"shape\" must be a list of sizes"))?;
        let shape = PyTuple::new(py, shape).map_err(&rebuild)?;
        flat.call_method1("reshape", (shape,)).and_then(|a| a.call_method0("copy")).map_err(&rebuild)
    }

    fn tzinfo(&self, tag: &str, m: &Map<String, Value>, offset_us: Option<i64>) -> Result<Option<Bound<'py, PyTzInfo>>, CodecError> {
        let py = self.py;
        if let Some(key) = m.get("tz") {
            let key = key.as_str().ok_or_else(|| CodecError::malformed(tag, "\"tz\" must be a string"))?;
            return PyTzInfo::timezone(py, key).map(Some).map_err(rebuild_err("zoneinfo.ZoneInfo"));
        }
        let Some(us) = offset_us else { return Ok(None) };
        let delta = micros_delta(py, us).map_err(rebuild_err("timedelta"))?;
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

    fn instance(
        &self,
        tag: &str,
        entry: Option<Arc<ClassEntry>>,
        body: Body<'py>,
        m: &Map<String, Value>,
    ) -> Result<Bound<'py, PyAny>, CodecError> {
        let py = self.py;
        let entry = entry.ok_or_else(|| CodecError::malformed(tag, "missing \"cls\" string"))?;
        let name = entry.name.as_str();
        let cls = entry.cls.bind(py);
        let rebuild = rebuild_err(name);
        let obj = match (&entry.kind, tag, body) {
            (ClassKind::Enum, "enum", Body::Built(v)) => cls.call1((v,)).map_err(&rebuild)?,
            (ClassKind::NamedTuple, "namedtuple", Body::Built(items)) => {
                let items = items.cast_into::<PyTuple>().map_err(|e| rebuild(e.into()))?;
                cls.call1(items).map_err(&rebuild)?
            }
            (ClassKind::Dataclass { init, .. }, "dataclass", Body::Fields(fields)) => {
                let kw = PyDict::new(py);
                let mut late = Vec::new();
                for (k, v) in fields {
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
            (ClassKind::Pydantic, "pydantic", Body::Fields(fields)) => {
                let kw = PyDict::new(py);
                let mut private = None;
                for (k, v) in fields {
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
            (ClassKind::Subclass { base }, "subclass", Body::Subclass(value, fields)) => {
                let builtin = base.py_type(py);
                if !value.is_instance(&builtin).map_err(&rebuild)? {
                    return Err(CodecError::malformed(tag, format!("class '{name}' holds a {}", base.name())));
                }
                let obj = match base {
                    Builtin::List | Builtin::Dict | Builtin::Set => {
                        let obj = builtin.call_method1("__new__", (cls,)).map_err(&rebuild)?;
                        let fill = if *base == Builtin::List { "extend" } else { "update" };
                        builtin.getattr(fill).and_then(|f| f.call1((&obj, value))).map_err(&rebuild)?;
                        obj
                    }
                    _ => builtin.call_method1("__new__", (cls, value)).map_err(&rebuild)?,
                };
                set_attrs(&obj, fields).map_err(&rebuild)?;
                obj
            }
            (ClassKind::Object { .. }, "object", Body::Fields(fields)) => {
                let obj = cls.call_method1("__new__", (cls,)).map_err(&rebuild)?;
                set_attrs(&obj, fields).map_err(&rebuild)?;
                obj
            }
            _ => return Err(CodecError::malformed(tag, format!("class '{name}' is not of this kind"))),
        };
        Ok(obj)
    }
}

/// A timedelta of `us` microseconds.
fn micros_delta(py: Python<'_>, us: i64) -> PyResult<Bound<'_, PyDelta>> {
    let days = i32::try_from(us.div_euclid(86_400_000_000))
        .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("offset out of range"))?;
    let rest = us.rem_euclid(86_400_000_000);
    PyDelta::new(py, days, (rest / 1_000_000) as i32, (rest % 1_000_000) as i32, true)
}

fn fold(m: &Map<String, Value>) -> bool {
    m.get("fold").and_then(Value::as_i64) == Some(1)
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

/// numpy's fixed-width text: UTF-32 code units, little-endian unless `big_endian`.
fn utf32_text(data: &[u8], big_endian: bool) -> Option<String> {
    if !data.len().is_multiple_of(4) {
        return None;
    }
    data.chunks_exact(4)
        .map(|c| {
            let unit = [c[0], c[1], c[2], c[3]];
            char::from_u32(if big_endian { u32::from_be_bytes(unit) } else { u32::from_le_bytes(unit) })
        })
        .collect()
}
