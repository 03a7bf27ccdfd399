//! ferrograph's checkpoint layer without Python: the checkpoint model (LangGraph's shapes),
//! time-ordered checkpoint ids, channel versions, the `CheckpointSaver` trait and the native
//! in-memory saver. Channel values arrive already encoded as typed JSON text ([`RawJson`]);
//! nothing here decodes them.

pub mod id;
pub mod memory;
pub mod model;
pub mod saver;
pub mod small_map;
pub mod version;

pub use id::{checkpoint_id, now_iso8601};
pub use memory::{CheckpointHead, KeptTuple, MemorySaver, MemoryStats, Removed, Shared, SharedCheckpoint, ThreadUsage, VersionPairs};
pub use model::{
    Checkpoint, CheckpointConfig, CheckpointMetadata, CheckpointSource, CheckpointTuple,
    ListConfig, PendingWrite, RawJson, CHECKPOINT_VERSION, DROPPED_METADATA_KEY,
    EXCLUDED_METADATA_KEYS, EXPECT_LATEST, NO_WRITES, SPECIAL_WRITES, write_index,
};
pub use saver::{BackendError, CheckpointSaver, PruneStrategy, Result, SaverError};
pub use version::{format_version, next_version, version_counter};
