//! Python classes over the core's compiled graph and run: `CoreGraph` holds the channels and
//! nodes a `StateGraph` compiles to, `CoreRun` is one run's step machine driven by the Python
//! executor (which calls the nodes, on threads or asyncio tasks).

use std::sync::Arc;

use ferrograph_core::{
    check_node_name, ChannelKind, Graph, GraphSpec, NodeSpec, Reducer, RetryPolicy, Run,
    TaskKind,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::errors::{host_error, IntoPyResult};
use crate::value::PyValue;

/// One state key as declared from Python: its name, its reducer (None for a last-value key)
/// and the reducer's empty value (None when the type has none).
type StateDecl = (String, Option<Py<PyAny>>, Option<Py<PyAny>>);

#[pyclass(module = "ferrograph._core", frozen)]
pub struct CoreGraph {
    graph: Arc<Graph<PyValue>>,
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
    #[pyo3(signature = (state, nodes, edges, joins, branches))]
    fn new(
        py: Python<'_>,
        state: Vec<StateDecl>,
        nodes: Vec<(String, Option<Vec<String>>)>,
        edges: Vec<(String, String)>,
        joins: Vec<(Vec<String>, String)>,
        branches: Vec<(String, Vec<String>)>,
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
            nodes: nodes.into_iter().map(|(name, reads)| NodeSpec { name, reads }).collect(),
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

#[pyclass(module = "ferrograph._core")]
pub struct CoreRun {
    run: Run<PyValue>,
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

#[pymethods]
impl CoreRun {
    #[new]
    #[pyo3(signature = (graph, recursion_limit, seed=String::new()))]
    fn new(graph: &CoreGraph, recursion_limit: u64, seed: String) -> Self {
        let mut run = Run::new(graph.graph.clone(), recursion_limit);
        run.set_seed(seed);
        CoreRun { run }
    }

    #[getter]
    fn step(&self) -> i64 {
        self.run.step()
    }

    fn input(&mut self, py: Python<'_>, value: Bound<'_, PyAny>) -> PyResult<()> {
        self.run.input(PyValue::new(value)).py(py)
    }

    /// Plan the next superstep: a list of (node name, input, task id, is push), or None when
    /// the run is over.
    fn tick<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Vec<Bound<'py, PyTuple>>>> {
        if !self.run.tick().py(py)? {
            return Ok(None);
        }
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
                    pyo3::types::PyBool::new(py, push).to_owned().into_any(),
                ],
            )?);
        }
        Ok(Some(out))
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

    /// Record a task's update. Keys that are not state keys are ignored, as LangGraph does.
    /// Returns the update as applied (a dict of known keys), or None if nothing was written.
    fn update<'py>(
        &mut self,
        py: Python<'py>,
        task: usize,
        update: Bound<'py, PyDict>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let graph = self.run.graph().clone();
        let mut dropped = false;
        let mut written = 0;
        for (key, value) in update.iter() {
            let key = key.cast_into::<PyString>()?;
            let name = key.to_str()?;
            if graph.channel(name).is_some_and(|c| graph.state_channels().contains(&c)) {
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
            let name = key.cast::<PyString>()?.to_str()?.to_owned();
            if graph.channel(&name).is_some_and(|c| graph.state_channels().contains(&c)) {
                known.set_item(key, value)?;
            }
        }
        Ok(Some(known))
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

    /// Apply the step. Returns whether any state key changed.
    fn apply(&mut self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.run.apply().py(py)?.state_changed)
    }

    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        state_dict(py, self.run.state())
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
    m.add_class::<CoreRun>()?;
    m.add_function(wrap_pyfunction!(py_check_node_name, m)?)?;
    m.add_function(wrap_pyfunction!(retry_delay, m)?)?;
    Ok(())
}
