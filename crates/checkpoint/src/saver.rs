//! The `CheckpointSaver` trait every saver serves (native ones here, Python ones through the
//! adapter in crates/py), and the error type it reports with. Semantics follow LangGraph's
//! `BaseCheckpointSaver`; where LangGraph leaves a method unspecified, the doc says what we do.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::model::{
    Checkpoint, CheckpointConfig, CheckpointMetadata, CheckpointTuple, ListConfig, RawJson,
};

/// Why a saver call failed. Each message names the thread, checkpoint or value at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaverError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("invalid checkpoint: {0}")]
    InvalidCheckpoint(String),
    #[error("invalid channel version {0:?}: expected a decimal counter before the first '.'")]
    InvalidVersion(String),
    #[error("corrupt checkpoint {checkpoint_id:?} in thread {thread_id:?}: {reason}")]
    Corrupt {
        thread_id: String,
        checkpoint_id: String,
        reason: String,
    },
    #[error("storage error: {0}")]
    Storage(String),
    /// A `put` marked `expect_latest` whose parent is no longer the latest checkpoint of its
    /// thread and namespace: another writer advanced the thread meanwhile.
    #[error("{}", conflict_message(thread_id, checkpoint_ns, parent_id.as_deref(), latest_id.as_deref()))]
    Conflict {
        thread_id: String,
        checkpoint_ns: String,
        parent_id: Option<String>,
        latest_id: Option<String>,
    },
    /// A write for a checkpoint of a thread that was deleted (or pruned) after the checkpoint
    /// was made: a run still writing while its thread was deleted. Refused, so that a deleted
    /// thread never comes back half-written.
    #[error("{0}")]
    Deleted(String),
    /// An error raised by the saver's own backend (a Python saver's exception, a database
    /// driver's error), carried unchanged so the caller can hand back exactly what was raised.
    #[error("{0}")]
    Backend(BackendError),
}

fn conflict_message(
    thread_id: &str,
    ns: &str,
    parent: Option<&str>,
    latest: Option<&str>,
) -> String {
    let ns = if ns.is_empty() {
        String::new()
    } else {
        format!(", namespace {ns:?}")
    };
    let parent = parent.map_or_else(
        || "no checkpoint".to_owned(),
        |p| format!("checkpoint {p:?}"),
    );
    let latest = latest.map_or_else(|| "none".to_owned(), |l| format!("{l:?}"));
    format!(
        "concurrent update of thread {thread_id:?}{ns}: this run continues from {parent}, but another \
         writer has advanced the thread since (its latest checkpoint is {latest}); \
         reload the thread's state and run again"
    )
}

/// A backend's own error behind [`SaverError::Backend`]. Shared, so `SaverError` stays `Clone`;
/// two of them are equal only when they are the same error.
#[derive(Clone)]
pub struct BackendError(pub Arc<dyn std::error::Error + Send + Sync>);

impl BackendError {
    pub fn new(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        BackendError(Arc::new(err))
    }

    /// The original error, when it is a `T`.
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }
}

impl PartialEq for BackendError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for BackendError {}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

pub type Result<T, E = SaverError> = std::result::Result<T, E>;

/// What `prune` leaves of a thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PruneStrategy {
    /// Only the latest checkpoint of each namespace, its pending writes and the blobs it reads.
    KeepLatest,
    /// Nothing: the thread is deleted.
    Delete,
}

impl PruneStrategy {
    /// LangGraph's strategy names, `"keep_latest"` and `"delete"`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "keep_latest" => Some(PruneStrategy::KeepLatest),
            "delete" => Some(PruneStrategy::Delete),
            _ => None,
        }
    }
}

/// A store of checkpoints, addressed by thread, namespace and checkpoint id.
///
/// Object safe, so the engine holds any saver as `Arc<dyn CheckpointSaver>`.
pub trait CheckpointSaver: Send + Sync {
    /// The checkpoint `config.checkpoint_id` names, or without one the latest (largest id) of
    /// that thread and namespace; `None` when there is no such checkpoint.
    fn get_tuple(&self, config: &CheckpointConfig) -> Result<Option<CheckpointTuple>>;

    /// Checkpoints newest first (largest id first, across threads and namespaces too).
    ///
    /// - `config`: `None` for every thread; otherwise its thread, with `checkpoint_ns: None`
    ///   for every namespace of it and a `checkpoint_id` for that one checkpoint only.
    /// - `filter`: each key must equal the metadata's value (a missing key reads as null).
    /// - `before`: only ids smaller than its `checkpoint_id` (no bound without one).
    /// - `limit`: at most this many.
    fn list(
        &self,
        config: Option<&ListConfig>,
        filter: Option<&Map<String, Value>>,
        before: Option<&CheckpointConfig>,
        limit: Option<usize>,
    ) -> Result<Vec<CheckpointTuple>>;

    /// Stores `checkpoint` as a child of `config.checkpoint_id` (the parent, if any) and returns
    /// the config addressing the new checkpoint.
    ///
    /// With `config.expect_latest`, the parent must still be the latest checkpoint of the
    /// thread and namespace (no checkpoint at all for no parent), checked atomically with the
    /// insert; otherwise nothing is stored and the result is [`SaverError::Conflict`]. Storing
    /// the very same checkpoint again (a retried put) is not a conflict.
    ///
    /// Only channels in `new_versions` are stored anew; a channel missing from
    /// `checkpoint.channel_values` but present in `new_versions` is stored as cleared. Other
    /// channels are read back from the blob stored under their version earlier.
    fn put(
        &self,
        config: &CheckpointConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: &BTreeMap<String, String>,
    ) -> Result<CheckpointConfig>;

    /// Stores a task's writes against the checkpoint `config.checkpoint_id` names (required).
    ///
    /// Idempotent per (task id, write index): a repeated ordinary write is ignored, while a
    /// write to `__error__`, `__scheduled__`, `__interrupt__` or `__resume__` replaces the
    /// earlier one.
    fn put_writes(
        &self,
        config: &CheckpointConfig,
        writes: Vec<(String, RawJson)>,
        task_id: &str,
        task_path: &str,
    ) -> Result<()>;

    /// Removes every checkpoint, blob and write of a thread; unknown threads are a no-op.
    fn delete_thread(&self, thread_id: &str) -> Result<()>;

    /// Copies every checkpoint, blob and write of one thread into another, keeping ids; entries
    /// the target already has under the same keys are overwritten.
    /// `NotFound` when the source thread has nothing stored.
    fn copy_thread(&self, source_thread_id: &str, target_thread_id: &str) -> Result<()>;

    /// Shrinks the given threads as `strategy` says.
    fn prune(&self, thread_ids: &[String], strategy: PruneStrategy) -> Result<()>;

    /// Removes the checkpoints whose metadata `run_id` is one of `run_ids`, with their writes
    /// and any blob no remaining checkpoint reads.
    fn delete_for_runs(&self, run_ids: &[String]) -> Result<()>;

    /// The channel version after `current`; the default is [`crate::version::next_version`].
    fn next_version(&self, current: Option<&str>) -> Result<String> {
        crate::version::next_version(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_strategy_parses_langgraph_names() {
        assert_eq!(
            PruneStrategy::parse("keep_latest"),
            Some(PruneStrategy::KeepLatest)
        );
        assert_eq!(PruneStrategy::parse("delete"), Some(PruneStrategy::Delete));
        assert_eq!(PruneStrategy::parse("latest"), None);
    }

    #[test]
    fn error_messages_name_what_is_wrong() {
        let e = SaverError::Corrupt {
            thread_id: "t1".into(),
            checkpoint_id: "c9".into(),
            reason: "bad blob".into(),
        };
        assert_eq!(
            e.to_string(),
            "corrupt checkpoint \"c9\" in thread \"t1\": bad blob"
        );
        assert!(SaverError::InvalidVersion("x".into())
            .to_string()
            .contains("\"x\""));
    }

    #[derive(Debug, thiserror::Error)]
    #[error("driver said no")]
    struct DriverError;

    #[test]
    fn backend_errors_keep_the_original_error() {
        let e = SaverError::Backend(BackendError::new(DriverError));
        assert_eq!(e.to_string(), "driver said no");
        let SaverError::Backend(inner) = &e else {
            unreachable!()
        };
        assert!(inner.downcast_ref::<DriverError>().is_some());
        assert_eq!(e.clone(), e);
        assert_ne!(e, SaverError::Backend(BackendError::new(DriverError)));
    }
}
