//! `CoreRun`: one run of a compiled graph as a step machine driven by the Python executor,
//! and the run's checkpoints in the saver protocol's shape (LangGraph's dicts, with live
//! Python values: the saver serializes them).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use ferrograph_core::{ChannelKind, Item, Run, TaskKind, Version, TASKS, START};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFrozenSet, PyList, PySet, PyString, PyTuple};

use ferrograph_checkpoint::model::INTERRUPT;
use ferrograph_checkpoint::{Checkpoint, RawJson, Shared, SharedCheckpoint, VersionPairs, CHECKPOINT_VERSION};

use crate::codec::{PySerializer, Registry};
use crate::errors::{new_error, IntoPyResult};
use crate::savers::convert::{encode_channel, encode_write};
use crate::savers::encoded::EncodedCheckpoint;
use crate::graph::CoreGraph;
use crate::value::PyValue;

/// How a channel's content appears in a checkpoint or a pending write.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// State keys and the input: the value itself.
    Value,
    /// `branch:to:` triggers: None, as LangGraph writes.
    Trigger,
    /// Join barriers: the set of writers' names.
    Barrier,
    /// The `Send` topic: a list of `Send` objects.
    Sends,
}

fn form_of(kind: &ChannelKind<PyValue>, key: &str) -> Form {
    match kind {
        ChannelKind::NamedBarrier { .. } => Form::Barrier,
        ChannelKind::Topic { .. } if key == TASKS => Form::Sends,
        ChannelKind::Ephemeral { .. } if key != START => Form::Trigger,
        _ => Form::Value,
    }
}

static SEND: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn send_class(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    Ok(SEND
        .get_or_try_init(py, || PyResult::Ok(py.import("ferrograph.types")?.getattr("Send")?.unbind()))?
        .bind(py))
}

fn item_to_py<'py>(py: Python<'py>, item: &Item<PyValue>, form: Form) -> PyResult<Bound<'py, PyAny>> {
    Ok(match item {
        Item::Value(v) => v.bind(py).clone(),
        Item::Token(name) if form == Form::Barrier => PyString::new(py, name).into_any(),
        Item::Token(_) => py.None().into_bound(py),
        Item::Send(node, arg) => send_class(py)?.call1((node.as_ref(), arg.bind(py)))?,
    })
}

fn item_from_py(py: Python<'_>, value: &Bound<'_, PyAny>, form: Form, channel: &str) -> PyResult<Item<PyValue>> {
    Ok(match form {
        Form::Value => Item::Value(PyValue::new(value.clone())),
        Form::Trigger => Item::Token("".into()),
        Form::Barrier => Item::Token(value.extract::<String>()?.into()),
        Form::Sends => {
            if !value.is_instance(send_class(py)?)? {
                return Err(new_error(
                    py,
                    "CorruptCheckpointError",
                    format!("channel '{channel}' holds {}, not a Send", value.get_type().name()?),
                ));
            }
            let node: String = value.getattr("node")?.extract()?;
            Item::Send(node.into(), PyValue::new(value.getattr("arg")?))
        }
    })
}

/// Channel versions as the saver protocol spells them (`format_version`, LangGraph's format).
/// Each counter gets one spelling for the life of the run, so a blob stored under a version is
/// found again under the same string.
#[derive(Default)]
struct VersionNames {
    names: HashMap<Version, Shared, BuildHasherDefault<CounterHasher>>,
    salt: u64,
}

/// Hashes the run's own version counters with one multiply: SipHash, the default, cost more
/// than the rest of a lookup, and a checkpoint looks up every version it names.
#[derive(Default)]
struct CounterHasher(u64);

impl Hasher for CounterHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl VersionNames {
    fn name(&mut self, version: Version) -> &str {
        self.shared(version)
    }

    /// The version's spelling, held once for every checkpoint of the run that names it.
    fn shared(&mut self, version: Version) -> &Shared {
        let salt = self.salt;
        self.names.entry(version).or_insert_with(|| {
            // A cheap, well-mixed 16-digit fraction; uniqueness comes from the counter.
            let mut x = version ^ salt ^ 0x9e37_79b9_7f4a_7c15;
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^= x >> 31;
            ferrograph_checkpoint::format_version(version, x).into()
        })
    }

    fn parse(&mut self, name: &str) -> Option<Version> {
        let counter = name.split('.').next()?.parse::<Version>().ok()?;
        self.names.entry(counter).or_insert_with(|| name.into());
        Some(counter)
    }
}

/// Whose `versions_seen` an entry of a checkpoint's map is.
#[derive(Clone, Copy)]
enum Seer {
    /// `__input__`, which LangGraph always records, empty.
    Input,
    Node(usize),
    Interrupt,
}

impl Seer {
    /// Every possible entry, by name, in LangGraph's order: `__input__`, the graph's nodes,
    /// the interrupt marker.
    fn all(run: &Run<PyValue>) -> impl Iterator<Item = (&str, Seer)> {
        let nodes = run.graph().nodes().iter().enumerate().map(|(n, node)| (&*node.name, Seer::Node(n)));
        std::iter::once(("__input__", Seer::Input)).chain(nodes).chain(std::iter::once((INTERRUPT, Seer::Interrupt)))
    }

    /// What the entry records, when a checkpoint has it: `__input__` always (empty), a node
    /// or the interrupt marker once it saw something.
    fn seen(self, run: &Run<PyValue>) -> Option<&[Version]> {
        let seen = match self {
            Seer::Input => return Some(&[]),
            Seer::Node(n) => run.versions_seen(n),
            Seer::Interrupt => run.interrupt_seen(),
        };
        seen.iter().any(|&v| v > 0).then_some(seen)
    }
}

/// What [`CoreRun::encode_shared`] keeps from one checkpoint to the next: the graph's channels
/// and the `versions_seen` entries in name order (the order a saver keeps them in), and each
/// entry's pairs with the versions they were made from, reused while those are unchanged (a
/// node's seen versions change only when it runs).
struct SharedForm {
    channels_by_name: Vec<usize>,
    seers: Vec<(Shared, Seer)>,
    seen: Vec<Option<(Vec<Version>, VersionPairs)>>,
}

impl SharedForm {
    fn new(run: &Run<PyValue>) -> Self {
        let graph = run.graph();
        let mut channels_by_name: Vec<usize> = (0..run.channels().len()).collect();
        channels_by_name.sort_by(|&a, &b| graph.channel_name(a).cmp(graph.channel_name(b)));
        let mut seers: Vec<(Shared, Seer)> = Seer::all(run).map(|(name, seer)| (Shared::from(name), seer)).collect();
        seers.sort_by(|a, b| a.0.cmp(&b.0));
        let seen = vec![None; seers.len()];
        SharedForm { channels_by_name, seers, seen }
    }
}

fn versions_dict<'py>(py: Python<'py>, run: &Run<PyValue>, names: &mut VersionNames, versions: &[Version]) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (c, &v) in versions.iter().enumerate() {
        if v > 0 {
            dict.set_item(run.graph().channel_name(c), names.name(v))?;
        }
    }
    Ok(dict)
}

/// `versions_seen` by node, as LangGraph keeps it: `__input__` (always, empty), each node
/// that saw something, and the interrupt marker's.
fn seen_by_node(run: &Run<PyValue>) -> impl Iterator<Item = (&str, &[Version])> {
    Seer::all(run).filter_map(move |(name, seer)| Some((name, seer.seen(run)?)))
}

/// Channel versions as the saver protocol names them, leaving out channels never written.
/// Built by inserts: a checkpoint's maps are small, and collecting sorts a copy first.
fn versions_map(run: &Run<PyValue>, names: &mut VersionNames, versions: &[Version]) -> BTreeMap<String, String> {
    let graph = run.graph();
    let mut map = BTreeMap::new();
    for (c, &v) in versions.iter().enumerate() {
        if v > 0 {
            map.insert(graph.channel_name(c).to_owned(), names.name(v).to_owned());
        }
    }
    map
}

#[pyclass(module = "ferrograph._core")]
pub struct CoreRun {
    run: Run<PyValue>,
    names: VersionNames,
    /// Channel versions as last handed to the saver: what `new_versions` is measured against.
    saved: Vec<Version>,
    /// Channels updated by the last step (the checkpoint's `updated_channels`).
    updated: Vec<usize>,
    /// Made by the first `encode_shared` (a run on the native memory saver).
    shared: Option<SharedForm>,
}

/// The state as a dict, leaving out keys that hold nothing yet (as LangGraph does).
fn state_dict<'py, 'a>(
    py: Python<'py>,
    entries: impl Iterator<Item = (&'a str, Option<&'a PyValue>)>,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (key, value) in entries {
        if let Some(value) = value {
            dict.set_item(PyString::intern(py, key), value.bind(py))?;
        }
    }
    Ok(dict)
}

impl CoreRun {
    fn form(&self, channel: usize) -> Form {
        let ch = &self.run.channels()[channel];
        form_of(ch.kind(), ch.key())
    }

    fn channel_index(&self, py: Python<'_>, name: &str) -> PyResult<usize> {
        self.run.graph().channel(name).ok_or_else(|| {
            new_error(py, "CorruptCheckpointError", format!("unknown channel '{name}' in a saved write"))
        })
    }

    /// A channel's content as a checkpoint holds it, None when it holds nothing. A deferred
    /// node's trigger is saved as (content, released), as LangGraph saves its
    /// `...AfterFinish` channels, also while it waits.
    fn channel_value<'py>(&self, py: Python<'py>, c: usize) -> PyResult<Option<Bound<'py, PyAny>>> {
        let channel = &self.run.channels()[c];
        let deferred = channel.is_deferred();
        if !(channel.is_available() || (deferred && channel.has_content())) {
            return Ok(None);
        }
        let form = self.form(c);
        let items = channel.items();
        let value = match form {
            Form::Barrier => {
                let set = PySet::empty(py)?;
                for item in &items {
                    set.add(item_to_py(py, item, form)?)?;
                }
                set.into_any()
            }
            Form::Sends => {
                let list = PyList::empty(py);
                for item in &items {
                    list.append(item_to_py(py, item, form)?)?;
                }
                list.into_any()
            }
            _ => match items.first() {
                Some(item) => item_to_py(py, item, form)?,
                None => return Ok(None),
            },
        };
        if deferred {
            let released = PyBool::new(py, channel.is_finished()).to_owned().into_any();
            return Ok(Some(PyTuple::new(py, [value, released])?.into_any()));
        }
        Ok(Some(value))
    }

    /// The channels whose version moved since the last checkpoint handed to the saver.
    fn new_versions_dict<'py>(&mut self, py: Python<'py>, versions: &[Version]) -> PyResult<Bound<'py, PyDict>> {
        let graph = self.run.graph().clone();
        let new_versions = PyDict::new(py);
        for (c, &v) in versions.iter().enumerate() {
            if v > self.saved[c] {
                new_versions.set_item(graph.channel_name(c), self.names.name(v))?;
            }
        }
        Ok(new_versions)
    }

    /// The channels at a new version since the last checkpoint handed to the saver, with
    /// their versions and values encoded with `registry` (None: the channel holds nothing; a
    /// `SerializationError` names the channel); from now on they count as handed over.
    fn take_new_values(&mut self, py: Python<'_>, registry: &Registry) -> PyResult<Vec<(usize, Version, Option<RawJson>)>> {
        let versions = self.run.versions().to_vec();
        let mut out = Vec::new();
        for (c, &v) in versions.iter().enumerate() {
            if v > self.saved[c] {
                let key = self.run.graph().channel_name(c);
                let value = self.channel_value(py, c)?.map(|value| encode_channel(&value, registry, key)).transpose()?;
                out.push((c, v, value));
            }
        }
        self.saved = versions;
        Ok(out)
    }

    /// The run as a checkpoint with only the new versions' values (see `take_new_values`),
    /// and the new versions.
    pub(crate) fn encode(
        &mut self,
        py: Python<'_>,
        id: String,
        ts: String,
        registry: &Registry,
    ) -> PyResult<(Checkpoint, BTreeMap<String, String>)> {
        let graph = self.run.graph().clone();
        let mut channel_values = BTreeMap::new();
        let mut new_versions = BTreeMap::new();
        for (c, v, value) in self.take_new_values(py, registry)? {
            let key = graph.channel_name(c);
            if let Some(value) = value {
                channel_values.insert(key.to_string(), value);
            }
            new_versions.insert(key.to_string(), self.names.name(v).to_string());
        }
        let channel_versions = versions_map(&self.run, &mut self.names, self.run.versions());
        let mut versions_seen = BTreeMap::new();
        for (node, node_seen) in seen_by_node(&self.run) {
            versions_seen.insert(node.to_owned(), versions_map(&self.run, &mut self.names, node_seen));
        }
        let updated_channels = Some(self.updated.iter().map(|&c| graph.channel_name(c).to_string()).collect());
        let checkpoint = Checkpoint { v: CHECKPOINT_VERSION, id, ts, channel_values, channel_versions, versions_seen, updated_channels };
        Ok((checkpoint, new_versions))
    }

    /// [`encode`](Self::encode) in the memory saver's shared form: the same checkpoint, with
    /// names and versions shared rather than copied, and each `versions_seen` entry reused
    /// while unchanged.
    pub(crate) fn encode_shared(
        &mut self,
        py: Python<'_>,
        id: String,
        ts: String,
        registry: &Registry,
    ) -> PyResult<SharedCheckpoint> {
        let new_values = self.take_new_values(py, registry)?;
        let run = &self.run;
        let graph = run.graph();
        let names = &mut self.names;
        let form = self.shared.get_or_insert_with(|| SharedForm::new(run));
        // A map of each channel at a version above 0 (`__input__`'s is empty).
        let mut pairs = |versions: &[Version]| -> VersionPairs {
            form.channels_by_name
                .iter()
                .filter_map(|&c| versions.get(c).filter(|&&v| v > 0).map(|&v| (graph.channel_key(c).clone(), names.shared(v).clone())))
                .collect()
        };
        let channel_versions = pairs(run.versions());
        let mut versions_seen = Vec::with_capacity(form.seers.len());
        for (i, (name, seer)) in form.seers.iter().enumerate() {
            let Some(seen) = seer.seen(run) else { continue };
            let kept = match &form.seen[i] {
                Some((from, kept)) if from.as_slice() == seen => kept.clone(),
                _ => {
                    let made = pairs(seen);
                    form.seen[i] = Some((seen.to_vec(), made.clone()));
                    made
                }
            };
            versions_seen.push((name.clone(), kept));
        }
        let updated_channels = Some(self.updated.iter().map(|&c| graph.channel_key(c).clone()).collect());
        let new_values = new_values
            .into_iter()
            .map(|(c, v, value)| (graph.channel_key(c).clone(), self.names.shared(v).clone(), value))
            .collect();
        Ok(SharedCheckpoint {
            id,
            ts,
            channel_versions,
            versions_seen: versions_seen.into_boxed_slice(),
            updated_channels,
            new_values,
        })
    }

    /// Task `task`'s writes, each value encoded with `registry`: what a first-party saver's
    /// `put_writes` stores for it.
    pub(crate) fn encoded_writes(&self, py: Python<'_>, task: usize, registry: &Registry) -> PyResult<Vec<(String, RawJson)>> {
        let t = &self.run.tasks()[task];
        let graph = self.run.graph();
        let mut out = Vec::new();
        for (c, item) in t.writes() {
            let name = graph.channel_name(*c);
            let value = item_to_py(py, item, self.form(*c))?;
            out.push((name.to_string(), encode_write(&value, registry, name)?));
        }
        Ok(out)
    }

    /// The id of task `task` of this step.
    pub(crate) fn task_id(&self, task: usize) -> &str {
        &self.run.tasks()[task].id
    }

}

#[pymethods]
impl CoreRun {
    #[new]
    #[pyo3(signature = (graph, recursion_limit, seed=String::new()))]
    fn new(graph: &CoreGraph, recursion_limit: u64, seed: String) -> Self {
        let mut run = Run::new(graph.graph.clone(), recursion_limit);
        let salt = seed.bytes().fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b));
        run.set_seed(seed);
        let n = run.channels().len();
        CoreRun { run, names: VersionNames { names: HashMap::default(), salt }, saved: vec![0; n], updated: vec![], shared: None }
    }

    #[getter]
    fn step(&self) -> i64 {
        self.run.step()
    }

    /// The last step the recursion limit allows (what managed values count down to).
    fn stop(&self) -> i64 {
        self.run.stop()
    }

    /// Move to `step` without running anything (a fork of a checkpoint).
    fn set_step(&mut self, step: i64) {
        self.run.set_step(step);
    }

    /// Seed task ids (with the id of the checkpoint the next step starts from).
    pub(crate) fn set_seed(&mut self, seed: String) {
        self.run.set_seed(seed);
    }

    fn input(&mut self, py: Python<'_>, value: Bound<'_, PyAny>) -> PyResult<()> {
        self.run.input(PyValue::new(value)).py(py)?;
        self.updated = vec![self.run.graph().channel(START).expect("every graph has __start__")];
        Ok(())
    }

    /// Plan the next superstep: a list of (node name, input, task id, is push), or None when
    /// the run is over.
    fn tick<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Vec<Bound<'py, PyTuple>>>> {
        if !self.run.tick().py(py)? {
            return Ok(None);
        }
        self.tasks(py).map(Some)
    }

    /// The tasks of the current step, in the shape `tick` returns them.
    fn tasks<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        let mut out = Vec::with_capacity(self.run.tasks().len());
        for (i, task) in self.run.tasks().iter().enumerate() {
            let input = match (&task.arg, task.node) {
                (Some(arg), _) => arg.bind(py).clone(),
                (None, 0) => match self.run.read(i).next() {
                    Some((_, Some(v))) => v.bind(py).clone(),
                    _ => py.None().into_bound(py),
                },
                (None, _) => state_dict(py, self.run.read(i))?.into_any(),
            };
            let push = matches!(task.kind, TaskKind::Push(_));
            out.push(PyTuple::new(
                py,
                [
                    PyString::intern(py, &task.name).into_any(),
                    input,
                    PyString::new(py, &task.id).into_any(),
                    PyBool::new(py, push).to_owned().into_any(),
                ],
            )?);
        }
        Ok(out)
    }

    /// The channels that scheduled task `task` of this step.
    fn task_triggers(&self, task: usize) -> Vec<String> {
        let graph = self.run.graph();
        match self.run.tasks().get(task) {
            Some(t) if t.triggers.is_empty() => vec!["__pregel_push".to_string()],
            Some(t) => t.triggers.iter().map(|&c| graph.channel_name(c).to_string()).collect(),
            None => vec![],
        }
    }

    /// The task path as LangGraph spells it: ("__pregel_pull", name) or ("__pregel_push", i).
    fn task_path<'py>(&self, py: Python<'py>, task: usize) -> PyResult<Bound<'py, PyTuple>> {
        let t = &self.run.tasks()[task];
        match t.kind {
            TaskKind::Pull => PyTuple::new(py, ["__pregel_pull".into_pyobject(py)?.into_any(), PyString::new(py, &t.name).into_any()]),
            TaskKind::Push(i) => PyTuple::new(
                py,
                [
                    "__pregel_push".into_pyobject(py)?.into_any(),
                    i.into_pyobject(py)?.into_any(),
                    PyBool::new(py, false).to_owned().into_any(),
                ],
            ),
        }
    }

    /// Record a task's update. Keys that are not state keys are ignored, as LangGraph does.
    /// Returns the update as applied (a dict of known keys), or None if nothing was written.
    fn update<'py>(
        &mut self,
        py: Python<'py>,
        task: usize,
        update: Bound<'py, PyDict>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let graph = self.run.graph().clone();
        let is_state = |name: &str| graph.channel(name).is_some_and(|c| graph.state_channels().contains(&c));
        let mut dropped = false;
        let mut written = 0;
        for (key, value) in update.iter() {
            let key = key.cast_into::<PyString>()?;
            let name = key.to_str()?;
            if is_state(name) {
                self.run.write(task, name, PyValue::new(value)).py(py)?;
                written += 1;
            } else {
                dropped = true;
            }
        }
        if written == 0 {
            return Ok(None);
        }
        if !dropped {
            return Ok(Some(update));
        }
        let known = PyDict::new(py);
        for (key, value) in update.iter() {
            if is_state(key.cast::<PyString>()?.to_str()?) {
                known.set_item(key, value)?;
            }
        }
        Ok(Some(known))
    }

    /// Apply a `Command` input's writes at once: `update` to state keys (others ignored),
    /// `gotos` node names and `sends` (node, arg) pairs.
    fn apply_command(
        &mut self,
        py: Python<'_>,
        update: Vec<(String, Bound<'_, PyAny>)>,
        gotos: Vec<String>,
        sends: Vec<(String, Bound<'_, PyAny>)>,
    ) -> PyResult<()> {
        let update = update.iter().map(|(k, v)| (k.as_str(), PyValue::new(v.clone()))).collect();
        let gotos: Vec<&str> = gotos.iter().map(String::as_str).collect();
        let sends = sends.iter().map(|(k, v)| (k.as_str(), PyValue::new(v.clone()))).collect();
        self.run.apply_command(update, &gotos, sends).py(py)
    }

    fn goto(&mut self, py: Python<'_>, task: usize, node: &str) -> PyResult<()> {
        self.run.goto(task, node).py(py)
    }

    fn send(&mut self, py: Python<'_>, task: usize, node: &str, arg: Bound<'_, PyAny>) -> PyResult<()> {
        self.run.send(task, node, PyValue::new(arg)).py(py)
    }

    fn finish(&mut self, py: Python<'_>, task: usize) -> PyResult<()> {
        self.run.finish(task).py(py)
    }

    /// The state as task `task` sees it with its own writes applied.
    fn preview<'py>(&self, py: Python<'py>, task: usize) -> PyResult<Bound<'py, PyDict>> {
        let fresh = self.run.preview(task).py(py)?;
        state_dict(py, fresh.iter().map(|(k, v)| (*k, v.as_ref())))
    }

    /// The state keys the last applied step changed.
    fn updated_keys(&self) -> Vec<String> {
        let graph = self.run.graph();
        let state = graph.state_channels();
        self.updated.iter().filter(|c| state.contains(c)).map(|&c| graph.channel_name(c).to_string()).collect()
    }

    /// Apply the step. Returns whether any state key changed.
    fn apply(&mut self, py: Python<'_>) -> PyResult<bool> {
        let outcome = self.run.apply().py(py)?;
        self.updated = outcome.updated;
        Ok(outcome.state_changed)
    }

    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        state_dict(py, self.run.state())
    }

    /// Add a task for `node` outside of a tick (`update_state(..., as_node=node)`).
    fn add_task(&mut self, py: Python<'_>, node: &str) -> PyResult<usize> {
        self.run.add_task(node).py(py)
    }

    /// Keep only the task with id `task_id` in the current step.
    fn keep_only_task(&mut self, py: Python<'_>, task_id: &str) -> PyResult<()> {
        self.run.keep_only_task(task_id).py(py)
    }

    /// Drop the current step's tasks without applying them.
    fn clear_tasks(&mut self) {
        self.run.clear_tasks();
    }

    /// The node `update_state` acts as when not told (None when no node has run).
    fn last_node(&self, py: Python<'_>) -> PyResult<Option<String>> {
        Ok(self.run.last_node().py(py)?.map(str::to_string))
    }

    fn updated_since_interrupt(&self) -> bool {
        self.run.updated_since_interrupt()
    }

    fn mark_interrupt(&mut self) {
        self.run.mark_interrupt();
    }

    /// Task `task`'s writes as (channel, value) pairs, for the saver's `put_writes`.
    fn task_writes<'py>(&self, py: Python<'py>, task: usize) -> PyResult<Bound<'py, PyList>> {
        let t = &self.run.tasks()[task];
        let graph = self.run.graph();
        let out = PyList::empty(py);
        for (c, item) in t.writes() {
            let value = item_to_py(py, item, self.form(*c))?;
            out.append((graph.channel_name(*c), value))?;
        }
        Ok(out)
    }

    /// Mark task `task` done with writes saved by an earlier attempt of this step.
    fn restore_task(&mut self, py: Python<'_>, task: usize, writes: Vec<(String, Bound<'_, PyAny>)>) -> PyResult<()> {
        let mut items = Vec::with_capacity(writes.len());
        for (channel, value) in writes {
            let c = self.channel_index(py, &channel)?;
            items.push((c, item_from_py(py, &value, self.form(c), &channel)?));
        }
        self.run.restore_task(task, items).py(py)
    }

    /// The run as a checkpoint in LangGraph's shape, for a third-party saver: (checkpoint
    /// dict with every channel's live value, new_versions dict). `new_versions` holds the
    /// channels changed since the last checkpoint, which is what the saver stores anew.
    fn checkpoint<'py>(&mut self, py: Python<'py>, id: String, ts: String) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
        let graph = self.run.graph().clone();
        let values = PyDict::new(py);
        for c in 0..self.run.channels().len() {
            if let Some(value) = self.channel_value(py, c)? {
                values.set_item(self.run.channels()[c].key(), value)?;
            }
        }
        let versions = self.run.versions().to_vec();
        let channel_versions = versions_dict(py, &self.run, &mut self.names, &versions)?;
        let seen = PyDict::new(py);
        for (node, node_seen) in seen_by_node(&self.run) {
            seen.set_item(node, versions_dict(py, &self.run, &mut self.names, node_seen)?)?;
        }
        let new_versions = self.new_versions_dict(py, &versions)?;
        self.saved = versions;
        let updated: Vec<&str> = self.updated.iter().map(|&c| graph.channel_name(c)).collect();
        let checkpoint = PyDict::new(py);
        checkpoint.set_item("v", CHECKPOINT_VERSION)?;
        checkpoint.set_item("id", id)?;
        checkpoint.set_item("ts", ts)?;
        checkpoint.set_item("channel_values", values)?;
        checkpoint.set_item("channel_versions", channel_versions)?;
        checkpoint.set_item("versions_seen", seen)?;
        checkpoint.set_item("updated_channels", updated)?;
        Ok((checkpoint, new_versions))
    }

    /// The run as a checkpoint for a first-party saver, in one crossing: the checkpoint with
    /// only the new versions' values, encoded here with `serializer` (a `SerializationError`
    /// names the channel), and the new_versions dict.
    fn encoded_checkpoint<'py>(
        &mut self,
        py: Python<'py>,
        id: String,
        ts: String,
        serializer: &Bound<'py, PySerializer>,
    ) -> PyResult<(EncodedCheckpoint, Bound<'py, PyDict>)> {
        let (checkpoint, new_versions) = self.encode(py, id, ts, serializer.get().registry())?;
        Ok((EncodedCheckpoint { checkpoint }, new_versions.into_pyobject(py)?))
    }

    /// Put the run at a saved checkpoint (a dict in the saver protocol's shape) at `step`.
    fn restore(&mut self, py: Python<'_>, checkpoint: Bound<'_, PyDict>, step: i64) -> PyResult<()> {
        let graph = self.run.graph().clone();
        let corrupt = |message: String| new_error(py, "CorruptCheckpointError", message);
        let get = |key: &str| -> PyResult<Bound<'_, PyDict>> {
            match checkpoint.get_item(key)? {
                Some(v) => v.cast_into::<PyDict>().map_err(|_| corrupt(format!("checkpoint['{key}'] is not a dict"))),
                None => Ok(PyDict::new(py)),
            }
        };
        let values = get("channel_values")?;
        let versions = get("channel_versions")?;
        let seen_by_node = get("versions_seen")?;
        let mut channels = Vec::new();
        let mut version_of = vec![0; self.run.channels().len()];
        for (name, version) in versions.iter() {
            let name = name.cast_into::<PyString>()?;
            let name = name.to_str()?;
            let Some(c) = graph.channel(name) else { continue }; // a channel the graph no longer has
            let text = version_text(&version)?;
            version_of[c] = self.names.parse(&text).ok_or_else(|| corrupt(format!("bad version {text:?} of channel '{name}'")))?;
        }
        // By channel, from the saved values (looking each channel up by name would make a str
        // of its name every time).
        let mut value_of: Vec<Option<Bound<'_, PyAny>>> = vec![None; self.run.channels().len()];
        for (name, value) in values.iter() {
            if let Some(c) = graph.channel(name.cast_into::<PyString>()?.to_str()?) {
                value_of[c] = Some(value);
            }
        }
        let mut released = Vec::new();
        for (c, channel) in self.run.channels().iter().enumerate() {
            let form = self.form(c);
            let mut saved = value_of[c].take();
            if channel.is_deferred() {
                if let Some(pair) = saved {
                    // A tuple as saved; a list after a saver that keeps tuples as lists.
                    let pair: Vec<Bound<'_, PyAny>> = pair.extract().unwrap_or_default();
                    let [content, finished] = <[Bound<'_, PyAny>; 2]>::try_from(pair)
                        .map_err(|_| corrupt(format!("channel '{}' should hold (content, released)", channel.key())))?;
                    let finished: bool = finished.extract()?;
                    released.push((c, finished));
                    saved = Some(content);
                }
            }
            let items = match saved {
                None => vec![],
                Some(value) => match form {
                    Form::Barrier | Form::Sends => {
                        let mut items = Vec::new();
                        let iterable = if form == Form::Barrier && !value.is_instance_of::<PySet>() && !value.is_instance_of::<PyFrozenSet>() && !value.is_instance_of::<PyList>() {
                            return Err(corrupt(format!("channel '{}' should hold a set of names", channel.key())));
                        } else {
                            value
                        };
                        for v in iterable.try_iter()? {
                            items.push(item_from_py(py, &v?, form, channel.key())?);
                        }
                        items
                    }
                    _ => vec![item_from_py(py, &value, form, channel.key())?],
                },
            };
            channels.push((c, version_of[c], items));
        }
        let mut seen = Vec::new();
        for (node, entries) in seen_by_node.iter() {
            let node: String = node.extract()?;
            let target = if node == INTERRUPT {
                None
            } else {
                match graph.node(&node) {
                    Some(n) => Some(n),
                    None => continue, // "__input__" and nodes since removed
                }
            };
            let entries = entries.cast_into::<PyDict>().map_err(|_| corrupt(format!("versions_seen['{node}'] is not a dict")))?;
            for (chan, version) in entries.iter() {
                let chan = chan.cast_into::<PyString>()?;
                let Some(c) = graph.channel(chan.to_str()?) else { continue };
                let text = version_text(&version)?;
                let v = self.names.parse(&text).ok_or_else(|| corrupt(format!("bad version {text:?} in versions_seen")))?;
                seen.push((target, c, v));
            }
        }
        self.run.restore(step, channels, seen).py(py)?;
        for (c, finished) in released {
            self.run.restore_finished(c, finished);
        }
        self.saved = self.run.versions().to_vec();
        self.updated.clear();
        if let Some(id) = checkpoint.get_item("id")? {
            self.run.set_seed(id.extract::<String>()?);
        }
        Ok(())
    }
}

/// A saved version's text, borrowed from a str (as every saver writes them) rather than copied;
/// another value (an int of a third-party saver) as `str()` writes it.
fn version_text<'a>(version: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, str>> {
    match version.cast_exact::<PyString>() {
        Ok(text) => Ok(Cow::Borrowed(text.to_str()?)),
        Err(_) => Ok(Cow::Owned(version.str()?.to_str()?.to_owned())),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<CoreRun>()
}
