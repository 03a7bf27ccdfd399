//! The checkpoint data model shared by every saver: checkpoints, their metadata, the config
//! that addresses them, pending writes and the tuple a saver hands back. Field names and JSON
//! shapes follow LangGraph's so a checkpoint written by one side reads on the other.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::id::{checkpoint_id, now_iso8601};

/// The checkpoint format version the engine writes, as LangGraph's engine does.
pub const CHECKPOINT_VERSION: u32 = 4;

/// Special write channels. Their writes are keyed by a fixed negative index instead of their
/// position, so a later write of the same kind by the same task replaces the earlier one.
pub const ERROR: &str = "__error__";
pub const SCHEDULED: &str = "__scheduled__";
pub const INTERRUPT: &str = "__interrupt__";
pub const RESUME: &str = "__resume__";

/// The special channels, each with the fixed index its writes are stored under.
pub const SPECIAL_WRITES: [(&str, i64); 4] = [(ERROR, -1), (SCHEDULED, -2), (INTERRUPT, -3), (RESUME, -4)];

/// The write channel of a task that finished without writing anything (so a resume knows it
/// finished), as LangGraph's engine records it.
pub const NO_WRITES: &str = "__no_writes__";

/// The `configurable` key by which the engine marks a `put` whose parent must still be the
/// thread's latest checkpoint (see [`CheckpointConfig::expect_latest`]).
pub const EXPECT_LATEST: &str = "__ferrograph_expect_latest__";

/// `configurable` keys never copied into a checkpoint's metadata (besides `__`-prefixed
/// ones), as LangGraph's `get_checkpoint_metadata` leaves them out.
pub const EXCLUDED_METADATA_KEYS: [&str; 9] = [
    "thread_id",
    "checkpoint_id",
    "checkpoint_ns",
    "checkpoint_map",
    "langgraph_step",
    "langgraph_node",
    "langgraph_triggers",
    "langgraph_path",
    "langgraph_checkpoint_ns",
];

/// A metadata key the Postgres savers drop from what they store: older LangGraph engines put
/// the step's writes (live values) there; LangGraph's Postgres saver drops it, its memory and
/// SQLite savers keep it, and ferrograph's savers do as LangGraph's of the same kind.
pub const DROPPED_METADATA_KEY: &str = "writes";

/// The index a write is stored under: LangGraph's fixed negative index for a special channel,
/// otherwise the write's position in the batch.
pub fn write_index(channel: &str, position: usize) -> i64 {
    match SPECIAL_WRITES.iter().find(|(name, _)| *name == channel) {
        Some(&(_, index)) => index,
        // A batch with more than i64::MAX writes cannot exist in memory.
        None => position as i64,
    }
}

/// One JSON value kept as its text: a channel value or a pending write as the codec encoded it.
/// Savers store and hand it back without parsing it; cloning shares the text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RawJson(Arc<str>);

impl RawJson {
    /// Wraps text the caller guarantees is exactly one JSON value (the codec's output).
    pub fn from_trusted(text: impl Into<Arc<str>>) -> Self {
        RawJson(text.into())
    }

    /// Checks that `text` is one JSON value, then wraps it unchanged.
    pub fn parse(text: &str) -> serde_json::Result<Self> {
        serde_json::from_str::<serde::de::IgnoredAny>(text)?;
        Ok(RawJson(text.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The value as a `serde_json::Value` (parsed on each call).
    pub fn to_value(&self) -> Value {
        // The text is one JSON value by construction; a nesting too deep for serde_json's
        // default limit reads as null rather than failing.
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }
}

impl From<&Value> for RawJson {
    fn from(v: &Value) -> Self {
        RawJson(v.to_string().into())
    }
}

impl From<Value> for RawJson {
    fn from(v: Value) -> Self {
        RawJson::from(&v)
    }
}

/// Compares as JSON values, so tests can write `json!(...)`.
impl PartialEq<Value> for RawJson {
    fn eq(&self, other: &Value) -> bool {
        self.to_value() == *other
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Serializes as the JSON value itself (not as a string), so a checkpoint's JSON keeps
/// LangGraph's shape.
impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v: Value = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        v.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(RawJson::from)
    }
}

/// One snapshot of a graph's channels.
///
/// `channel_values` holds already-encoded typed JSON produced by the codec; savers treat it
/// as opaque. Only channels with a value appear in it; `channel_versions` may name more.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub v: u32,
    pub id: String,
    pub ts: String,
    #[serde(default)]
    pub channel_values: BTreeMap<String, RawJson>,
    #[serde(default)]
    pub channel_versions: BTreeMap<String, String>,
    #[serde(default)]
    pub versions_seen: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    pub updated_channels: Option<Vec<String>>,
}

/// A checkpoint's fields without its values, as the SQL savers store them (the values live
/// in rows of their own).
#[derive(Serialize)]
struct WithoutValues<'a> {
    v: u32,
    id: &'a str,
    ts: &'a str,
    channel_versions: &'a BTreeMap<String, String>,
    versions_seen: &'a BTreeMap<String, BTreeMap<String, String>>,
    updated_channels: &'a Option<Vec<String>>,
}

impl Checkpoint {
    /// The checkpoint's JSON without `channel_values`.
    pub fn json_without_values(&self) -> String {
        let fields = WithoutValues {
            v: self.v,
            id: &self.id,
            ts: &self.ts,
            channel_versions: &self.channel_versions,
            versions_seen: &self.versions_seen,
            updated_channels: &self.updated_channels,
        };
        // Strings and maps of strings always serialize.
        serde_json::to_string(&fields).unwrap_or_default()
    }

    /// A checkpoint with no channels, a fresh id and the current time.
    pub fn empty() -> Self {
        Checkpoint {
            v: CHECKPOINT_VERSION,
            id: checkpoint_id(),
            ts: now_iso8601(),
            channel_values: BTreeMap::new(),
            channel_versions: BTreeMap::new(),
            versions_seen: BTreeMap::new(),
            updated_channels: None,
        }
    }
}

/// What produced a checkpoint, LangGraph's `metadata["source"]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointSource {
    Input,
    Loop,
    Update,
    Fork,
}

impl CheckpointSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointSource::Input => "input",
            CheckpointSource::Loop => "loop",
            CheckpointSource::Update => "update",
            CheckpointSource::Fork => "fork",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "input" => Some(CheckpointSource::Input),
            "loop" => Some(CheckpointSource::Loop),
            "update" => Some(CheckpointSource::Update),
            "fork" => Some(CheckpointSource::Fork),
            _ => None,
        }
    }
}

/// Checkpoint metadata: a free-form JSON object, because LangGraph copies the caller's config
/// metadata into it. The typed accessors cover the keys the engine itself writes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CheckpointMetadata(pub Map<String, Value>);

impl CheckpointMetadata {
    pub const SOURCE: &'static str = "source";
    pub const STEP: &'static str = "step";
    pub const PARENTS: &'static str = "parents";
    pub const RUN_ID: &'static str = "run_id";

    /// The metadata the engine writes for every checkpoint: source, step and empty parents.
    pub fn new(source: CheckpointSource, step: i64) -> Self {
        let mut m = CheckpointMetadata::default();
        m.set_source(source);
        m.set_step(step);
        m.set_parents(&BTreeMap::new());
        m
    }

    /// `None` when absent or not one of the four known sources.
    pub fn source(&self) -> Option<CheckpointSource> {
        self.0
            .get(Self::SOURCE)?
            .as_str()
            .and_then(CheckpointSource::parse)
    }

    pub fn set_source(&mut self, source: CheckpointSource) {
        self.0
            .insert(Self::SOURCE.into(), Value::from(source.as_str()));
    }

    pub fn step(&self) -> Option<i64> {
        self.0.get(Self::STEP)?.as_i64()
    }

    pub fn set_step(&mut self, step: i64) {
        self.0.insert(Self::STEP.into(), Value::from(step));
    }

    /// Namespace -> checkpoint id of the enclosing graphs; entries that are not strings are
    /// skipped rather than failing, since metadata may come from foreign writers.
    pub fn parents(&self) -> BTreeMap<String, String> {
        match self.0.get(Self::PARENTS) {
            Some(Value::Object(m)) => m
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    pub fn set_parents(&mut self, parents: &BTreeMap<String, String>) {
        let m: Map<String, Value> = parents
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        self.0.insert(Self::PARENTS.into(), Value::Object(m));
    }

    pub fn run_id(&self) -> Option<&str> {
        self.0.get(Self::RUN_ID)?.as_str()
    }

    pub fn set_run_id(&mut self, run_id: impl Into<String>) {
        self.0
            .insert(Self::RUN_ID.into(), Value::from(run_id.into()));
    }

    /// The metadata as its JSON text: what the memory saver keeps of it (see
    /// [`from_text`](Self::from_text)).
    pub fn to_text(&self) -> RawJson {
        RawJson::from_trusted(serde_json::to_string(&self.0).expect("a JSON map serializes"))
    }

    /// Metadata kept as text by [`to_text`](Self::to_text), or written as one JSON object by a
    /// caller that guarantees it (the Python binding's run sink). Nesting is not limited here:
    /// whoever wrote the text bounded it.
    pub fn from_text(text: &RawJson) -> Self {
        let mut de = serde_json::Deserializer::from_str(text.as_str());
        de.disable_recursion_limit();
        let map = <Map<String, Value> as serde::Deserialize>::deserialize(&mut de);
        CheckpointMetadata(map.expect("metadata is kept as the text of one JSON object"))
    }

    /// LangGraph's `list(filter=...)` test: every filter key equals the metadata value, where
    /// a missing key reads as null (Python's `metadata.get(key)` returns None).
    pub fn matches(&self, filter: &Map<String, Value>) -> bool {
        filter
            .iter()
            .all(|(k, want)| self.0.get(k).unwrap_or(&Value::Null) == want)
    }
}

impl Deref for CheckpointMetadata {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for CheckpointMetadata {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl From<Map<String, Value>> for CheckpointMetadata {
    fn from(m: Map<String, Value>) -> Self {
        CheckpointMetadata(m)
    }
}

/// The `configurable` part of a LangGraph config that addresses checkpoints.
///
/// An empty `checkpoint_id` is treated like an absent one, as LangGraph's truthiness test does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CheckpointConfig {
    pub thread_id: String,
    #[serde(default)]
    pub checkpoint_ns: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_id: Option<String>,
    /// Only read by `put`: the writer expects `checkpoint_id` (the new checkpoint's parent) to
    /// still be the latest checkpoint of the thread and namespace (none at all when it is
    /// `None`), and the saver refuses the put with [`crate::SaverError::Conflict`] otherwise,
    /// atomically with the insert. The engine sets it on the checkpoints a run writes as it
    /// steps (Python: `configurable[EXPECT_LATEST] = True`), so two
    /// processes running one thread cannot interleave their steps; forks and updates leave it
    /// unset, since they legitimately add a sibling.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expect_latest: bool,
}

impl CheckpointConfig {
    /// The root namespace of a thread, no checkpoint id (meaning: the latest).
    pub fn new(thread_id: impl Into<String>) -> Self {
        CheckpointConfig {
            thread_id: thread_id.into(),
            checkpoint_ns: String::new(),
            checkpoint_id: None,
            expect_latest: false,
        }
    }

    /// Marks a `put` config as expecting its parent to be the latest checkpoint.
    pub fn expecting_latest(mut self) -> Self {
        self.expect_latest = true;
        self
    }

    pub fn with_ns(mut self, checkpoint_ns: impl Into<String>) -> Self {
        self.checkpoint_ns = checkpoint_ns.into();
        self
    }

    pub fn with_checkpoint_id(mut self, checkpoint_id: impl Into<String>) -> Self {
        self.checkpoint_id = Some(checkpoint_id.into());
        self
    }

    /// The checkpoint id, with an empty string counted as absent.
    pub fn id(&self) -> Option<&str> {
        self.checkpoint_id.as_deref().filter(|s| !s.is_empty())
    }
}

/// Which checkpoints `CheckpointSaver::list` looks at.
///
/// It differs from [`CheckpointConfig`] in one point: LangGraph's `list` reads a config
/// without a `checkpoint_ns` key as "every namespace", while `Some("")` is the root one.
/// A config converted with `From` keeps its namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ListConfig {
    pub thread_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_ns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_id: Option<String>,
}

impl ListConfig {
    /// Every namespace of one thread.
    pub fn thread(thread_id: impl Into<String>) -> Self {
        ListConfig {
            thread_id: thread_id.into(),
            checkpoint_ns: None,
            checkpoint_id: None,
        }
    }

    pub fn with_ns(mut self, checkpoint_ns: impl Into<String>) -> Self {
        self.checkpoint_ns = Some(checkpoint_ns.into());
        self
    }

    pub fn id(&self) -> Option<&str> {
        self.checkpoint_id.as_deref().filter(|s| !s.is_empty())
    }
}

impl From<&CheckpointConfig> for ListConfig {
    fn from(c: &CheckpointConfig) -> Self {
        ListConfig {
            thread_id: c.thread_id.clone(),
            checkpoint_ns: Some(c.checkpoint_ns.clone()),
            checkpoint_id: c.checkpoint_id.clone(),
        }
    }
}

impl From<CheckpointConfig> for ListConfig {
    fn from(c: CheckpointConfig) -> Self {
        ListConfig {
            thread_id: c.thread_id,
            checkpoint_ns: Some(c.checkpoint_ns),
            checkpoint_id: c.checkpoint_id,
        }
    }
}

/// A write a task made against a checkpoint, kept so a failed step can resume without re-running
/// the tasks that succeeded. LangGraph's tuple is `(task_id, channel, value)`; `task_path` is
/// kept as well because it is the first sort key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingWrite {
    pub task_id: String,
    pub channel: String,
    pub value: RawJson,
    #[serde(default)]
    pub task_path: String,
}

/// A checkpoint with everything needed to resume from it.
///
/// `config` always carries the checkpoint's own id; `pending_writes` are sorted by task path,
/// then task id, then write index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointTuple {
    pub config: CheckpointConfig,
    pub checkpoint: Checkpoint,
    pub metadata: CheckpointMetadata,
    pub parent_config: Option<CheckpointConfig>,
    pub pending_writes: Vec<PendingWrite>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_reads_back_from_its_text() {
        let mut deep = json!("leaf");
        for _ in 0..300 {
            deep = json!({ "d": deep });
        }
        let metadata = CheckpointMetadata(
            json!({"source": "loop", "step": 3, "parents": {"": "p"}, "zeta": 1.5e-7, "ünï": [1, null, true], "deep": deep})
                .as_object()
                .unwrap()
                .clone(),
        );
        let text = metadata.to_text();
        assert!(text.as_str().starts_with(r#"{"source":"loop","step":3,"#), "{text}");
        let back = CheckpointMetadata::from_text(&text);
        assert_eq!(back, metadata);
        // Key order is kept (the map preserves it both ways).
        assert_eq!(back.keys().collect::<Vec<_>>(), metadata.keys().collect::<Vec<_>>());
        assert_eq!(back.step(), Some(3));
    }

    #[test]
    fn json_without_values_is_the_checkpoint_json_less_its_values() {
        let mut cp = Checkpoint::empty();
        cp.channel_values.insert("a".into(), json!([1, 2]).into());
        cp.channel_versions.insert("a".into(), "v1".into());
        cp.updated_channels = Some(vec!["a".into()]);
        let mut whole = serde_json::to_value(&cp).unwrap();
        whole.as_object_mut().unwrap().remove("channel_values");
        let without: Value = serde_json::from_str(&cp.json_without_values()).unwrap();
        assert_eq!(without, whole);
    }

    #[test]
    fn checkpoint_json_uses_langgraph_field_names() {
        let mut cp = Checkpoint::empty();
        cp.channel_values.insert("a".into(), json!(1).into());
        cp.channel_versions.insert("a".into(), "v1".into());
        cp.versions_seen
            .insert("node".into(), BTreeMap::from([("a".into(), "v1".into())]));
        let v = serde_json::to_value(&cp).unwrap();
        let obj = v.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "channel_values",
                "channel_versions",
                "id",
                "ts",
                "updated_channels",
                "v",
                "versions_seen"
            ]
        );
        assert_eq!(obj["v"], json!(4));
        assert_eq!(obj["updated_channels"], Value::Null);
        let back: Checkpoint = serde_json::from_value(v).unwrap();
        assert_eq!(back, cp);
    }

    #[test]
    fn checkpoint_reads_langgraph_json_without_optional_fields() {
        let cp: Checkpoint = serde_json::from_value(json!({
            "v": 4, "id": "1f1e8d3a-16e4-6711-bfff-6f4219872623",
            "ts": "2025-01-01T00:00:00+00:00", "channel_values": {"x": [1, 2]}
        }))
        .unwrap();
        assert_eq!(cp.channel_values["x"], json!([1, 2]));
        assert_eq!(cp.channel_values["x"].as_str(), "[1,2]");
        assert!(cp.channel_versions.is_empty());
        assert_eq!(cp.updated_channels, None);
    }

    #[test]
    fn raw_json_keeps_its_text_and_serializes_as_the_value() {
        let raw = RawJson::parse(r#"{"__fg__":"tuple","v":[1,2.5]}"#).unwrap();
        assert_eq!(raw.as_str(), r#"{"__fg__":"tuple","v":[1,2.5]}"#);
        assert_eq!(raw, json!({"__fg__": "tuple", "v": [1, 2.5]}));
        assert_eq!(serde_json::to_value(&raw).unwrap(), raw.to_value());
        let back: RawJson = serde_json::from_str(" [1, {\"a\": null}] ").unwrap();
        assert_eq!(back.as_str(), r#"[1,{"a":null}]"#);
        assert!(RawJson::parse("[1,").is_err());
        assert!(RawJson::parse("1 2").is_err());
        assert_eq!(format!("{:?}", RawJson::from_trusted("true")), "true");
    }

    #[test]
    fn metadata_helpers_round_trip() {
        let mut m = CheckpointMetadata::new(CheckpointSource::Loop, 3);
        m.set_run_id("run-1");
        m.set_parents(&BTreeMap::from([("".into(), "p".into())]));
        assert_eq!(m.source(), Some(CheckpointSource::Loop));
        assert_eq!(m.step(), Some(3));
        assert_eq!(m.run_id(), Some("run-1"));
        assert_eq!(m.parents()[""], "p");
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(
            json,
            json!({"source": "loop", "step": 3, "parents": {"": "p"}, "run_id": "run-1"})
        );
        m.insert("source".into(), json!("elsewhere"));
        assert_eq!(m.source(), None);
    }

    #[test]
    fn metadata_filter_is_exact_and_missing_reads_as_null() {
        let mut m = CheckpointMetadata::new(CheckpointSource::Input, -1);
        m.insert("user".into(), json!({"name": "a"}));
        let f = |v: Value| v.as_object().unwrap().clone();
        assert!(m.matches(&f(json!({"source": "input", "step": -1}))));
        assert!(m.matches(&f(json!({"user": {"name": "a"}}))));
        assert!(!m.matches(&f(json!({"user": {}}))));
        assert!(!m.matches(&f(json!({"step": -1.5}))));
        assert!(m.matches(&f(json!({"absent": null}))));
        assert!(!m.matches(&f(json!({"absent": 0}))));
    }

    #[test]
    fn special_channels_have_fixed_negative_indexes() {
        assert_eq!(write_index(ERROR, 7), -1);
        assert_eq!(write_index(SCHEDULED, 7), -2);
        assert_eq!(write_index(INTERRUPT, 7), -3);
        assert_eq!(write_index(RESUME, 7), -4);
        assert_eq!(write_index("messages", 7), 7);
    }

    #[test]
    fn config_treats_empty_checkpoint_id_as_absent() {
        let c = CheckpointConfig::new("t").with_checkpoint_id("");
        assert_eq!(c.id(), None);
        let c: CheckpointConfig = serde_json::from_value(json!({"thread_id": "t"})).unwrap();
        assert_eq!(c.checkpoint_ns, "");
        assert_eq!(c.checkpoint_id, None);
        let l = ListConfig::from(&c);
        assert_eq!(l.checkpoint_ns.as_deref(), Some(""));
        assert_eq!(ListConfig::thread("t").checkpoint_ns, None);
    }
}
