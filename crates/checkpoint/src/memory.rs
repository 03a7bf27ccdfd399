//! `MemorySaver`, the native in-memory `CheckpointSaver`.
//!
//! Layout: thread -> namespace -> { checkpoints by id, blobs by (channel, version), writes by
//! checkpoint id }. Checkpoints sit in a `BTreeMap` keyed by id, so "latest", `before` and
//! newest-first listing are range scans. Channel values live once per version as blobs, so a
//! long thread stores each value once, not once per checkpoint. One `RwLock` guards it all:
//! every call is atomic, and readers run in parallel.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::{Map, Value};

use crate::model::{
    write_index, Checkpoint, CHECKPOINT_VERSION, CheckpointConfig, CheckpointMetadata, CheckpointTuple, ListConfig,
    PendingWrite, RawJson,
};
use crate::id::checkpoint_id;
use crate::saver::{CheckpointSaver, PruneStrategy, Result, SaverError};
use crate::small_map::SmallMap;

#[derive(Default)]
pub struct MemorySaver {
    store: RwLock<Store>,
}

/// Counts of what a `MemorySaver` holds, for tests and benchmarks that check growth.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    pub threads: usize,
    pub checkpoints: usize,
    pub blobs: usize,
    pub writes: usize,
}

#[derive(Default)]
struct Store {
    threads: HashMap<String, Thread>,
    /// The channel names and task paths pending writes name, each held once (see
    /// `WriteNames`).
    write_names: WriteNames,
    /// Per thread that lost checkpoints to a deletion, a checkpoint id made at the (last) time
    /// it did: a checkpoint that does not exist and whose id is older was deleted, so a late
    /// write for it (a run still writing while its thread was deleted) is refused.
    deleted: HashMap<String, String>,
}

/// One checkpoint as retention and statistics see it: its key, parent, time, metadata and the
/// bytes of what it alone holds (its metadata and pending writes), without its values.
#[derive(Clone, Debug)]
pub struct CheckpointHead {
    pub thread_id: String,
    pub checkpoint_ns: String,
    pub checkpoint_id: String,
    pub parent_id: Option<String>,
    pub ts: String,
    pub metadata: CheckpointMetadata,
    pub writes: usize,
    pub write_bytes: usize,
}

/// What deleting checkpoints removed (or, in a dry run, would remove).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub checkpoints: usize,
    pub writes: usize,
    /// Stored values no remaining checkpoint reads.
    pub blobs: usize,
    /// Bytes of the values, pending writes and metadata removed.
    pub bytes: usize,
    /// Threads left without any checkpoint, in the order first met.
    pub threads: Vec<String>,
}

/// The stored bytes of one thread, for statistics: its values by channel, its pending writes
/// and its metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThreadUsage {
    pub thread_id: String,
    pub checkpoints: usize,
    pub writes: usize,
    pub write_bytes: usize,
    pub metadata_bytes: usize,
    /// Channel -> (stored values, their bytes).
    pub channels: BTreeMap<String, (usize, usize)>,
    /// Channel -> (pending writes, their bytes).
    pub write_channels: BTreeMap<String, (usize, usize)>,
    /// The oldest and newest checkpoint times.
    pub first_ts: String,
    pub last_ts: String,
}

#[derive(Clone, Default)]
struct Thread {
    namespaces: HashMap<String, Namespace>,
}

#[derive(Clone, Default)]
struct Namespace {
    checkpoints: BTreeMap<String, Arc<Saved>>,
    /// channel -> version -> value; `None` records a channel cleared at that version.
    blobs: HashMap<Shared, ChannelValues>,
    /// checkpoint id -> (task id, write index) -> write. Writes may precede their checkpoint's
    /// `put`, so they are not stored inside `Saved`.
    writes: HashMap<String, TaskWrites>,
}

/// A write's place among its checkpoint's pending writes: task id, then write index.
type WriteKey = (Shared, i64);

/// The channel names and task paths of pending writes, held once for the saver: every write
/// names both, and most name one of a graph's few channels and nodes, so a write keeps
/// shared names instead of two strings of its own. At most `WRITE_NAMES_KEPT` are kept (past
/// that a name is held by the writes that name it).
#[derive(Default)]
struct WriteNames(HashSet<Shared>);

const WRITE_NAMES_KEPT: usize = 4096;

impl WriteNames {
    fn get(&mut self, name: &str) -> Shared {
        if let Some(kept) = self.0.get(name) {
            return kept.clone();
        }
        let name = Shared::from(name);
        if self.0.len() < WRITE_NAMES_KEPT {
            self.0.insert(name.clone());
        }
        name
    }
}

/// One checkpoint's pending writes, in (task id, write index) order.
type TaskWrites = SmallMap<WriteKey, StoredWrite>;

/// One channel's values by version (`None`: the channel was cleared at that version). The
/// version is the one its checkpoint's `channel_versions` holds, shared.
type ChannelValues = SmallMap<Shared, Option<RawJson>>;

/// A checkpoint as the saver keeps it: without its values (they live in the namespace's
/// blobs), without its id (the key it is stored under), and with its version maps as sorted
/// slices. A saver keeps every checkpoint for its whole life, and a `BTreeMap` allocates a node
/// of about half a kilobyte however few entries it holds: with three of them a checkpoint of
/// four channels took 3.7 KB, three times what LangGraph's memory saver keeps. Names, versions
/// and whole version maps are shared with the checkpoint's parent where they are the same (a
/// node's `versions_seen` rarely changes from one step to the next), so a long thread holds
/// each once.
#[derive(Clone)]
struct Saved {
    v: u32,
    ts: Box<str>,
    channel_versions: VersionPairs,
    versions_seen: Box<[(Shared, VersionPairs)]>,
    updated_channels: Option<Box<[Shared]>>,
    /// Its JSON text (`CheckpointMetadata::to_text`): a map of a few keys took about half a
    /// kilobyte of allocations per checkpoint (the map's entries and index, each key and
    /// string value), the text a tenth of that; a reader that makes objects of its own from
    /// it (the Python binding) decodes the text in one pass.
    metadata: RawJson,
    parent_id: Option<Box<str>>,
}

/// A channel or node name, or a version, held once however many checkpoints name it.
pub type Shared = Arc<str>;

/// Names and their versions, sorted by name: a checkpoint's `channel_versions`, or what a node
/// has seen. Shared by the checkpoints that hold the same.
pub type VersionPairs = Arc<[(Shared, Shared)]>;

/// A checkpoint handed to [`MemorySaver::put_shared`] with its version maps already in the
/// saver's shared form: what a graph run builds once per step and reuses while unchanged,
/// instead of maps of owned strings that the saver would convert (see `put`).
pub struct SharedCheckpoint {
    pub id: String,
    pub ts: String,
    pub channel_versions: VersionPairs,
    /// Sorted by node name.
    pub versions_seen: Box<[(Shared, VersionPairs)]>,
    pub updated_channels: Option<Box<[Shared]>>,
    /// The channels at a new version: channel, version and value (None: the channel was
    /// cleared at that version), the names and versions those `channel_versions` holds.
    pub new_values: Vec<(Shared, Shared, Option<RawJson>)>,
}

/// A checkpoint read from a [`MemorySaver`] in the form the saver keeps it, shared with the
/// saver rather than copied: a caller that makes objects of its own from it (the Python
/// binding) reads them from here; [`KeptTuple::into_tuple`] gives the protocol's tuple.
pub struct KeptTuple {
    pub config: CheckpointConfig,
    saved: Arc<Saved>,
    /// The checkpoint's metadata as its JSON text (`CheckpointMetadata::from_text` reads it;
    /// a caller may replace it: an encrypting saver's binding opens it here).
    pub metadata: RawJson,
    /// Its channels' values, in channel name order.
    pub values: Vec<(Shared, RawJson)>,
    pub pending_writes: Vec<PendingWrite>,
}

impl KeptTuple {
    pub fn v(&self) -> u32 {
        self.saved.v
    }

    pub fn id(&self) -> &str {
        self.config.id().unwrap_or_default()
    }

    pub fn ts(&self) -> &str {
        &self.saved.ts
    }

    pub fn channel_versions(&self) -> &[(Shared, Shared)] {
        &self.saved.channel_versions
    }

    /// Sorted by node name.
    pub fn versions_seen(&self) -> &[(Shared, VersionPairs)] {
        &self.saved.versions_seen
    }

    pub fn updated_channels(&self) -> Option<&[Shared]> {
        self.saved.updated_channels.as_deref()
    }

    pub fn parent_config(&self) -> Option<CheckpointConfig> {
        let parent = self.saved.parent_id.as_deref()?;
        Some(CheckpointConfig::new(self.config.thread_id.clone()).with_ns(self.config.checkpoint_ns.clone()).with_checkpoint_id(parent))
    }

    pub fn into_tuple(self) -> CheckpointTuple {
        let mut checkpoint = self.saved.checkpoint(self.id());
        let parent_config = self.parent_config();
        checkpoint.channel_values = self.values.into_iter().map(|(channel, value)| (String::from(&*channel), value)).collect();
        CheckpointTuple {
            parent_config,
            config: self.config,
            checkpoint,
            metadata: CheckpointMetadata::from_text(&self.metadata),
            pending_writes: self.pending_writes,
        }
    }
}

/// `map` as pairs, sharing with `like` (the same map of the parent checkpoint): all of it when
/// equal, else each name and version it also holds.
fn shared_pairs(map: BTreeMap<String, String>, like: Option<&VersionPairs>) -> VersionPairs {
    let Some(like) = like else {
        return map.into_iter().map(|(k, v)| (Shared::from(k), Shared::from(v))).collect();
    };
    let same = like.len() == map.len() && like.iter().zip(&map).all(|((n, v), (k, w))| **n == **k && **v == **w);
    if same {
        return like.clone();
    }
    map.into_iter()
        .map(|(k, v)| match like.binary_search_by(|(n, _)| (**n).cmp(&k)) {
            Ok(at) => {
                let (name, version) = &like[at];
                (name.clone(), if **version == *v { version.clone() } else { Shared::from(v) })
            }
            Err(_) => (Shared::from(k), Shared::from(v)),
        })
        .collect()
}

fn unpack(pairs: &[(Shared, Shared)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (String::from(&**k), String::from(&**v)))
        .collect()
}

impl Saved {
    /// `checkpoint` as kept, sharing what it holds as `parent` does.
    fn new(
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        parent_id: Option<String>,
        parent: Option<&Saved>,
    ) -> Self {
        let seen_before = |node: &str| {
            let seen = &parent?.versions_seen;
            seen.binary_search_by(|(n, _)| (**n).cmp(node)).ok().map(|at| &seen[at].1)
        };
        Saved {
            v: checkpoint.v,
            ts: checkpoint.ts.into_boxed_str(),
            channel_versions: shared_pairs(checkpoint.channel_versions, parent.map(|p| &p.channel_versions)),
            versions_seen: checkpoint
                .versions_seen
                .into_iter()
                .map(|(node, seen)| {
                    let like = seen_before(&node);
                    (Shared::from(node), shared_pairs(seen, like))
                })
                .collect(),
            updated_channels: checkpoint
                .updated_channels
                .map(|c| c.into_iter().map(Shared::from).collect()),
            metadata: metadata.to_text(),
            parent_id: parent_id.map(String::into_boxed_str),
        }
    }

    /// The checkpoint stored under `id`, without values.
    fn checkpoint(&self, id: &str) -> Checkpoint {
        Checkpoint {
            v: self.v,
            id: id.to_owned(),
            ts: String::from(&*self.ts),
            channel_values: BTreeMap::new(),
            channel_versions: unpack(&self.channel_versions),
            versions_seen: self
                .versions_seen
                .iter()
                .map(|(node, seen)| (String::from(&**node), unpack(seen)))
                .collect(),
            updated_channels: self
                .updated_channels
                .as_ref()
                .map(|c| c.iter().map(|name| String::from(&**name)).collect()),
        }
    }
}

/// `value`, or the text the channel holds at the parent's version when it is the same: a node
/// that writes a channel again unchanged (a list rewritten whole) then adds no copy of its
/// text, and readers that cache decoded values by stored text see one value.
fn shared_with_parent(
    blobs: &HashMap<Shared, ChannelValues>,
    parent: Option<&Saved>,
    channel: &str,
    value: RawJson,
) -> RawJson {
    let previous = parent.and_then(|p| {
        let at = p.channel_versions.binary_search_by(|(name, _)| (**name).cmp(channel)).ok()?;
        blobs.get(channel)?.get(&*p.channel_versions[at].1)?.as_ref()
    });
    match previous {
        Some(previous) if previous.as_str() == value.as_str() => previous.clone(),
        _ => value,
    }
}

/// Puts a rewrite's new value (if any) in `slot`; whether it did.
fn replace<T>(slot: &mut T, new: Option<T>) -> bool {
    new.map(|new| *slot = new).is_some()
}

#[derive(Clone)]
struct StoredWrite {
    channel: Shared,
    value: RawJson,
    task_path: Shared,
}

impl MemorySaver {
    pub fn new() -> Self {
        Self::default()
    }

    /// `put` for a checkpoint whose version maps are already shared (a graph run's), with its
    /// metadata as the text of one JSON object (`CheckpointMetadata::to_text`, or written so
    /// by the caller): stores the same as `put` of the same checkpoint would.
    pub fn put_shared(
        &self,
        config: &CheckpointConfig,
        checkpoint: SharedCheckpoint,
        metadata: RawJson,
    ) -> Result<CheckpointConfig> {
        let SharedCheckpoint { id, ts, channel_versions, versions_seen, updated_channels, new_values } = checkpoint;
        self.store(config, id, new_values, |parent_id, _| Saved {
            v: CHECKPOINT_VERSION,
            ts: ts.into_boxed_str(),
            channel_versions,
            versions_seen,
            updated_channels,
            metadata,
            parent_id: parent_id.map(String::into_boxed_str),
        })
    }

    /// `get_tuple`, in the form the saver keeps the checkpoint (see [`KeptTuple`]).
    pub fn get_kept(&self, config: &CheckpointConfig) -> Result<Option<KeptTuple>> {
        let store = self.read()?;
        let Some(ns) = store
            .threads
            .get(&config.thread_id)
            .and_then(|t| t.namespaces.get(&config.checkpoint_ns))
        else {
            return Ok(None);
        };
        let found = match config.id() {
            Some(id) => ns.checkpoints.get_key_value(id),
            None => ns.checkpoints.last_key_value(),
        };
        Ok(found.map(|(id, saved)| ns.tuple(&config.thread_id, &config.checkpoint_ns, id, saved)))
    }

    /// `list`, in the form the saver keeps the checkpoints (see [`KeptTuple`]).
    pub fn list_kept(
        &self,
        config: Option<&ListConfig>,
        filter: Option<&Map<String, Value>>,
        before: Option<&CheckpointConfig>,
        limit: Option<usize>,
    ) -> Result<Vec<KeptTuple>> {
        let limit = limit.unwrap_or(usize::MAX);
        let store = self.read()?;
        let mut sources: Vec<(&str, &str, &Namespace)> = Vec::new();
        match config {
            Some(c) => {
                if let Some((tid, thread)) = store.threads.get_key_value(&c.thread_id) {
                    match &c.checkpoint_ns {
                        Some(want) => {
                            if let Some((name, ns)) = thread.namespaces.get_key_value(want) {
                                sources.push((tid, name, ns));
                            }
                        }
                        None => {
                            for (name, ns) in &thread.namespaces {
                                sources.push((tid, name, ns));
                            }
                        }
                    }
                }
            }
            None => {
                for (tid, thread) in &store.threads {
                    for (name, ns) in &thread.namespaces {
                        sources.push((tid, name, ns));
                    }
                }
            }
        }
        // Ties (the same id in copied threads) then come out in thread and namespace order.
        sources.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));

        let exact = config.and_then(ListConfig::id);
        let before_id = before.and_then(CheckpointConfig::id);
        let (lower, upper) = match (exact, before_id) {
            (Some(id), Some(b)) if id >= b => return Ok(Vec::new()),
            (Some(id), _) => (Bound::Included(id), Bound::Included(id)),
            (None, Some(b)) => (Bound::Unbounded, Bound::Excluded(b)),
            (None, None) => (Bound::Unbounded, Bound::Unbounded),
        };
        let mut cursors: Vec<Cursor<'_>> = sources
            .iter()
            .map(|(_, _, ns)| ns.checkpoints.range::<str, _>((lower, upper)).rev())
            .collect();

        // Newest first across namespaces and threads: a k-way merge of per-namespace cursors,
        // each already newest first, stopping as soon as `limit` tuples are built.
        let mut heads: Vec<Option<(&String, &Arc<Saved>)>> =
            cursors.iter_mut().map(Iterator::next).collect();
        let mut heap: BinaryHeap<(&str, Reverse<usize>)> = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.map(|(id, _)| (id.as_str(), Reverse(i))))
            .collect();
        let filter = filter.map(|f| (f, FilterText::new(f)));
        let mut out = Vec::new();
        while out.len() < limit {
            let Some((_, Reverse(i))) = heap.pop() else {
                break;
            };
            let Some((id, saved)) = heads[i].take() else {
                break;
            };
            if let Some(next) = cursors[i].next() {
                heap.push((next.0.as_str(), Reverse(i)));
                heads[i] = Some(next);
            }
            let wanted = match &filter {
                Some((f, text)) => text.may_match(&saved.metadata) && CheckpointMetadata::from_text(&saved.metadata).matches(f),
                None => true,
            };
            if wanted {
                let (tid, name, ns) = sources[i];
                out.push(ns.tuple(tid, name, id, saved));
            }
        }
        Ok(out)
    }

    /// Stores checkpoint `id` as a child of `config`'s checkpoint, made by `saved` from its
    /// parent's id and kept form (to share with it), with its new versions' values.
    fn store(
        &self,
        config: &CheckpointConfig,
        id: String,
        new_values: Vec<(Shared, Shared, Option<RawJson>)>,
        saved: impl FnOnce(Option<String>, Option<&Saved>) -> Saved,
    ) -> Result<CheckpointConfig> {
        if id.is_empty() {
            return Err(SaverError::InvalidCheckpoint(format!(
                "checkpoint for thread {:?} has an empty id",
                config.thread_id
            )));
        }
        let parent_id = config.id();
        if parent_id == Some(id.as_str()) {
            return Err(SaverError::InvalidCheckpoint(format!(
                "checkpoint {id:?} names itself as its parent"
            )));
        }
        let mut store = self.write()?;
        if let Some(parent) = parent_id {
            Self::check_not_deleted(
                &store,
                &config.thread_id,
                &config.checkpoint_ns,
                parent,
                "a checkpoint whose parent is",
            )?;
        }
        if config.expect_latest {
            let latest = store
                .threads
                .get(&config.thread_id)
                .and_then(|t| t.namespaces.get(&config.checkpoint_ns))
                .and_then(|ns| ns.checkpoints.keys().next_back());
            if latest.map(String::as_str) != parent_id && latest != Some(&id) {
                return Err(SaverError::Conflict {
                    thread_id: config.thread_id.clone(),
                    checkpoint_ns: config.checkpoint_ns.clone(),
                    parent_id: parent_id.map(str::to_owned),
                    latest_id: latest.cloned(),
                });
            }
        }
        let ns = namespace_mut(&mut store, &config.thread_id, &config.checkpoint_ns);
        let parent = parent_id.and_then(|p| ns.checkpoints.get(p)).map(|p| &**p);
        let saved = saved(parent_id.map(str::to_owned), parent);
        for (channel, version, value) in new_values {
            let value = value.map(|v| shared_with_parent(&ns.blobs, parent, &channel, v));
            // The version as the checkpoint holds it (a run's already is; a protocol put's
            // version is a string of its own until here).
            let held = saved.channel_versions.binary_search_by(|(name, _)| (**name).cmp(&*channel)).ok();
            let version = match held.map(|at| &saved.channel_versions[at].1) {
                Some(held) if !Arc::ptr_eq(held, &version) && **held == *version => held.clone(),
                _ => version,
            };
            ns.blobs.entry(channel).or_default().insert(version, value);
        }
        ns.checkpoints.insert(id.clone(), Arc::new(saved));
        Ok(CheckpointConfig::new(config.thread_id.clone())
            .with_ns(config.checkpoint_ns.clone())
            .with_checkpoint_id(id))
    }

    pub fn stats(&self) -> Result<MemoryStats> {
        let store = self.read()?;
        let mut s = MemoryStats {
            threads: store.threads.len(),
            ..MemoryStats::default()
        };
        for ns in store.threads.values().flat_map(|t| t.namespaces.values()) {
            s.checkpoints += ns.checkpoints.len();
            s.blobs += ns.blobs.values().map(ChannelValues::len).sum::<usize>();
            s.writes += ns.writes.values().map(TaskWrites::len).sum::<usize>();
        }
        Ok(s)
    }

    /// Every checkpoint of `thread_ids` (all threads with `None`) without its values, in no
    /// particular order.
    pub fn heads(&self, thread_ids: Option<&[String]>) -> Result<Vec<CheckpointHead>> {
        let store = self.read()?;
        let threads: Vec<(&String, &Thread)> = match thread_ids {
            Some(ids) => ids
                .iter()
                .filter_map(|id| store.threads.get_key_value(id))
                .collect(),
            None => store.threads.iter().collect(),
        };
        let mut out = Vec::new();
        for (tid, thread) in threads {
            for (name, ns) in &thread.namespaces {
                for (id, saved) in &ns.checkpoints {
                    let writes = ns.writes.get(id);
                    out.push(CheckpointHead {
                        thread_id: tid.clone(),
                        checkpoint_ns: name.clone(),
                        checkpoint_id: id.clone(),
                        parent_id: saved.parent_id.as_deref().map(str::to_owned),
                        ts: String::from(&*saved.ts),
                        metadata: CheckpointMetadata::from_text(&saved.metadata),
                        writes: writes.map_or(0, TaskWrites::len),
                        write_bytes: writes.map_or(0, |w| {
                            w.values().map(|w| w.value.as_str().len()).sum()
                        }),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Deletes the checkpoints `keys` names (thread, namespace, checkpoint id), their pending
    /// writes and the values no remaining checkpoint reads, in one atomic step; with `dry_run`
    /// only counts what that would remove. A key that names nothing is skipped. The threads
    /// touched remember the deletion (see `Store::deleted`).
    pub fn remove_checkpoints(
        &self,
        keys: &[(String, String, String)],
        dry_run: bool,
    ) -> Result<Removed> {
        let mut by_line: BTreeMap<(&str, &str), HashSet<&str>> = BTreeMap::new();
        for (thread, ns, id) in keys {
            by_line.entry((thread, ns)).or_default().insert(id);
        }
        let mut store = self.write()?;
        let mut removed = Removed::default();
        let mut touched: Vec<&str> = Vec::new();
        for ((thread_id, ns_name), doomed) in &by_line {
            let Some(ns) = store
                .threads
                .get_mut(*thread_id)
                .and_then(|t| t.namespaces.get_mut(*ns_name))
            else {
                continue;
            };
            let found: Vec<&str> = doomed
                .iter()
                .copied()
                .filter(|id| ns.checkpoints.contains_key(*id))
                .collect();
            if found.is_empty() {
                continue;
            }
            if touched.last() != Some(thread_id) {
                touched.push(thread_id);
            }
            for id in &found {
                let saved = &ns.checkpoints[*id];
                removed.checkpoints += 1;
                removed.bytes += saved.metadata.as_str().len();
                if let Some(writes) = ns.writes.get(*id) {
                    removed.writes += writes.len();
                    removed.bytes += writes.values().map(|w| w.value.as_str().len()).sum::<usize>();
                }
            }
            let live = live_blobs(&ns.checkpoints, |id| !doomed.contains(id));
            let is_live = |channel: &str, version: &str| live.contains(&(channel, version));
            // A text shared by versions rewritten unchanged (see `shared_with_parent`) is freed
            // with the last of them, and counted once.
            let kept: HashSet<*const u8> = ns
                .blobs
                .iter()
                .flat_map(|(channel, versions)| versions.iter().map(move |(version, value)| (channel, version, value)))
                .filter(|(channel, version, _)| is_live(channel, version))
                .filter_map(|(_, _, value)| value.as_ref().map(|v| v.as_str().as_ptr()))
                .collect();
            let mut freed = HashSet::new();
            for (channel, versions) in &ns.blobs {
                for (version, value) in versions {
                    if !is_live(channel, version) {
                        removed.blobs += 1;
                        if let Some(text) = value.as_ref().map(RawJson::as_str) {
                            if !kept.contains(&text.as_ptr()) && freed.insert(text.as_ptr()) {
                                removed.bytes += text.len();
                            }
                        }
                    }
                }
            }
            if dry_run {
                continue;
            }
            for id in &found {
                ns.checkpoints.remove(*id);
                ns.writes.remove(*id);
            }
            ns.collect_blobs();
        }
        for thread_id in touched {
            let thread = &store.threads[thread_id];
            let left: usize = thread.namespaces.values().map(|ns| ns.checkpoints.len()).sum();
            let emptied = if dry_run {
                let doomed: usize = by_line
                    .iter()
                    .filter(|((t, _), _)| *t == thread_id)
                    .map(|((_, n), ids)| {
                        let ns = &thread.namespaces.get(*n);
                        ids.iter().filter(|id| ns.is_some_and(|ns| ns.checkpoints.contains_key(**id))).count()
                    })
                    .sum();
                doomed == left
            } else {
                left == 0
            };
            if emptied {
                removed.threads.push(thread_id.to_owned());
            }
            if !dry_run {
                if left == 0 {
                    store.threads.remove(thread_id);
                } else if let Some(thread) = store.threads.get_mut(thread_id) {
                    thread.namespaces.retain(|_, ns| !ns.checkpoints.is_empty());
                }
                store.deleted.insert(thread_id.to_owned(), checkpoint_id());
            }
        }
        Ok(removed)
    }

    /// The stored bytes of every thread (or of `thread_id`), for statistics.
    pub fn usage(&self, thread_id: Option<&str>) -> Result<Vec<ThreadUsage>> {
        let store = self.read()?;
        let mut out = Vec::new();
        for (tid, thread) in &store.threads {
            if thread_id.is_some_and(|want| want != tid) {
                continue;
            }
            let mut usage = ThreadUsage { thread_id: tid.clone(), ..ThreadUsage::default() };
            for ns in thread.namespaces.values() {
                usage.checkpoints += ns.checkpoints.len();
                for saved in ns.checkpoints.values() {
                    usage.metadata_bytes += saved.metadata.as_str().len();
                    if usage.first_ts.is_empty() || *saved.ts < *usage.first_ts {
                        usage.first_ts = saved.ts.to_string();
                    }
                    if *saved.ts > *usage.last_ts {
                        usage.last_ts = saved.ts.to_string();
                    }
                }
                for write in ns.writes.values().flat_map(TaskWrites::values) {
                    let size = write.value.as_str().len();
                    usage.writes += 1;
                    usage.write_bytes += size;
                    let entry = usage.write_channels.entry(String::from(&*write.channel)).or_default();
                    entry.0 += 1;
                    entry.1 += size;
                }
                for (channel, versions) in &ns.blobs {
                    let entry = usage.channels.entry(String::from(&**channel)).or_default();
                    // Versions rewritten unchanged share one text (see `shared_with_parent`):
                    // its bytes are held once.
                    let mut held = HashSet::new();
                    for value in versions.values().flatten() {
                        entry.0 += 1;
                        if held.insert(value.as_str().as_ptr()) {
                            entry.1 += value.as_str().len();
                        }
                    }
                }
            }
            out.push(usage);
        }
        Ok(out)
    }

    /// Replaces each stored channel value and pending write by what `rewrite` returns for it
    /// (`None` keeps it), in one atomic step; the first error stops it, leaving what was
    /// rewritten so far (each value is whole either way). Returns (values examined, rewritten),
    /// or `rewrite`'s error. Re-encryption (`MemorySaver.rekey()` in Python) is built on it.
    pub fn rewrite_values<E>(
        &self,
        mut rewrite: impl FnMut(&RawJson) -> std::result::Result<Option<RawJson>, E>,
    ) -> Result<std::result::Result<(usize, usize), E>> {
        let mut store = self.write()?;
        let (mut examined, mut rewritten) = (0, 0);
        for ns in store.threads.values_mut().flat_map(|t| t.namespaces.values_mut()) {
            let blobs = ns.blobs.values_mut().flat_map(ChannelValues::values_mut).flatten();
            let writes = ns.writes.values_mut().flat_map(TaskWrites::values_mut).map(|w| &mut w.value);
            for value in blobs.chain(writes) {
                examined += 1;
                match rewrite(value) {
                    Ok(new) => rewritten += usize::from(replace(value, new)),
                    Err(e) => return Ok(Err(e)),
                }
            }
        }
        Ok(Ok((examined, rewritten)))
    }

    /// Replaces each checkpoint's metadata by what `rewrite` returns for it (`None` keeps
    /// it), as [`MemorySaver::rewrite_values`] does values.
    pub fn rewrite_metadata<E>(
        &self,
        mut rewrite: impl FnMut(&CheckpointMetadata) -> std::result::Result<Option<CheckpointMetadata>, E>,
    ) -> Result<std::result::Result<(usize, usize), E>> {
        let mut store = self.write()?;
        let (mut examined, mut rewritten) = (0, 0);
        for ns in store.threads.values_mut().flat_map(|t| t.namespaces.values_mut()) {
            for saved in ns.checkpoints.values_mut() {
                examined += 1;
                match rewrite(&CheckpointMetadata::from_text(&saved.metadata)) {
                    Ok(new) => rewritten += usize::from(replace(&mut Arc::make_mut(saved).metadata, new.map(|m| m.to_text()))),
                    Err(e) => return Ok(Err(e)),
                }
            }
        }
        Ok(Ok((examined, rewritten)))
    }

    /// Refuses a write for checkpoint `id` of `thread_id` when it does not exist and was made
    /// before the thread last lost checkpoints to a deletion.
    fn check_not_deleted(
        store: &Store,
        thread_id: &str,
        ns: &str,
        id: &str,
        what: &str,
    ) -> Result<()> {
        let Some(watermark) = store.deleted.get(thread_id) else {
            return Ok(());
        };
        let exists = store
            .threads
            .get(thread_id)
            .and_then(|t| t.namespaces.get(ns))
            .is_some_and(|n| n.checkpoints.contains_key(id));
        if exists || id >= watermark.as_str() {
            return Ok(());
        }
        Err(SaverError::Deleted(deleted_message(thread_id, ns, id, what)))
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, Store>> {
        self.store.read().map_err(|_| poisoned())
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, Store>> {
        self.store.write().map_err(|_| poisoned())
    }
}

/// The message of [`SaverError::Deleted`]: `what` is "a checkpoint whose parent" or "pending
/// writes for".
fn deleted_message(thread_id: &str, ns: &str, checkpoint_id: &str, what: &str) -> String {
    let ns = if ns.is_empty() {
        String::new()
    } else {
        format!(", namespace {ns:?}")
    };
    format!(
        "thread {thread_id:?}{ns} was deleted or pruned while a run was writing to it: refused {what} \
         checkpoint {checkpoint_id:?}, which no longer exists (the run's later writes are refused too; \
         start the thread again)"
    )
}

/// The (channel, version) of every value the checkpoints `keep` accepts read.
fn live_blobs(checkpoints: &BTreeMap<String, Arc<Saved>>, keep: impl Fn(&str) -> bool) -> HashSet<(&str, &str)> {
    checkpoints
        .iter()
        .filter(|(id, _)| keep(id))
        .flat_map(|(_, s)| s.channel_versions.iter())
        .map(|(c, v)| (&**c, &**v))
        .collect()
}

/// How metadata text writes its run id's key (`CheckpointMetadata::RUN_ID`).
const RUN_ID_KEY: &str = "\"run_id\":";

/// A `list` filter's scalar values as metadata text writes them (`"key":value`): a checkpoint
/// whose metadata text lacks one of them cannot match, and is passed over without parsing its
/// metadata (a filtered list of 1,000 checkpoints: 24 us, 245 us parsing every one, 36 us
/// when metadata was kept parsed). Objects, lists, floats and
/// null are left to the parsed comparison: equal maps may be written in another key order,
/// -0.0 equals 0.0, and a missing key reads as null.
struct FilterText(Vec<[String; 2]>);

impl FilterText {
    fn new(filter: &Map<String, Value>) -> Self {
        let scalars = filter.iter().filter(|(_, want)| match want {
            Value::String(_) | Value::Bool(_) => true,
            Value::Number(n) => !n.is_f64(),
            _ => false,
        });
        // A number or bool ends where the next entry or the object does (`"step":3` must not
        // be found in `"step":30`); a string ends at its own closing quote.
        FilterText(
            scalars
                .map(|(key, want)| {
                    let entry = format!("{}:{want}", Value::from(key.as_str()));
                    if want.is_string() {
                        [entry.clone(), entry]
                    } else {
                        [format!("{entry},"), format!("{entry}}}")]
                    }
                })
                .collect(),
        )
    }

    fn may_match(&self, metadata: &RawJson) -> bool {
        let text = metadata.as_str();
        self.0.iter().all(|[a, b]| text.contains(a.as_str()) || text.contains(b.as_str()))
    }
}

/// A panic while holding the lock may have left the maps half-updated, so the saver refuses to
/// serve rather than return inconsistent checkpoints.
fn poisoned() -> SaverError {
    SaverError::Storage("memory saver lock poisoned by a panic in another thread".into())
}

impl Namespace {
    fn tuple(&self, thread_id: &str, ns: &str, id: &str, saved: &Arc<Saved>) -> KeptTuple {
        // A version without a blob is skipped, as LangGraph's memory saver does: the writer
        // named a version it never stored, and the channel simply reads as empty.
        let values = saved
            .channel_versions
            .iter()
            .filter_map(|(channel, version)| {
                let value = self.blobs.get(&**channel)?.get(&**version)?.as_ref()?;
                Some((channel.clone(), value.clone()))
            })
            .collect();
        KeptTuple {
            config: CheckpointConfig::new(thread_id).with_ns(ns).with_checkpoint_id(id),
            metadata: saved.metadata.clone(),
            saved: saved.clone(),
            values,
            pending_writes: self.pending_writes(id),
        }
    }

    fn pending_writes(&self, checkpoint_id: &str) -> Vec<PendingWrite> {
        let Some(stored) = self.writes.get(checkpoint_id) else {
            return Vec::new();
        };
        // The map is already in (task id, index) order; a stable sort by path finishes it.
        let mut ordered: Vec<(&WriteKey, &StoredWrite)> = stored.iter().collect();
        ordered.sort_by(|a, b| a.1.task_path.cmp(&b.1.task_path));
        ordered
            .into_iter()
            .map(|((task_id, _), w)| PendingWrite {
                task_id: String::from(&**task_id),
                channel: String::from(&*w.channel),
                value: w.value.clone(),
                task_path: String::from(&*w.task_path),
            })
            .collect()
    }

    /// Drops blobs no remaining checkpoint reads. Blobs are reachable only through a
    /// checkpoint's `channel_versions`, so this never loses a readable value.
    fn collect_blobs(&mut self) {
        let live = live_blobs(&self.checkpoints, |_| true);
        self.blobs.retain(|channel, versions| {
            versions.retain(|version, _| live.contains(&(&**channel, &**version)));
            !versions.is_empty()
        });
    }

    /// Keeps the latest checkpoint, its writes and its blobs; `false` when nothing is left.
    fn keep_latest(&mut self) -> bool {
        let Some(latest) = self.checkpoints.keys().next_back().cloned() else {
            return false;
        };
        self.checkpoints = self.checkpoints.split_off(&latest);
        self.writes.retain(|id, _| *id == latest);
        self.collect_blobs();
        true
    }

    fn is_empty(&self) -> bool {
        self.checkpoints.is_empty() && self.writes.is_empty() && self.blobs.is_empty()
    }

    fn merge(&mut self, other: Namespace) {
        self.checkpoints.extend(other.checkpoints);
        for (channel, versions) in other.blobs {
            self.blobs.entry(channel).or_default().extend(versions);
        }
        for (id, writes) in other.writes {
            self.writes.entry(id).or_default().extend(writes);
        }
    }
}

type Cursor<'a> = std::iter::Rev<std::collections::btree_map::Range<'a, String, Arc<Saved>>>;

impl CheckpointSaver for MemorySaver {
    fn get_tuple(&self, config: &CheckpointConfig) -> Result<Option<CheckpointTuple>> {
        Ok(self.get_kept(config)?.map(KeptTuple::into_tuple))
    }

    fn list(
        &self,
        config: Option<&ListConfig>,
        filter: Option<&Map<String, Value>>,
        before: Option<&CheckpointConfig>,
        limit: Option<usize>,
    ) -> Result<Vec<CheckpointTuple>> {
        Ok(self.list_kept(config, filter, before, limit)?.into_iter().map(KeptTuple::into_tuple).collect())
    }

    fn put(
        &self,
        config: &CheckpointConfig,
        mut checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: &BTreeMap<String, String>,
    ) -> Result<CheckpointConfig> {
        let id = std::mem::take(&mut checkpoint.id);
        let mut values = std::mem::take(&mut checkpoint.channel_values);
        let new_values = new_versions
            .iter()
            .map(|(channel, version)| (Shared::from(channel.as_str()), Shared::from(version.as_str()), values.remove(channel)))
            .collect();
        self.store(config, id, new_values, |parent_id, parent| Saved::new(checkpoint, metadata, parent_id, parent))
    }

    fn put_writes(
        &self,
        config: &CheckpointConfig,
        writes: Vec<(String, RawJson)>,
        task_id: &str,
        task_path: &str,
    ) -> Result<()> {
        let Some(checkpoint_id) = config.id() else {
            return Err(SaverError::InvalidConfig(format!(
                "put_writes for thread {:?}, namespace {:?} needs a checkpoint_id",
                config.thread_id, config.checkpoint_ns
            )));
        };
        if writes.is_empty() {
            return Ok(());
        }
        let mut store = self.write()?;
        Self::check_not_deleted(
            &store,
            &config.thread_id,
            &config.checkpoint_ns,
            checkpoint_id,
            "pending writes for",
        )?;
        let task_path = store.write_names.get(task_path);
        let channels: Vec<Shared> = writes.iter().map(|(channel, _)| store.write_names.get(channel)).collect();
        let ns = namespace_mut(&mut store, &config.thread_id, &config.checkpoint_ns);
        if !ns.writes.contains_key(checkpoint_id) {
            ns.writes.insert(checkpoint_id.to_owned(), TaskWrites::default());
        }
        let stored = ns.writes.get_mut(checkpoint_id).expect("inserted above");
        let task_id = Shared::from(task_id);
        for (position, ((_, value), channel)) in writes.into_iter().zip(channels).enumerate() {
            let index = write_index(&channel, position);
            let key = (task_id.clone(), index);
            let write = StoredWrite { channel, value, task_path: task_path.clone() };
            // A retried task re-sends the writes it already made: keep the first. Special
            // channels record the task's latest state instead, so they overwrite.
            if index >= 0 {
                stored.insert_new(key, write);
            } else {
                stored.insert(key, write);
            }
        }
        Ok(())
    }

    fn delete_thread(&self, thread_id: &str) -> Result<()> {
        let mut store = self.write()?;
        if store.threads.remove(thread_id).is_some() {
            store.deleted.insert(thread_id.to_owned(), checkpoint_id());
        }
        Ok(())
    }

    fn copy_thread(&self, source_thread_id: &str, target_thread_id: &str) -> Result<()> {
        let mut store = self.write()?;
        let Some(source) = store.threads.get(source_thread_id) else {
            return Err(SaverError::NotFound(format!(
                "thread {source_thread_id:?} has no checkpoints to copy"
            )));
        };
        if source_thread_id == target_thread_id {
            return Ok(());
        }
        let copy = source.clone();
        match store.threads.get_mut(target_thread_id) {
            None => {
                store.threads.insert(target_thread_id.to_owned(), copy);
            }
            Some(target) => {
                for (name, ns) in copy.namespaces {
                    target.namespaces.entry(name).or_default().merge(ns);
                }
            }
        }
        Ok(())
    }

    fn prune(&self, thread_ids: &[String], strategy: PruneStrategy) -> Result<()> {
        let mut store = self.write()?;
        for thread_id in thread_ids {
            let Some(thread) = store.threads.get_mut(thread_id) else {
                continue;
            };
            match strategy {
                PruneStrategy::Delete => {
                    store.threads.remove(thread_id);
                }
                PruneStrategy::KeepLatest => {
                    thread.namespaces.retain(|_, ns| ns.keep_latest());
                    if thread.namespaces.is_empty() {
                        store.threads.remove(thread_id);
                    }
                }
            }
            store.deleted.insert(thread_id.clone(), checkpoint_id());
        }
        Ok(())
    }

    fn delete_for_runs(&self, run_ids: &[String]) -> Result<()> {
        let runs: HashSet<&str> = run_ids.iter().map(String::as_str).collect();
        if runs.is_empty() {
            return Ok(());
        }
        let mut store = self.write()?;
        let mut touched = Vec::new();
        for (thread_id, thread) in store.threads.iter_mut() {
            for ns in thread.namespaces.values_mut() {
                let before = ns.checkpoints.len();
                let writes = &mut ns.writes;
                ns.checkpoints.retain(|id, saved| {
                    // Only metadata that names a run id is parsed.
                    let doomed = saved.metadata.as_str().contains(RUN_ID_KEY)
                        && CheckpointMetadata::from_text(&saved.metadata).run_id().is_some_and(|r| runs.contains(r));
                    if doomed {
                        writes.remove(id);
                    }
                    !doomed
                });
                if ns.checkpoints.len() != before {
                    ns.collect_blobs();
                    touched.push(thread_id.clone());
                }
            }
            thread.namespaces.retain(|_, ns| !ns.is_empty());
        }
        store.threads.retain(|_, t| !t.namespaces.is_empty());
        for thread_id in touched {
            store.deleted.insert(thread_id, checkpoint_id());
        }
        Ok(())
    }
}

fn namespace_mut<'a>(store: &'a mut Store, thread_id: &str, ns: &str) -> &'a mut Namespace {
    // Look up before inserting so the common case allocates no key strings.
    if !store.threads.contains_key(thread_id) {
        store
            .threads
            .insert(thread_id.to_owned(), Thread::default());
    }
    let thread = store.threads.get_mut(thread_id).expect("inserted above");
    if !thread.namespaces.contains_key(ns) {
        thread
            .namespaces
            .insert(ns.to_owned(), Namespace::default());
    }
    thread.namespaces.get_mut(ns).expect("inserted above")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::id::checkpoint_id;
    use crate::model::{CheckpointSource, ERROR, INTERRUPT};
    use crate::version::next_version;

    fn cfg(thread: &str) -> CheckpointConfig {
        CheckpointConfig::new(thread)
    }

    fn filter(v: Value) -> Map<String, Value> {
        v.as_object().expect("filter is an object").clone()
    }

    /// Drives a saver the way the engine does: each step bumps the versions of the channels it
    /// writes, passes only those as `new_versions`, and carries the rest over from the parent.
    struct Run<'a> {
        saver: &'a dyn CheckpointSaver,
        config: CheckpointConfig,
        versions: BTreeMap<String, String>,
        step: i64,
        run_id: String,
    }

    impl<'a> Run<'a> {
        fn new(saver: &'a dyn CheckpointSaver, config: CheckpointConfig, run_id: &str) -> Self {
            Run {
                saver,
                config,
                versions: BTreeMap::new(),
                step: -1,
                run_id: run_id.into(),
            }
        }

        fn step(&mut self, writes: &[(&str, Option<Value>)]) -> CheckpointConfig {
            self.step_result(writes).unwrap()
        }

        fn step_result(&mut self, writes: &[(&str, Option<Value>)]) -> Result<CheckpointConfig> {
            let mut checkpoint = Checkpoint::empty();
            let mut new_versions = BTreeMap::new();
            for (channel, value) in writes {
                let v = next_version(self.versions.get(*channel).map(String::as_str)).unwrap();
                self.versions.insert((*channel).into(), v.clone());
                new_versions.insert((*channel).into(), v);
                if let Some(value) = value {
                    checkpoint
                        .channel_values
                        .insert((*channel).into(), value.into());
                }
            }
            checkpoint.channel_versions = self.versions.clone();
            let source = if self.step < 0 {
                CheckpointSource::Input
            } else {
                CheckpointSource::Loop
            };
            let mut metadata = CheckpointMetadata::new(source, self.step);
            metadata.set_run_id(self.run_id.clone());
            self.step += 1;
            self.config = self
                .saver
                .put(&self.config, checkpoint, metadata, &new_versions)?;
            Ok(self.config.clone())
        }
    }

    fn ids(tuples: &[CheckpointTuple]) -> Vec<&str> {
        tuples.iter().map(|t| t.checkpoint.id.as_str()).collect()
    }

    #[test]
    fn put_then_get_latest_and_by_id_with_parent() {
        let saver = MemorySaver::new();
        let mut run = Run::new(&saver, cfg("t"), "r");
        let first = run.step(&[("a", Some(json!(1)))]);
        let second = run.step(&[("a", Some(json!(2)))]);
        assert!(first.id() < second.id());
        assert_eq!(second.thread_id, "t");
        assert_eq!(second.checkpoint_ns, "");

        let latest = saver.get_tuple(&cfg("t")).unwrap().unwrap();
        assert_eq!(latest.config, second);
        assert_eq!(latest.checkpoint.channel_values["a"], json!(2));
        assert_eq!(latest.parent_config, Some(first.clone()));
        assert_eq!(latest.metadata.step(), Some(0));
        assert_eq!(latest.metadata.source(), Some(CheckpointSource::Loop));

        let old = saver.get_tuple(&first).unwrap().unwrap();
        assert_eq!(old.config, first);
        assert_eq!(old.checkpoint.channel_values["a"], json!(1));
        assert_eq!(old.parent_config, None);
        assert_eq!(old.metadata.source(), Some(CheckpointSource::Input));
    }

    #[test]
    fn get_tuple_misses_return_none() {
        let saver = MemorySaver::new();
        let mut run = Run::new(&saver, cfg("t"), "r");
        run.step(&[("a", Some(json!(1)))]);
        assert!(saver.get_tuple(&cfg("other")).unwrap().is_none());
        assert!(saver.get_tuple(&cfg("t").with_ns("sub")).unwrap().is_none());
        let unknown = cfg("t").with_checkpoint_id(checkpoint_id());
        assert!(saver.get_tuple(&unknown).unwrap().is_none());
        // An empty id means "latest", as in LangGraph.
        assert!(saver
            .get_tuple(&cfg("t").with_checkpoint_id(""))
            .unwrap()
            .is_some());
    }

    #[test]
    fn channels_absent_from_new_versions_read_back_from_earlier_blobs() {
        let saver = MemorySaver::new();
        let mut run = Run::new(&saver, cfg("t"), "r");
        let big = json!({"doc": "x".repeat(100)});
        run.step(&[("big", Some(big.clone())), ("n", Some(json!(0)))]);
        for i in 1..=20 {
            run.step(&[("n", Some(json!(i)))]);
        }
        let latest = saver.get_tuple(&cfg("t")).unwrap().unwrap();
        assert_eq!(latest.checkpoint.channel_values["big"], big);
        assert_eq!(latest.checkpoint.channel_values["n"], json!(20));
        // One blob per written version, not one per channel per checkpoint.
        let stats = saver.stats().unwrap();
        assert_eq!(stats.checkpoints, 21);
        assert_eq!(stats.blobs, 22);
    }

    #[test]
    fn a_channel_rewritten_unchanged_shares_its_parent_s_text() {
        let saver = MemorySaver::new();
        let mut run = Run::new(&saver, cfg("t"), "r");
        let list = json!([{"role": "user", "content": "hi".repeat(250)}]);
        let first = run.step(&[("m", Some(list.clone()))]);
        let same = run.step(&[("m", Some(list.clone()))]);
        let changed = run.step(&[("m", Some(json!([1])))]);
        let text = |config: &CheckpointConfig| saver.get_tuple(config).unwrap().unwrap().checkpoint.channel_values["m"].clone();
        let (a, b, c) = (text(&first), text(&same), text(&changed));
        assert!(std::ptr::eq(a.as_str(), b.as_str()), "an unchanged rewrite keeps one text");
        assert!(!std::ptr::eq(b.as_str(), c.as_str()));
        assert_eq!((a, c), (RawJson::from(list.clone()), RawJson::from(json!([1]))));
        // Each version is still a blob of its own (prune and copy count them as such), and the
        // shared text's bytes are held once.
        assert_eq!(saver.stats().unwrap().blobs, 3);
        let usage = saver.usage(Some("t")).unwrap();
        let list_len = RawJson::from(list).as_str().len();
        assert_eq!(usage[0].channels["m"], (3, list_len + "[1]".len()));
        // Removing the first checkpoint frees its version, not the text the second still holds.
        let key = |config: &CheckpointConfig| ("t".to_owned(), String::new(), config.checkpoint_id.clone().unwrap());
        let removed = saver.remove_checkpoints(&[key(&first)], true).unwrap();
        assert_eq!(removed.blobs, 1);
        assert!(removed.bytes < list_len, "{} bytes counted as freed", removed.bytes);
        let both = saver.remove_checkpoints(&[key(&first), key(&same)], true).unwrap();
        assert_eq!(both.blobs, 2);
        assert!(both.bytes >= list_len && both.bytes < 2 * list_len, "{} bytes counted as freed", both.bytes);
    }

    #[test]
    fn channel_in_new_versions_without_value_reads_as_cleared() {
        let saver = MemorySaver::new();
        let mut run = Run::new(&saver, cfg("t"), "r");
        let before = run.step(&[("a", Some(json!("kept"))), ("b", Some(json!(1)))]);
        run.step(&[("a", None)]);
        let latest = saver.get_tuple(&cfg("t")).unwrap().unwrap();
        assert!(!latest.checkpoint.channel_values.contains_key("a"));
        assert!(latest.checkpoint.channel_versions.contains_key("a"));
        assert_eq!(latest.checkpoint.channel_values["b"], json!(1));
        let earlier = saver.get_tuple(&before).unwrap().unwrap();
        assert_eq!(earlier.checkpoint.channel_values["a"], json!("kept"));
    }

    #[test]
    fn checkpoint_fields_survive_storage() {
        let saver = MemorySaver::new();
        let mut cp = Checkpoint::empty();
        cp.channel_values.insert("a".into(), json!([1]).into());
        cp.channel_versions.insert("a".into(), "1".into());
        cp.versions_seen
            .insert("node".into(), BTreeMap::from([("a".into(), "1".into())]));
        cp.updated_channels = Some(vec!["a".into()]);
        let expected = cp.clone();
        let mut md = CheckpointMetadata::new(CheckpointSource::Update, 4);
        md.insert("user".into(), json!({"k": [1, 2]}));
        let versions = BTreeMap::from([("a".into(), "1".into())]);
        let c = saver.put(&cfg("t"), cp, md.clone(), &versions).unwrap();
        let got = saver.get_tuple(&c).unwrap().unwrap();
        assert_eq!(got.checkpoint, expected);
        assert_eq!(got.metadata, md);
    }

    #[test]
    fn list_is_newest_first_with_limit_before_and_filter() {
        let saver = MemorySaver::new();
        let mut run = Run::new(&saver, cfg("t"), "r");
        let configs: Vec<CheckpointConfig> =
            (0..5).map(|i| run.step(&[("a", Some(json!(i)))])).collect();
        let all_ids: Vec<&str> = configs.iter().rev().map(|c| c.id().unwrap()).collect();
        let scope = ListConfig::from(&cfg("t"));

        let listed = saver.list(Some(&scope), None, None, None).unwrap();
        assert_eq!(ids(&listed), all_ids);
        assert_eq!(listed[0].checkpoint.channel_values["a"], json!(4));
        assert_eq!(listed[4].checkpoint.channel_values["a"], json!(0));
        assert_eq!(listed[0].parent_config.as_ref(), Some(&configs[3]));

        let limited = saver.list(Some(&scope), None, None, Some(2)).unwrap();
        assert_eq!(ids(&limited), all_ids[..2]);
        assert!(saver
            .list(Some(&scope), None, None, Some(0))
            .unwrap()
            .is_empty());

        let before = saver
            .list(Some(&scope), None, Some(&configs[2]), None)
            .unwrap();
        assert_eq!(ids(&before), all_ids[3..]);
        let before_limited = saver
            .list(Some(&scope), None, Some(&configs[3]), Some(2))
            .unwrap();
        assert_eq!(ids(&before_limited), all_ids[2..4]);
        // A `before` without an id sets no bound.
        let unbounded = saver
            .list(Some(&scope), None, Some(&cfg("t")), None)
            .unwrap();
        assert_eq!(unbounded.len(), 5);

        let f = filter(json!({"source": "loop", "step": 2}));
        let filtered = saver.list(Some(&scope), Some(&f), None, None).unwrap();
        assert_eq!(ids(&filtered), [configs[3].id().unwrap()]);
        let loops = saver
            .list(
                Some(&scope),
                Some(&filter(json!({"source": "loop"}))),
                None,
                Some(3),
            )
            .unwrap();
        assert_eq!(ids(&loops), all_ids[..3]);
        let none = filter(json!({"source": "fork"}));
        assert!(saver
            .list(Some(&scope), Some(&none), None, None)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn list_with_checkpoint_id_returns_only_that_one() {
        let saver = MemorySaver::new();
        let mut run = Run::new(&saver, cfg("t"), "r");
        let a = run.step(&[("a", Some(json!(0)))]);
        let b = run.step(&[("a", Some(json!(1)))]);
        let only = saver
            .list(Some(&ListConfig::from(&a)), None, None, None)
            .unwrap();
        assert_eq!(ids(&only), [a.id().unwrap()]);
        let excluded = saver
            .list(Some(&ListConfig::from(&b)), None, Some(&b), None)
            .unwrap();
        assert!(excluded.is_empty());
    }

    #[test]
    fn list_namespaces_and_threads() {
        let saver = MemorySaver::new();
        let mut root = Run::new(&saver, cfg("t1"), "r");
        let mut sub = Run::new(&saver, cfg("t1").with_ns("child:1"), "r");
        let mut other = Run::new(&saver, cfg("t2"), "r");
        let r0 = root.step(&[("a", Some(json!(0)))]);
        let s0 = sub.step(&[("a", Some(json!(10)))]);
        let o0 = other.step(&[("a", Some(json!(20)))]);
        let r1 = root.step(&[("a", Some(json!(1)))]);
        let s1 = sub.step(&[("a", Some(json!(11)))]);

        let every_ns = saver
            .list(Some(&ListConfig::thread("t1")), None, None, None)
            .unwrap();
        assert_eq!(
            ids(&every_ns),
            [s1.id(), r1.id(), s0.id(), r0.id()].map(Option::unwrap)
        );
        assert_eq!(every_ns[0].config.checkpoint_ns, "child:1");
        assert_eq!(every_ns[0].checkpoint.channel_values["a"], json!(11));

        let root_only = saver
            .list(Some(&ListConfig::from(&cfg("t1"))), None, None, None)
            .unwrap();
        assert_eq!(ids(&root_only), [r1.id(), r0.id()].map(Option::unwrap));
        let sub_only = ListConfig::thread("t1").with_ns("child:1");
        assert_eq!(
            saver.list(Some(&sub_only), None, None, None).unwrap().len(),
            2
        );

        let everything = saver.list(None, None, None, None).unwrap();
        assert_eq!(
            ids(&everything),
            [s1.id(), r1.id(), o0.id(), s0.id(), r0.id()].map(Option::unwrap)
        );
        assert_eq!(everything[2].config.thread_id, "t2");
        let newest_two = saver.list(None, None, None, Some(2)).unwrap();
        assert_eq!(ids(&newest_two), ids(&everything[..2]));
        let before = saver.list(None, None, Some(&o0), None).unwrap();
        assert_eq!(ids(&before), [s0.id(), r0.id()].map(Option::unwrap));
        assert!(saver
            .list(Some(&ListConfig::thread("nobody")), None, None, None)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_filter_s_text_check_never_turns_away_a_match() {
        let stored = [
            json!({"source": "loop", "step": 3, "parents": {}, "user": "a\"b ü", "ok": true}),
            json!({"source": "loop", "step": -3, "nested": {"step": 3}, "z": 0.0, "obj": {"b": 2, "a": 1}}),
            json!({"step": 30, "user": "a"}),
        ];
        let filters = [
            json!({"step": 3}),
            json!({"step": -3, "source": "loop"}),
            json!({"user": "a\"b ü", "ok": true}),
            json!({"user": "a"}),
            json!({"z": -0.0}),
            json!({"obj": {"a": 1, "b": 2}}),
            json!({"missing": null}),
            json!({"ok": false}),
        ];
        for metadata in &stored {
            let text = CheckpointMetadata(metadata.as_object().unwrap().clone()).to_text();
            for filter in &filters {
                let filter = filter.as_object().unwrap();
                let exact = CheckpointMetadata::from_text(&text).matches(filter);
                assert!(FilterText::new(filter).may_match(&text) || !exact, "{filter:?} turned away {text}");
            }
        }
        // The check does turn away what cannot match, a longer number included.
        let text = CheckpointMetadata(stored[2].as_object().unwrap().clone()).to_text();
        assert!(!FilterText::new(json!({"step": 3}).as_object().unwrap()).may_match(&text));
        assert!(!FilterText::new(json!({"user": "b"}).as_object().unwrap()).may_match(&text));
        assert!(FilterText::new(json!({"step": 30, "user": "a"}).as_object().unwrap()).may_match(&text));
    }

    #[test]
    fn writes_share_their_channel_names_and_task_paths() {
        let saver = MemorySaver::new();
        let mut run = Run::new(&saver, cfg("t"), "r");
        let c = run.step(&[("a", Some(json!(0)))]);
        for task in ["task1", "task2"] {
            let writes = vec![("a".to_owned(), RawJson::from(json!(1))), ("b".to_owned(), RawJson::from(json!(2)))];
            saver.put_writes(&c, writes, task, "~__pregel_pull, node").unwrap();
        }
        let store = saver.read().unwrap();
        let ns = &store.threads["t"].namespaces[""];
        let writes: Vec<&StoredWrite> = ns.writes[c.id().unwrap()].values().collect();
        assert_eq!(writes.len(), 4);
        let (task1_a, task2_a) = (writes[0], writes[2]);
        assert_eq!((&*task1_a.channel, &*task2_a.channel), ("a", "a"));
        assert!(Arc::ptr_eq(&task1_a.channel, &task2_a.channel));
        assert!(writes.windows(2).all(|w| Arc::ptr_eq(&w[0].task_path, &w[1].task_path)));
    }

    #[test]
    fn many_tasks_writes_stay_in_task_order_past_the_small_form() {
        use crate::small_map::FEW;
        // More writes than `FEW` on one checkpoint, from tasks arriving out of order,
        // each sent twice (a retry): the sorted vector gives way to a map without losing an
        // entry, a first write or the order.
        let saver = MemorySaver::new();
        let mut run = Run::new(&saver, cfg("t"), "r");
        let c = run.step(&[("a", Some(json!(0)))]);
        let tasks: Vec<String> = (0..FEW).map(|i| format!("task{:02}", (i * 7) % FEW)).collect();
        for attempt in 0..2 {
            for task in &tasks {
                let writes = vec![
                    ("a".to_owned(), RawJson::from(json!([task, attempt]))),
                    ("b".to_owned(), RawJson::from(json!(attempt))),
                ];
                saver.put_writes(&c, writes, task, "").unwrap();
            }
        }
        let writes = saver.get_tuple(&c).unwrap().unwrap().pending_writes;
        assert_eq!(writes.len(), 2 * FEW);
        let mut expected: Vec<String> = tasks.clone();
        expected.sort();
        let order: Vec<(&str, &str)> = writes.iter().map(|p| (p.task_id.as_str(), p.channel.as_str())).collect();
        let wanted: Vec<(&str, &str)> = expected.iter().flat_map(|t| [(t.as_str(), "a"), (t.as_str(), "b")]).collect();
        assert_eq!(order, wanted);
        assert!(writes.iter().all(|p| p.value.to_value().as_array().map_or(p.value.to_value() == json!(0), |a| a[1] == json!(0))));
        assert_eq!(saver.stats().unwrap().writes, 2 * FEW);
    }

    #[test]
    fn put_writes_keeps_first_ordinary_write_and_replaces_special_ones() {
        let saver = MemorySaver::new();
        let mut run = Run::new(&saver, cfg("t"), "r");
        let c = run.step(&[("a", Some(json!(0)))]);
        let w = |ch: &str, v: Value| (ch.to_owned(), RawJson::from(v));

        saver
            .put_writes(&c, vec![w("a", json!(1)), w("b", json!(2))], "task1", "~0")
            .unwrap();
        saver
            .put_writes(
                &c,
                vec![w("a", json!(99)), w("b", json!(98))],
                "task1",
                "~0",
            )
            .unwrap();
        saver
            .put_writes(&c, vec![w(ERROR, json!("first"))], "task1", "~0")
            .unwrap();
        saver
            .put_writes(&c, vec![w(ERROR, json!("second"))], "task1", "~0")
            .unwrap();

        let writes = saver.get_tuple(&c).unwrap().unwrap().pending_writes;
        let seen: Vec<(&str, Value)> = writes
            .iter()
            .map(|p| (p.channel.as_str(), p.value.to_value()))
            .collect();
        // Special writes sort first within a task: their indexes are negative.
        assert_eq!(
            seen,
            [(ERROR, json!("second")), ("a", json!(1)), ("b", json!(2))]
        );
        assert!(writes
            .iter()
            .all(|p| p.task_id == "task1" && p.task_path == "~0"));
    }

    #[test]
    fn pending_writes_sort_by_task_path_then_task_id_then_index() {
        let saver = MemorySaver::new();
        let mut run = Run::new(&saver, cfg("t"), "r");
        let c = run.step(&[("a", Some(json!(0)))]);
        let w = |ch: &str, v: i64| (ch.to_owned(), RawJson::from(json!(v)));
        saver
            .put_writes(&c, vec![w("x", 1), w("y", 2)], "zzz", "~0")
            .unwrap();
        saver.put_writes(&c, vec![w("x", 3)], "bbb", "~1").unwrap();
        saver.put_writes(&c, vec![w("x", 4)], "aaa", "~1").unwrap();
        saver
            .put_writes(&c, vec![(INTERRUPT.into(), json!(5).into())], "aaa", "~1")
            .unwrap();
        saver.put_writes(&c, vec![w("x", 6)], "ccc", "").unwrap();

        let listed = saver
            .list(Some(&ListConfig::from(&c)), None, None, None)
            .unwrap();
        let order: Vec<(&str, &str, Value)> = listed[0]
            .pending_writes
            .iter()
            .map(|p| (p.task_path.as_str(), p.task_id.as_str(), p.value.to_value()))
            .collect();
        assert_eq!(
            order,
            [
                ("", "ccc", json!(6)),
                ("~0", "zzz", json!(1)),
                ("~0", "zzz", json!(2)),
                ("~1", "aaa", json!(5)),
                ("~1", "aaa", json!(4)),
                ("~1", "bbb", json!(3)),
            ]
        );
        // Writes belong to their checkpoint only.
        let next = run.step(&[("a", Some(json!(1)))]);
        assert!(saver
            .get_tuple(&next)
            .unwrap()
            .unwrap()
            .pending_writes
            .is_empty());
    }

    #[test]
    fn put_writes_before_the_checkpoint_is_put_is_kept() {
        let saver = MemorySaver::new();
        let id = checkpoint_id();
        let target = cfg("t").with_checkpoint_id(id.clone());
        saver
            .put_writes(&target, vec![("a".into(), json!(1).into())], "task", "")
            .unwrap();
        let mut cp = Checkpoint::empty();
        cp.id = id;
        saver
            .put(
                &cfg("t"),
                cp,
                CheckpointMetadata::default(),
                &BTreeMap::new(),
            )
            .unwrap();
        let got = saver.get_tuple(&target).unwrap().unwrap();
        assert_eq!(got.pending_writes.len(), 1);
    }

    #[test]
    fn delete_thread_removes_only_that_thread() {
        let saver = MemorySaver::new();
        let mut a = Run::new(&saver, cfg("a"), "r");
        let mut b = Run::new(&saver, cfg("b"), "r");
        let ca = a.step(&[("x", Some(json!(1)))]);
        a.step(&[("x", Some(json!(2)))]);
        b.step(&[("x", Some(json!(3)))]);
        saver
            .put_writes(&ca, vec![("x".into(), json!(9).into())], "task", "")
            .unwrap();
        saver.delete_thread("a").unwrap();
        saver.delete_thread("never-existed").unwrap();
        assert!(saver.get_tuple(&cfg("a")).unwrap().is_none());
        assert!(saver
            .list(Some(&ListConfig::thread("a")), None, None, None)
            .unwrap()
            .is_empty());
        let b_latest = saver.get_tuple(&cfg("b")).unwrap().unwrap();
        assert_eq!(b_latest.checkpoint.channel_values["x"], json!(3));
        assert_eq!(
            saver.stats().unwrap(),
            MemoryStats {
                threads: 1,
                checkpoints: 1,
                blobs: 1,
                writes: 0
            }
        );
    }

    #[test]
    fn copy_thread_copies_checkpoints_blobs_and_writes() {
        let saver = MemorySaver::new();
        let mut src = Run::new(&saver, cfg("src"), "r");
        let first = src.step(&[("big", Some(json!("B"))), ("n", Some(json!(0)))]);
        let last = src.step(&[("n", Some(json!(1)))]);
        let mut sub = Run::new(&saver, cfg("src").with_ns("inner"), "r");
        sub.step(&[("n", Some(json!(100)))]);
        saver
            .put_writes(&last, vec![("n".into(), json!(2).into())], "task", "~0")
            .unwrap();

        saver.copy_thread("src", "dst").unwrap();

        let original = saver
            .list(Some(&ListConfig::thread("src")), None, None, None)
            .unwrap();
        let copied = saver
            .list(Some(&ListConfig::thread("dst")), None, None, None)
            .unwrap();
        assert_eq!(copied.len(), 3);
        for (o, c) in original.iter().zip(&copied) {
            assert_eq!(c.config.thread_id, "dst");
            assert_eq!(c.config.checkpoint_ns, o.config.checkpoint_ns);
            assert_eq!(c.checkpoint, o.checkpoint);
            assert_eq!(c.metadata, o.metadata);
            assert_eq!(c.pending_writes, o.pending_writes);
            assert_eq!(
                c.parent_config
                    .as_ref()
                    .map(|p| (p.thread_id.as_str(), &p.checkpoint_id)),
                o.parent_config.as_ref().map(|p| ("dst", &p.checkpoint_id))
            );
        }
        let dst_latest = saver.get_tuple(&cfg("dst")).unwrap().unwrap();
        assert_eq!(dst_latest.checkpoint.channel_values["big"], json!("B"));
        assert_eq!(dst_latest.pending_writes[0].value, json!(2));

        // The copy is independent: continuing and deleting the target leaves the source alone.
        let mut dst = Run::new(&saver, dst_latest.config.clone(), "r2");
        dst.versions = dst_latest.checkpoint.channel_versions.clone();
        dst.step(&[("n", Some(json!(50)))]);
        saver.delete_thread("dst").unwrap();
        let src_latest = saver.get_tuple(&cfg("src")).unwrap().unwrap();
        assert_eq!(src_latest.config, last);
        assert_eq!(src_latest.checkpoint.channel_values["n"], json!(1));
        assert!(saver.get_tuple(&first).unwrap().is_some());
    }

    #[test]
    fn copy_thread_errors_on_unknown_source_and_merges_into_existing_target() {
        let saver = MemorySaver::new();
        assert!(matches!(
            saver.copy_thread("ghost", "dst"),
            Err(SaverError::NotFound(m)) if m.contains("ghost")
        ));
        let mut src = Run::new(&saver, cfg("src"), "r");
        let mut dst = Run::new(&saver, cfg("dst"), "r");
        dst.step(&[("a", Some(json!("dst")))]);
        src.step(&[("a", Some(json!("src")))]);
        saver.copy_thread("src", "dst").unwrap();
        let listed = saver
            .list(Some(&ListConfig::thread("dst")), None, None, None)
            .unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].checkpoint.channel_values["a"], json!("src"));
        assert_eq!(listed[1].checkpoint.channel_values["a"], json!("dst"));
        saver.copy_thread("src", "src").unwrap();
        assert_eq!(
            saver
                .list(Some(&ListConfig::thread("src")), None, None, None)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn remove_checkpoints_keeps_what_the_rest_reads_and_measures_first() {
        let saver = MemorySaver::new();
        let mut run = Run::new(&saver, cfg("t"), "r");
        let first = run.step(&[("big", Some(json!("B".repeat(100)))), ("n", Some(json!(0)))]);
        let second = run.step(&[("n", Some(json!(1)))]);
        saver
            .put_writes(&second, vec![("n".into(), RawJson::from(&json!(5)))], "task", "")
            .unwrap();
        let last = run.step(&[("n", Some(json!(2)))]);
        let key = |c: &CheckpointConfig| ("t".to_owned(), String::new(), c.id().unwrap().to_owned());
        let doomed = [key(&first), key(&second)];
        let dry = saver.remove_checkpoints(&doomed, true).unwrap();
        assert_eq!(saver.stats().unwrap().checkpoints, 3, "a dry run removes nothing");
        let removed = saver.remove_checkpoints(&doomed, false).unwrap();
        assert_eq!(dry, removed);
        assert_eq!((removed.checkpoints, removed.writes, removed.blobs), (2, 1, 2));
        assert!(removed.threads.is_empty());
        let kept = saver.get_tuple(&last).unwrap().unwrap();
        assert_eq!(kept.checkpoint.channel_values["big"], json!("B".repeat(100)), "a value carried from a removed step stays");
        let all = saver.remove_checkpoints(&[key(&last)], false).unwrap();
        assert_eq!(all.threads, vec!["t".to_owned()]);
        assert_eq!(saver.stats().unwrap().threads, 0);
    }

    #[test]
    fn late_writes_to_a_deleted_thread_are_refused_and_a_new_start_is_not() {
        let saver = MemorySaver::new();
        let mut run = Run::new(&saver, cfg("t"), "r");
        run.step(&[("n", Some(json!(0)))]);
        let latest = run.step(&[("n", Some(json!(1)))]);
        saver.delete_thread("t").unwrap();
        let err = saver
            .put_writes(&latest, vec![("n".into(), RawJson::from(&json!(5)))], "task", "")
            .unwrap_err();
        assert!(matches!(&err, SaverError::Deleted(m) if m.contains("was deleted or pruned while a run was writing")));
        let late = run.step_result(&[("n", Some(json!(2)))]);
        assert!(matches!(late, Err(SaverError::Deleted(_))), "{late:?}");
        assert_eq!(saver.stats().unwrap().checkpoints, 0, "nothing of the late run came back");
        let mut fresh = Run::new(&saver, cfg("t"), "r2");
        fresh.step(&[("n", Some(json!(0)))]);
        fresh.step(&[("n", Some(json!(1)))]);
        assert_eq!(saver.stats().unwrap().checkpoints, 2);
    }

    #[test]
    fn prune_keep_latest_keeps_latest_per_namespace_with_its_blobs_and_writes() {
        let saver = MemorySaver::new();
        let mut root = Run::new(&saver, cfg("t"), "r");
        root.step(&[("big", Some(json!("B"))), ("n", Some(json!(0)))]);
        let mid = root.step(&[("n", Some(json!(1)))]);
        let last = root.step(&[("n", Some(json!(2)))]);
        let mut sub = Run::new(&saver, cfg("t").with_ns("inner"), "r");
        sub.step(&[("s", Some(json!("old")))]);
        let sub_last = sub.step(&[("s", Some(json!("new")))]);
        let mut other = Run::new(&saver, cfg("other"), "r");
        other.step(&[("n", Some(json!(0)))]);
        other.step(&[("n", Some(json!(1)))]);
        saver
            .put_writes(&mid, vec![("n".into(), json!("stale").into())], "task", "")
            .unwrap();
        saver
            .put_writes(
                &last,
                vec![("n".into(), json!("pending").into())],
                "task",
                "",
            )
            .unwrap();

        saver
            .prune(&["t".into()], PruneStrategy::KeepLatest)
            .unwrap();

        let kept = saver
            .list(Some(&ListConfig::thread("t")), None, None, None)
            .unwrap();
        assert_eq!(ids(&kept), [sub_last.id(), last.id()].map(Option::unwrap));
        let latest = saver.get_tuple(&cfg("t")).unwrap().unwrap();
        // "big" was written by the first checkpoint, which is gone; its blob must survive.
        assert_eq!(latest.checkpoint.channel_values["big"], json!("B"));
        assert_eq!(latest.checkpoint.channel_values["n"], json!(2));
        assert_eq!(latest.pending_writes[0].value, json!("pending"));
        let sub_latest = saver
            .get_tuple(&cfg("t").with_ns("inner"))
            .unwrap()
            .unwrap();
        assert_eq!(sub_latest.checkpoint.channel_values["s"], json!("new"));
        assert!(saver.get_tuple(&mid).unwrap().is_none());
        // Root keeps big + n@3, inner keeps s@2; "other" is untouched (2 checkpoints, 2 blobs).
        assert_eq!(
            saver.stats().unwrap(),
            MemoryStats {
                threads: 2,
                checkpoints: 4,
                blobs: 5,
                writes: 1
            }
        );
        // The pruned thread carries on from its latest checkpoint.
        root.step(&[("n", Some(json!(3)))]);
        let after = saver.get_tuple(&cfg("t")).unwrap().unwrap();
        assert_eq!(after.checkpoint.channel_values["big"], json!("B"));
        assert_eq!(after.parent_config, Some(last));
    }

    #[test]
    fn prune_delete_removes_the_listed_threads() {
        let saver = MemorySaver::new();
        for t in ["a", "b", "c"] {
            let mut run = Run::new(&saver, cfg(t), "r");
            run.step(&[("x", Some(json!(t)))]);
            run.step(&[("x", Some(json!(t)))]);
        }
        saver
            .prune(
                &["a".into(), "c".into(), "missing".into()],
                PruneStrategy::Delete,
            )
            .unwrap();
        let left = saver.list(None, None, None, None).unwrap();
        assert_eq!(left.len(), 2);
        assert!(left.iter().all(|t| t.config.thread_id == "b"));
    }

    #[test]
    fn rewrite_values_reaches_every_value_and_write() {
        let saver = MemorySaver::new();
        let mut run = Run::new(&saver, cfg("t"), "run-1");
        let first = run.step(&[("a", Some(json!("x"))), ("b", Some(json!(1)))]);
        saver.put_writes(&first, vec![("a".into(), json!("w").into())], "task", "").unwrap();
        run.step(&[("a", Some(json!("y"))), ("b", None)]);
        let upper = |v: &RawJson| -> std::result::Result<Option<RawJson>, ()> {
            let text = v.as_str();
            Ok(text.starts_with('"').then(|| RawJson::from_trusted(text.to_uppercase())))
        };
        assert_eq!(saver.rewrite_values(upper).unwrap(), Ok((4, 3)));
        let history = saver.list(Some(&ListConfig::thread("t")), None, None, None).unwrap();
        assert_eq!(history[0].checkpoint.channel_values["a"], json!("Y"));
        assert_eq!(history[1].checkpoint.channel_values["a"], json!("X"));
        assert_eq!(history[1].pending_writes[0].value, json!("W"));
        let failed = saver.rewrite_values(|_| Err("stop")).unwrap();
        assert_eq!(failed, Err("stop"));
        let tagged = saver
            .rewrite_metadata(|m| -> std::result::Result<_, ()> {
                let mut m = m.clone();
                m.insert("seen".into(), json!(true));
                Ok(Some(m))
            })
            .unwrap();
        assert_eq!(tagged, Ok((2, 2)));
        let latest = saver.get_tuple(&cfg("t")).unwrap().unwrap();
        assert_eq!(latest.metadata.get("seen"), Some(&json!(true)));
    }

    #[test]
    fn delete_for_runs_removes_their_checkpoints_and_writes_only() {
        let saver = MemorySaver::new();
        let mut run = Run::new(&saver, cfg("t"), "run-1");
        let first = run.step(&[("big", Some(json!("B"))), ("n", Some(json!(0)))]);
        saver
            .put_writes(&first, vec![("n".into(), json!("w").into())], "task", "")
            .unwrap();
        run.run_id = "run-2".into();
        let second = run.step(&[("n", Some(json!(1)))]);
        let mut elsewhere = Run::new(&saver, cfg("u"), "run-1");
        elsewhere.step(&[("n", Some(json!(5)))]);

        saver
            .delete_for_runs(&["run-1".into(), "run-9".into()])
            .unwrap();

        assert!(saver.get_tuple(&first).unwrap().is_none());
        assert!(saver.get_tuple(&cfg("u")).unwrap().is_none());
        let kept = saver.get_tuple(&cfg("t")).unwrap().unwrap();
        assert_eq!(kept.config, second);
        // Its "big" blob was written by a deleted checkpoint and is still read.
        assert_eq!(kept.checkpoint.channel_values["big"], json!("B"));
        assert_eq!(kept.metadata.run_id(), Some("run-2"));
        assert_eq!(
            saver.stats().unwrap(),
            MemoryStats {
                threads: 1,
                checkpoints: 1,
                blobs: 2,
                writes: 0
            }
        );
        saver.delete_for_runs(&[]).unwrap();
        assert_eq!(saver.stats().unwrap().checkpoints, 1);
    }

    #[test]
    fn invalid_calls_are_errors() {
        let saver = MemorySaver::new();
        let no_id = saver.put_writes(&cfg("t"), vec![("a".into(), json!(1).into())], "task", "");
        assert!(matches!(no_id, Err(SaverError::InvalidConfig(m)) if m.contains("checkpoint_id")));

        let mut cp = Checkpoint::empty();
        cp.id.clear();
        let empty = saver.put(
            &cfg("t"),
            cp,
            CheckpointMetadata::default(),
            &BTreeMap::new(),
        );
        assert!(matches!(empty, Err(SaverError::InvalidCheckpoint(_))));

        let cp = Checkpoint::empty();
        let own_parent = cfg("t").with_checkpoint_id(cp.id.clone());
        let looped = saver.put(
            &own_parent,
            cp,
            CheckpointMetadata::default(),
            &BTreeMap::new(),
        );
        assert!(matches!(looped, Err(SaverError::InvalidCheckpoint(m)) if m.contains("parent")));
        assert_eq!(saver.stats().unwrap(), MemoryStats::default());

        assert!(matches!(
            saver.next_version(Some("garbage")),
            Err(SaverError::InvalidVersion(_))
        ));
        let v = saver.next_version(None).unwrap();
        assert_eq!(crate::version::version_counter(&v), Some(1));
    }

    #[test]
    fn poisoned_lock_reports_storage_error() {
        let saver = Arc::new(MemorySaver::new());
        let s = Arc::clone(&saver);
        let _ = std::thread::spawn(move || {
            let _guard = s.store.write().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(matches!(
            saver.get_tuple(&cfg("t")),
            Err(SaverError::Storage(_))
        ));
    }

    #[test]
    fn concurrent_use_through_a_trait_object() {
        let saver: Arc<dyn CheckpointSaver> = Arc::new(MemorySaver::new());
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let saver = Arc::clone(&saver);
                std::thread::spawn(move || {
                    let mut run =
                        Run::new(&*saver, cfg(if t % 2 == 0 { "even" } else { "odd" }), "r");
                    run.config.checkpoint_ns = format!("ns{t}");
                    for i in 0..50 {
                        let c = run.step(&[("n", Some(json!(i)))]);
                        saver
                            .put_writes(&c, vec![("n".into(), json!(i).into())], "task", "")
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let all = saver.list(None, None, None, None).unwrap();
        assert_eq!(all.len(), 200);
        assert!(all
            .windows(2)
            .all(|w| w[0].checkpoint.id > w[1].checkpoint.id));
        for ns in ["ns0", "ns2"] {
            let latest = saver.get_tuple(&cfg("even").with_ns(ns)).unwrap().unwrap();
            assert_eq!(latest.checkpoint.channel_values["n"], json!(49));
            assert_eq!(latest.pending_writes.len(), 1);
        }
    }

    fn put_child(saver: &MemorySaver, parent: &CheckpointConfig) -> Result<CheckpointConfig> {
        let mut checkpoint = Checkpoint::empty();
        checkpoint.id = checkpoint_id();
        let metadata = CheckpointMetadata::new(CheckpointSource::Loop, 0);
        saver.put(parent, checkpoint, metadata, &BTreeMap::new())
    }

    #[test]
    fn a_marked_put_on_a_stale_parent_is_a_conflict_and_stores_nothing() {
        let saver = MemorySaver::new();
        let first = put_child(&saver, &cfg("t").expecting_latest()).unwrap();
        // A second "first" checkpoint: the thread is no longer empty.
        let err = put_child(&saver, &cfg("t").expecting_latest()).unwrap_err();
        assert!(
            matches!(&err, SaverError::Conflict { latest_id: Some(l), parent_id: None, .. } if Some(l.as_str()) == first.id())
        );
        let second = put_child(&saver, &first.clone().expecting_latest()).unwrap();
        let err = put_child(&saver, &first.clone().expecting_latest()).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("concurrent update of thread \"t\""),
            "{message}"
        );
        assert!(message.contains(second.id().unwrap()), "{message}");
        assert_eq!(saver.stats().unwrap().checkpoints, 2);
        // Unmarked, a child of an older checkpoint is a fork, as before.
        put_child(&saver, &first).unwrap();
        assert_eq!(saver.stats().unwrap().checkpoints, 3);
        // Namespaces are separate lines.
        put_child(&saver, &cfg("t").with_ns("sub").expecting_latest()).unwrap();
    }

    #[test]
    fn a_retried_marked_put_of_the_same_checkpoint_is_not_a_conflict() {
        let saver = MemorySaver::new();
        let parent = put_child(&saver, &cfg("t")).unwrap();
        let mut checkpoint = Checkpoint::empty();
        checkpoint.id = checkpoint_id();
        let metadata = CheckpointMetadata::new(CheckpointSource::Loop, 1);
        let marked = parent.expecting_latest();
        saver
            .put(
                &marked,
                checkpoint.clone(),
                metadata.clone(),
                &BTreeMap::new(),
            )
            .unwrap();
        saver
            .put(&marked, checkpoint, metadata, &BTreeMap::new())
            .unwrap();
    }

    #[test]
    fn racing_marked_puts_on_one_parent_let_exactly_one_through() {
        let saver = Arc::new(MemorySaver::new());
        put_child(&saver, &cfg("t")).unwrap();
        for _ in 0..50 {
            let parent = saver
                .get_tuple(&cfg("t"))
                .unwrap()
                .unwrap()
                .config
                .expecting_latest();
            let barrier = Arc::new(std::sync::Barrier::new(4));
            let results: Vec<bool> = (0..4)
                .map(|_| {
                    let (saver, parent, barrier) =
                        (Arc::clone(&saver), parent.clone(), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        barrier.wait();
                        put_child(&saver, &parent).is_ok()
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect();
            assert_eq!(results.iter().filter(|ok| **ok).count(), 1);
        }
        // One line: every checkpoint's parent is the one before it.
        let all = saver.list(None, None, None, None).unwrap();
        assert_eq!(all.len(), 51);
        for w in all.windows(2) {
            assert_eq!(
                w[0].parent_config.as_ref().and_then(|p| p.id()),
                Some(w[1].checkpoint.id.as_str())
            );
        }
    }

    fn shared_pairs_of(pairs: &[(&str, &str)]) -> VersionPairs {
        pairs.iter().map(|(k, v)| (Shared::from(*k), Shared::from(*v))).collect()
    }

    /// A checkpoint stored through `put_shared` reads back as the same checkpoint stored
    /// through `put`: values at new versions, versions, what each node saw, the updated
    /// channels, metadata and parent.
    #[test]
    fn put_shared_stores_what_put_stores() {
        let by_put = MemorySaver::new();
        let by_shared = MemorySaver::new();
        let metadata = CheckpointMetadata(filter(json!({"source": "loop", "step": 1})));
        let mut checkpoint = Checkpoint::empty();
        checkpoint.id = checkpoint_id();
        checkpoint.ts = "2026-01-01T00:00:00+00:00".into();
        checkpoint.channel_values.insert("a".into(), RawJson::from(json!([1, 2])));
        checkpoint.channel_versions = BTreeMap::from([("a".into(), "2".into()), ("b".into(), "1".into())]);
        checkpoint.versions_seen = BTreeMap::from([
            ("__input__".into(), BTreeMap::new()),
            ("n".into(), BTreeMap::from([("b".into(), "1".into())])),
        ]);
        checkpoint.updated_channels = Some(vec!["a".into(), "b".into()]);
        let new_versions = BTreeMap::from([("a".into(), "2".into()), ("b".into(), "1".into())]);
        let parent = cfg("t").with_checkpoint_id(checkpoint_id());
        let a = by_put.put(&parent, checkpoint.clone(), metadata.clone(), &new_versions).unwrap();
        let shared = SharedCheckpoint {
            id: checkpoint.id.clone(),
            ts: checkpoint.ts.clone(),
            channel_versions: shared_pairs_of(&[("a", "2"), ("b", "1")]),
            versions_seen: Box::from([
                (Shared::from("__input__"), shared_pairs_of(&[])),
                (Shared::from("n"), shared_pairs_of(&[("b", "1")])),
            ]),
            updated_channels: Some(Box::from([Shared::from("a"), Shared::from("b")])),
            new_values: vec![("a".into(), "2".into(), Some(RawJson::from(json!([1, 2])))), ("b".into(), "1".into(), None)],
        };
        let b = by_shared.put_shared(&parent, shared, metadata.to_text()).unwrap();
        assert_eq!(a, b);
        let (a, b) = (by_put.get_tuple(&a).unwrap().unwrap(), by_shared.get_tuple(&b).unwrap().unwrap());
        assert_eq!(a.checkpoint, b.checkpoint);
        assert_eq!(a.checkpoint.channel_values.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!((a.metadata, a.parent_config), (b.metadata, b.parent_config));
        assert_eq!(by_put.stats(), by_shared.stats());
    }

    /// A checkpoint put through the protocol keeps what it has as its parent has it shared with
    /// the parent: a node's unchanged `versions_seen` whole, unchanged names and versions one by
    /// one; what changed is its own.
    #[test]
    fn put_shares_unchanged_versions_with_the_parent() {
        let saver = MemorySaver::new();
        let put = |parent: &CheckpointConfig, a: &str| {
            let mut checkpoint = Checkpoint::empty();
            checkpoint.id = checkpoint_id();
            checkpoint.channel_versions = BTreeMap::from([("a".into(), a.into()), ("b".into(), "1".into())]);
            checkpoint.versions_seen = BTreeMap::from([("node".into(), BTreeMap::from([("b".into(), "1".into())]))]);
            let new_versions = BTreeMap::from([("a".into(), a.into())]);
            let metadata = CheckpointMetadata::new(CheckpointSource::Loop, 0);
            saver.put(parent, checkpoint, metadata, &new_versions).unwrap()
        };
        let first = put(&cfg("t"), "1");
        let second = put(&first, "2");
        let store = saver.read().unwrap();
        let ns = &store.threads["t"].namespaces[""];
        let (parent, child) = (&ns.checkpoints[first.id().unwrap()], &ns.checkpoints[second.id().unwrap()]);
        let (old, new) = (&parent.channel_versions, &child.channel_versions);
        assert!(Arc::ptr_eq(&old[1].0, &new[1].0) && Arc::ptr_eq(&old[1].1, &new[1].1), "b is unchanged: shared");
        assert!(Arc::ptr_eq(&old[0].0, &new[0].0), "a's name is shared");
        assert!(!Arc::ptr_eq(&old[0].1, &new[0].1) && *old[0].1 != *new[0].1, "a's version is new");
        let seen = |s: &Saved, node: &str| s.versions_seen.iter().find(|(n, _)| &**n == node).map(|(_, p)| p.clone());
        let (before, after) = (seen(parent, "node").unwrap(), seen(child, "node").unwrap());
        assert!(Arc::ptr_eq(&before, &after), "what the node saw is unchanged: shared whole");
    }
}
