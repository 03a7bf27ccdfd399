//! Python classes over the core's compiled graph and run: `CoreGraph` holds the channels and
//! nodes a `StateGraph` compiles to, `CoreRun` is one run's step machine driven by the Python
//! executor (which calls the nodes, on threads or asyncio tasks).

use std::sync::Arc;

use ferrograph_core::{check_node_name, ChannelKind, Graph, GraphSpec, NodeSpec, Reducer, RetryPolicy};
use pyo3::prelude::*;

use crate::errors::{host_error, IntoPyResult};
use crate::value::PyValue;

/// One state key as declared from Python: its name, its reducer (None for a last-value key)
/// and the reducer's empty value (None when the type has none).
type StateDecl = (String, Option<Py<PyAny>>, Option<Py<PyAny>>);

#[pyclass(module = "ferrograph._core", frozen)]
pub struct CoreGraph {
    pub(crate) graph: Arc<Graph<PyValue>>,
}

fn reducer(f: Py<PyAny>) -> Reducer<PyValue> {
    Arc::new(move |current: &PyValue, update: &PyValue| {
        Python::attach(|py| {
            f.bind(py)
                .call1((current.bind(py), update.bind(py)))
                .map(PyValue::new)
                .map_err(host_error)
        })
    })
}

#[pymethods]
impl CoreGraph {
    #[new]
    #[pyo3(signature = (state, nodes, edges, joins, branches, deferred=Vec::new()))]
    fn new(
        py: Python<'_>,
        state: Vec<StateDecl>,
        nodes: Vec<(String, Option<Vec<String>>)>,
        edges: Vec<(String, String)>,
        joins: Vec<(Vec<String>, String)>,
        branches: Vec<(String, Vec<String>)>,
        deferred: Vec<String>,
    ) -> PyResult<Self> {
        let spec = GraphSpec {
            state: state
                .into_iter()
                .map(|(key, f, initial)| {
                    let kind = match f {
                        None => ChannelKind::LastValue,
                        Some(f) => ChannelKind::BinaryOperator {
                            reducer: reducer(f),
                            initial: initial.map(|v| PyValue(Arc::new(v))),
                        },
                    };
                    (key, kind)
                })
                .collect(),
            nodes: nodes
                .into_iter()
                .map(|(name, reads)| NodeSpec { defer: deferred.contains(&name), name, reads })
                .collect(),
            edges,
            joins,
            branches,
        };
        let graph = Graph::compile(spec).py(py)?;
        Ok(CoreGraph { graph: Arc::new(graph) })
    }

    /// Names of every channel, generated ones included.
    fn channels(&self) -> Vec<String> {
        self.graph.channel_names().map(str::to_string).collect()
    }

    /// The channels that schedule `node`.
    fn triggers(&self, node: &str) -> Vec<String> {
        match self.graph.node(node) {
            Some(n) => self.graph.nodes()[n]
                .triggers
                .iter()
                .map(|&c| self.graph.channel_name(c).to_string())
                .collect(),
            None => vec![],
        }
    }
}

#[pyfunction(name = "check_node_name")]
fn py_check_node_name(py: Python<'_>, name: &str) -> PyResult<()> {
    check_node_name(name).py(py)
}

/// Seconds to wait after failed attempt `attempt` (1-based), or None when none is left.
#[pyfunction]
#[pyo3(signature = (attempt, unit_random, initial_interval, backoff_factor, max_interval, max_attempts, jitter))]
fn retry_delay(
    attempt: u32,
    unit_random: f64,
    initial_interval: f64,
    backoff_factor: f64,
    max_interval: f64,
    max_attempts: u32,
    jitter: bool,
) -> Option<f64> {
    RetryPolicy { initial_interval, backoff_factor, max_interval, max_attempts, jitter }
        .delay_after(attempt, unit_random)
        .map(|d| d.as_secs_f64())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<CoreGraph>()?;
    m.add_function(wrap_pyfunction!(py_check_node_name, m)?)?;
    m.add_function(wrap_pyfunction!(retry_delay, m)?)?;
    Ok(())
}
