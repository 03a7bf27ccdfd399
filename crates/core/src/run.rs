//! One run of a compiled graph as a step machine: the host asks for the next superstep's tasks,
//! runs them however it likes (threads, asyncio), reports each task's writes, then applies the
//! step. Keeping the loop's control with the host is what lets one core serve both sync and
//! async Python without a runtime of its own.

use std::sync::Arc;

use crate::channels::{Channel, ChannelRead, Item};
use crate::error::GraphError;
use crate::graph::{Graph, END};
use crate::ids::task_id;

pub type Version = u64;

/// Whether a task was scheduled by a channel update or by a `Send`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskKind {
    Pull,
    /// The index of the `Send` among those of the previous step.
    Push(usize),
}

/// A task of the current superstep.
#[derive(Clone, Debug)]
pub struct Task<V> {
    pub id: String,
    pub node: usize,
    pub name: Arc<str>,
    pub kind: TaskKind,
    /// The `Send` argument of a push task.
    pub arg: Option<V>,
    /// Channels that scheduled it (empty for push tasks).
    pub triggers: Vec<usize>,
    writes: Vec<(usize, Item<V>)>,
    finished: bool,
}

impl<V> Task<V> {
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The writes recorded so far, as (channel index, item).
    pub fn writes(&self) -> &[(usize, Item<V>)] {
        &self.writes
    }

    /// Sorts pull tasks before push tasks, pulls by node name and pushes by send order: the
    /// order LangGraph applies writes in, which makes reducer results independent of timing.
    fn order_key(&self) -> (u8, &str, usize) {
        match self.kind {
            TaskKind::Pull => (0, &self.name, 0),
            TaskKind::Push(i) => (1, "", i),
        }
    }
}

/// The result of applying a step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepOutcome {
    /// Channels whose content changed and that can be read.
    pub updated: Vec<usize>,
    /// Whether any state key changed (what makes `stream_mode="values"` emit).
    pub state_changed: bool,
}

/// The state of one run: channel contents, versions, what each node has seen, the step.
#[derive(Clone)]
pub struct Run<V> {
    graph: Arc<Graph<V>>,
    channels: Vec<Channel<V>>,
    versions: Vec<Version>,
    /// versions_seen[node][channel]
    seen: Vec<Vec<Version>>,
    /// Channel versions when the run was last interrupted (LangGraph's `__interrupt__` entry
    /// of versions_seen): an interrupt fires again only after something changed.
    interrupt_seen: Vec<Version>,
    step: i64,
    stop: i64,
    recursion_limit: u64,
    seed: String,
    tasks: Vec<Task<V>>,
    /// Whether the run continues a saved checkpoint (its input then takes the next step).
    restored: bool,
}

impl<V: Clone> Run<V> {
    pub fn new(graph: Arc<Graph<V>>, recursion_limit: u64) -> Self {
        let channels = graph.channels.clone();
        let n = channels.len();
        let seen = vec![vec![0; n]; graph.nodes.len()];
        Run {
            graph,
            channels,
            versions: vec![0; n],
            seen,
            interrupt_seen: vec![0; n],
            step: -1,
            stop: recursion_limit as i64,
            recursion_limit,
            seed: String::new(),
            tasks: Vec::new(),
            restored: false,
        }
    }

    pub fn graph(&self) -> &Arc<Graph<V>> {
        &self.graph
    }

    /// The step of the last completed superstep (-1 after the input).
    pub fn step(&self) -> i64 {
        self.step
    }

    /// The last step the run may take before the recursion limit stops it.
    pub fn stop(&self) -> i64 {
        self.stop
    }

    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    pub fn versions_seen(&self, node: usize) -> &[Version] {
        &self.seen[node]
    }

    pub fn channels(&self) -> &[Channel<V>] {
        &self.channels
    }

    /// Seeds task ids, so that the same checkpoint yields the same ids on every replay.
    pub fn set_seed(&mut self, seed: impl Into<String>) {
        self.seed = seed.into();
    }

    pub fn interrupt_seen(&self) -> &[Version] {
        &self.interrupt_seen
    }

    /// Whether any channel changed since the run was last interrupted.
    pub fn updated_since_interrupt(&self) -> bool {
        self.versions.iter().zip(&self.interrupt_seen).any(|(v, seen)| v > seen)
    }

    /// Remember the channel versions at an interrupt.
    pub fn mark_interrupt(&mut self) {
        self.interrupt_seen.clone_from(&self.versions);
    }

    /// Restore a run's position: the step it is at, the versions and contents of its
    /// channels, what each node has seen (node `None` is the interrupt marker). The recursion
    /// budget starts again from here.
    pub fn restore(
        &mut self,
        step: i64,
        channels: Vec<(usize, Version, Vec<Item<V>>)>,
        seen: Vec<(Option<usize>, usize, Version)>,
    ) -> Result<(), GraphError> {
        for (c, version, items) in channels {
            self.channels[c].restore(items)?;
            self.versions[c] = version;
        }
        for (node, c, version) in seen {
            match node {
                Some(node) => self.seen[node][c] = version,
                None => self.interrupt_seen[c] = version,
            }
        }
        self.step = step;
        // A resume runs its first step at `step + 1` and, as in LangGraph, may take
        // `recursion_limit` more after it (new input recomputes this: see `input`).
        self.stop = step + 2 + self.recursion_limit as i64;
        self.tasks.clear();
        self.restored = true;
        Ok(())
    }

    fn next_version(&self) -> Version {
        self.versions.iter().copied().max().unwrap_or(0) + 1
    }

    /// Put back whether a deferred node's trigger was released, as a checkpoint saved it.
    pub fn restore_finished(&mut self, channel: usize, finished: bool) {
        self.channels[channel].restore_finished(finished);
    }

    /// Write the run's input to `__start__`. The input step is -1 on a fresh run and the step
    /// after the last checkpoint on a thread that already has history.
    pub fn input(&mut self, value: V) -> Result<(), GraphError> {
        if self.restored {
            // New input supersedes whatever was still due at the saved checkpoint: those
            // tasks are marked seen and their triggers consumed, as if they ran with no writes.
            let step = self.step;
            if self.tick()? {
                self.apply()?;
            }
            self.step = step;
        }
        let c = self.graph.start_channel;
        let version = self.next_version();
        if self.channels[c].update(vec![Item::Value(value)])? {
            self.versions[c] = version;
        }
        if self.restored {
            self.step += 1;
        }
        self.stop = self.step + 1 + self.recursion_limit as i64;
        Ok(())
    }

    /// Apply writes that come from no node, at once: a `Command` given as a run's input (its
    /// `update` to state keys, its `goto` nodes and `Send`s), as LangGraph applies its null
    /// task's writes. Changed channels get a new version; the step does not move, and the
    /// tasks due at this checkpoint stay due (a goto adds its node to them).
    pub fn apply_command(&mut self, update: Vec<(&str, V)>, gotos: &[&str], sends: Vec<(&str, V)>) -> Result<(), GraphError> {
        let graph = self.graph.clone();
        let mut grouped: Vec<Vec<Item<V>>> = vec![Vec::new(); self.channels.len()];
        for (key, value) in update {
            match graph.channel(key) {
                Some(c) if graph.state_channels.contains(&c) => grouped[c].push(Item::Value(value)),
                _ => {}
            }
        }
        let node_of = |name: &str, what: &str| match graph.node(name) {
            Some(n) if n > 0 => Ok(n),
            _ => Err(GraphError::InvalidGraph(format!("Command input {what} unknown node '{name}'"))),
        };
        for &node in gotos {
            if node == END {
                continue;
            }
            let n = node_of(node, "goes to")?;
            grouped[graph.nodes[n].branch_channel].push(Item::Token(Arc::from(crate::graph::START)));
        }
        for (node, arg) in sends {
            let n = node_of(node, "sends to")?;
            grouped[graph.tasks_channel].push(Item::Send(graph.nodes[n].name.clone(), arg));
        }
        let version = self.next_version();
        for (c, items) in grouped.into_iter().enumerate() {
            if !items.is_empty() && self.channels[c].update(items)? {
                self.versions[c] = version;
            }
        }
        Ok(())
    }

    /// Move the run to `step` without running anything, as a fork of a checkpoint does.
    pub fn set_step(&mut self, step: i64) {
        self.step = step;
        self.stop = step + 1 + self.recursion_limit as i64;
    }

    /// Plan the next superstep. Returns false when no task is due (the run is over).
    pub fn tick(&mut self) -> Result<bool, GraphError> {
        let step = self.step + 1;
        if step > self.stop {
            return Err(GraphError::Recursion { limit: self.recursion_limit });
        }
        self.tasks.clear();
        let graph = self.graph.clone();
        if let Some(ChannelRead::Many(items)) = self.channels[graph.tasks_channel].get() {
            for (i, item) in items.iter().enumerate() {
                let Item::Send(node, arg) = item else { continue };
                let Some(n) = graph.node(node) else {
                    return Err(GraphError::InvalidUpdate(format!("Send to unknown node '{node}'")));
                };
                self.tasks.push(Task {
                    id: task_id(&self.seed, step, &format!("push:{i}:{node}")),
                    node: n,
                    name: node.clone(),
                    kind: TaskKind::Push(i),
                    arg: Some(arg.clone()),
                    triggers: vec![],
                    writes: vec![],
                    finished: false,
                });
            }
        }
        for (n, node) in graph.nodes.iter().enumerate() {
            let due = node.triggers.iter().any(|&c| {
                self.channels[c].is_available() && self.versions[c] > self.seen[n][c]
            });
            if due {
                self.tasks.push(Task {
                    id: task_id(&self.seed, step, &format!("pull:{}", node.name)),
                    node: n,
                    name: node.name.clone(),
                    kind: TaskKind::Pull,
                    arg: None,
                    triggers: node.triggers.clone(),
                    writes: vec![],
                    finished: false,
                });
            }
        }
        Ok(!self.tasks.is_empty())
    }

    pub fn tasks(&self) -> &[Task<V>] {
        &self.tasks
    }

    /// Add a task for `node` outside of any tick, as `update_state(..., as_node=node)` does:
    /// its writes are applied as if the node had produced them, its edges included.
    pub fn add_task(&mut self, node: &str) -> Result<usize, GraphError> {
        let n = self.graph.node(node).ok_or_else(|| {
            GraphError::InvalidGraph(format!("Cannot update state as unknown node '{node}'"))
        })?;
        let step = self.step + 1;
        self.tasks.push(Task {
            id: task_id(&self.seed, step, &format!("update:{node}")),
            node: n,
            name: self.graph.nodes[n].name.clone(),
            kind: TaskKind::Pull,
            arg: None,
            triggers: vec![],
            writes: vec![],
            finished: false,
        });
        Ok(self.tasks.len() - 1)
    }

    /// Mark a task done with writes saved by an earlier attempt of the same step (its edge
    /// writes included), so it is not run again.
    pub fn restore_task(&mut self, task: usize, writes: Vec<(usize, Item<V>)>) -> Result<(), GraphError> {
        let t = self.task_mut(task)?;
        t.writes = writes;
        t.finished = true;
        Ok(())
    }

    /// Keep only the task `task_id` of the current step (the rest are dropped unapplied).
    pub fn keep_only_task(&mut self, task_id: &str) -> Result<(), GraphError> {
        if !self.tasks.iter().any(|t| t.id == task_id) {
            return Err(GraphError::State(format!("No task {task_id} in this step")));
        }
        self.tasks.retain(|t| t.id == task_id);
        Ok(())
    }

    /// Drop the tasks of the current step without applying anything (the step is abandoned,
    /// e.g. interrupted before it ran).
    pub fn clear_tasks(&mut self) {
        self.tasks.clear();
    }

    /// The node that wrote last, as judged from what nodes have seen: what `update_state`
    /// acts as when not told. `None` when no node has run or two are tied.
    pub fn last_node(&self) -> Result<Option<&str>, GraphError> {
        let mut best: Option<(Version, usize)> = None;
        let mut tied = false;
        for (n, seen) in self.seen.iter().enumerate().skip(1) {
            let Some(&max) = seen.iter().max() else { continue };
            if max == 0 {
                continue;
            }
            match best {
                Some((b, _)) if max < b => {}
                Some((b, _)) if max == b => tied = true,
                _ => {
                    best = Some((max, n));
                    tied = false;
                }
            }
        }
        match best {
            None => Ok(None),
            Some(_) if tied => Err(GraphError::InvalidUpdate(
                "Ambiguous update, specify as_node".into(),
            )),
            Some((_, n)) => Ok(Some(&self.graph.nodes[n].name)),
        }
    }

    fn task_mut(&mut self, task: usize) -> Result<&mut Task<V>, GraphError> {
        let n = self.tasks.len();
        match self.tasks.get_mut(task) {
            Some(t) if t.finished => Err(GraphError::State(format!(
                "Task '{}' of this step has already finished",
                t.name
            ))),
            Some(t) => Ok(t),
            None => Err(GraphError::State(format!("No task {task} in this step of {n} tasks"))),
        }
    }

    /// The input of a pull task: its node's channels with their current values.
    pub fn read(&self, task: usize) -> impl Iterator<Item = (&str, Option<&V>)> {
        let node = &self.graph.nodes[self.tasks[task].node];
        node.reads.iter().map(|&c| (self.channels[c].key(), self.channels[c].value()))
    }

    /// The current values of the state keys.
    pub fn state(&self) -> impl Iterator<Item = (&str, Option<&V>)> {
        self.graph
            .state_channels
            .iter()
            .map(|&c| (self.channels[c].key(), self.channels[c].value()))
    }

    /// Record a task's write to a state key.
    pub fn write(&mut self, task: usize, key: &str, value: V) -> Result<(), GraphError> {
        let graph = self.graph.clone();
        let c = match graph.channel(key) {
            Some(c) if graph.state_channels.contains(&c) => c,
            _ => {
                let name = self.tasks.get(task).map(|t| t.name.clone()).unwrap_or_default();
                return Err(GraphError::InvalidUpdate(format!(
                    "Node '{name}' wrote to unknown state key '{key}'"
                )));
            }
        };
        self.task_mut(task)?.writes.push((c, Item::Value(value)));
        Ok(())
    }

    /// Route a task to a node for the next step (a conditional edge or `Command(goto=...)`).
    pub fn goto(&mut self, task: usize, node: &str) -> Result<(), GraphError> {
        if node == END {
            return Ok(());
        }
        let graph = self.graph.clone();
        let target = match graph.node(node) {
            Some(n) if n > 0 => n,
            _ => {
                let name = self.tasks.get(task).map(|t| t.name.clone()).unwrap_or_default();
                return Err(GraphError::InvalidGraph(format!(
                    "Node '{name}' routed to unknown node '{node}'"
                )));
            }
        };
        let t = self.task_mut(task)?;
        let token = t.name.clone();
        t.writes.push((graph.nodes[target].branch_channel, Item::Token(token)));
        Ok(())
    }

    /// Schedule `node` to run once with `arg` as its input in the next step.
    pub fn send(&mut self, task: usize, node: &str, arg: V) -> Result<(), GraphError> {
        let graph = self.graph.clone();
        let Some(n) = graph.node(node).filter(|&n| n > 0) else {
            let name = self.tasks.get(task).map(|t| t.name.clone()).unwrap_or_default();
            return Err(GraphError::InvalidGraph(format!(
                "Node '{name}' sent to unknown node '{node}'"
            )));
        };
        let name = graph.nodes[n].name.clone();
        self.task_mut(task)?.writes.push((graph.tasks_channel, Item::Send(name, arg)));
        Ok(())
    }

    /// Mark a task done, adding the writes of its static edges.
    pub fn finish(&mut self, task: usize) -> Result<(), GraphError> {
        let graph = self.graph.clone();
        let t = self.task_mut(task)?;
        let after = &graph.nodes[t.node].after;
        t.writes.extend(after.iter().map(|(c, token)| (*c, Item::Token(token.clone()))));
        t.finished = true;
        Ok(())
    }

    /// The state as the task would see it with its own writes applied: what a conditional
    /// edge reads after its node ran. Other tasks' writes are not included.
    pub fn preview(&self, task: usize) -> Result<Vec<(&str, Option<V>)>, GraphError> {
        let t = &self.tasks[task];
        let mut out = Vec::with_capacity(self.graph.state_channels.len());
        for &c in &self.graph.state_channels {
            let writes: Vec<Item<V>> = t
                .writes
                .iter()
                .filter(|(wc, _)| *wc == c)
                .map(|(_, item)| item.clone())
                .collect();
            let channel = &self.channels[c];
            if writes.is_empty() {
                out.push((channel.key(), channel.value().cloned()));
            } else {
                let mut fresh = channel.clone();
                fresh.update(writes)?;
                out.push((channel.key(), fresh.value().cloned()));
            }
        }
        Ok(out)
    }

    /// Apply the writes of every finished task of the step, in LangGraph's order. Tasks that
    /// did not finish (failed or interrupted) contribute nothing.
    pub fn apply(&mut self) -> Result<StepOutcome, GraphError> {
        let mut tasks = std::mem::take(&mut self.tasks);
        tasks.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        // Every task of a step (push tasks included) moves the clock on for all channels.
        let bump_step = !tasks.is_empty();

        for t in &tasks {
            for &c in &t.triggers {
                self.seen[t.node][c] = self.versions[c];
            }
        }
        let version = self.next_version();

        let mut consumed: Vec<usize> = tasks.iter().flat_map(|t| t.triggers.iter().copied()).collect();
        consumed.sort_unstable();
        consumed.dedup();
        for c in consumed {
            if self.channels[c].consume() {
                self.versions[c] = version;
            }
        }

        let mut grouped: Vec<Vec<Item<V>>> = vec![Vec::new(); self.channels.len()];
        for t in tasks.into_iter().filter(|t| t.finished) {
            for (c, item) in t.writes {
                grouped[c].push(item);
            }
        }
        let mut outcome = StepOutcome::default();
        let mut touched = vec![false; self.channels.len()];
        for (c, items) in grouped.into_iter().enumerate() {
            if items.is_empty() {
                continue;
            }
            touched[c] = true;
            if self.channels[c].update(items)? {
                self.versions[c] = version;
                if self.channels[c].is_available() {
                    outcome.updated.push(c);
                }
            }
        }
        if bump_step {
            for (c, &was_touched) in touched.iter().enumerate() {
                if !was_touched && self.channels[c].is_available() && self.channels[c].update(vec![])? {
                    self.versions[c] = version;
                    if self.channels[c].is_available() {
                        outcome.updated.push(c);
                    }
                }
            }
        }
        // Nothing would run next: deferred nodes' triggers are released (LangGraph's finish).
        if bump_step && !outcome.updated.iter().any(|c| self.graph.is_trigger(*c)) {
            for c in 0..self.channels.len() {
                if self.channels[c].finish() {
                    self.versions[c] = version;
                    outcome.updated.push(c);
                }
            }
        }
        let state = &self.graph.state_channels;
        outcome.state_changed = outcome.updated.iter().any(|c| state.contains(c));
        self.step += 1;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::ChannelKind;
    use crate::graph::{GraphSpec, NodeSpec, START};

    fn chain() -> Arc<Graph<i64>> {
        let spec = GraphSpec {
            state: vec![("x".into(), ChannelKind::LastValue)],
            nodes: ["a", "b"].iter().map(|n| NodeSpec { name: n.to_string(), reads: None, defer: false }).collect(),
            edges: vec![(START.into(), "a".into()), ("a".into(), "b".into())],
            ..GraphSpec::default()
        };
        Arc::new(Graph::compile(spec).unwrap())
    }

    /// Run one step, each task writing `x = step * 10 + task index`.
    fn step(run: &mut Run<i64>) -> Vec<String> {
        assert!(run.tick().unwrap());
        let names: Vec<String> = run.tasks().iter().map(|t| t.name.to_string()).collect();
        for t in 0..names.len() {
            run.write(t, "x", run.step() * 10 + t as i64).unwrap();
            run.finish(t).unwrap();
        }
        run.apply().unwrap();
        names
    }

    #[test]
    fn last_node_is_the_latest_to_run() {
        let mut run = Run::new(chain(), 25);
        assert_eq!(run.last_node().unwrap(), None);
        run.input(1).unwrap();
        step(&mut run);
        assert_eq!(run.last_node().unwrap(), None, "__start__ does not count");
        assert_eq!(step(&mut run), ["a"]);
        assert_eq!(run.last_node().unwrap(), Some("a"));
        step(&mut run);
        assert_eq!(run.last_node().unwrap(), Some("b"));
    }

    #[test]
    fn external_task_applies_as_the_node_with_its_edges() {
        let mut run = Run::new(chain(), 25);
        run.input(1).unwrap();
        step(&mut run);
        step(&mut run); // a ran
        run.tick().unwrap();
        assert_eq!(run.tasks()[0].name.as_ref(), "b");
        run.clear_tasks();
        let t = run.add_task("a").unwrap();
        run.write(t, "x", 100).unwrap();
        run.finish(t).unwrap();
        run.apply().unwrap();
        assert_eq!(run.state().next().unwrap().1, Some(&100));
        assert!(run.tick().unwrap());
        assert_eq!(run.tasks()[0].name.as_ref(), "b", "a's edge to b was written again");
        assert!(run.add_task("ghost").is_err());
    }

    #[test]
    fn restored_task_is_not_rerun_and_its_writes_apply() {
        let mut run = Run::new(chain(), 25);
        run.input(1).unwrap();
        step(&mut run);
        run.tick().unwrap();
        let x = run.graph().channel("x").unwrap();
        let to_b = run.graph().channel("branch:to:b").unwrap();
        run.restore_task(0, vec![(x, Item::Value(42)), (to_b, Item::Token("a".into()))]).unwrap();
        assert!(run.tasks()[0].is_finished());
        run.apply().unwrap();
        assert_eq!(run.state().next().unwrap().1, Some(&42));
        assert_eq!(step(&mut run), ["b"]);
    }

    #[test]
    fn command_writes_apply_at_once_and_goto_schedules() {
        let mut run = Run::new(chain(), 25);
        run.input(1).unwrap();
        step(&mut run);
        step(&mut run); // a ran, b is due
        let step_before = run.step();
        run.apply_command(vec![("x", 7), ("not_a_key", 8)], &["a", END], vec![]).unwrap();
        assert_eq!(run.step(), step_before, "the step does not move");
        assert_eq!(run.state().next().unwrap().1, Some(&7));
        assert!(run.tick().unwrap());
        let mut names: Vec<&str> = run.tasks().iter().map(|t| t.name.as_ref()).collect();
        names.sort_unstable();
        assert_eq!(names, ["a", "b"], "b stays due and the goto adds a");
        assert!(run.apply_command(vec![], &["ghost"], vec![]).is_err());
    }

    #[test]
    fn interrupt_marker_tracks_changes() {
        let mut run = Run::new(chain(), 25);
        run.input(1).unwrap();
        assert!(run.updated_since_interrupt());
        run.mark_interrupt();
        assert!(!run.updated_since_interrupt());
        step(&mut run);
        assert!(run.updated_since_interrupt());
    }

    #[test]
    fn restore_puts_back_contents_versions_and_seen() {
        let mut run = Run::new(chain(), 25);
        run.input(1).unwrap();
        step(&mut run);
        step(&mut run);
        let channels: Vec<(usize, Version, Vec<Item<i64>>)> = run
            .channels()
            .iter()
            .enumerate()
            .map(|(c, ch)| (c, run.versions()[c], ch.items()))
            .collect();
        let mut seen = vec![];
        for n in 0..run.graph().nodes().len() {
            for (c, v) in run.versions_seen(n).iter().enumerate() {
                if *v > 0 {
                    seen.push((Some(n), c, *v));
                }
            }
        }
        let mut copy = Run::new(run.graph().clone(), 25);
        copy.restore(run.step(), channels, seen).unwrap();
        let mut again = copy.clone();
        assert_eq!(copy.versions(), run.versions());
        assert_eq!(copy.step(), run.step());
        assert_eq!(step(&mut copy), step(&mut run));
        assert_eq!(copy.state().next().unwrap().1, run.state().next().unwrap().1);
        again.input(5).unwrap();
        assert_eq!(again.step(), 2, "input on a restored run takes the next step");
    }
}
