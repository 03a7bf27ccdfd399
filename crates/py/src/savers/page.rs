//! A page of rows that a SQL saver read with `Dialect.select_tuples` (reads.py), made into
//! `CheckpointTuple`s in one Rust object: the rows are grouped and ordered, the checkpoints and
//! their metadata decoded when the page is made, and each tuple's channel values (held in its
//! row, or in blob rows: whole, or a list's snapshot and the deltas appended to it) and pending
//! writes decoded as the tuple is built. Whatever has to be decrypted or reported goes through
//! `ferrograph.checkpointers.sql.rows`, the one place that words a read's errors.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use pyo3::intern;

use crate::codec::{active_registry, default_registry, from_json, load_read_value, Registry, TAG};
use crate::errors::new_error;
use crate::savers::convert::{config_dict, new_checkpoint_tuple};

/// A blob row's (thread_id, checkpoint_ns, channel, version).
type BlobKey = (String, String, String, String);
/// A checkpoint's (thread_id, checkpoint_ns, checkpoint_id).
type CheckpointKey = (String, String, String);

/// The first byte of a value stored encrypted (`encryption._SEALED_FIRST`).
const SEALED_FIRST: u8 = 0;

struct BlobRow {
    /// The stored encoding, decrypted; None for a channel without a value at that version.
    blob: Option<Py<PyAny>>,
    /// The versions a list delta is appended to, oldest first; None for a whole value.
    chain: Option<Vec<String>>,
}

struct Record {
    key: CheckpointKey,
    parent: Option<String>,
    checkpoint: Py<PyDict>,
    metadata: Py<PyAny>,
    /// The encoded small values held in the row, decrypted; None for a row written before
    /// migration 0005, whose values are all in blob rows.
    inline: Option<Py<PyAny>>,
}

struct PendingWrite {
    task_id: Py<PyAny>,
    channel: Py<PyAny>,
    /// The stored encoding, decrypted.
    blob: Py<PyAny>,
}

/// The rows of one `select_tuples` statement (and of `select_blobs` lookups added with
/// `add_blobs`), newest checkpoint first. `tuples()` builds them.
#[pyclass(module = "ferrograph._core")]
pub struct RowPage {
    records: Vec<Record>,
    blobs: HashMap<BlobKey, BlobRow>,
    writes: HashMap<CheckpointKey, Vec<PendingWrite>>,
    /// The saver's `Encryption` (or None), for `rows.opened` and `rows.decode_metadata`.
    encryption: Py<PyAny>,
    /// The encodings rebuilt from chains so far, for the other checkpoints of the page.
    whole: HashMap<BlobKey, Py<PyBytes>>,
    /// The immutable values decoded so far, which the page's tuples may share.
    shared: HashMap<BlobKey, Py<PyAny>>,
}

static ROWS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// `ferrograph.checkpointers.sql.rows`: decryption, and the wording of every read error.
fn rows(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    Ok(ROWS.get_or_try_init(py, || py.import("ferrograph.checkpointers.sql.rows").map(Bound::unbind))?.bind(py))
}

fn text_of(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    match obj.cast::<PyString>() {
        Ok(s) => Ok(s.to_str()?.to_owned()),
        Err(_) => Ok(obj.str()?.to_str()?.to_owned()),
    }
}

fn repr(py: Python<'_>, s: &str) -> PyResult<String> {
    Ok(PyString::new(py, s).repr()?.to_str()?.to_owned())
}

/// A column's bytes when the codec can read them as they are: bytes or str.
fn plain<'a>(data: &'a Bound<'_, PyAny>) -> Option<&'a [u8]> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Some(b.as_bytes());
    }
    data.cast::<PyString>().ok().and_then(|s| s.to_str().ok()).map(str::as_bytes)
}

/// Whether the database reads a channel version out of the checkpoint's JSON as the text Python
/// gives it: a string, or an int that fits 64 bits (SQLite's JSON keeps it an integer).
fn prints_as_in_python(version: &Bound<'_, PyAny>) -> bool {
    version.is_exact_instance_of::<PyString>()
        || (version.is_exact_instance_of::<PyInt>() && version.extract::<i64>().is_ok())
}

/// Decoded values of these types cannot change, so the tuples of one page may share them.
fn immutable(value: &Bound<'_, PyAny>) -> bool {
    value.is_none()
        || value.is_exact_instance_of::<PyString>()
        || value.is_exact_instance_of::<PyInt>()
        || value.is_exact_instance_of::<PyFloat>()
        || value.is_exact_instance_of::<PyBool>()
}

/// Where a value was read, for the Python that words an error about it.
struct At<'a> {
    thread_id: &'a str,
    checkpoint_ns: &'a str,
    checkpoint_id: Option<&'a str>,
}

impl At<'_> {
    fn of(key: &CheckpointKey) -> At<'_> {
        At { thread_id: &key.0, checkpoint_ns: &key.1, checkpoint_id: Some(&key.2) }
    }

    /// `rows.corrupt(what, ...)` as a raised error.
    fn corrupt(&self, py: Python<'_>, what: String, problem: String) -> PyErr {
        match rows(py).and_then(|m| m.call_method1("corrupt", (what, self.thread_id, self.checkpoint_ns, self.checkpoint_id, problem))) {
            Ok(error) => PyErr::from_value(error),
            Err(e) => e,
        }
    }
}

/// A stored value's encoding, decrypted when it is encrypted (`rows.opened`, which also says
/// where a value it cannot open was read: `what`, with `channel`'s repr in place of `{}`).
fn opened<'py>(
    data: Bound<'py, PyAny>,
    what: &str,
    channel: &Bound<'py, PyAny>,
    at: &At<'_>,
    encryption: &Py<PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = data.py();
    let as_stored = data.is_none()
        || data.is_instance_of::<PyString>()
        || data.cast::<PyBytes>().is_ok_and(|b| b.as_bytes().first() != Some(&SEALED_FIRST));
    if as_stored {
        return Ok(data);
    }
    rows(py)?.call_method1("opened", (encryption, data, what, channel, at.thread_id, at.checkpoint_ns, at.checkpoint_id))
}

/// A value or pending write, decoded (`loads_cached`); `rows.load` reports what cannot be.
fn load<'py>(data: &Bound<'py, PyAny>, channel: &Bound<'py, PyAny>, what: &str, at: &At<'_>, reg: &Registry) -> PyResult<Bound<'py, PyAny>> {
    let py = data.py();
    if let Some(text) = plain(data) {
        if let Ok(value) = load_read_value(py, text, reg) {
            return Ok(value);
        }
    }
    rows(py)?.call_method1("load", (data, channel, what, at.thread_id, at.checkpoint_ns, at.checkpoint_id))
}

/// A checkpoint's JSON column, decoded; `rows.decode` reorders a typed value's keys that
/// Postgres's JSONB moved and reports what cannot be decoded.
fn decode<'py>(data: &Bound<'py, PyAny>, what: &str, at: &At<'_>, reg: &Registry) -> PyResult<Bound<'py, PyAny>> {
    let py = data.py();
    if let Some(text) = plain(data) {
        let tagged = text.windows(TAG.len() + 2).any(|w| w[0] == b'"' && &w[1..=TAG.len()] == TAG.as_bytes() && w[TAG.len() + 1] == b'"');
        if !tagged {
            if let Ok(value) = from_json(py, text, reg) {
                return Ok(value);
            }
        }
    }
    rows(py)?.call_method1("decode", (data, what, at.thread_id, at.checkpoint_ns, at.checkpoint_id))
}

/// A `chain` column: JSON text (SQLite) or a list (Postgres) of versions.
fn chain_of(column: &Bound<'_, PyAny>, channel: &str, at: &At<'_>) -> PyResult<Option<Vec<String>>> {
    let py = column.py();
    if column.is_none() {
        return Ok(None);
    }
    let chain = match plain(column) {
        Some(text) => serde_json::from_slice::<Vec<String>>(text).map_err(|e| e.to_string()),
        None => column.extract::<Vec<String>>().map_err(|e| e.to_string()),
    };
    chain.map(Some).map_err(|problem| {
        let ns = if at.checkpoint_ns.is_empty() { String::new() } else { format!(", namespace {}", repr(py, at.checkpoint_ns).unwrap_or_default()) };
        new_error(
            py,
            "CorruptCheckpointError",
            format!(
                "cannot read channel {} (thread {}{ns}): its stored chain is not a list of versions: {problem}",
                repr(py, channel).unwrap_or_default(),
                repr(py, at.thread_id).unwrap_or_default(),
            ),
        )
    })
}

/// The `channel_versions` of a decoded checkpoint, as (channel, version) pairs.
fn channel_versions<'py>(checkpoint: &Bound<'py, PyDict>) -> PyResult<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
    let py = checkpoint.py();
    let Some(versions) = checkpoint.get_item(intern!(py, "channel_versions"))? else { return Ok(Vec::new()) };
    if !versions.is_truthy()? {
        return Ok(Vec::new());
    }
    if let Ok(versions) = versions.cast::<PyDict>() {
        return Ok(versions.iter().collect());
    }
    versions.call_method0(intern!(py, "items"))?.try_iter()?.map(|item| item?.extract()).collect()
}

impl RowPage {
    fn registry(py: Python<'_>) -> PyResult<Arc<Registry>> {
        active_registry(py, default_registry())
    }

    /// A blob row: its key (thread_id, checkpoint_ns, channel, version) in the four columns
    /// from `key_at`, its blob and chain in the two from `blob_at`.
    fn add_blob_row(&mut self, row: &Bound<'_, PyTuple>, key_at: usize, blob_at: usize) -> PyResult<()> {
        let channel = row.get_item(key_at + 2)?;
        let key: BlobKey =
            (row.get_item(key_at)?.extract()?, row.get_item(key_at + 1)?.extract()?, channel.extract()?, row.get_item(key_at + 3)?.extract()?);
        let at = At { thread_id: &key.0, checkpoint_ns: &key.1, checkpoint_id: None };
        let blob = opened(row.get_item(blob_at)?, "channel {}", &channel, &at, &self.encryption)?;
        let chain = chain_of(&row.get_item(blob_at + 1)?, &key.2, &at)?;
        self.blobs.insert(key, BlobRow { blob: (!blob.is_none()).then(|| blob.unbind()), chain });
        Ok(())
    }

    fn record(py: Python<'_>, row: &Bound<'_, PyTuple>, encryption: &Py<PyAny>, reg: &Registry) -> PyResult<Record> {
        let key: CheckpointKey = (row.get_item(2)?.extract()?, row.get_item(3)?.extract()?, row.get_item(4)?.extract()?);
        let at = At::of(&key);
        let checkpoint = decode(&row.get_item(6)?, "the checkpoint", &at, reg)?;
        let Ok(checkpoint) = checkpoint.cast_into::<PyDict>() else {
            return Err(new_error(
                py,
                "CorruptCheckpointError",
                format!("checkpoint {} (thread {}) is not a JSON object", repr(py, &key.2)?, repr(py, &key.0)?),
            ));
        };
        let metadata_column = row.get_item(7)?;
        let mut metadata = decode(&metadata_column, "the metadata", &at, reg)?;
        if metadata.is_instance_of::<PyString>() {
            // Encrypted metadata is stored as a JSON string.
            metadata = rows(py)?.call_method1("decode_metadata", (metadata_column, encryption, &key.0, &key.1, &key.2))?;
        }
        let inline = row.get_item(8)?;
        let inline = if inline.is_none() {
            None
        } else {
            Some(opened(inline, "the channel values", &py.None().into_bound(py), &at, encryption)?.unbind())
        };
        let parent = row.get_item(5)?;
        Ok(Record {
            parent: if parent.is_truthy()? { Some(parent.extract()?) } else { None },
            checkpoint: checkpoint.unbind(),
            metadata: metadata.unbind(),
            inline,
            key,
        })
    }

    /// The encoding of a list's version stored as a delta: its chain's snapshot and deltas,
    /// joined (the reverse of `deltas.delta`).
    fn rebuild<'py>(&self, py: Python<'py>, key: &BlobKey, checkpoint: &CheckpointKey) -> PyResult<Bound<'py, PyBytes>> {
        let (thread_id, checkpoint_ns, channel, version) = key;
        let at = At::of(checkpoint);
        let what = || Ok::<_, PyErr>(format!("channel {}", repr(py, channel)?));
        let chain = self.blobs.get(key).and_then(|row| row.chain.as_deref()).unwrap_or_default();
        let mut whole = vec![b'['];
        for (position, member) in chain.iter().chain([version]).enumerate() {
            let member_key = (thread_id.clone(), checkpoint_ns.clone(), channel.clone(), member.clone());
            let data = match self.blobs.get(&member_key) {
                None => Err("is missing"),
                Some(BlobRow { blob: Some(blob), chain }) if chain.is_none() == (position == 0) => Ok(blob.bind(py)),
                Some(_) => Err("is not a list snapshot or delta"),
            };
            let data = match data {
                Ok(data) => data,
                Err(problem) => {
                    return Err(at.corrupt(py, what()?, format!("version {}, on which its stored value is built, {problem}", repr(py, member)?)));
                }
            };
            let owned;
            let part = match plain(data) {
                Some(part) => part,
                None => {
                    // A memoryview (psycopg's bytea).
                    owned = py.get_type::<PyBytes>().call1((data,))?.cast_into::<PyBytes>()?;
                    owned.as_bytes()
                }
            };
            if !(part.first() == Some(&b'[') && part.last() == Some(&b']')) {
                return Err(at.corrupt(py, what()?, format!("the stored part at version {} is not a JSON array", repr(py, member)?)));
            }
            if part.len() > 2 {
                if whole.len() > 1 {
                    whole.push(b',');
                }
                whole.extend_from_slice(&part[1..part.len() - 1]);
            }
        }
        whole.push(b']');
        Ok(PyBytes::new(py, &whole))
    }

    /// The channel values of checkpoint `index`: those held in its row, then the others from
    /// its blob rows (a version without a row is a channel without a value).
    fn values<'py>(&mut self, py: Python<'py>, index: usize, checkpoint: &Bound<'py, PyDict>, reg: &Registry) -> PyResult<Bound<'py, PyDict>> {
        // The key is copied: the loop below adds to the page's caches.
        let checkpoint_key = self.records[index].key.clone();
        let at = At::of(&checkpoint_key);
        let values = match &self.records[index].inline {
            None => PyDict::new(py),
            // The codec's own bytes (no JSONB reordering to undo, unlike the JSON columns).
            Some(inline) => load(inline.bind(py), &PyString::new(py, "").into_any(), "the channel values", &at, reg)?
                .cast_into::<PyDict>()
                .map_err(|_| at.corrupt(py, "the channel values".to_owned(), "not a JSON object".to_owned()))?,
        };
        for (channel, version) in channel_versions(checkpoint)? {
            if values.contains(&channel)? {
                continue;
            }
            let key = (checkpoint_key.0.clone(), checkpoint_key.1.clone(), text_of(&channel)?, text_of(&version)?);
            if let Some(value) = self.shared.get(&key) {
                values.set_item(&channel, value.bind(py))?;
                continue;
            }
            let Some(row) = self.blobs.get(&key) else { continue };
            let blob = match (&row.chain, &row.blob) {
                (None, None) => continue,
                (None, Some(blob)) => blob.bind(py).clone(),
                (Some(_), _) => match self.whole.get(&key) {
                    Some(whole) => whole.bind(py).clone().into_any(),
                    None => {
                        let whole = self.rebuild(py, &key, &checkpoint_key)?;
                        self.whole.insert(key.clone(), whole.clone().unbind());
                        whole.into_any()
                    }
                },
            };
            let value = load(&blob, &channel, "channel {}", &at, reg)?;
            if immutable(&value) {
                self.shared.insert(key, value.clone().unbind());
            }
            values.set_item(channel, value)?;
        }
        Ok(values)
    }

    fn build<'py>(&mut self, py: Python<'py>, index: usize) -> PyResult<Bound<'py, PyAny>> {
        let reg = Self::registry(py)?;
        // A copy: the page keeps its record until it is done, and must not keep the values alive.
        let checkpoint = self.records[index].checkpoint.bind(py).copy()?;
        let values = self.values(py, index, &checkpoint, &reg)?;
        checkpoint.set_item(intern!(py, "channel_values"), values)?;
        let record = &self.records[index];
        let (thread_id, checkpoint_ns, checkpoint_id) = &record.key;
        let at = At::of(&record.key);
        let pending = PyList::empty(py);
        for write in self.writes.get(&record.key).map(Vec::as_slice).unwrap_or_default() {
            let channel = write.channel.bind(py);
            let value = load(write.blob.bind(py), channel, "the pending write to {}", &at, &reg)?;
            pending.append((write.task_id.bind(py), channel, value))?;
        }
        let parent = match &record.parent {
            Some(parent) => config_dict(py, thread_id, checkpoint_ns, Some(parent))?.into_any(),
            None => py.None().into_bound(py),
        };
        new_checkpoint_tuple(
            py,
            [
                config_dict(py, thread_id, checkpoint_ns, Some(checkpoint_id))?.into_any(),
                checkpoint.into_any(),
                record.metadata.bind(py).clone(),
                parent,
                pending.into_any(),
            ],
        )
    }
}

#[pymethods]
impl RowPage {
    /// `rows`: a `select_tuples` result (see `Dialect.select_tuples`); `ranks_rows`: the
    /// dialect's (whether the statement ranks checkpoints and writes, else they are ordered
    /// here); `encryption`: the saver's, or None.
    #[new]
    fn new(py: Python<'_>, rows: &Bound<'_, PyAny>, ranks_rows: bool, encryption: Py<PyAny>) -> PyResult<Self> {
        let reg = Self::registry(py)?;
        let mut page = RowPage {
            records: Vec::new(),
            blobs: HashMap::new(),
            writes: HashMap::new(),
            encryption,
            whole: HashMap::new(),
            shared: HashMap::new(),
        };
        let mut checkpoints = Vec::new();
        let mut writes = Vec::new();
        for row in rows.try_iter()? {
            let row = row?.cast_into::<PyTuple>()?;
            match row.get_item(0)?.extract::<u8>()? {
                0 => checkpoints.push(row),
                1 => page.add_blob_row(&row, 2, 8)?,
                _ => writes.push(row),
            }
        }
        if ranks_rows {
            checkpoints.sort_by_cached_key(|row| row.get_item(1).and_then(|rank| rank.extract::<i64>()).unwrap_or(i64::MAX));
            writes.sort_by_cached_key(|row| row.get_item(1).and_then(|rank| rank.extract::<i64>()).unwrap_or(i64::MAX));
        } else {
            // Newest first: by (checkpoint_id, thread_id, checkpoint_ns) descending, comparing
            // UTF-8 bytes as SQLite's BINARY collation does (code point order).
            let newest_first = |row: &Bound<'_, PyTuple>| -> (String, String, String) {
                let text = |i| row.get_item(i).and_then(|v| v.extract::<String>()).unwrap_or_default();
                (text(4), text(2), text(3))
            };
            checkpoints.sort_by_cached_key(|row| std::cmp::Reverse(newest_first(row)));
            // Writes in (task_path, task_id, idx) order.
            writes.sort_by_cached_key(|row| {
                let text = |i| row.get_item(i).and_then(|v| v.extract::<String>()).unwrap_or_default();
                (text(7), text(5), row.get_item(9).and_then(|v| v.extract::<i64>()).unwrap_or_default())
            });
        }
        for row in &writes {
            let key: CheckpointKey = (row.get_item(2)?.extract()?, row.get_item(3)?.extract()?, row.get_item(4)?.extract()?);
            let channel = row.get_item(6)?;
            let blob = opened(row.get_item(8)?, "the pending write to {}", &channel, &At::of(&key), &page.encryption)?;
            let write = PendingWrite { task_id: row.get_item(5)?.unbind(), channel: channel.unbind(), blob: blob.unbind() };
            page.writes.entry(key).or_default().push(write);
        }
        for row in &checkpoints {
            page.records.push(Self::record(py, row, &page.encryption, &reg)?);
        }
        Ok(page)
    }

    fn __len__(&self) -> usize {
        self.records.len()
    }

    /// The decoded metadata of checkpoint `index` (to filter on).
    fn metadata(&self, py: Python<'_>, index: usize) -> PyResult<Py<PyAny>> {
        let record = self.records.get(index).ok_or_else(|| PyIndexError::new_err("no such checkpoint in the page"))?;
        Ok(record.metadata.clone_ref(py))
    }

    /// `(checkpoint_id, thread_id, checkpoint_ns)` of the page's last (oldest) checkpoint: where
    /// the next page starts.
    fn last_position(&self) -> Option<(String, String, String)> {
        self.records.last().map(|r| (r.key.2.clone(), r.key.0.clone(), r.key.1.clone()))
    }

    /// The blob rows the tuples at `indices` (all by default) need and the statement did not
    /// return, sorted: every version of
    /// a row written before migration 0005 (its `blob_channels` is unknown), and a version the
    /// database may print otherwise than Python (a float, an int past 64 bits). The caller reads
    /// them with `select_blobs` and hands them to `add_blobs`; a version with no row at all is a
    /// channel without a value.
    #[pyo3(signature = (indices = None))]
    fn missing(&self, py: Python<'_>, indices: Option<Vec<usize>>) -> PyResult<Vec<BlobKey>> {
        let mut missing = BTreeSet::new();
        let indices = indices.unwrap_or_else(|| (0..self.records.len()).collect());
        for record in indices.iter().filter_map(|&i| self.records.get(i)) {
            for (channel, version) in channel_versions(record.checkpoint.bind(py))? {
                if record.inline.is_some() && prints_as_in_python(&version) {
                    continue;
                }
                let key = (record.key.0.clone(), record.key.1.clone(), text_of(&channel)?, text_of(&version)?);
                if !self.blobs.contains_key(&key) {
                    missing.insert(key);
                }
            }
        }
        Ok(missing.into_iter().collect())
    }

    /// Rows of `select_blobs`: (thread_id, checkpoint_ns, channel, version, blob, chain).
    fn add_blobs(&mut self, rows: &Bound<'_, PyAny>) -> PyResult<()> {
        for row in rows.try_iter()? {
            self.add_blob_row(&row?.cast_into::<PyTuple>()?, 0, 4)?;
        }
        Ok(())
    }

    /// The tuples of the checkpoints at `indices` (all of them by default), built as they are
    /// iterated: built at once, a page's values would all be alive together even for a caller
    /// that handles one tuple at a time (Python's cyclic collector then ran about six times as
    /// often while listing a thread).
    #[pyo3(signature = (indices = None))]
    fn tuples(slf: Bound<'_, Self>, indices: Option<Vec<usize>>) -> PyResult<RowPageTuples> {
        let count = slf.borrow().records.len();
        let indices = indices.unwrap_or_else(|| (0..count).collect());
        if let Some(bad) = indices.iter().find(|&&i| i >= count) {
            return Err(PyIndexError::new_err(format!("no checkpoint {bad} in a page of {count}")));
        }
        Ok(RowPageTuples { page: slf.unbind(), indices: indices.into_iter() })
    }
}

/// The iterator `RowPage.tuples` returns.
#[pyclass(module = "ferrograph._core")]
pub struct RowPageTuples {
    page: Py<RowPage>,
    indices: std::vec::IntoIter<usize>,
}

#[pymethods]
impl RowPageTuples {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(index) = self.indices.next() else { return Ok(None) };
        let mut page = self.page.bind(py).borrow_mut();
        page.build(py, index).map(Some)
    }

    fn __length_hint__(&self) -> usize {
        self.indices.len()
    }
}
