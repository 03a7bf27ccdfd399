//! Caches of decoded values: for savers that keep encoded text in memory (the native memory
//! saver, [`DecodeCache`], by the stored text's identity) and for the values SQL savers read
//! ([`TextCache`], by the bytes themselves): reading the same stored value again copies the
//! containers of the value decoded the first time instead of parsing its text again (going
//! straight to them: where they are is found once, when the value is cached). A reader always
//! gets objects of its own, as from a decode: only immutable leaves (str, int, float, bool, None, bytes, dates and times)
//! are shared between readers, and values holding anything else (sets, dataclasses, models,
//! messages...) are never cached.
//!
//! Entries are keyed by the identity of the stored text (`RawJson` shares one allocation per
//! stored value, and the entry holds a reference to it, so the address cannot be reused while
//! the entry lives). A value is cached on its second read: a value read once (a scan through
//! history, the engine loading a thread) costs no copy. Small values are not cached: decoding
//! them costs no more than a copy. Once a cache is full, a new value takes the place of values
//! not read lately, or is not kept (see [`Kept`]).

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, Mutex};

use ferrograph_checkpoint::RawJson;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyBytes, PyDate, PyDateTime, PyDelta, PyDict, PyFloat, PyInt, PyList, PyString, PyTime,
    PyTuple,
};

/// Text shorter than this is decoded every time.
const MIN_CACHED_LEN: usize = 128;

/// A cached value of the memory saver.
struct Entry {
    /// The text it decodes, held (never read) so that the address keying it stays that text's.
    _text: RawJson,
    value: Master,
}

struct Entries {
    kept: Kept<usize, Entry>,
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
        let entries = Entries { kept: Kept::new(max_text_bytes), read_once: HashMap::new(), read_once_order: VecDeque::new() };
        DecodeCache { max_text_bytes, entries: Mutex::new(entries) }
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
        let len = raw.as_str().len();
        let (cached, keep) = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            match entries.kept.get(&key(raw)).map(|e| e.value.clone()) {
                Some(master) => (Some(master), false),
                None => {
                    let read_before = entries.remember_read(raw);
                    (None, read_before && entries.kept.room_for(len))
                }
            }
        };
        if let Some(master) = cached {
            return master.copy(py);
        }
        let value = decode()?;
        if keep {
            if let Some(master) = Master::of(&value)? {
                let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
                entries.kept.insert(key(raw), Entry { _text: raw.clone(), value: master }, len);
            }
        }
        Ok(value)
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

struct TextEntries {
    kept: Kept<Arc<[u8]>, Master, TextHasher>,
    /// Hashes of texts read once lately, oldest first (a collision only caches a text early).
    read_once: HashSet<u64, TextHasher>,
    read_once_order: VecDeque<u64>,
}

impl TextCache {
    pub fn new(max_text_bytes: usize) -> Self {
        let entries = TextEntries { kept: Kept::new(max_text_bytes), read_once: HashSet::default(), read_once_order: VecDeque::new() };
        TextCache { max_text_bytes, entries: Mutex::new(entries) }
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
        let (cached, keep) = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            match entries.kept.get(text) {
                Some(master) if master.levels <= max_depth => (Some(master.clone()), false),
                Some(_) => (None, false),
                None => {
                    let read_before = entries.remember_read(text);
                    (None, read_before && entries.kept.room_for(text.len()))
                }
            }
        };
        if let Some(master) = cached {
            return master.copy(py);
        }
        let value = decode()?;
        if keep {
            if let Some(master) = Master::of(&value)? {
                let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
                // Another reader may have cached it meanwhile: the key is made only if not.
                if !entries.kept.contains(text) {
                    entries.kept.insert(text.into(), master, text.len());
                }
            }
        }
        Ok(value)
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

/// The entries of a cache, bounded by the total length of their texts. A new entry that would
/// pass the bound takes the place of entries not read lately, oldest first, or is not kept when
/// every entry is in use. With a plain first-in-first-out bound, a scan cycling through more
/// values than the cache holds (a thread's history listed again and again) missed on every
/// value, each miss paying a copy to fill the cache for nothing; now it keeps hitting the values
/// the cache holds, while values no longer read still give way to new ones.
struct Kept<K, V, S = std::hash::RandomState> {
    slots: HashMap<K, Slot<V>, S>,
    /// Keys by insertion, oldest first (an entry found in use when room is sought goes to the
    /// back).
    order: VecDeque<K>,
    text_bytes: usize,
    max_text_bytes: usize,
    /// Lookups so far: the clock of `Slot::used`.
    lookups: u64,
}

struct Slot<V> {
    value: V,
    text_len: usize,
    /// The lookup that last found it (or that inserted it).
    used: u64,
}

/// An entry that none of the last (this many times the number of entries) lookups found is not
/// in use: a scan cycling through up to this many times the values the cache holds keeps hitting
/// them.
const UNUSED_AFTER_LOOKUPS_PER_ENTRY: u64 = 4;

/// How many of the oldest entries one new entry looks at for room, at most.
const EXAMINED_FOR_ROOM: usize = 16;

impl<K: Hash + Eq + Clone, V, S: BuildHasher + Default> Kept<K, V, S> {
    fn new(max_text_bytes: usize) -> Self {
        Kept { slots: HashMap::default(), order: VecDeque::new(), text_bytes: 0, max_text_bytes, lookups: 0 }
    }

    /// The entry of `key`, counted as a lookup (and as a use when found).
    fn get<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.lookups += 1;
        let now = self.lookups;
        self.slots.get_mut(key).map(|slot| {
            slot.used = now;
            &slot.value
        })
    }

    fn contains<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.slots.contains_key(key)
    }

    /// Makes room for a text of `text_len` bytes by dropping entries not in use; false when
    /// there is not enough room (the new entry is not to be kept).
    fn room_for(&mut self, text_len: usize) -> bool {
        let unused_after = UNUSED_AFTER_LOOKUPS_PER_ENTRY * self.slots.len() as u64;
        let mut examined = 0;
        while self.text_bytes + text_len > self.max_text_bytes {
            if examined == EXAMINED_FOR_ROOM {
                return false;
            }
            examined += 1;
            let Some(oldest) = self.order.pop_front() else { return false };
            let slot = &self.slots[&oldest];
            if self.lookups - slot.used > unused_after {
                self.text_bytes -= slot.text_len;
                self.slots.remove(&oldest);
            } else {
                self.order.push_back(oldest);
            }
        }
        true
    }

    /// Keeps `value` under `key` (not kept yet) when there is room for it (see `room_for`).
    fn insert(&mut self, key: K, value: V, text_len: usize) {
        if self.slots.contains_key(&key) || !self.room_for(text_len) {
            return;
        }
        self.order.push_back(key.clone());
        self.slots.insert(key, Slot { value, text_len, used: self.lookups });
        self.text_bytes += text_len;
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

/// A cached value: a private copy that no reader ever gets, and how to copy it.
#[derive(Clone)]
struct Master {
    value: Arc<(Py<PyAny>, Plan)>,
    /// How many levels of containers it nests (0 for a leaf): what a decoder's depth limit
    /// counts.
    levels: usize,
}

/// A dict's entry whose value is a container: its key, the master's value and how to copy it.
type KeyedCopy = (Py<PyAny>, Py<PyAny>, Plan);

/// Where a cached value's containers are, found once when it is cached, so that a copy goes
/// straight to them instead of looking at every item. Holds the master's own containers.
enum Plan {
    /// Shared as it is: an immutable leaf, or a tuple of them.
    Shared,
    /// A dict: copied whole, then the values at these keys replaced by their copies.
    Dict(Box<[KeyedCopy]>),
    /// A list: copied whole, then the items at these positions replaced by their copies.
    List(Box<[(usize, Py<PyAny>, Plan)]>),
    /// A tuple holding containers: rebuilt from its items, each with its plan.
    Tuple(Box<[(Py<PyAny>, Plan)]>),
}

impl Master {
    /// A private copy of `value` to cache, when it is made only of dicts, lists and tuples
    /// over immutable leaves (so that a copy is indistinguishable from a new decode).
    fn of(value: &Bound<'_, PyAny>) -> PyResult<Option<Master>> {
        let Some((plan, _)) = plan(value, 0) else { return Ok(None) };
        // The plan of the copy: it holds the master's own containers, not the caller's.
        let copy = copy(value, &plan)?;
        let (plan, levels) = self::plan(&copy, 0).expect("a copy of a copyable value is copyable");
        Ok(Some(Master { value: Arc::new((copy.unbind(), plan)), levels }))
    }

    /// A copy of the value: new dicts, lists and tuples, the same leaves.
    fn copy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        copy(self.value.0.bind(py), &self.value.1)
    }
}

/// `obj`'s plan and how many levels of containers it nests, or None when it holds anything
/// but dicts, lists and tuples over immutable leaves (or nests too deep).
fn plan(obj: &Bound<'_, PyAny>, depth: usize) -> Option<(Plan, usize)> {
    if immutable_leaf(obj) {
        return Some((Plan::Shared, 0));
    }
    if depth >= MAX_CACHED_DEPTH {
        return None;
    }
    let mut levels = 0;
    let mut inner = |item: &Bound<'_, PyAny>| {
        let (plan, below) = plan(item, depth + 1)?;
        levels = levels.max(below);
        Some(plan)
    };
    let plan = if let Ok(list) = obj.cast_exact::<PyList>() {
        let mut entries = Vec::new();
        for (i, item) in list.iter().enumerate() {
            match inner(&item)? {
                Plan::Shared => {}
                plan => entries.push((i, item.unbind(), plan)),
            }
        }
        Plan::List(entries.into_boxed_slice())
    } else if let Ok(dict) = obj.cast_exact::<PyDict>() {
        let mut entries = Vec::new();
        for (k, v) in dict.iter() {
            if !immutable_leaf(&k) {
                return None;
            }
            match inner(&v)? {
                Plan::Shared => {}
                plan => entries.push((k.unbind(), v.unbind(), plan)),
            }
        }
        Plan::Dict(entries.into_boxed_slice())
    } else if let Ok(tuple) = obj.cast_exact::<PyTuple>() {
        let items = tuple.iter().map(|item| Some((inner(&item)?, item))).collect::<Option<Vec<_>>>()?;
        if items.iter().all(|(plan, _)| matches!(plan, Plan::Shared)) {
            Plan::Shared
        } else {
            Plan::Tuple(items.into_iter().map(|(plan, item)| (item.unbind(), plan)).collect())
        }
    } else {
        return None;
    };
    Some((plan, levels + 1))
}

/// A copy of `obj` by its plan: each container copied whole (its leaves with it), then its
/// containers replaced by their copies.
fn copy<'py>(obj: &Bound<'py, PyAny>, plan: &Plan) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    Ok(match plan {
        Plan::Shared => obj.clone(),
        Plan::Dict(entries) => {
            let dict = obj.cast_exact::<PyDict>()?.copy()?;
            for (key, value, plan) in entries.iter() {
                dict.set_item(key.bind(py), copy(value.bind(py), plan)?)?;
            }
            dict.into_any()
        }
        Plan::List(entries) => {
            let list = obj.cast_exact::<PyList>()?;
            let list = list.get_slice(0, list.len());
            for (i, item, plan) in entries.iter() {
                list.set_item(*i, copy(item.bind(py), plan)?)?;
            }
            list.into_any()
        }
        Plan::Tuple(items) => {
            let items = items.iter().map(|(item, plan)| copy(item.bind(py), plan)).collect::<PyResult<Vec<_>>>()?;
            PyTuple::new(py, items)?.into_any()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::Kept;

    /// One round of a scan over `keys`: each looked up, and kept when missed. The hits.
    fn scan(kept: &mut Kept<u32, u32>, keys: impl Iterator<Item = u32>) -> usize {
        let mut hits = 0;
        for key in keys {
            if kept.get(&key).is_some() {
                hits += 1;
            } else {
                kept.insert(key, key, 10);
            }
            assert!(kept.text_bytes <= kept.max_text_bytes);
        }
        hits
    }

    #[test]
    fn a_scan_cycling_through_more_values_than_fit_keeps_hitting_those_kept() {
        let mut kept = Kept::new(100); // ten values of 10 bytes
        scan(&mut kept, 0..15);
        for _ in 0..5 {
            assert_eq!(scan(&mut kept, 0..15), 10);
        }
    }

    #[test]
    fn values_no_longer_read_give_way_to_new_ones() {
        let mut kept = Kept::new(100);
        scan(&mut kept, 0..10);
        assert_eq!(scan(&mut kept, 0..10), 10);
        // Other values, read again and again: the first ten are read no more.
        let mut hits = 0;
        for _ in 0..10 {
            hits = scan(&mut kept, 100..105);
        }
        assert_eq!(hits, 5);
        assert_eq!((0..10).filter(|key| kept.contains(key)).count(), 5);
    }

    #[test]
    fn a_value_is_not_kept_while_every_value_kept_is_in_use() {
        let mut kept = Kept::new(100);
        scan(&mut kept, 0..10);
        kept.insert(99, 99, 10);
        assert!(!kept.contains(&99));
        assert_eq!(kept.slots.len(), 10);
    }
}
