//! `NativeMemorySaver`: the Python face of the native in-memory saver. The public class,
//! `ferrograph.checkpointers.MemorySaver`, subclasses it together with `BaseCheckpointSaver`,
//! so the sync protocol methods are these Rust ones with no Python frame in between. Values are
//! encoded and decoded with the GIL held. The store is read and updated with it held too when
//! that is a few map operations (releasing and retaking it would cost more), and released for
//! whole-store work (`list`, deletions, copies, pruning).
//!
//! With a keyring (`MemorySaver(encryption=...)`), channel values and pending writes are stored
//! sealed (see `crypt::seal_json`) and opened as they are read; such a saver keeps no value
//! decoded, so the only plaintext it holds is what a caller holds. With `metadata=True`,
//! metadata is sealed too, and filters (`list`, retention) and `delete_for_runs` open it here.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use ferrograph_checkpoint::{
    Checkpoint, CheckpointConfig, CheckpointMetadata, CheckpointSaver, KeptTuple, MemorySaver,
    PruneStrategy, RawJson, SharedCheckpoint, NO_WRITES,
};
use ferrograph_crypt::Keyring;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use serde_json::Value;

use super::convert::{
    checkpoint_from_py_for_put, checkpoint_to_py, config_from_py, config_to_py, filter_from_py,
    checkpoint_metadata, list_config_from_py, metadata_from_py, metadata_to_py, next_version,
    thread_id_from_py, tuple_to_py, versions_from_py, writes_from_py,
    SaverResultExt,
};
use super::encoded::EncodedCheckpoint;
use crate::codec::{active_registry, default_registry, DecodeCache, PySerializer, Registry};
use crate::crypt::{
    is_current_json, is_current_metadata, is_sealed_metadata, open_json, open_metadata, seal_json, seal_metadata,
    PyKeyring,
};
use crate::run::CoreRun;

#[pyclass(
    frozen,
    subclass,
    module = "ferrograph._core",
    name = "NativeMemorySaver"
)]
pub struct PyMemorySaver {
    inner: Arc<MemorySaver>,
    registry: Arc<Registry>,
    /// Values read by get/get_tuple/list, copied rather than parsed when read again (the
    /// latest checkpoint of a thread is typically read many times, a history listed again).
    decoded: Arc<DecodeCache>,
    /// The saver's `ferrograph.checkpointers.limits.SizeLimits`, which checks each encoded
    /// value before anything of a put is stored; None without limits.
    value_limits: Option<Py<PyAny>>,
    /// The keys values are sealed with; None stores them plain. Replaced when the saver's
    /// encryption is (key rotation).
    keyring: RwLock<Option<Arc<Keyring>>>,
    /// Set once the saver has had a keyring: from then on each value read is looked at (it may
    /// be sealed) and none is kept decoded. A saver that never had one reads as it always did.
    sealing: AtomicBool,
    /// Whether metadata is sealed too (`Encryption(metadata=True)`).
    sealing_metadata: AtomicBool,
}

/// The text of the values [`PyMemorySaver`] keeps decoded, at most.
const DECODE_CACHE_BYTES: usize = 4 << 20;

impl PyMemorySaver {
    /// The registry of this call: the active serializer's (a graph's saver calls, or
    /// `ferrograph.serde.using`), else the saver's own.
    fn codec(&self, py: Python<'_>) -> PyResult<Arc<Registry>> {
        active_registry(py, &self.registry)
    }

    /// The rest of a put once its checkpoint is in Rust: each new value checked against the
    /// size limits and sealed when the saver encrypts, then the checkpoint stored.
    fn store(
        &self,
        py: Python<'_>,
        target: &CheckpointConfig,
        mut checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: &BTreeMap<String, String>,
    ) -> PyResult<CheckpointConfig> {
        let metadata = match self.prepare(py, target, checkpoint.channel_values.iter_mut().map(|(c, v)| (c.as_str(), v)))? {
            Some(ring) => seal_metadata(py, &ring, &metadata)?,
            None => metadata,
        };
        self.inner.put(target, checkpoint, metadata, new_versions).py_err(py)
    }

    /// [`store`](Self::store) for a run's checkpoint (see `MemoryRunSink`).
    fn store_shared(
        &self,
        py: Python<'_>,
        target: &CheckpointConfig,
        mut checkpoint: SharedCheckpoint,
        metadata: RawJson,
    ) -> PyResult<CheckpointConfig> {
        let values = checkpoint.new_values.iter_mut().filter_map(|(c, _, v)| Some((&**c, v.as_mut()?)));
        let metadata = match self.prepare(py, target, values)? {
            Some(ring) => seal_metadata(py, &ring, &CheckpointMetadata::from_text(&metadata))?.to_text(),
            None => metadata,
        };
        self.inner.put_shared(target, checkpoint, metadata).py_err(py)
    }

    /// Checks each of a put's new values against the size limits and seals it when the saver
    /// encrypts (in place); returns the keyring to seal the put's metadata with, when metadata
    /// is sealed.
    fn prepare<'a>(
        &self,
        py: Python<'_>,
        target: &CheckpointConfig,
        values: impl Iterator<Item = (&'a str, &'a mut RawJson)>,
    ) -> PyResult<Option<Arc<Keyring>>> {
        let ring = self.check_and_seal(py, target, values, "value")?;
        Ok(ring.filter(|_| self.sealing_metadata.load(Ordering::Relaxed)))
    }

    /// Checks each value (`what`: "value" or "pending write", for the limits' messages) against
    /// the size limits, and seals it in place when the saver encrypts; returns the keyring it
    /// sealed with.
    fn check_and_seal<'a>(
        &self,
        py: Python<'_>,
        target: &CheckpointConfig,
        values: impl Iterator<Item = (&'a str, &'a mut RawJson)>,
        what: &str,
    ) -> PyResult<Option<Arc<Keyring>>> {
        let ring = self.sealer();
        if self.value_limits.is_none() && ring.is_none() {
            return Ok(None);
        }
        for (channel, value) in values {
            if let Some(limits) = &self.value_limits {
                let size = value.as_str().len();
                limits.call_method1(py, "check", (channel, size, &target.thread_id, &target.checkpoint_ns, what))?;
            }
            if let Some(ring) = &ring {
                *value = seal_json(py, ring, value)?;
            }
        }
        Ok(ring)
    }

    /// The rest of a put_writes once its values are encoded: checked against the size limits,
    /// sealed when the saver encrypts, then stored.
    fn store_writes(
        &self,
        py: Python<'_>,
        config: &CheckpointConfig,
        mut writes: Vec<(String, RawJson)>,
        task_id: &str,
        task_path: &str,
    ) -> PyResult<()> {
        self.check_and_seal(py, config, writes.iter_mut().map(|(c, v)| (c.as_str(), v)), "pending write")?;
        self.inner.put_writes(config, writes, task_id, task_path).py_err(py)
    }

    fn keyring(&self) -> Option<Arc<Keyring>> {
        self.keyring.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// How values are opened as they are read; None when nothing stored can be sealed.
    fn opener(&self) -> Option<Opener> {
        self.sealing.load(Ordering::Relaxed).then(|| Opener { ring: self.keyring() })
    }

    /// The keyring to seal with, when there is one.
    fn sealer(&self) -> Option<Arc<Keyring>> {
        if self.sealing.load(Ordering::Relaxed) {
            self.keyring()
        } else {
            None
        }
    }
}

/// Opens the sealed values of tuples read from an encrypting saver.
struct Opener {
    ring: Option<Arc<Keyring>>,
}

impl Opener {
    /// The tuple's metadata, opened.
    fn open_metadata(&self, py: Python<'_>, t: &KeptTuple) -> PyResult<CheckpointMetadata> {
        let what = || format!("the metadata (checkpoint '{}' of thread '{}')", t.id(), t.config.thread_id);
        open_metadata(py, self.ring.as_deref(), CheckpointMetadata::from_text(&t.metadata), &what)
    }

    fn open(&self, py: Python<'_>, mut t: KeptTuple) -> PyResult<KeptTuple> {
        let ring = self.ring.as_deref();
        let at = |t: &KeptTuple| {
            let ns = &t.config.checkpoint_ns;
            let ns = if ns.is_empty() { String::new() } else { format!(", namespace '{ns}'") };
            format!("checkpoint '{}' of thread '{}'{ns}", t.id(), t.config.thread_id)
        };
        let metadata = CheckpointMetadata::from_text(&t.metadata);
        t.metadata = open_metadata(py, ring, metadata, &|| format!("the metadata ({})", at(&t)))?.to_text();
        let mut values = std::mem::take(&mut t.values);
        for (channel, value) in values.iter_mut() {
            *value = open_json(py, ring, value, &|| format!("channel '{channel}' ({})", at(&t)))?;
        }
        t.values = values;
        let mut writes = std::mem::take(&mut t.pending_writes);
        for w in writes.iter_mut() {
            w.value = open_json(py, ring, &w.value, &|| format!("the pending write to '{}' ({})", w.channel, at(&t)))?;
        }
        t.pending_writes = writes;
        Ok(t)
    }
}

fn thread_ids_from_py(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<String>> {
    if obj.is_instance_of::<PyString>() {
        return Err(PyValueError::new_err(format!(
            "{what} must be a list of ids, not a single str"
        )));
    }
    obj.try_iter()?
        .map(|id| thread_id_from_py(&id?, what))
        .collect()
}

#[pymethods]
impl PyMemorySaver {
    /// `serializer`: a `ferrograph.serde.Serializer` whose allowed classes and depth limit this saver
    /// uses; the process-wide default codec otherwise.
    /// `keyring`: the `_core.Keyring` values are sealed with (`Encryption._ring`);
    /// `seal_metadata`: metadata too.
    #[new]
    #[pyo3(signature = (*, serializer = None, value_limits = None, keyring = None, seal_metadata = false))]
    fn new(
        serializer: Option<PyRef<'_, PySerializer>>,
        value_limits: Option<Py<PyAny>>,
        keyring: Option<PyRef<'_, PyKeyring>>,
        seal_metadata: bool,
    ) -> Self {
        let registry = match serializer {
            Some(s) => s.registry().clone(),
            None => default_registry().clone(),
        };
        PyMemorySaver {
            inner: Arc::new(MemorySaver::new()),
            registry,
            decoded: Arc::new(DecodeCache::new(DECODE_CACHE_BYTES)),
            value_limits,
            sealing: AtomicBool::new(keyring.is_some()),
            sealing_metadata: AtomicBool::new(keyring.is_some() && seal_metadata),
            keyring: RwLock::new(keyring.map(|k| k.keyring().clone())),
        }
    }

    /// Replaces the keyring (None: new values are stored plain; sealed ones stay sealed and
    /// are refused, naming their key id, until a keyring with that key is given back).
    #[pyo3(signature = (keyring, seal_metadata = false))]
    fn _set_keyring(&self, keyring: Option<PyRef<'_, PyKeyring>>, seal_metadata: bool) {
        if keyring.is_some() {
            self.sealing.store(true, Ordering::Relaxed);
        }
        self.sealing_metadata.store(keyring.is_some() && seal_metadata, Ordering::Relaxed);
        *self.keyring.write().unwrap_or_else(std::sync::PoisonError::into_inner) = keyring.map(|k| k.keyring().clone());
    }

    /// Seals every stored value and pending write not sealed with the newest key of the
    /// keyring (plain ones too), then each checkpoint's metadata that is sealed with another
    /// key (or plain, when metadata is sealed too); returns (examined, rewritten).
    fn _reseal(&self, py: Python<'_>) -> PyResult<(usize, usize)> {
        let Some(ring) = self.keyring() else {
            return Err(crate::errors::new_error(py, "EncryptionKeyError", "this MemorySaver has no encryption: give it encryption=Encryption(...) to re-encrypt its values".to_owned()));
        };
        let opener = Opener { ring: Some(ring.clone()) };
        let rewritten = self.inner.rewrite_values(|value| {
            if is_current_json(&ring, value) {
                return Ok(None);
            }
            let plain = open_json(py, opener.ring.as_deref(), value, &|| "a stored value".to_owned())?;
            seal_json(py, &ring, &plain).map(Some)
        });
        let (examined, rewritten) = rewritten.py_err(py)??;
        let all_metadata = self.sealing_metadata.load(Ordering::Relaxed);
        let mut metadata_examined = 0;
        let metadata = self.inner.rewrite_metadata(|metadata| {
            let sealed = is_sealed_metadata(metadata);
            if !sealed && !all_metadata {
                return Ok(None);
            }
            metadata_examined += 1;
            if is_current_metadata(&ring, metadata) {
                return Ok(None);
            }
            let plain = open_metadata(py, opener.ring.as_deref(), metadata.clone(), &|| "a checkpoint's metadata".to_owned())?;
            seal_metadata(py, &ring, &plain).map(Some)
        });
        let (_, metadata_rewritten) = metadata.py_err(py)??;
        Ok((examined + metadata_examined, rewritten + metadata_rewritten))
    }

    /// The checkpoint `config` points at (the thread's latest without a checkpoint_id), with its
    /// metadata, parent and pending writes; None when there is none.
    fn get_tuple<'py>(
        &self,
        py: Python<'py>,
        config: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let codec = self.codec(py)?;
        let config = config_from_py(config)?;
        let found = self.inner.get_kept(&config).py_err(py)?;
        if let Some(opener) = self.opener() {
            return found.map(|t| tuple_to_py(py, &opener.open(py, t)?, &codec, None)).transpose();
        }
        found
            .map(|t| tuple_to_py(py, &t, &codec, Some(&self.decoded)))
            .transpose()
    }

    /// The serializer this saver uses outside a graph's calls.
    #[getter]
    fn serializer(&self) -> PySerializer {
        PySerializer::from_registry(self.registry.clone())
    }

    /// Just the checkpoint dict of [`get_tuple`].
    fn get<'py>(
        &self,
        py: Python<'py>,
        config: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let codec = self.codec(py)?;
        let config = config_from_py(config)?;
        let found = self.inner.get_kept(&config).py_err(py)?;
        if let Some(opener) = self.opener() {
            return found.map(|t| checkpoint_to_py(py, &opener.open(py, t)?, &codec, None)).transpose();
        }
        found
            .map(|t| checkpoint_to_py(py, &t, &codec, Some(&self.decoded)))
            .transpose()
    }

    /// Checkpoints newest first, as an iterator of `CheckpointTuple`.
    #[pyo3(signature = (config, *, filter = None, before = None, limit = None))]
    fn list(
        &self,
        py: Python<'_>,
        config: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
        before: Option<&Bound<'_, PyAny>>,
        limit: Option<usize>,
    ) -> PyResult<CheckpointTupleIter> {
        let codec = self.codec(py)?;
        let scope = list_config_from_py(config)?;
        let filter = filter
            .filter(|f| !f.is_none())
            .map(|f| filter_from_py(f, &codec))
            .transpose()?;
        let before = before
            .filter(|b| !b.is_none())
            .map(config_from_py)
            .transpose()?;
        let inner = &self.inner;
        let opener = self.opener();
        let items = match (&opener, filter) {
            // Metadata may be sealed: filtered here once opened (a scan of the scope).
            (Some(opener), Some(filter)) => {
                let all = py.detach(|| inner.list_kept(scope.as_ref(), None, before.as_ref(), None)).py_err(py)?;
                let mut kept = Vec::new();
                for mut t in all {
                    if limit.is_some_and(|limit| kept.len() >= limit) {
                        break;
                    }
                    let opened = opener.open_metadata(py, &t)?;
                    if opened.matches(&filter) {
                        t.metadata = opened.to_text();
                        kept.push(t);
                    }
                }
                kept
            }
            (_, filter) => py
                .detach(|| inner.list_kept(scope.as_ref(), filter.as_ref(), before.as_ref(), limit))
                .py_err(py)?,
        };
        Ok(CheckpointTupleIter {
            items: items.into_iter(),
            registry: codec,
            decoded: if opener.is_some() { None } else { Some(self.decoded.clone()) },
            opener,
        })
    }

    /// Stores `checkpoint` as a child of `config`'s checkpoint_id; only channels in
    /// `new_versions` are stored anew. Returns the config of the stored checkpoint.
    /// `checkpoint` is LangGraph's dict, or the `EncodedCheckpoint` a run hands over.
    fn put<'py>(
        &self,
        py: Python<'py>,
        config: &Bound<'py, PyAny>,
        checkpoint: &Bound<'py, PyAny>,
        metadata: &Bound<'py, PyAny>,
        new_versions: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let codec = self.codec(py)?;
        let target = config_from_py(config)?;
        let new_versions = versions_from_py(new_versions, &|| "new_versions".to_owned())?;
        let checkpoint = match checkpoint.cast::<EncodedCheckpoint>() {
            Ok(encoded) => encoded.get().checkpoint.clone(),
            Err(_) => checkpoint_from_py_for_put(checkpoint, &new_versions, &codec)?,
        };
        // As LangGraph's InMemorySaver: a "writes" key is kept.
        let metadata = metadata_from_py(checkpoint_metadata(config, metadata, false)?.as_any(), &codec)?;
        let stored = self.store(py, &target, checkpoint, metadata, &new_versions)?;
        config_to_py(py, &stored)
    }

    /// Stores a task's writes against `config`'s checkpoint. A repeated ordinary write is
    /// ignored; `__error__`, `__scheduled__`, `__interrupt__` and `__resume__` writes replace.
    #[pyo3(signature = (config, writes, task_id, task_path = ""))]
    fn put_writes(
        &self,
        py: Python<'_>,
        config: &Bound<'_, PyAny>,
        writes: &Bound<'_, PyAny>,
        task_id: &str,
        task_path: &str,
    ) -> PyResult<()> {
        let codec = self.codec(py)?;
        let config = config_from_py(config)?;
        let writes = writes_from_py(writes, &codec)?;
        self.store_writes(py, &config, writes, task_id, task_path)
    }

    /// What a graph run on `thread_id`/`checkpoint_ns` stores its steps through (see
    /// [`MemoryRunSink`]): `metadata` is what each of its checkpoints' metadata holds besides
    /// `source` and `step`; values are encoded with `serializer`.
    fn run_sink(
        slf: &Bound<'_, Self>,
        thread_id: String,
        checkpoint_ns: String,
        metadata: &Bound<'_, PyAny>,
        serializer: &Bound<'_, PySerializer>,
    ) -> PyResult<MemoryRunSink> {
        let py = slf.py();
        let registry = serializer.get().registry().clone();
        let metadata = metadata_from_py(checkpoint_metadata(&py.None().into_bound(py), metadata, false)?.as_any(), &registry)?;
        if let Some(key) = [CheckpointMetadata::SOURCE, CheckpointMetadata::STEP].into_iter().find(|k| metadata.contains_key(*k)) {
            return Err(PyValueError::new_err(format!("a run sink's metadata cannot hold {key:?}: each checkpoint's own is written")));
        }
        let text = metadata.to_text();
        // The entries without the braces, written after each checkpoint's source and step.
        let tail = text.as_str()[1..text.as_str().len() - 1].to_owned();
        Ok(MemoryRunSink { saver: slf.clone().unbind(), registry, thread_id, checkpoint_ns, tail })
    }

    fn delete_thread(&self, py: Python<'_>, thread_id: &Bound<'_, PyAny>) -> PyResult<()> {
        let thread_id = thread_id_from_py(thread_id, "thread_id")?;
        let inner = &self.inner;
        py.detach(|| inner.delete_thread(&thread_id)).py_err(py)
    }

    fn delete_for_runs(&self, py: Python<'_>, run_ids: &Bound<'_, PyAny>) -> PyResult<()> {
        let run_ids = thread_ids_from_py(run_ids, "run_ids")?;
        let inner = &self.inner;
        if let Some(opener) = self.opener() {
            // Metadata may be sealed: the run ids are read here once opened.
            let heads = py.detach(|| inner.heads(None)).py_err(py)?;
            let mut doomed = Vec::new();
            for h in heads {
                let what = || format!("the metadata (checkpoint '{}' of thread '{}')", h.checkpoint_id, h.thread_id);
                let metadata = open_metadata(py, opener.ring.as_deref(), h.metadata, &what)?;
                if metadata.run_id().is_some_and(|r| run_ids.iter().any(|id| id == r)) {
                    doomed.push((h.thread_id, h.checkpoint_ns, h.checkpoint_id));
                }
            }
            return py.detach(|| inner.remove_checkpoints(&doomed, false)).py_err(py).map(drop);
        }
        py.detach(|| inner.delete_for_runs(&run_ids)).py_err(py)
    }

    /// Copies every checkpoint and write of one thread into another (ids kept);
    /// `CheckpointNotFoundError` when the source thread holds nothing.
    fn copy_thread(
        &self,
        py: Python<'_>,
        source_thread_id: &Bound<'_, PyAny>,
        target_thread_id: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let source = thread_id_from_py(source_thread_id, "source_thread_id")?;
        let target = thread_id_from_py(target_thread_id, "target_thread_id")?;
        let inner = &self.inner;
        py.detach(|| inner.copy_thread(&source, &target)).py_err(py)
    }

    /// `strategy="keep_latest"` keeps each namespace's latest checkpoint (with its writes);
    /// `strategy="delete"` removes the threads.
    #[pyo3(signature = (thread_ids, *, strategy = "keep_latest"))]
    fn prune(&self, py: Python<'_>, thread_ids: &Bound<'_, PyAny>, strategy: &str) -> PyResult<()> {
        let Some(strategy) = PruneStrategy::parse(strategy) else {
            return Err(PyValueError::new_err(format!(
                "unknown prune strategy {strategy:?}: expected 'keep_latest' or 'delete'"
            )));
        };
        let thread_ids = thread_ids_from_py(thread_ids, "thread_ids")?;
        let inner = &self.inner;
        py.detach(|| inner.prune(&thread_ids, strategy)).py_err(py)
    }

    /// The version after `current` (see `next_version`), increasing as strings.
    #[pyo3(signature = (current, channel = None))]
    fn get_next_version(
        &self,
        py: Python<'_>,
        current: Option<&Bound<'_, PyAny>>,
        channel: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let _ = channel;
        next_version(py, current)
    }

    /// Every checkpoint of `thread_ids` (all threads with None) without its values, as tuples
    /// `(thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, ts, metadata, writes,
    /// write_bytes)`, in no particular order: what retention plans with.
    #[pyo3(signature = (thread_ids = None))]
    fn checkpoint_heads<'py>(
        &self,
        py: Python<'py>,
        thread_ids: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let codec = self.codec(py)?;
        let ids = thread_ids
            .filter(|t| !t.is_none())
            .map(|t| thread_ids_from_py(t, "thread_ids"))
            .transpose()?;
        let inner = &self.inner;
        let heads = py.detach(|| inner.heads(ids.as_deref())).py_err(py)?;
        let ring = self.opener().map(|o| o.ring);
        heads
            .into_iter()
            .map(|h| {
                let metadata = match &ring {
                    Some(ring) => {
                        let what = || format!("the metadata (checkpoint '{}' of thread '{}')", h.checkpoint_id, h.thread_id);
                        open_metadata(py, ring.as_deref(), h.metadata, &what)?
                    }
                    None => h.metadata,
                };
                let metadata = metadata_to_py(py, &metadata, &codec)?;
                Ok((
                    h.thread_id,
                    h.checkpoint_ns,
                    h.checkpoint_id,
                    h.parent_id,
                    h.ts,
                    metadata,
                    h.writes,
                    h.write_bytes,
                )
                    .into_pyobject(py)?
                    .into_any())
            })
            .collect()
    }

    /// Deletes the checkpoints `keys` names (`(thread_id, checkpoint_ns, checkpoint_id)`
    /// tuples), their pending writes and the values nothing else reads, at once; with
    /// `dry_run` only counts them. Returns `{"checkpoints", "writes", "blobs", "bytes",
    /// "threads"}`, `threads` listing the threads left empty.
    #[pyo3(signature = (keys, *, dry_run = false))]
    fn remove_checkpoints<'py>(
        &self,
        py: Python<'py>,
        keys: Vec<(String, String, String)>,
        dry_run: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let inner = &self.inner;
        let removed = py.detach(|| inner.remove_checkpoints(&keys, dry_run)).py_err(py)?;
        let d = PyDict::new(py);
        d.set_item("checkpoints", removed.checkpoints)?;
        d.set_item("writes", removed.writes)?;
        d.set_item("blobs", removed.blobs)?;
        d.set_item("bytes", removed.bytes)?;
        d.set_item("threads", removed.threads)?;
        Ok(d)
    }

    /// The stored bytes of every thread (or of `thread_id`): a list of dicts with
    /// `thread_id, checkpoints, writes, write_bytes, metadata_bytes, first_ts, last_ts` and
    /// `channels` (`{channel: (values, bytes)}`) and `write_channels` (`{channel: (writes,
    /// bytes)}`), for `ferrograph stats`.
    #[pyo3(signature = (thread_id = None))]
    fn usage<'py>(&self, py: Python<'py>, thread_id: Option<&str>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let inner = &self.inner;
        let usage = py.detach(|| inner.usage(thread_id)).py_err(py)?;
        usage
            .into_iter()
            .map(|u| {
                let d = PyDict::new(py);
                d.set_item("thread_id", u.thread_id)?;
                d.set_item("checkpoints", u.checkpoints)?;
                d.set_item("writes", u.writes)?;
                d.set_item("write_bytes", u.write_bytes)?;
                d.set_item("metadata_bytes", u.metadata_bytes)?;
                d.set_item("first_ts", u.first_ts)?;
                d.set_item("last_ts", u.last_ts)?;
                d.set_item("channels", u.channels)?;
                d.set_item("write_channels", u.write_channels)?;
                Ok(d)
            })
            .collect()
    }

    /// Counts of what the saver holds: threads, checkpoints, blobs (stored channel values) and
    /// writes.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let inner = &self.inner;
        let s = py.detach(|| inner.stats()).py_err(py)?;
        let d = PyDict::new(py);
        d.set_item("threads", s.threads)?;
        d.set_item("checkpoints", s.checkpoints)?;
        d.set_item("blobs", s.blobs)?;
        d.set_item("writes", s.writes)?;
        Ok(d)
    }
}

/// The iterator `list` returns: tuples are found at once (under one read of the store) and
/// turned into Python objects one at a time as they are consumed.
#[pyclass(module = "ferrograph._core")]
pub struct CheckpointTupleIter {
    items: std::vec::IntoIter<KeptTuple>,
    registry: Arc<Registry>,
    /// The saver's decoded values; None when it encrypts (nothing is kept decoded).
    decoded: Option<Arc<DecodeCache>>,
    opener: Option<Opener>,
}

#[pymethods]
impl CheckpointTupleIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.items.next() {
            Some(t) => {
                let t = match &self.opener {
                    Some(opener) => opener.open(py, t)?,
                    None => t,
                };
                tuple_to_py(py, &t, &self.registry, self.decoded.as_deref()).map(Some)
            }
            None => Ok(None),
        }
    }

    fn __length_hint__(&self) -> usize {
        self.items.len()
    }
}

/// A graph run's way into a native memory saver: the run's checkpoints and its tasks' writes go
/// from the Rust run into the store in one call each, with no Python dict built for them; the
/// thread, the metadata every checkpoint of the run shares and the codec are taken once, when
/// the run starts. The stored result is what `put` and `put_writes` would store.
#[pyclass(frozen, module = "ferrograph._core")]
pub struct MemoryRunSink {
    saver: Py<PyMemorySaver>,
    registry: Arc<Registry>,
    thread_id: String,
    checkpoint_ns: String,
    /// The entries every checkpoint's metadata holds after its source and step, as JSON text
    /// without braces (`"parents":{}`...): a checkpoint's metadata is written as text
    /// straight away (what the saver keeps), with no map built for it.
    tail: String,
}

impl MemoryRunSink {
    fn config(&self, checkpoint_id: Option<&str>, expect_latest: bool) -> CheckpointConfig {
        CheckpointConfig {
            thread_id: self.thread_id.clone(),
            checkpoint_ns: self.checkpoint_ns.clone(),
            checkpoint_id: checkpoint_id.map(str::to_owned),
            expect_latest,
        }
    }
}

#[pymethods]
impl MemoryRunSink {
    /// Stores the run as a new checkpoint (`checkpoint_id` when given, else a fresh id, which
    /// also seeds the run's next task ids), a child of `parent_id`, with metadata `{source,
    /// step, ...}`; with `expect_latest`, only while `parent_id` is still the thread's latest
    /// (`ConcurrentUpdateError` otherwise). Returns its id.
    #[pyo3(signature = (run, source, step, parent_id, expect_latest, checkpoint_id = None))]
    #[allow(clippy::too_many_arguments)] // the Python method's arguments, as the run passes them
    fn put(
        &self,
        py: Python<'_>,
        mut run: PyRefMut<'_, CoreRun>,
        source: &str,
        step: i64,
        parent_id: Option<&str>,
        expect_latest: bool,
        checkpoint_id: Option<String>,
    ) -> PyResult<String> {
        let id = checkpoint_id.unwrap_or_else(ferrograph_checkpoint::checkpoint_id);
        run.set_seed(id.clone());
        let checkpoint = run.encode_shared(py, id.clone(), ferrograph_checkpoint::now_iso8601(), &self.registry)?;
        let mut metadata = String::with_capacity(40 + self.tail.len());
        metadata.push_str("{\"source\":");
        metadata.push_str(&Value::from(source).to_string());
        metadata.push_str(",\"step\":");
        metadata.push_str(itoa::Buffer::new().format(step));
        if !self.tail.is_empty() {
            metadata.push(',');
            metadata.push_str(&self.tail);
        }
        metadata.push('}');
        let target = self.config(parent_id, expect_latest);
        self.saver.get().store_shared(py, &target, checkpoint, RawJson::from_trusted(metadata))?;
        Ok(id)
    }

    /// Stores task `task`'s writes (`__no_writes__` when it wrote nothing) against checkpoint
    /// `checkpoint_id`.
    fn put_writes(&self, py: Python<'_>, run: PyRef<'_, CoreRun>, task: usize, checkpoint_id: &str) -> PyResult<()> {
        let mut writes = run.encoded_writes(py, task, &self.registry)?;
        if writes.is_empty() {
            writes.push((NO_WRITES.to_owned(), RawJson::from_trusted("null")));
        }
        let config = self.config(Some(checkpoint_id), false);
        self.saver.get().store_writes(py, &config, writes, run.task_id(task), "")
    }
}
