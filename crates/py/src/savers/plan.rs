//! What a SQL saver's `put` stores, decided in one call (`plan_put`): the checkpoint, its
//! metadata and its new values encoded, and each channel of the checkpoint sorted into where its
//! value goes (the checkpoint row's small values, a blob row, nowhere) against what the saver
//! stored last for the thread (its delta cache's line of `Stored` entries). A run's batch makes
//! a dozen puts of a dozen channels each; deciding them in Python took more time than the
//! database took to store them. The statements stay in Python (checkpointers/sql/writes.py),
//! and so do append deltas, which only big values need.
//!
//! `write_rows` is the same for a task's pending writes: the rows `put_writes` stores.

use ferrograph_checkpoint::{write_index, RawJson};
use pyo3::exceptions::PyKeyError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::codec::{self, json, Registry, TAG};
use crate::savers::convert::{checkpoint_metadata, encode_channel, writes_from_py};
use crate::savers::encoded::EncodedCheckpoint;

/// The last value a saver stored for one channel of a thread (see checkpointers/sql/deltas.py,
/// which documents the delta cache): its version, its encoding (empty for a big value that is
/// not a list: it is never extended, nor stored again), and where it went: in the checkpoint
/// rows (`inline`), or a blob row as written (the `chain`, None for a whole value, and the
/// blob's `row_length`); or that the channel has no value at that version (`absent`).
#[pyclass(frozen, get_all, module = "ferrograph._core")]
pub struct Stored {
    version: String,
    encoded: Py<PyBytes>,
    chain: Option<Vec<String>>,
    row_length: usize,
    inline: bool,
    absent: bool,
}

#[pymethods]
impl Stored {
    #[new]
    #[pyo3(signature = (version, encoded, chain, row_length, inline = false, absent = false))]
    fn new(
        version: String,
        encoded: Py<PyBytes>,
        chain: Option<Vec<String>>,
        row_length: usize,
        inline: bool,
        absent: bool,
    ) -> Self {
        Stored { version, encoded, chain, row_length, inline, absent }
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Stored(version={:?}, encoded={} bytes, chain={:?}, row_length={}, inline={}, absent={})",
            self.version,
            self.encoded.bind(py).as_bytes().len(),
            self.chain,
            self.row_length,
            self.inline,
            self.absent
        )
    }
}

impl Stored {
    fn small(py: Python<'_>, version: &str, encoded: &[u8], absent: bool) -> Stored {
        Stored {
            version: version.to_owned(),
            encoded: PyBytes::new(py, encoded).unbind(),
            chain: None,
            row_length: 0,
            inline: !absent,
            absent,
        }
    }
}

/// Where a checkpoint's channels come from: the run's `EncodedCheckpoint` (only the new
/// versions' values, already encoded) or LangGraph's dict.
enum Source<'a, 'py> {
    Encoded(&'a EncodedCheckpoint),
    Dict { values: Option<Bound<'py, PyAny>>, registry: &'a Registry },
}

impl<'py> Source<'_, 'py> {
    /// The encoding of `channel`'s value (`is_new`: at a new version), when the checkpoint
    /// holds one: a run's checkpoint holds only new values, a dict every value it carries
    /// (encoded here, as the value of a channel carried on at an earlier version is only when
    /// the saver did not store it last).
    fn value(&self, channel: &str, is_new: bool) -> PyResult<Option<RawJson>> {
        match self {
            Source::Encoded(_) if !is_new => Ok(None),
            Source::Encoded(encoded) => Ok(encoded.checkpoint.channel_values.get(channel).cloned()),
            Source::Dict { values: Some(values), registry } => match values.get_item(channel) {
                Ok(value) => encode_channel(&value, registry, channel).map(Some),
                Err(e) if e.is_instance_of::<PyKeyError>(values.py()) => Ok(None),
                Err(e) => Err(e),
            },
            Source::Dict { values: None, .. } => Ok(None),
        }
    }
}

/// `put`'s plan for a checkpoint against `line` (channel -> `Stored`, what the saver stored
/// last for the thread), a tuple:
/// `(checkpoint_id, checkpoint_json, metadata_json, run_id, inline, blob_channels, blobs,
/// learnt, carried)`:
/// - the checkpoint's JSON without its values, its metadata's (`checkpoint_metadata`, with
///   `drop_writes`) and the metadata's run id as a str (or None);
/// - `inline`: the checkpoint row's small values, a JSON object of encodings (values of at most
///   `inline_max` bytes; -1 puts every value in a blob row);
/// - `blob_channels`: the channels whose value is in a blob row;
/// - `blobs`: `(channel, version, encoded, remembered, again)` for each value to store in a
///   blob row (`remembered`: the line's entry for the channel, for an append delta; `again`: a
///   value carried on at an earlier version, stored only if its row is missing);
/// - `learnt`: channel -> `Stored` for the small values and the absent ones;
/// - `carried`: `(channel, version)` of channels carried on from the parent without a value
///   here that the line does not know (read from the parent's row).
///
/// `limits` (a SizeLimits, or None) checks each new value's size.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (config, checkpoint, metadata, new_versions, drop_writes, line, inline_max, limits, thread_id, checkpoint_ns, has_parent))]
pub fn plan_put<'py>(
    config: &Bound<'py, PyAny>,
    checkpoint: &Bound<'py, PyAny>,
    metadata: &Bound<'py, PyAny>,
    new_versions: &Bound<'py, PyAny>,
    drop_writes: bool,
    line: &Bound<'py, PyAny>,
    inline_max: isize,
    limits: Option<&Bound<'py, PyAny>>,
    thread_id: &str,
    checkpoint_ns: &str,
    has_parent: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let py = config.py();
    let registry = codec::active_registry(py, codec::default_registry())?;
    let encode_text = |obj: &Bound<'py, PyAny>, context: &str| {
        codec::encode_with(obj, &registry, Some(context), |text| PyString::new(py, text).into_any())
            .map_err(|e| codec::to_py_err(py, &e))
    };

    // The checkpoint's id, its JSON less the values, its versions in order, and its values.
    // A dict's versions as strs (a run's are already).
    let mut listed: Vec<(String, String)> = Vec::new();
    let (id, stored, source) = match checkpoint.cast::<EncodedCheckpoint>() {
        Ok(encoded) => {
            let cp = &encoded.get().checkpoint;
            let json = PyString::new(py, &cp.json_without_values()).into_any();
            (PyString::new(py, &cp.id).into_any(), json, Source::Encoded(encoded.get()))
        }
        Err(_) => {
            let without = match checkpoint.cast::<PyDict>() {
                Ok(d) => d.copy()?,
                // Any other mapping, as `dict(checkpoint)`.
                Err(_) => py.get_type::<PyDict>().call1((checkpoint,))?.cast_into::<PyDict>().map_err(PyErr::from)?,
            };
            let values = without.get_item(intern!(py, "channel_values"))?;
            if values.is_some() {
                without.del_item(intern!(py, "channel_values"))?;
            }
            let id = without.get_item(intern!(py, "id"))?.ok_or_else(|| PyKeyError::new_err("id"))?;
            if let Some(v) = without.get_item(intern!(py, "channel_versions"))?.filter(|v| v.is_truthy().unwrap_or(true)) {
                for item in v.call_method0(intern!(py, "items"))?.try_iter()? {
                    let (channel, version) = item?.extract::<(Bound<'py, PyAny>, Bound<'py, PyAny>)>()?;
                    listed.push((channel.str()?.to_str()?.to_owned(), version.str()?.to_str()?.to_owned()));
                }
            }
            let values = values.filter(|v| v.is_truthy().unwrap_or(true));
            (id, encode_text(without.as_any(), "checkpoint")?, Source::Dict { values, registry: &registry })
        }
    };
    let versions: Vec<(&str, &str)> = match &source {
        Source::Encoded(encoded) => encoded.checkpoint.channel_versions.iter().map(|(c, v)| (c.as_str(), v.as_str())).collect(),
        Source::Dict { .. } => listed.iter().map(|(c, v)| (c.as_str(), v.as_str())).collect(),
    };
    let mut new: Vec<String> = Vec::new();
    for channel in new_versions.try_iter()? {
        new.push(channel?.str()?.to_str()?.to_owned());
    }

    // The line's entries, sorted by channel for lookups without a str made per channel.
    let mut remembered: Vec<(Bound<'py, PyString>, Bound<'py, Stored>)> = Vec::new();
    match line.cast::<PyDict>() {
        Ok(d) => {
            for (channel, entry) in d.iter() {
                remembered.push((channel.cast_into()?, entry.cast_into()?));
            }
        }
        Err(_) => {
            for item in line.call_method0(intern!(py, "items"))?.try_iter()? {
                remembered.push(item?.extract()?);
            }
        }
    }
    let mut index = Vec::with_capacity(remembered.len());
    for (i, (channel, _)) in remembered.iter().enumerate() {
        index.push((channel.to_str()?, i));
    }
    index.sort_unstable();
    let recall = |channel: &str| index.binary_search_by(|(c, _)| (*c).cmp(channel)).ok().map(|at| &remembered[index[at].1].1);

    let mut inline = String::from("{");
    let blob_channels = PyList::empty(py);
    let blobs = PyList::empty(py);
    let learnt = PyDict::new(py);
    let carried = PyList::empty(py);
    let add_inline = |inline: &mut String, channel: &str, encoded: &[u8]| {
        if inline.len() > 1 {
            inline.push(',');
        }
        json::write_str(inline, channel);
        inline.push(':');
        // The codec's output and what a line remembers of it: UTF-8 JSON.
        inline.push_str(std::str::from_utf8(encoded).expect("encoded values are UTF-8"));
    };
    for (channel, version) in &versions {
        let is_new = new.iter().any(|n| n == channel);
        let (channel, version) = (*channel, *version);
        let known = recall(channel);
        if let Some(known) = known.map(Bound::get).filter(|k| !is_new && k.version == version) {
            if known.inline {
                add_inline(&mut inline, channel, known.encoded.bind(py).as_bytes());
            } else if !known.absent {
                blob_channels.append(channel)?;
            }
            continue;
        }
        let Some(encoded) = source.value(channel, is_new)? else {
            if is_new {
                learnt.set_item(channel, Stored::small(py, version, b"", true))?;
            } else if has_parent {
                carried.append((channel, version))?;
            }
            continue;
        };
        let bytes = encoded.as_bytes();
        if is_new {
            if let Some(limits) = limits {
                limits.call_method1(intern!(py, "check"), (channel, bytes.len(), thread_id, checkpoint_ns))?;
            }
        }
        if (bytes.len() as isize) <= inline_max && channel != TAG {
            add_inline(&mut inline, channel, bytes);
            learnt.set_item(channel, Stored::small(py, version, bytes, false))?;
            continue;
        }
        blob_channels.append(channel)?;
        blobs.append((channel, version, PyBytes::new(py, bytes), known, !is_new))?;
    }
    inline.push('}');

    let merged = checkpoint_metadata(config, metadata, drop_writes)?;
    let run_id = match merged.get_item(intern!(py, "run_id"))? {
        Some(r) if !r.is_none() => r.str()?.into_any(),
        _ => py.None().into_bound(py),
    };
    let metadata_json = encode_text(merged.as_any(), "metadata")?;
    PyTuple::new(
        py,
        [
            id,
            stored,
            metadata_json,
            run_id,
            PyBytes::new(py, inline.as_bytes()).into_any(),
            blob_channels.into_any(),
            blobs.into_any(),
            learnt.into_any(),
            carried.into_any(),
        ],
    )
}

/// The rows `put_writes` stores for a task's writes: `(thread_id, checkpoint_ns,
/// checkpoint_id, task_id, task_path, idx, channel, encoded)`, one per idx (a special channel
/// written twice keeps its last value, as storing the writes one by one would; its idx is
/// LangGraph's negative one). `limits` (a SizeLimits, or None) checks each value's size.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn write_rows<'py>(
    writes: &Bound<'py, PyAny>,
    thread_id: &str,
    checkpoint_ns: &str,
    checkpoint_id: &str,
    task_id: &str,
    task_path: &str,
    limits: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let py = writes.py();
    let registry = codec::active_registry(py, codec::default_registry())?;
    let mut rows: Vec<(i64, String, RawJson)> = Vec::new();
    for (index, (channel, encoded)) in writes_from_py(writes, &registry)?.into_iter().enumerate() {
        if let Some(limits) = limits {
            limits.call_method1(intern!(py, "check"), (&channel, encoded.as_bytes().len(), thread_id, checkpoint_ns, "pending write"))?;
        }
        let idx = write_index(&channel, index);
        // Only a special channel's idx (negative) can come again.
        match rows.iter_mut().find(|(i, _, _)| idx < 0 && *i == idx) {
            Some(row) => *row = (idx, channel, encoded),
            None => rows.push((idx, channel, encoded)),
        }
    }
    let list = PyList::empty(py);
    for (idx, channel, encoded) in rows {
        list.append((thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, PyBytes::new(py, encoded.as_bytes())))?;
    }
    Ok(list)
}
