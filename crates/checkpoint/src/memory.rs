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
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::{Map, Value};

use crate::model::{
    write_index, Checkpoint, CheckpointConfig, CheckpointMetadata, CheckpointTuple, ListConfig,
    PendingWrite,
};
use crate::saver::{CheckpointSaver, PruneStrategy, Result, SaverError};

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
}

#[derive(Clone, Default)]
struct Thread {
    namespaces: HashMap<String, Namespace>,
}

#[derive(Clone, Default)]
struct Namespace {
    checkpoints: BTreeMap<String, Saved>,
    /// channel -> version -> value; `None` records a channel cleared at that version.
    blobs: HashMap<String, HashMap<String, Option<Value>>>,
    /// checkpoint id -> (task id, write index) -> write. Writes may precede their checkpoint's
    /// `put`, so they are not stored inside `Saved`.
    writes: HashMap<String, BTreeMap<(String, i64), StoredWrite>>,
}

#[derive(Clone)]
struct Saved {
    /// `channel_values` is always empty here: values live in the namespace's blobs.
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    parent_id: Option<String>,
}

#[derive(Clone)]
struct StoredWrite {
    channel: String,
    value: Value,
    task_path: String,
}

impl MemorySaver {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stats(&self) -> Result<MemoryStats> {
        let store = self.read()?;
        let mut s = MemoryStats {
            threads: store.threads.len(),
            ..MemoryStats::default()
        };
        for ns in store.threads.values().flat_map(|t| t.namespaces.values()) {
            s.checkpoints += ns.checkpoints.len();
            s.blobs += ns.blobs.values().map(HashMap::len).sum::<usize>();
            s.writes += ns.writes.values().map(BTreeMap::len).sum::<usize>();
        }
        Ok(s)
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, Store>> {
        self.store.read().map_err(|_| poisoned())
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, Store>> {
        self.store.write().map_err(|_| poisoned())
    }
}

/// A panic while holding the lock may have left the maps half-updated, so the saver refuses to
/// serve rather than return inconsistent checkpoints.
fn poisoned() -> SaverError {
    SaverError::Storage("memory saver lock poisoned by a panic in another thread".into())
}

impl Namespace {
    fn tuple(&self, thread_id: &str, ns: &str, id: &str, saved: &Saved) -> CheckpointTuple {
        let mut checkpoint = saved.checkpoint.clone();
        // A version without a blob is skipped, as LangGraph's memory saver does: the writer
        // named a version it never stored, and the channel simply reads as empty.
        for (channel, version) in &checkpoint.channel_versions {
            if let Some(Some(value)) = self.blobs.get(channel).and_then(|v| v.get(version)) {
                checkpoint
                    .channel_values
                    .insert(channel.clone(), value.clone());
            }
        }
        let config_for = |checkpoint_id: &str| CheckpointConfig {
            thread_id: thread_id.to_owned(),
            checkpoint_ns: ns.to_owned(),
            checkpoint_id: Some(checkpoint_id.to_owned()),
        };
        CheckpointTuple {
            config: config_for(id),
            checkpoint,
            metadata: saved.metadata.clone(),
            parent_config: saved.parent_id.as_deref().map(config_for),
            pending_writes: self.pending_writes(id),
        }
    }

    fn pending_writes(&self, checkpoint_id: &str) -> Vec<PendingWrite> {
        let Some(stored) = self.writes.get(checkpoint_id) else {
            return Vec::new();
        };
        // The map is already in (task id, index) order; a stable sort by path finishes it.
        let mut ordered: Vec<(&(String, i64), &StoredWrite)> = stored.iter().collect();
        ordered.sort_by(|a, b| a.1.task_path.cmp(&b.1.task_path));
        ordered
            .into_iter()
            .map(|((task_id, _), w)| PendingWrite {
                task_id: task_id.clone(),
                channel: w.channel.clone(),
                value: w.value.clone(),
                task_path: w.task_path.clone(),
            })
            .collect()
    }

    /// Drops blobs no remaining checkpoint reads. Blobs are reachable only through a
    /// checkpoint's `channel_versions`, so this never loses a readable value.
    fn collect_blobs(&mut self) {
        let live: HashSet<(&str, &str)> = self
            .checkpoints
            .values()
            .flat_map(|s| s.checkpoint.channel_versions.iter())
            .map(|(c, v)| (c.as_str(), v.as_str()))
            .collect();
        self.blobs.retain(|channel, versions| {
            versions.retain(|version, _| live.contains(&(channel.as_str(), version.as_str())));
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

type Cursor<'a> = std::iter::Rev<std::collections::btree_map::Range<'a, String, Saved>>;

impl CheckpointSaver for MemorySaver {
    fn get_tuple(&self, config: &CheckpointConfig) -> Result<Option<CheckpointTuple>> {
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

    fn list(
        &self,
        config: Option<&ListConfig>,
        filter: Option<&Map<String, Value>>,
        before: Option<&CheckpointConfig>,
        limit: Option<usize>,
    ) -> Result<Vec<CheckpointTuple>> {
        let limit = limit.unwrap_or(usize::MAX);
        let store = self.read()?;
        let mut sources: Vec<(&str, &str, &Namespace)> = Vec::new();
        match config {
            Some(c) => {
                if let Some((tid, thread)) = store.threads.get_key_value(&c.thread_id) {
                    for (name, ns) in &thread.namespaces {
                        if c.checkpoint_ns.as_deref().map_or(true, |want| want == name) {
                            sources.push((tid, name, ns));
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
        let mut heads: Vec<Option<(&String, &Saved)>> = cursors.iter_mut().map(Iterator::next).collect();
        let mut heap: BinaryHeap<(&str, Reverse<usize>)> = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.map(|(id, _)| (id.as_str(), Reverse(i))))
            .collect();
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
            if filter.map_or(true, |f| saved.metadata.matches(f)) {
                let (tid, name, ns) = sources[i];
                out.push(ns.tuple(tid, name, id, saved));
            }
        }
        Ok(out)
    }

    fn put(
        &self,
        config: &CheckpointConfig,
        mut checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: &BTreeMap<String, String>,
    ) -> Result<CheckpointConfig> {
        if checkpoint.id.is_empty() {
            return Err(SaverError::InvalidCheckpoint(format!(
                "checkpoint for thread {:?} has an empty id",
                config.thread_id
            )));
        }
        let parent_id = config.id().map(str::to_owned);
        if parent_id.as_deref() == Some(checkpoint.id.as_str()) {
            return Err(SaverError::InvalidCheckpoint(format!(
                "checkpoint {:?} names itself as its parent",
                checkpoint.id
            )));
        }
        let mut values = std::mem::take(&mut checkpoint.channel_values);
        let new_blobs: Vec<(&String, &String, Option<Value>)> = new_versions
            .iter()
            .map(|(channel, version)| (channel, version, values.remove(channel)))
            .collect();
        let id = checkpoint.id.clone();
        let saved = Saved {
            checkpoint,
            metadata,
            parent_id,
        };

        let mut store = self.write()?;
        let ns = namespace_mut(&mut store, &config.thread_id, &config.checkpoint_ns);
        for (channel, version, value) in new_blobs {
            match ns.blobs.get_mut(channel) {
                Some(versions) => {
                    versions.insert(version.clone(), value);
                }
                None => {
                    ns.blobs
                        .insert(channel.clone(), HashMap::from([(version.clone(), value)]));
                }
            }
        }
        ns.checkpoints.insert(id.clone(), saved);
        Ok(CheckpointConfig {
            thread_id: config.thread_id.clone(),
            checkpoint_ns: config.checkpoint_ns.clone(),
            checkpoint_id: Some(id),
        })
    }

    fn put_writes(
        &self,
        config: &CheckpointConfig,
        writes: Vec<(String, Value)>,
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
        let ns = namespace_mut(&mut store, &config.thread_id, &config.checkpoint_ns);
        if !ns.writes.contains_key(checkpoint_id) {
            ns.writes.insert(checkpoint_id.to_owned(), BTreeMap::new());
        }
        let stored = ns.writes.get_mut(checkpoint_id).expect("inserted above");
        for (position, (channel, value)) in writes.into_iter().enumerate() {
            let index = write_index(&channel, position);
            let key = (task_id.to_owned(), index);
            // A retried task re-sends the writes it already made: keep the first. Special
            // channels record the task's latest state instead, so they overwrite.
            if index >= 0 && stored.contains_key(&key) {
                continue;
            }
            stored.insert(
                key,
                StoredWrite {
                    channel,
                    value,
                    task_path: task_path.to_owned(),
                },
            );
        }
        Ok(())
    }

    fn delete_thread(&self, thread_id: &str) -> Result<()> {
        self.write()?.threads.remove(thread_id);
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
            match strategy {
                PruneStrategy::Delete => {
                    store.threads.remove(thread_id);
                }
                PruneStrategy::KeepLatest => {
                    if let Some(thread) = store.threads.get_mut(thread_id) {
                        thread.namespaces.retain(|_, ns| ns.keep_latest());
                        if thread.namespaces.is_empty() {
                            store.threads.remove(thread_id);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn delete_for_runs(&self, run_ids: &[String]) -> Result<()> {
        let runs: HashSet<&str> = run_ids.iter().map(String::as_str).collect();
        if runs.is_empty() {
            return Ok(());
        }
        let mut store = self.write()?;
        for thread in store.threads.values_mut() {
            for ns in thread.namespaces.values_mut() {
                let before = ns.checkpoints.len();
                let writes = &mut ns.writes;
                ns.checkpoints.retain(|id, saved| {
                    let doomed = saved.metadata.run_id().is_some_and(|r| runs.contains(r));
                    if doomed {
                        writes.remove(id);
                    }
                    !doomed
                });
                if ns.checkpoints.len() != before {
                    ns.collect_blobs();
                }
            }
            thread.namespaces.retain(|_, ns| !ns.is_empty());
        }
        store.threads.retain(|_, t| !t.namespaces.is_empty());
        Ok(())
    }
}

fn namespace_mut<'a>(store: &'a mut Store, thread_id: &str, ns: &str) -> &'a mut Namespace {
    // Look up before inserting so the common case allocates no key strings.
    if !store.threads.contains_key(thread_id) {
        store.threads.insert(thread_id.to_owned(), Thread::default());
    }
    let thread = store.threads.get_mut(thread_id).expect("inserted above");
    if !thread.namespaces.contains_key(ns) {
        thread.namespaces.insert(ns.to_owned(), Namespace::default());
    }
    thread.namespaces.get_mut(ns).expect("inserted above")
}
