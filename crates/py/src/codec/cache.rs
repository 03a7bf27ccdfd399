//! Caches of decoded values: for savers that keep encoded text in memory (the native memory
//! saver, [`DecodeCache`], by the stored text's identity) and for the values SQL savers read
//! ([`TextCache`], by the bytes themselves): reading the same stored value again copies the
//! containers of the value decoded the first time instead of parsing its text again. A reader always gets objects of its own, as
//! from a decode: only immutable leaves (str, int, float, bool, None, bytes, dates and times)
//! are shared between readers, and values holding anything else (sets, dataclasses, models,
//! messages...) are never cached.
//!
//! Entries are keyed by the identity of the stored text (`RawJson` shares one allocation per
//! stored value, and the entry holds a reference to it, so the address cannot be reused while
//! the entry lives). A value is cached on its second read: a value read once (a scan through
//! history, the engine loading a thread) costs no copy. Small values are not cached: decoding
//! them costs no more than a copy.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use ferrograph_checkpoint::RawJson;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyBytes, PyDate, PyDateTime, PyDelta, PyDict, PyFloat, PyInt, PyList, PyString, PyTime,
    PyTuple,
};

/// Text shorter than this is decoded every time.
const MIN_CACHED_LEN: usize = 128;

struct Entry {
    raw: RawJson,
    value: Py<PyAny>,
}

#[derive(Default)]
struct Entries {
    by_text: HashMap<usize, Entry>,
    /// Insertion order, for evicting the oldest first.
    order: VecDeque<usize>,
    text_bytes: usize,
    /// Texts read once lately (held, so their addresses stay theirs), oldest first.
    read_once: HashMap<usize, RawJson>,
    read_once_order: VecDeque<usize>,
}

/// How many texts read once are remembered.
const READ_ONCE_REMEMBERED: usize = 4096;

/// Decoded values by stored text, bounded by the total length of their texts.
pub struct DecodeCache {
    max_text_bytes: usize,
    entries: Mutex<Entries>,
}

fn key(raw: &RawJson) -> usize {
    raw.as_str().as_ptr() as usize
}

impl DecodeCache {
    pub fn new(max_text_bytes: usize) -> Self {
        DecodeCache { max_text_bytes, entries: Mutex::new(Entries::default()) }
    }

    /// The value `raw` holds, as objects of the caller's own: copied from the cache, or
    /// decoded with `decode` (and cached when it can be copied safely).
    pub fn get_or_decode<'py>(
        &self,
        py: Python<'py>,
        raw: &RawJson,
        decode: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if raw.as_str().len() < MIN_CACHED_LEN || raw.as_str().len() > self.max_text_bytes {
            return decode();
        }
        let (cached, read_before) = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            let cached = entries.by_text.get(&key(raw)).map(|e| e.value.clone_ref(py));
            let read_before = cached.is_none() && entries.remember_read(raw);
            (cached, read_before)
        };
        if let Some(master) = cached {
            return fresh_copy(master.bind(py));
        }
        let value = decode()?;
        if read_before && copyable(&value, 0).is_some() {
            let master = fresh_copy(&value)?.unbind();
            self.insert(raw, master);
        }
        Ok(value)
    }

    fn insert(&self, raw: &RawJson, value: Py<PyAny>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let len = raw.as_str().len();
        if entries.by_text.insert(key(raw), Entry { raw: raw.clone(), value }).is_some() {
            return; // another reader cached it meanwhile: same text, same length
        }
        entries.order.push_back(key(raw));
        entries.text_bytes += len;
        while entries.text_bytes > self.max_text_bytes {
            let Some(oldest) = entries.order.pop_front() else { break };
            if let Some(gone) = entries.by_text.remove(&oldest) {
                entries.text_bytes -= gone.raw.as_str().len();
            }
        }
    }
}

/// Decoded values by their encoded bytes, for the values SQL savers read: a list page or a
/// thread's latest checkpoint read again, and the checkpoints of a thread that share a value
/// (a list rewritten unchanged is rebuilt to the same bytes), decode each value once. Keyed by
/// content, an entry is right for any database and any saver, whatever was deleted or written
/// since. A value is cached on its second read, so a scan through history that reads each
/// value once costs no copy; small values are not cached.
pub struct TextCache {
    max_text_bytes: usize,
    entries: Mutex<TextEntries>,
}

/// Keyed by whole value texts, hashed on every read: foldhash (seeded per process) where
/// SipHash took about 13K instructions for a 4.8 KB text.
type TextHasher = foldhash::fast::RandomState;

#[derive(Default)]
struct TextEntries {
    /// The value and how many levels of containers it nests (see [`copyable`]).
    by_text: HashMap<Arc<[u8]>, (Py<PyAny>, usize), TextHasher>,
    order: VecDeque<Arc<[u8]>>,
    text_bytes: usize,
    /// Hashes of texts read once lately, oldest first (a collision only caches a text early).
    read_once: HashSet<u64, TextHasher>,
    read_once_order: VecDeque<u64>,
}

impl TextCache {
    pub fn new(max_text_bytes: usize) -> Self {
        TextCache { max_text_bytes, entries: Mutex::new(TextEntries::default()) }
    }

    /// The value `text` encodes, as objects of the caller's own: copied from the cache, or
    /// decoded with `decode` (and cached when it can be copied safely). A cached value nested
    /// deeper than `max_depth` levels is decoded again, so that the decoder refuses it.
    pub fn get_or_decode<'py>(
        &self,
        py: Python<'py>,
        text: &[u8],
        max_depth: usize,
        decode: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if text.len() < MIN_CACHED_LEN || text.len() > self.max_text_bytes {
            return decode();
        }
        let (cached, read_before) = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            match entries.by_text.get(text) {
                Some((value, levels)) if *levels <= max_depth => (Some(value.clone_ref(py)), false),
                Some(_) => (None, false),
                None => (None, entries.remember_read(text)),
            }
        };
        if let Some(master) = cached {
            return fresh_copy(master.bind(py));
        }
        let value = decode()?;
        if read_before {
            if let Some(levels) = copyable(&value, 0) {
                let master = fresh_copy(&value)?.unbind();
                self.insert(text, master, levels);
            }
        }
        Ok(value)
    }

    fn insert(&self, text: &[u8], value: Py<PyAny>, levels: usize) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.by_text.contains_key(text) {
            return; // another reader cached it meanwhile
        }
        let key: Arc<[u8]> = text.into();
        entries.by_text.insert(key.clone(), (value, levels));
        entries.order.push_back(key);
        entries.text_bytes += text.len();
        while entries.text_bytes > self.max_text_bytes {
            let Some(oldest) = entries.order.pop_front() else { break };
            entries.by_text.remove(&oldest);
            entries.text_bytes -= oldest.len();
        }
    }
}

impl TextEntries {
    /// Whether `text` was read once lately (then it is forgotten as such); otherwise remembers
    /// that it was read now.
    fn remember_read(&mut self, text: &[u8]) -> bool {
        let hash = self.read_once.hasher().hash_one(text);
        if self.read_once.remove(&hash) {
            return true;
        }
        self.read_once.insert(hash);
        self.read_once_order.push_back(hash);
        while self.read_once_order.len() > READ_ONCE_REMEMBERED {
            if let Some(oldest) = self.read_once_order.pop_front() {
                self.read_once.remove(&oldest);
            }
        }
        false
    }
}

impl Entries {
    /// Whether `raw` was read once lately (then it is forgotten as such); otherwise remembers
    /// that it was read now.
    fn remember_read(&mut self, raw: &RawJson) -> bool {
        if self.read_once.remove(&key(raw)).is_some() {
            return true;
        }
        self.read_once.insert(key(raw), raw.clone());
        self.read_once_order.push_back(key(raw));
        while self.read_once_order.len() > READ_ONCE_REMEMBERED {
            if let Some(oldest) = self.read_once_order.pop_front() {
                self.read_once.remove(&oldest);
            }
        }
        false
    }
}

/// An object no reader can change: shared as it is.
fn immutable_leaf(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_exact_instance_of::<PyString>()
        || obj.is_exact_instance_of::<PyInt>()
        || obj.is_exact_instance_of::<PyFloat>()
        || obj.is_exact_instance_of::<PyBool>()
        || obj.is_none()
        || obj.is_exact_instance_of::<PyBytes>()
        || obj.is_exact_instance_of::<PyDateTime>()
        || obj.is_exact_instance_of::<PyDate>()
        || obj.is_exact_instance_of::<PyTime>()
        || obj.is_exact_instance_of::<PyDelta>()
}

/// Containers nested deeper than this are not cached (the copy recurses).
const MAX_CACHED_DEPTH: usize = 64;

/// Whether `obj` is made only of dicts, lists and tuples over immutable leaves, so that
/// [`fresh_copy`] gives a value indistinguishable from a new decode: then how many levels of
/// containers it nests (0 for a leaf), what a decoder's depth limit counts.
fn copyable(obj: &Bound<'_, PyAny>, depth: usize) -> Option<usize> {
    if immutable_leaf(obj) {
        return Some(0);
    }
    if depth >= MAX_CACHED_DEPTH {
        return None;
    }
    let inner = if let Ok(list) = obj.cast_exact::<PyList>() {
        deepest(list.iter().map(|item| copyable(&item, depth + 1)))
    } else if let Ok(tuple) = obj.cast_exact::<PyTuple>() {
        deepest(tuple.iter().map(|item| copyable(&item, depth + 1)))
    } else if let Ok(dict) = obj.cast_exact::<PyDict>() {
        deepest(dict.iter().map(|(k, v)| if immutable_leaf(&k) { copyable(&v, depth + 1) } else { None }))
    } else {
        None
    };
    inner.map(|d| d + 1)
}

/// The most levels among items, or None when one is not copyable.
fn deepest(mut levels: impl Iterator<Item = Option<usize>>) -> Option<usize> {
    levels.try_fold(0, |d, item| Some(d.max(item?)))
}

/// Whether `obj` is a dict, list or tuple: in a [`copyable`] value, anything else is an
/// immutable leaf.
fn container(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_exact_instance_of::<PyDict>() || obj.is_exact_instance_of::<PyList>() || obj.is_exact_instance_of::<PyTuple>()
}

/// A copy of a [`copyable`] value: new dicts, lists and tuples, the same leaves. Each container
/// is copied whole (its leaves with it), then its containers are replaced by their copies.
fn fresh_copy<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(dict) = obj.cast_exact::<PyDict>() {
        let copy = dict.copy()?;
        for (k, v) in dict.iter() {
            if container(&v) {
                copy.set_item(k, fresh_copy(&v)?)?;
            }
        }
        return Ok(copy.into_any());
    }
    if let Ok(list) = obj.cast_exact::<PyList>() {
        let copy = list.get_slice(0, list.len());
        for (i, item) in list.iter().enumerate() {
            if container(&item) {
                copy.set_item(i, fresh_copy(&item)?)?;
            }
        }
        return Ok(copy.into_any());
    }
    if let Ok(tuple) = obj.cast_exact::<PyTuple>() {
        if !tuple.iter().any(|item| container(&item)) {
            return Ok(obj.clone());
        }
        let items = tuple.iter().map(|item| fresh_copy(&item)).collect::<PyResult<Vec<_>>>()?;
        return Ok(PyTuple::new(obj.py(), items)?.into_any());
    }
    Ok(obj.clone())
}
