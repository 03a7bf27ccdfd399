//! A graph as the host declares it ([`GraphSpec`]) and as the core runs it ([`Graph`]).
//!
//! Compiling turns a state graph into Pregel channels the way LangGraph does: one channel per
//! state key, a `__start__` channel holding the input, a `branch:to:NODE` trigger per node, a
//! `join:A+B:NODE` barrier per many-to-one edge and a `__pregel_tasks` topic for `Send`s.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::channels::{Channel, ChannelKind};
use crate::error::GraphError;

pub const START: &str = "__start__";
/// The key of a state that is one value (LangGraph's `__root__` channel).
pub const ROOT: &str = "__root__";
pub const END: &str = "__end__";
pub const TASKS: &str = "__pregel_tasks";

/// Names a node may not take: the graph's own entry and exit, and the separators used in
/// generated channel names.
pub fn check_node_name(name: &str) -> Result<(), GraphError> {
    if name.is_empty() {
        return Err(GraphError::InvalidGraph("A node name must not be empty".into()));
    }
    if name == START || name == END {
        return Err(GraphError::InvalidGraph(format!("Node name '{name}' is reserved")));
    }
    if let Some(c) = name.chars().find(|c| matches!(c, ':' | '|')) {
        return Err(GraphError::InvalidGraph(format!(
            "Node name '{name}' must not contain '{c}'"
        )));
    }
    Ok(())
}

/// A node as declared: its name and the state keys it reads (all of them when `None`).
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub name: String,
    pub reads: Option<Vec<String>>,
    /// Run only once nothing else is left to run (LangGraph's `add_node(defer=True)`).
    pub defer: bool,
}

/// A graph as declared by the host.
#[derive(Clone, Debug)]
pub struct GraphSpec<V> {
    /// State keys with their channel kinds, in schema order.
    pub state: Vec<(String, ChannelKind<V>)>,
    pub nodes: Vec<NodeSpec>,
    /// One-to-one edges; the source may be START, the target END.
    pub edges: Vec<(String, String)>,
    /// Many-to-one edges: the target runs once every source has finished.
    pub joins: Vec<(Vec<String>, String)>,
    /// Conditional edges: source and the targets it declares it may route to (empty when it
    /// did not declare them, which leaves the check to run time).
    pub branches: Vec<(String, Vec<String>)>,
}

impl<V> Default for GraphSpec<V> {
    fn default() -> Self {
        GraphSpec { state: vec![], nodes: vec![], edges: vec![], joins: vec![], branches: vec![] }
    }
}

/// A node of the compiled graph. Index 0 is always the `__start__` node.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: Arc<str>,
    /// Channels whose update schedules this node.
    pub triggers: Vec<usize>,
    /// Channels the node's input is read from.
    pub reads: Vec<usize>,
    /// The `branch:to:` channel that schedules this node.
    pub(crate) branch_channel: usize,
    /// Tokens written when the node finishes: its static edges and barrier arrivals.
    pub(crate) after: Vec<(usize, Arc<str>)>,
}

/// A compiled graph: immutable, shared by every run.
pub struct Graph<V> {
    pub(crate) channels: Vec<Channel<V>>,
    pub(crate) channel_index: HashMap<Arc<str>, usize>,
    pub(crate) state_channels: Vec<usize>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) node_index: HashMap<Arc<str>, usize>,
    pub(crate) start_channel: usize,
    pub(crate) tasks_channel: usize,
    /// Per channel: whether it schedules some node (what "nothing would run next" looks at).
    pub(crate) schedules: Vec<bool>,
}

impl<V: Clone> Graph<V> {
    pub fn compile(spec: GraphSpec<V>) -> Result<Self, GraphError> {
        let mut builder = Builder::default();
        for (key, kind) in spec.state {
            // `__root__` is the one key of a state that is a single value, not a dict.
            if (key.starts_with("__") && key != ROOT) || key.contains(':') {
                return Err(GraphError::InvalidGraph(format!("State key '{key}' is reserved")));
            }
            builder.channel(&key, kind)?;
        }
        let state_channels: Vec<usize> = (0..builder.channels.len()).collect();
        let start_channel = builder.channel(START, ChannelKind::Ephemeral { guard: true })?;
        let tasks_channel = builder.channel(TASKS, ChannelKind::Topic { accumulate: false })?;

        let mut node_index: HashMap<Arc<str>, usize> = HashMap::new();
        let mut nodes = Vec::with_capacity(spec.nodes.len() + 1);
        nodes.push(Node {
            name: START.into(),
            triggers: vec![start_channel],
            reads: vec![start_channel],
            branch_channel: start_channel,
            after: vec![],
        });
        node_index.insert(START.into(), 0);
        for node in &spec.nodes {
            check_node_name(&node.name)?;
            if node_index.contains_key(node.name.as_str()) {
                return Err(GraphError::InvalidGraph(format!(
                    "Node '{}' already present",
                    node.name
                )));
            }
            let reads = match &node.reads {
                None => state_channels.clone(),
                Some(keys) => keys
                    .iter()
                    .map(|k| {
                        builder.state_index(k).ok_or_else(|| {
                            GraphError::InvalidGraph(format!(
                                "Node '{}' reads unknown state key '{k}'",
                                node.name
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?,
            };
            let branch = builder.channel_of(
                &format!("branch:to:{}", node.name),
                ChannelKind::Ephemeral { guard: false },
                node.defer,
            )?;
            node_index.insert(node.name.as_str().into(), nodes.len());
            nodes.push(Node {
                name: node.name.as_str().into(),
                triggers: vec![branch],
                reads,
                branch_channel: branch,
                after: vec![],
            });
        }

        let known_source = |name: &str, what: &str| -> Result<usize, GraphError> {
            node_index.get(name).copied().ok_or_else(|| {
                GraphError::InvalidGraph(if name == END {
                    format!("END cannot be the start of {what}")
                } else {
                    format!("Found {what} starting at unknown node '{name}'")
                })
            })
        };
        let known_target = |name: &str, what: &str| -> Result<Option<usize>, GraphError> {
            if name == END {
                return Ok(None);
            }
            match node_index.get(name) {
                Some(0) => Err(GraphError::InvalidGraph(format!("START cannot be the end of {what}"))),
                Some(&i) => Ok(Some(i)),
                None => Err(GraphError::InvalidGraph(format!(
                    "Found {what} ending at unknown node '{name}'"
                ))),
            }
        };

        let mut has_entry = false;
        for (src, dst) in &spec.edges {
            let s = known_source(src, "an edge")?;
            has_entry |= s == 0;
            if let Some(d) = known_target(dst, "an edge")? {
                let token: Arc<str> = src.as_str().into();
                let channel = nodes[d].branch_channel;
                if !nodes[s].after.iter().any(|(c, _)| *c == channel) {
                    nodes[s].after.push((channel, token));
                }
            }
        }
        for (srcs, dst) in &spec.joins {
            if srcs.is_empty() {
                return Err(GraphError::InvalidGraph(format!(
                    "A join into '{dst}' needs at least one source"
                )));
            }
            let d = known_target(dst, "a join")?.ok_or_else(|| {
                GraphError::InvalidGraph("A join cannot end at END; add an edge per source".into())
            })?;
            let names: BTreeSet<Arc<str>> = srcs.iter().map(|s| Arc::from(s.as_str())).collect();
            let key = format!("join:{}:{dst}", srcs.join("+"));
            let deferred = spec.nodes.iter().any(|n| n.defer && n.name == *dst);
            let barrier = builder.channel_of(&key, ChannelKind::NamedBarrier { names: Arc::new(names) }, deferred)?;
            nodes[d].triggers.push(barrier);
            for src in srcs {
                let s = known_source(src, "a join")?;
                has_entry |= s == 0;
                nodes[s].after.push((barrier, src.as_str().into()));
            }
        }
        for (src, targets) in &spec.branches {
            let s = known_source(src, "a branch")?;
            has_entry |= s == 0;
            for target in targets {
                known_target(target, "a branch")?;
            }
        }
        if !has_entry {
            return Err(GraphError::InvalidGraph(
                "Graph must have an entrypoint: add at least one edge from START to another node"
                    .into(),
            ));
        }

        let mut schedules = vec![false; builder.channels.len()];
        for node in &nodes {
            for &c in &node.triggers {
                schedules[c] = true;
            }
        }
        Ok(Graph {
            schedules,
            channels: builder.channels,
            channel_index: builder.index,
            state_channels,
            nodes,
            node_index,
            start_channel,
            tasks_channel,
        })
    }
}

impl<V: Clone> Graph<V> {
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, name: &str) -> Option<usize> {
        self.node_index.get(name).copied()
    }

    pub fn channel_names(&self) -> impl Iterator<Item = &str> {
        self.channels.iter().map(|c| c.key())
    }

    pub fn channel(&self, name: &str) -> Option<usize> {
        self.channel_index.get(name).copied()
    }

    pub fn channel_name(&self, index: usize) -> &str {
        self.channels[index].key()
    }

    /// The channel's name as the graph holds it, for callers that keep it (shared, not copied).
    pub fn channel_key(&self, index: usize) -> &Arc<str> {
        &self.channels[index].key
    }

    pub fn state_keys(&self) -> impl Iterator<Item = &str> {
        self.state_channels.iter().map(|&c| self.channels[c].key())
    }

    pub fn state_channels(&self) -> &[usize] {
        &self.state_channels
    }

    /// Whether channel `c` schedules some node when it is updated.
    pub fn is_trigger(&self, c: usize) -> bool {
        self.schedules[c]
    }
}

struct Builder<V> {
    channels: Vec<Channel<V>>,
    index: HashMap<Arc<str>, usize>,
}

impl<V> Default for Builder<V> {
    fn default() -> Self {
        Builder { channels: Vec::new(), index: HashMap::new() }
    }
}

impl<V: Clone> Builder<V> {
    fn channel(&mut self, key: &str, kind: ChannelKind<V>) -> Result<usize, GraphError> {
        self.channel_of(key, kind, false)
    }

    /// A channel; `deferred` makes it a trigger of a deferred node.
    fn channel_of(&mut self, key: &str, kind: ChannelKind<V>, deferred: bool) -> Result<usize, GraphError> {
        if self.index.contains_key(key) {
            return Err(GraphError::InvalidGraph(format!("Channel '{key}' already present")));
        }
        let i = self.channels.len();
        let key: Arc<str> = key.into();
        let channel = if deferred { Channel::deferred(key.clone(), kind) } else { Channel::new(key.clone(), kind) };
        self.channels.push(channel);
        self.index.insert(key, i);
        Ok(i)
    }

    fn state_index(&self, key: &str) -> Option<usize> {
        self.index.get(key).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(nodes: &[&str], edges: &[(&str, &str)]) -> GraphSpec<i64> {
        GraphSpec {
            state: vec![("x".into(), ChannelKind::LastValue)],
            nodes: nodes.iter().map(|n| NodeSpec { name: n.to_string(), reads: None, defer: false }).collect(),
            edges: edges.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            ..GraphSpec::default()
        }
    }

    fn err(spec: GraphSpec<i64>) -> String {
        match Graph::compile(spec) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("graph should not compile"),
        }
    }

    #[test]
    fn compiles_channels_like_langgraph() {
        let mut s = spec(&["a", "b", "c"], &[(START, "a"), ("a", "b")]);
        s.joins.push((vec!["a".into(), "b".into()], "c".into()));
        let g = Graph::compile(s).unwrap();
        let names: Vec<&str> = g.channel_names().collect();
        assert_eq!(
            names,
            ["x", START, TASKS, "branch:to:a", "branch:to:b", "branch:to:c", "join:a+b:c"]
        );
        let c = &g.nodes[g.node("c").unwrap()];
        assert_eq!(c.triggers.len(), 2);
    }

    #[test]
    fn refuses_unknown_nodes_and_missing_entry() {
        assert!(err(spec(&["a"], &[(START, "b")])).contains("unknown node 'b'"));
        assert!(err(spec(&["a"], &[("zz", "a"), (START, "a")])).contains("unknown node 'zz'"));
        assert!(err(spec(&["a"], &[("a", END)])).contains("entrypoint"));
        let mut s = spec(&["a"], &[(START, "a")]);
        s.branches.push(("a".into(), vec!["nowhere".into()]));
        assert!(err(s).contains("'nowhere'"));
    }

    #[test]
    fn refuses_reserved_and_duplicate_names() {
        assert!(err(spec(&[START], &[])).contains("reserved"));
        let mut root = spec(&["a"], &[(START, "a")]);
        root.state.push((ROOT.into(), ChannelKind::LastValue));
        assert!(Graph::compile(root).is_ok(), "a state of one value is allowed");
        assert!(err(spec(&["a:b"], &[])).contains("':'"));
        assert!(err(spec(&["a", "a"], &[(START, "a")])).contains("already present"));
        assert!(check_node_name(END).is_err());
        assert!(check_node_name("fine").is_ok());
    }
}
