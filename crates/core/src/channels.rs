//! Channels: the named slots a graph's state and control flow live in, and how each kind
//! folds the writes of one superstep into its value.
//!
//! The semantics follow LangGraph's channel classes so that a compiled graph behaves the same:
//! a last-value channel takes one write per step, a reducer channel folds every write through a
//! host function, an ephemeral channel forgets its value one step later, a topic collects a
//! step's writes (or all of them), and a named barrier opens once every named writer has written.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use crate::error::{GraphError, HostError};

/// A reducer supplied by the host: folds one write into the current value.
pub type Reducer<V> = Arc<dyn Fn(&V, &V) -> Result<V, HostError> + Send + Sync>;

/// What travels through a channel. Host values are opaque to the core; the control-flow
/// channels carry names the core itself produces.
#[derive(Clone, Debug, PartialEq)]
pub enum Item<V> {
    /// A value of the host (a Python object in the binding).
    Value(V),
    /// A control token: a branch trigger or the name of a barrier's writer.
    Token(Arc<str>),
    /// A `Send`: run `node` once with `arg` as its input in the next step.
    Send(Arc<str>, V),
}

/// The kind of a channel, as declared when a graph is built.
#[derive(Clone)]
pub enum ChannelKind<V> {
    /// Holds the last value written; more than one write in a step is an error.
    LastValue,
    /// Folds every write of a step through `reducer`, in task order.
    BinaryOperator { reducer: Reducer<V>, initial: Option<V> },
    /// Holds a value for one step only; `guard` makes several writes in a step an error.
    Ephemeral { guard: bool },
    /// Collects writes; without `accumulate` only the last step's writes are kept.
    Topic { accumulate: bool },
    /// Available once each of `names` has written since the last time it was consumed.
    NamedBarrier { names: Arc<BTreeSet<Arc<str>>> },
}

impl<V> fmt::Debug for ChannelKind<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelKind::LastValue => f.write_str("LastValue"),
            ChannelKind::BinaryOperator { .. } => f.write_str("BinaryOperator"),
            ChannelKind::Ephemeral { guard } => write!(f, "Ephemeral(guard={guard})"),
            ChannelKind::Topic { accumulate } => write!(f, "Topic(accumulate={accumulate})"),
            ChannelKind::NamedBarrier { names } => write!(f, "NamedBarrier({names:?})"),
        }
    }
}

/// A read of a channel's current content.
#[derive(Debug, PartialEq)]
pub enum ChannelRead<'a, V> {
    One(&'a Item<V>),
    Many(&'a [Item<V>]),
    /// A barrier's writers seen so far.
    Seen(&'a BTreeSet<Arc<str>>),
}

/// A channel with its current content.
#[derive(Clone)]
pub struct Channel<V> {
    pub(crate) key: Arc<str>,
    pub(crate) kind: ChannelKind<V>,
    value: Option<Item<V>>,
    values: Vec<Item<V>>,
    seen: BTreeSet<Arc<str>>,
    /// A trigger of a deferred node (LangGraph's `...AfterFinish` channels): its content is
    /// kept across steps and becomes readable only once the run has nothing else to do.
    after_finish: bool,
    finished: bool,
}

impl<V: Clone> Channel<V> {
    pub fn new(key: impl Into<Arc<str>>, kind: ChannelKind<V>) -> Self {
        let value = match &kind {
            ChannelKind::BinaryOperator { initial, .. } => initial.clone().map(Item::Value),
            _ => None,
        };
        Channel {
            key: key.into(),
            kind,
            value,
            values: Vec::new(),
            seen: BTreeSet::new(),
            after_finish: false,
            finished: false,
        }
    }

    /// A trigger of a deferred node: see [`Channel::finish`].
    pub fn deferred(key: impl Into<Arc<str>>, kind: ChannelKind<V>) -> Self {
        Channel { after_finish: true, ..Channel::new(key, kind) }
    }

    pub fn is_deferred(&self) -> bool {
        self.after_finish
    }

    /// Whether a deferred trigger has been released by [`Channel::finish`] (saved with it).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether the channel holds anything, readable or not yet (a deferred trigger's writes).
    pub fn has_content(&self) -> bool {
        self.value.is_some() || !self.values.is_empty() || !self.seen.is_empty()
    }

    /// Put back a deferred trigger's released state from a checkpoint.
    pub fn restore_finished(&mut self, finished: bool) {
        self.finished = finished && self.after_finish;
    }

    /// The run has nothing left to do: a deferred trigger holding a complete write releases
    /// it (its node then runs). Returns whether anything changed.
    pub fn finish(&mut self) -> bool {
        if self.after_finish && !self.finished && self.content_complete() {
            self.finished = true;
            return true;
        }
        false
    }

    fn content_complete(&self) -> bool {
        match &self.kind {
            ChannelKind::Topic { .. } => !self.values.is_empty(),
            ChannelKind::NamedBarrier { names } => self.seen.len() == names.len(),
            _ => self.value.is_some(),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn kind(&self) -> &ChannelKind<V> {
        &self.kind
    }

    /// Whether a read would find something (the channel is not empty).
    pub fn is_available(&self) -> bool {
        self.content_complete() && (!self.after_finish || self.finished)
    }

    pub fn get(&self) -> Option<ChannelRead<'_, V>> {
        match &self.kind {
            ChannelKind::Topic { .. } => {
                (!self.values.is_empty()).then_some(ChannelRead::Many(&self.values))
            }
            ChannelKind::NamedBarrier { .. } => {
                self.is_available().then_some(ChannelRead::Seen(&self.seen))
            }
            _ => self.value.as_ref().map(ChannelRead::One),
        }
    }

    /// The host value held by a single-valued channel, if any.
    pub fn value(&self) -> Option<&V> {
        match &self.value {
            Some(Item::Value(v)) => Some(v),
            _ => None,
        }
    }

    /// Replace the content outright, as when a channel is restored from a checkpoint.
    pub fn restore(&mut self, items: Vec<Item<V>>) -> Result<(), GraphError> {
        match &self.kind {
            ChannelKind::Topic { .. } => self.values = items,
            ChannelKind::NamedBarrier { .. } => {
                self.seen.clear();
                for item in items {
                    self.seen.insert(self.barrier_name(item)?);
                }
            }
            ChannelKind::BinaryOperator { initial, .. } if items.is_empty() => {
                // A reducer never written keeps its empty value (it is not saved).
                self.value = initial.clone().map(Item::Value);
            }
            _ => self.value = items.into_iter().last(),
        }
        Ok(())
    }

    /// The content as a list of items, the inverse of [`Channel::restore`].
    pub fn items(&self) -> Vec<Item<V>> {
        match &self.kind {
            ChannelKind::Topic { .. } => self.values.clone(),
            ChannelKind::NamedBarrier { .. } => {
                self.seen.iter().map(|n| Item::Token(n.clone())).collect()
            }
            _ => self.value.iter().cloned().collect(),
        }
    }

    fn barrier_name(&self, item: Item<V>) -> Result<Arc<str>, GraphError> {
        let ChannelKind::NamedBarrier { names } = &self.kind else {
            unreachable!("barrier_name on a channel that is not a barrier")
        };
        match item {
            Item::Token(name) if names.contains(&name) => Ok(name),
            Item::Token(name) => Err(GraphError::InvalidUpdate(format!(
                "At key '{}': barrier does not wait for '{name}'",
                self.key
            ))),
            _ => Err(GraphError::InvalidUpdate(format!(
                "At key '{}': a barrier only takes the names of its writers",
                self.key
            ))),
        }
    }

    /// Fold one step's writes into the channel. Returns whether its content changed, which is
    /// what bumps its version. An empty `writes` tells the channel a step passed without it.
    pub fn update(&mut self, writes: Vec<Item<V>>) -> Result<bool, GraphError> {
        if self.after_finish && matches!(self.kind, ChannelKind::Ephemeral { .. }) {
            // A deferred node's trigger keeps its write over quiet steps until released.
            if writes.is_empty() {
                return Ok(false);
            }
            self.value = writes.into_iter().last();
            self.finished = false;
            return Ok(true);
        }
        match &self.kind {
            ChannelKind::LastValue => {
                if writes.is_empty() {
                    return Ok(false);
                }
                if writes.len() != 1 {
                    return Err(GraphError::InvalidUpdate(format!(
                        "At key '{}': Can receive only one value per step. Use an Annotated key to handle multiple values.",
                        self.key
                    )));
                }
                self.value = writes.into_iter().next();
                Ok(true)
            }
            ChannelKind::BinaryOperator { reducer, .. } => {
                if writes.is_empty() {
                    return Ok(false);
                }
                let reducer = reducer.clone();
                let mut writes = writes.into_iter();
                let mut current = match self.value.take() {
                    Some(Item::Value(v)) => v,
                    _ => self.expect_value(writes.next().expect("writes is not empty"))?,
                };
                for write in writes {
                    let update = self.expect_value(write)?;
                    current = reducer(&current, &update).map_err(GraphError::Host)?;
                }
                self.value = Some(Item::Value(current));
                Ok(true)
            }
            ChannelKind::Ephemeral { guard } => {
                if writes.is_empty() {
                    return Ok(self.value.take().is_some());
                }
                if writes.len() != 1 && *guard {
                    return Err(GraphError::InvalidUpdate(format!(
                        "At key '{}': Ephemeral channel can receive only one value per step.",
                        self.key
                    )));
                }
                self.value = writes.into_iter().last();
                Ok(true)
            }
            ChannelKind::Topic { accumulate } => {
                let mut changed = false;
                if !accumulate {
                    changed = !self.values.is_empty();
                    self.values.clear();
                }
                if !writes.is_empty() {
                    changed = true;
                    self.values.extend(writes);
                }
                Ok(changed)
            }
            ChannelKind::NamedBarrier { .. } => {
                let mut changed = false;
                for write in writes {
                    let name = self.barrier_name(write)?;
                    changed |= self.seen.insert(name);
                }
                Ok(changed)
            }
        }
    }

    fn expect_value(&self, item: Item<V>) -> Result<V, GraphError> {
        match item {
            Item::Value(v) => Ok(v),
            _ => Err(GraphError::InvalidUpdate(format!(
                "At key '{}': a reducer channel only takes values",
                self.key
            ))),
        }
    }

    /// Called for a trigger once a task it started has run. A full barrier resets; other
    /// channels keep their content. Returns whether the content changed.
    pub fn consume(&mut self) -> bool {
        if self.after_finish {
            if !self.is_available() {
                return false;
            }
            self.value = None;
            self.seen.clear();
            self.finished = false;
            return true;
        }
        match &self.kind {
            ChannelKind::NamedBarrier { names } if self.seen.len() == names.len() => {
                self.seen.clear();
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add() -> Reducer<i64> {
        Arc::new(|a: &i64, b: &i64| Ok(a + b))
    }

    fn vals(xs: &[i64]) -> Vec<Item<i64>> {
        xs.iter().map(|x| Item::Value(*x)).collect()
    }

    #[test]
    fn last_value_takes_one_write_a_step() {
        let mut c = Channel::new("x", ChannelKind::LastValue);
        assert!(!c.is_available());
        assert!(c.update(vals(&[1])).unwrap());
        assert_eq!(c.value(), Some(&1));
        assert!(!c.update(vec![]).unwrap(), "a quiet step leaves a last value alone");
        assert_eq!(c.value(), Some(&1));
        let err = c.update(vals(&[2, 3])).unwrap_err();
        assert!(matches!(err, GraphError::InvalidUpdate(ref m) if m.contains("'x'")), "{err}");
        assert_eq!(c.value(), Some(&1), "a refused update changes nothing");
    }

    #[test]
    fn deferred_trigger_waits_for_finish_and_is_consumed_once() {
        let mut c: Channel<i64> = Channel::deferred("branch:to:d", ChannelKind::Ephemeral { guard: false });
        assert!(c.update(vec![Item::Token("a".into())]).unwrap());
        assert!(!c.is_available() && c.has_content(), "written, not released");
        assert!(!c.update(vec![]).unwrap(), "a quiet step keeps the write");
        assert!(!c.consume());
        assert!(c.finish() && c.is_available() && c.is_finished());
        assert!(!c.finish(), "released once");
        assert!(c.consume());
        assert!(!c.is_available() && !c.has_content());
        let names: BTreeSet<Arc<str>> = ["a", "b"].iter().map(|n| Arc::from(*n)).collect();
        let mut join: Channel<i64> = Channel::deferred("join:a+b:d", ChannelKind::NamedBarrier { names: Arc::new(names) });
        join.update(vec![Item::Token("a".into())]).unwrap();
        assert!(!join.finish(), "an incomplete barrier is not released");
        join.update(vec![Item::Token("b".into())]).unwrap();
        assert!(!join.is_available());
        assert!(join.finish() && join.is_available());
        assert!(join.consume() && !join.has_content());
    }

    #[test]
    fn reducer_folds_in_order_from_initial() {
        let mut c = Channel::new("n", ChannelKind::BinaryOperator { reducer: add(), initial: Some(10) });
        assert!(c.is_available());
        assert!(c.update(vals(&[1, 2, 3])).unwrap());
        assert_eq!(c.value(), Some(&16));
        let cat: Reducer<String> = Arc::new(|a: &String, b: &String| Ok(format!("{a}{b}")));
        let mut s = Channel::new("s", ChannelKind::BinaryOperator { reducer: cat, initial: None });
        s.update(vec![Item::Value("a".to_string()), Item::Value("b".to_string())]).unwrap();
        assert_eq!(s.value().map(String::as_str), Some("ab"), "first write seeds an empty reducer");
    }

    #[test]
    fn reducer_error_reaches_the_caller() {
        let failing: Reducer<i64> = Arc::new(|_: &i64, _: &i64| Err(HostError::msg("boom")));
        let mut c = Channel::new("n", ChannelKind::BinaryOperator { reducer: failing, initial: Some(0) });
        let err = c.update(vals(&[1])).unwrap_err();
        assert!(matches!(err, GraphError::Host(ref h) if h.to_string() == "boom"));
    }

    #[test]
    fn ephemeral_forgets_after_a_quiet_step() {
        let mut c = Channel::new("e", ChannelKind::Ephemeral { guard: false });
        assert!(c.update(vals(&[1, 2])).unwrap());
        assert_eq!(c.value(), Some(&2));
        assert!(c.update(vec![]).unwrap());
        assert!(!c.is_available());
        assert!(!c.update(vec![]).unwrap());
        let mut guarded = Channel::new("g", ChannelKind::Ephemeral { guard: true });
        assert!(guarded.update(vals(&[1, 2])).is_err());
    }

    #[test]
    fn topic_keeps_one_step_or_accumulates() {
        let mut t = Channel::new("t", ChannelKind::Topic { accumulate: false });
        t.update(vals(&[1, 2])).unwrap();
        assert_eq!(t.items(), vals(&[1, 2]));
        t.update(vals(&[3])).unwrap();
        assert_eq!(t.items(), vals(&[3]));
        assert!(t.update(vec![]).unwrap(), "clearing counts as a change");
        assert!(!t.is_available());
        let mut acc = Channel::new("a", ChannelKind::Topic { accumulate: true });
        acc.update(vals(&[1])).unwrap();
        assert!(!acc.update(vec![]).unwrap());
        acc.update(vals(&[2])).unwrap();
        assert_eq!(acc.items(), vals(&[1, 2]));
    }

    #[test]
    fn barrier_opens_when_all_names_written_and_resets_on_consume() {
        let names: BTreeSet<Arc<str>> = ["a".into(), "b".into()].into_iter().collect();
        let mut j = Channel::<i64>::new("join", ChannelKind::NamedBarrier { names: Arc::new(names) });
        j.update(vec![Item::Token("a".into())]).unwrap();
        assert!(!j.is_available());
        assert!(!j.update(vec![Item::Token("a".into())]).unwrap(), "same writer twice is no change");
        j.update(vec![Item::Token("b".into())]).unwrap();
        assert!(j.is_available());
        assert!(j.consume());
        assert!(!j.is_available());
        assert!(!j.consume());
        assert!(j.update(vec![Item::Token("zzz".into())]).is_err());
    }

    #[test]
    fn restore_round_trips_items() {
        let mut t = Channel::new("t", ChannelKind::Topic { accumulate: true });
        t.restore(vals(&[4, 5])).unwrap();
        assert_eq!(t.items(), vals(&[4, 5]));
        let mut l = Channel::new("x", ChannelKind::LastValue);
        l.restore(vals(&[7])).unwrap();
        assert_eq!(l.value(), Some(&7));
    }
}
