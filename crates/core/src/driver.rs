//! A complete synchronous loop over [`Run`] for Rust hosts: nodes and conditional edges are
//! Rust closures, tasks of a step run one after another, failed tasks are retried with
//! backoff. The Python binding drives [`Run`] itself (threads, asyncio); this is the same loop
//! in its plainest form, and what the core's own tests exercise end to end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{GraphError, HostError};
use crate::graph::{Graph, START};
use crate::retry::RetryPolicy;
use crate::run::Run;

/// Where a node or conditional edge sends the run next.
pub enum Route<V> {
    To(String),
    Send(String, V),
}

/// What a node returns: updates to state keys and routes, as `Command(update=, goto=)`.
pub struct NodeOutput<V> {
    pub updates: Vec<(String, V)>,
    pub routes: Vec<Route<V>>,
}

impl<V> NodeOutput<V> {
    pub fn update(updates: Vec<(&str, V)>) -> Self {
        NodeOutput { updates: updates.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), routes: vec![] }
    }
}

/// A node's input: the state it reads, or the argument of the `Send` that started it.
pub enum NodeInput<V> {
    State(Vec<(String, Option<V>)>),
    Arg(V),
}

type NodeFn<V> = Box<dyn FnMut(&NodeInput<V>) -> Result<NodeOutput<V>, HostError>>;
type BranchFn<V> = Box<dyn Fn(&[(String, Option<V>)]) -> Vec<Route<V>>>;

pub struct Driver<V> {
    graph: Arc<Graph<V>>,
    nodes: HashMap<String, NodeFn<V>>,
    branches: HashMap<String, Vec<BranchFn<V>>>,
    retry: HashMap<String, RetryPolicy>,
    sleep: Box<dyn FnMut(Duration)>,
}

impl<V: Clone + 'static> Driver<V> {
    /// `start` maps the run's input to state updates, as the `__start__` node does.
    pub fn new(graph: Arc<Graph<V>>, start: impl Fn(&V) -> Vec<(String, V)> + 'static) -> Self {
        let mut nodes: HashMap<String, NodeFn<V>> = HashMap::new();
        nodes.insert(
            START.to_string(),
            Box::new(move |input| match input {
                NodeInput::State(reads) => Ok(NodeOutput {
                    updates: reads.iter().filter_map(|(_, v)| v.as_ref()).flat_map(&start).collect(),
                    routes: vec![],
                }),
                NodeInput::Arg(_) => Err(HostError::msg("START takes no Send")),
            }),
        );
        Driver {
            graph,
            nodes,
            branches: HashMap::new(),
            retry: HashMap::new(),
            sleep: Box::new(std::thread::sleep),
        }
    }

    pub fn node(
        mut self,
        name: &str,
        f: impl FnMut(&NodeInput<V>) -> Result<NodeOutput<V>, HostError> + 'static,
    ) -> Self {
        self.nodes.insert(name.to_string(), Box::new(f));
        self
    }

    pub fn branch(mut self, source: &str, f: impl Fn(&[(String, Option<V>)]) -> Vec<Route<V>> + 'static) -> Self {
        self.branches.entry(source.to_string()).or_default().push(Box::new(f));
        self
    }

    pub fn retry(mut self, node: &str, policy: RetryPolicy) -> Self {
        self.retry.insert(node.to_string(), policy);
        self
    }

    /// Replace how the driver waits between attempts (tests record instead of sleeping).
    pub fn sleep_with(mut self, sleep: impl FnMut(Duration) + 'static) -> Self {
        self.sleep = Box::new(sleep);
        self
    }

    /// Run the graph to completion and return the final state.
    pub fn invoke(&mut self, input: V, recursion_limit: u64) -> Result<Vec<(String, Option<V>)>, GraphError> {
        let mut run = Run::new(self.graph.clone(), recursion_limit);
        run.input(input)?;
        while run.tick()? {
            for t in 0..run.tasks().len() {
                self.run_task(&mut run, t)?;
            }
            run.apply()?;
        }
        Ok(run.state().map(|(k, v)| (k.to_string(), v.cloned())).collect())
    }

    fn run_task(&mut self, run: &mut Run<V>, t: usize) -> Result<(), GraphError> {
        let task = &run.tasks()[t];
        let name = task.name.to_string();
        let input = match &task.arg {
            Some(arg) => NodeInput::Arg(arg.clone()),
            None => NodeInput::State(run.read(t).map(|(k, v)| (k.to_string(), v.cloned())).collect()),
        };
        let policy = self.retry.get(&name).cloned();
        let node = self
            .nodes
            .get_mut(&name)
            .ok_or_else(|| GraphError::InvalidGraph(format!("No function for node '{name}'")))?;
        let mut attempt = 1;
        let output = loop {
            match node(&input) {
                Ok(output) => break output,
                Err(err) => match policy.as_ref().and_then(|p| p.delay_after(attempt, 0.0)) {
                    Some(delay) => {
                        (self.sleep)(delay);
                        attempt += 1;
                    }
                    None => return Err(GraphError::Host(err)),
                },
            }
        };
        for (key, value) in output.updates {
            run.write(t, &key, value)?;
        }
        let mut routes = output.routes;
        if let Some(branches) = self.branches.get(&name) {
            let fresh: Vec<(String, Option<V>)> =
                run.preview(t)?.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            for branch in branches {
                routes.extend(branch(&fresh));
            }
        }
        for route in routes {
            match route {
                Route::To(node) => run.goto(t, &node)?,
                Route::Send(node, arg) => run.send(t, &node, arg)?,
            }
        }
        run.finish(t)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::channels::{ChannelKind, Reducer};
    use crate::graph::{GraphSpec, NodeSpec, END};

    /// A state of one last-value key `x` and one summing reducer key `total`.
    fn spec(nodes: &[&str], edges: &[(&str, &str)]) -> GraphSpec<i64> {
        let add: Reducer<i64> = Arc::new(|a: &i64, b: &i64| Ok(a + b));
        GraphSpec {
            state: vec![
                ("x".into(), ChannelKind::LastValue),
                ("total".into(), ChannelKind::BinaryOperator { reducer: add, initial: Some(0) }),
            ],
            nodes: nodes.iter().map(|n| NodeSpec { name: n.to_string(), reads: None, defer: false }).collect(),
            edges: edges.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            ..GraphSpec::default()
        }
    }

    fn driver(spec: GraphSpec<i64>) -> Driver<i64> {
        Driver::new(Arc::new(Graph::compile(spec).unwrap()), |v| vec![("x".to_string(), *v)])
    }

    fn get(state: &[(String, Option<i64>)], key: &str) -> Option<i64> {
        state.iter().find(|(k, _)| k == key).and_then(|(_, v)| *v)
    }

    fn x_of(input: &NodeInput<i64>) -> i64 {
        match input {
            NodeInput::State(s) => get(s, "x").unwrap_or(0),
            NodeInput::Arg(a) => *a,
        }
    }

    #[test]
    fn linear_chain_runs_each_node_once_in_order() {
        let order = Rc::new(RefCell::new(Vec::new()));
        let mut d = driver(spec(&["a", "b", "c"], &[(START, "a"), ("a", "b"), ("b", "c"), ("c", END)]));
        for name in ["a", "b", "c"] {
            let order = order.clone();
            d = d.node(name, move |i| {
                order.borrow_mut().push(name);
                Ok(NodeOutput::update(vec![("x", x_of(i) * 10 + 1)]))
            });
        }
        let state = d.invoke(1, 25).unwrap();
        assert_eq!(get(&state, "x"), Some(1111));
        assert_eq!(*order.borrow(), ["a", "b", "c"]);
    }

    #[test]
    fn fan_out_merges_reducer_writes_and_join_waits_for_all() {
        let mut s = spec(&["a", "b", "c", "d"], &[(START, "a"), ("a", "b"), ("a", "c")]);
        s.joins.push((vec!["b".into(), "c".into()], "d".into()));
        let seen_total = Rc::new(RefCell::new(None));
        let seen = seen_total.clone();
        let mut d = driver(s)
            .node("a", |_| Ok(NodeOutput::update(vec![("total", 1)])))
            .node("b", |_| Ok(NodeOutput::update(vec![("total", 10)])))
            .node("c", |_| Ok(NodeOutput::update(vec![("total", 100)])))
            .node("d", move |i| {
                if let NodeInput::State(s) = i {
                    *seen.borrow_mut() = get(s, "total");
                }
                Ok(NodeOutput::update(vec![]))
            });
        let state = d.invoke(0, 25).unwrap();
        assert_eq!(get(&state, "total"), Some(111));
        assert_eq!(*seen_total.borrow(), Some(111), "d ran after both b and c were applied");
    }

    #[test]
    fn parallel_writes_to_a_last_value_key_are_refused() {
        let mut d = driver(spec(&["a", "b"], &[(START, "a"), (START, "b")]))
            .node("a", |_| Ok(NodeOutput::update(vec![("x", 1)])))
            .node("b", |_| Ok(NodeOutput::update(vec![("x", 2)])));
        let err = d.invoke(0, 25).unwrap_err();
        assert!(matches!(err, GraphError::InvalidUpdate(ref m) if m.contains("'x'")), "{err}");
    }

    #[test]
    fn conditional_loop_sees_the_nodes_own_write_and_stops() {
        let mut d = driver(spec(&["inc"], &[(START, "inc")]))
            .node("inc", |i| Ok(NodeOutput::update(vec![("x", x_of(i) + 1)])))
            .branch("inc", |s| {
                vec![Route::To(if get(s, "x").unwrap() < 5 { "inc".into() } else { END.into() })]
            });
        let state = d.invoke(0, 25).unwrap();
        assert_eq!(get(&state, "x"), Some(5));
    }

    #[test]
    fn recursion_limit_lets_a_self_loop_run_exactly_limit_times() {
        let runs = Rc::new(RefCell::new(0));
        let counter = runs.clone();
        let mut d = driver(spec(&["a"], &[(START, "a"), ("a", "a")])).node("a", move |_| {
            *counter.borrow_mut() += 1;
            Ok(NodeOutput::update(vec![]))
        });
        let err = d.invoke(0, 5).unwrap_err();
        assert!(matches!(err, GraphError::Recursion { limit: 5 }));
        assert_eq!(*runs.borrow(), 5);
    }

    #[test]
    fn recursion_limit_counts_the_start_step() {
        let chain = || {
            driver(spec(&["a", "b", "c"], &[(START, "a"), ("a", "b"), ("b", "c")]))
                .node("a", |_| Ok(NodeOutput::update(vec![])))
                .node("b", |_| Ok(NodeOutput::update(vec![])))
                .node("c", |_| Ok(NodeOutput::update(vec![])))
        };
        assert!(matches!(chain().invoke(0, 3), Err(GraphError::Recursion { .. })));
        assert!(chain().invoke(0, 4).is_ok());
    }

    #[test]
    fn send_fans_out_and_results_merge_in_send_order() {
        let cat: Reducer<i64> = Arc::new(|a: &i64, b: &i64| Ok(a * 10 + b));
        let mut s = spec(&["work"], &[]);
        s.state.push(("digits".into(), ChannelKind::BinaryOperator { reducer: cat, initial: Some(0) }));
        s.branches.push((START.into(), vec![]));
        let mut d = driver(s)
            .node("work", |i| Ok(NodeOutput::update(vec![("digits", x_of(i))])))
            .branch(START, |_| (1..=3).map(|n| Route::Send("work".into(), n)).collect());
        let state = d.invoke(0, 25).unwrap();
        assert_eq!(get(&state, "digits"), Some(123));
    }

    #[test]
    fn goto_routes_like_a_command() {
        let mut d = driver(spec(&["a", "b"], &[(START, "a")]))
            .node("a", |_| Ok(NodeOutput { updates: vec![("x".into(), 7)], routes: vec![Route::To("b".into())] }))
            .node("b", |i| Ok(NodeOutput::update(vec![("x", x_of(i) * 2)])));
        assert_eq!(get(&d.invoke(0, 25).unwrap(), "x"), Some(14));
        let mut bad = driver(spec(&["a"], &[(START, "a")]))
            .node("a", |_| Ok(NodeOutput { updates: vec![], routes: vec![Route::To("ghost".into())] }));
        assert!(bad.invoke(0, 25).unwrap_err().to_string().contains("'ghost'"));
    }

    #[test]
    fn retries_with_backoff_then_succeeds() {
        let attempts = Rc::new(RefCell::new(0));
        let delays = Rc::new(RefCell::new(Vec::new()));
        let (a, dl) = (attempts.clone(), delays.clone());
        let policy = RetryPolicy { max_attempts: 3, jitter: false, ..Default::default() };
        let mut d = driver(spec(&["flaky"], &[(START, "flaky")]))
            .node("flaky", move |_| {
                *a.borrow_mut() += 1;
                if *a.borrow() < 3 {
                    Err(HostError::msg("transient"))
                } else {
                    Ok(NodeOutput::update(vec![("x", 42)]))
                }
            })
            .retry("flaky", policy)
            .sleep_with(move |d| dl.borrow_mut().push(d.as_secs_f64()));
        assert_eq!(get(&d.invoke(0, 25).unwrap(), "x"), Some(42));
        assert_eq!(*attempts.borrow(), 3);
        assert_eq!(*delays.borrow(), [0.5, 1.0]);
    }

    #[test]
    fn gives_up_after_max_attempts_with_the_node_error() {
        let mut d = driver(spec(&["bad"], &[(START, "bad")]))
            .node("bad", |_| Err(HostError::msg("always")))
            .retry("bad", RetryPolicy { max_attempts: 2, jitter: false, ..Default::default() })
            .sleep_with(|_| {});
        let err = d.invoke(0, 25).unwrap_err();
        assert!(matches!(err, GraphError::Host(ref h) if h.to_string() == "always"));
    }

    #[test]
    fn versions_seen_prevent_rerunning_a_node_without_new_input() {
        let runs = Rc::new(RefCell::new(0));
        let counter = runs.clone();
        let graph = Arc::new(Graph::compile(spec(&["a"], &[(START, "a")])).unwrap());
        let mut run = Run::new(graph, 25);
        run.input(3).unwrap();
        let mut steps = 0;
        while run.tick().unwrap() {
            for t in 0..run.tasks().len() {
                if &*run.tasks()[t].name == "a" {
                    *counter.borrow_mut() += 1;
                } else {
                    run.write(t, "x", 3).unwrap();
                }
                run.finish(t).unwrap();
            }
            run.apply().unwrap();
            steps += 1;
        }
        assert_eq!((steps, *runs.borrow(), run.step()), (2, 1, 1));
        let a = run.graph().node("a").unwrap();
        let branch = run.graph().channel("branch:to:a").unwrap();
        assert!(run.versions_seen(a)[branch] > 0);
    }
}
