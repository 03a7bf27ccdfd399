"""Drawing, differentially: each graph below is built once against LangGraph and once against
ferrograph (the same builder), and `get_graph()` must give the same nodes and edges, the same
Mermaid text (with and without styles, with options), the same JSON edges and the same ASCII
picture. The shapes are those of LangGraph's own drawing tests (libs/langgraph/tests/
test_pregel.py, the `draw_mermaid` snapshots) plus `Command[Literal[...]]` routes,
`destinations=`, node metadata, interrupts and names Mermaid must escape."""

import operator
from typing import Annotated, Literal, Optional, TypedDict

import pytest

from difftest_harness import load_ferrograph, load_langgraph

LG = load_langgraph()
FG = load_ferrograph()


class State(TypedDict, total=False):
    query: str
    docs: Annotated[list[str], operator.add]
    sender: str


def _noop(state):
    return None


def conditional_entrypoint_to_multiple(impl):
    g = impl.StateGraph(State)

    def get_weather(state):
        return {"docs": ["sunny"]}

    def continue_to_weather(state) -> list:
        return [impl.Send("get_weather", {"query": q}) for q in ("sf", "nyc")]

    g.add_node("get_weather", get_weather)
    g.add_edge("get_weather", impl.END)
    g.set_conditional_entry_point(continue_to_weather, path_map=["get_weather"])
    return g.compile()


def list_edge_inputs(impl):
    g = impl.StateGraph(State)
    g.add_node("A", _noop)
    g.add_node("B", _noop)
    g.add_edge(impl.START, "A")
    g.add_edge(impl.START, "B")
    g.add_edge(["A", "B"], impl.END)
    return g.compile()


def conditional_entrypoint_graph_state(impl):
    g = impl.StateGraph(State)
    g.add_node("left", _noop)
    g.add_node("right", _noop)
    g.set_conditional_entry_point(lambda s: "go-left", {"go-left": "left", "go-right": "right"})
    g.add_conditional_edges("left", lambda s: impl.END, {impl.END: impl.END})
    g.add_edge("right", impl.END)
    return g.compile()


def fan_out_waiting_edge(impl):
    g = impl.StateGraph(State)
    for name in ("rewrite_query", "analyzer_one", "retriever_one", "retriever_two", "qa"):
        g.add_node(name, _noop)
    g.set_entry_point("rewrite_query")
    g.add_edge("rewrite_query", "analyzer_one")
    g.add_edge("analyzer_one", "retriever_one")
    g.add_edge("rewrite_query", "retriever_two")
    g.add_edge(["retriever_one", "retriever_two"], "qa")
    g.set_finish_point("qa")
    return g.compile()


def fan_out_waiting_edge_via_branch(impl):
    g = impl.StateGraph(State)
    for name in ("rewrite_query", "analyzer_one", "retriever_one", "retriever_two", "qa"):
        g.add_node(name, _noop)

    def rewrite_query_then(data) -> Literal["retriever_two"]:
        return "retriever_two"

    g.set_entry_point("rewrite_query")
    g.add_edge("rewrite_query", "analyzer_one")
    g.add_edge("analyzer_one", "retriever_one")
    g.add_conditional_edges("rewrite_query", rewrite_query_then)
    g.add_edge(["retriever_one", "retriever_two"], "qa")
    g.set_finish_point("qa")
    return g.compile()


def simple_multi_edge(impl):
    g = impl.StateGraph(State)
    for name in ("up", "side", "other", "down"):
        g.add_node(name, _noop)
    g.set_entry_point("up")
    g.add_edge("up", "side")
    g.add_edge("up", "other")
    g.add_edge(["up", "side"], "down")
    g.set_finish_point("down")
    return g.compile()


def repeat_condition(impl):
    g = impl.StateGraph(State)
    g.add_node("Researcher", _noop)
    g.add_node("Chart Generator", _noop)
    g.add_node("Call Tool", _noop)
    router = lambda s: "end"  # noqa: E731
    g.add_conditional_edges(
        "Researcher",
        router,
        {"redo": "Researcher", "continue": "Chart Generator", "call_tool": "Call Tool", "end": impl.END},
    )
    g.add_conditional_edges(
        "Chart Generator", router, {"continue": "Researcher", "call_tool": "Call Tool", "end": impl.END}
    )
    g.add_conditional_edges(
        "Call Tool", lambda s: s["sender"], {"Researcher": "Researcher", "Chart Generator": "Chart Generator"}
    )
    g.set_entry_point("Researcher")
    return g.compile()


def migration_graph(impl):
    g = impl.StateGraph(State)
    for name in ("B", "C", "D"):
        g.add_node(name, _noop)
    g.add_edge(impl.START, "B")
    g.add_conditional_edges("B", lambda s: "X", {"X": "C", "Y": "D"})
    g.add_edge("D", "B")
    g.add_edge("C", impl.END)
    return g.compile()


def loop(impl):
    g = impl.StateGraph(State)
    g.add_node("human", _noop)
    g.add_node("agent", _noop)
    g.add_edge(impl.START, "human")
    g.add_edge("human", "agent")
    g.add_edge("agent", "human")
    return g.compile()


def self_loop_command(impl):
    Command = impl.Command

    def worker_node(state) -> Command[Literal["worker_node", "__end__"]]:
        return Command(goto=impl.END)

    g = impl.StateGraph(State)
    g.add_node("worker_node", worker_node)
    g.add_edge(impl.START, "worker_node")
    return g.compile()


def nonterminal_last_step_source(impl):
    g = impl.StateGraph(State)
    for name in ("chatbot", "tools", "human"):
        g.add_node(name, _noop)
    g.add_edge(impl.START, "human")
    g.add_edge("tools", "chatbot")
    g.add_conditional_edges("chatbot", lambda s: "tools", {"tools": "tools", "human": "human"})
    g.add_conditional_edges("human", lambda s: "chatbot", {"chatbot": "chatbot", impl.END: impl.END})
    return g.compile()


def command_edgeless(impl):
    """Nodes wired only by `Command` return annotations (LangGraph's command docs)."""
    Command = impl.Command

    def node_a(state) -> Command[Literal["node_b", "node_c"]]:
        return Command(goto="node_b")

    def node_b(state) -> Command[Literal["__end__"]]:
        return Command(goto=impl.END)

    def node_c(state) -> Optional[Command[Literal["node_b"]]]:
        return None

    g = impl.StateGraph(State)
    g.add_node("node_a", node_a)
    g.add_node("node_b", node_b)
    g.add_node("node_c", node_c)
    g.add_edge(impl.START, "node_a")
    return g.compile()


def destinations_option(impl):
    g = impl.StateGraph(State)
    g.add_node("router", _noop, destinations={"left": "go left", "right": "to the right side of the graph now please"})
    g.add_node("left", _noop, destinations=("right", impl.END))
    g.add_node("right", _noop)
    g.add_edge(impl.START, "router")
    return g.compile()


def branch_without_targets(impl):
    """A branch that does not declare where it goes: LangGraph draws a dotted edge to the end."""
    g = impl.StateGraph(State)
    g.add_node("a", _noop)
    g.add_node("b", _noop)
    g.add_edge(impl.START, "a")
    g.add_conditional_edges("a", lambda s: "b")
    return g.compile()


def unreachable_and_parallel(impl):
    g = impl.StateGraph(State)
    for name in ("a", "b", "c", "lonely"):
        g.add_node(name, _noop)
    g.add_edge(impl.START, "a")
    g.add_edge(impl.START, "b")
    g.add_edge("a", "c")
    g.add_edge("b", "c")
    return g.compile()


def metadata_and_interrupts(impl):
    g = impl.StateGraph(State)
    g.add_node("plan", _noop, metadata={"owner": "team [a]", "tags": ["x", "y"], "skip": {"nested": 1}})
    g.add_node("act", _noop)
    g.add_node("review", _noop)
    g.add_edge(impl.START, "plan")
    g.add_edge("plan", "act")
    g.add_edge("act", "review")
    g.add_conditional_edges("review", lambda s: "done", {"again": "plan", "done": impl.END})
    return g.compile(interrupt_before=["act", "review"], interrupt_after=["review"])


def escaped_names(impl):
    g = impl.StateGraph(State)
    g.add_node("*starred*", _noop)
    g.add_node("with space", _noop)
    g.add_node("dash-and.dot", _noop)
    g.add_edge(impl.START, "*starred*")
    g.add_edge("*starred*", "with space")
    g.add_conditional_edges("with space", lambda s: "dash-and.dot", {"a b": "dash-and.dot", "c": impl.END})
    return g.compile()


def sequence(impl):
    g = impl.StateGraph(State)
    g.add_sequence([("one", _noop), ("two", _noop), ("three", _noop)])
    g.add_edge(impl.START, "one")
    return g.compile()


GRAPHS = [
    conditional_entrypoint_to_multiple,
    list_edge_inputs,
    conditional_entrypoint_graph_state,
    fan_out_waiting_edge,
    fan_out_waiting_edge_via_branch,
    simple_multi_edge,
    repeat_condition,
    migration_graph,
    loop,
    self_loop_command,
    nonterminal_last_step_source,
    command_edgeless,
    destinations_option,
    branch_without_targets,
    unreachable_and_parallel,
    metadata_and_interrupts,
    escaped_names,
    sequence,
]

#: Graphs grandalf lays out the same way on every run (LangGraph's ASCII picture of a graph
#: with parallel paths depends on the memory addresses of grandalf's objects).
STABLE_ASCII = [list_edge_inputs, conditional_entrypoint_graph_state, loop, self_loop_command, sequence]


def _ascii(graph):
    """The picture, or the error (grandalf cannot route a self-loop: both raise ValueError)."""
    try:
        return graph.draw_ascii()
    except ValueError as exc:
        return ("ValueError", "no intersection found" in str(exc))


def _both(build):
    return build(LG).get_graph(), build(FG).get_graph()


@pytest.mark.parametrize("build", GRAPHS, ids=lambda b: b.__name__)
def test_nodes_and_edges_match(build):
    expected, actual = _both(build)
    assert [(n.id, n.name, n.metadata) for n in actual.nodes.values()] == [
        (n.id, n.name, n.metadata) for n in expected.nodes.values()
    ]
    assert [tuple(e) for e in actual.edges] == [tuple(e) for e in expected.edges]
    assert actual.to_json()["edges"] == expected.to_json()["edges"]
    assert [n["id"] for n in actual.to_json()["nodes"]] == [n["id"] for n in expected.to_json()["nodes"]]
    first, last = expected.first_node(), expected.last_node()
    assert (actual.first_node() and actual.first_node().id) == (first and first.id)
    assert (actual.last_node() and actual.last_node().id) == (last and last.id)


@pytest.mark.parametrize("build", GRAPHS, ids=lambda b: b.__name__)
def test_mermaid_matches(build):
    expected, actual = _both(build)
    assert actual.draw_mermaid() == expected.draw_mermaid()
    assert actual.draw_mermaid(with_styles=False) == expected.draw_mermaid(with_styles=False)


@pytest.mark.parametrize("build", [repeat_condition, destinations_option, metadata_and_interrupts], ids=lambda b: b.__name__)
def test_mermaid_options_match(build):
    from langchain_core.runnables.graph import CurveStyle, NodeStyles

    from ferrograph.graph.draw import CurveStyle as OurCurveStyle, NodeStyles as OurNodeStyles

    expected, actual = _both(build)
    frontmatter = {
        "config": {"theme": "neutral", "look": "handDrawn", "themeVariables": {"primaryColor": "#e2e2e2"}},
        "title": "A graph: drawn",
        "flags": ["yes", "plain", "1.5", ""],
    }
    options = dict(wrap_label_n_words=2, frontmatter_config=frontmatter)
    want = expected.draw_mermaid(curve_style=CurveStyle.STEP_AFTER, node_colors=NodeStyles(first="fill:#fff"), **options)
    assert actual.draw_mermaid(curve_style=OurCurveStyle.STEP_AFTER, node_colors=OurNodeStyles(first="fill:#fff"), **options) == want
    # langchain_core's own option types are accepted as they are.
    assert actual.draw_mermaid(curve_style=CurveStyle.STEP_AFTER, node_colors=NodeStyles(first="fill:#fff"), **options) == want


@pytest.mark.parametrize(
    "config",
    [
        {"config": {"theme": "base", "themeVariables": {"lineColor": "#f00", "fontSize": 16, "ratio": 0.5}}},
        {"title": "it's: quoted", "config": {"look": "classic", "flowchart": {"htmlLabels": False, "padding": 1e-7}}},
        {"x": None, "y": True, "z": ["- a", "b #c", "null", "0x1F", "2024-01-02", "~", "- ", "?", "ok"]},
        {"empty": {}, "none": [], "nested": [{"k": "v", "j": 2}, "s"]},
    ],
)
def test_frontmatter_is_yaml_as_langgraph_writes_it(config):
    expected, actual = _both(sequence)
    assert actual.draw_mermaid(frontmatter_config=config) == expected.draw_mermaid(frontmatter_config=config)


@pytest.mark.parametrize("build", STABLE_ASCII, ids=lambda b: b.__name__)
def test_ascii_matches(build):
    pytest.importorskip("grandalf", reason="LangGraph draws ASCII with grandalf")
    expected, actual = _both(build)
    assert _ascii(actual) == _ascii(expected)


@pytest.mark.parametrize("build", [b for b in GRAPHS if b not in (repeat_condition, self_loop_command)], ids=lambda b: b.__name__)
def test_ascii_renders_a_layout_as_langgraph_does(build, monkeypatch):
    """For every shape: the same grandalf layout drawn by both gives the same picture (where
    grandalf's layout varies between runs, both draw whichever layout it made)."""
    pytest.importorskip("grandalf", reason="LangGraph draws ASCII with grandalf")
    from langchain_core.runnables import graph_ascii

    from ferrograph.graph import _ascii

    expected, actual = _both(build)
    layouts = []
    original = _ascii._layout

    def keep(names, edges):
        layouts.append(original(names, edges))
        return layouts[-1]

    monkeypatch.setattr(_ascii, "_layout", keep)
    ours = actual.draw_ascii()
    monkeypatch.setattr(graph_ascii, "_build_sugiyama_layout", lambda vertices, edges: layouts[0])
    assert ours == expected.draw_ascii()


@pytest.mark.parametrize("build", [repeat_condition, self_loop_command], ids=lambda b: b.__name__)
def test_ascii_of_a_self_loop_fails_as_in_langgraph(build):
    pytest.importorskip("grandalf", reason="LangGraph draws ASCII with grandalf")
    expected, actual = _both(build)
    assert _ascii(actual) == _ascii(expected) == ("ValueError", True)


def test_ascii_needs_grandalf(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_grandalf(name, *args, **kwargs):
        if name.startswith("grandalf"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_grandalf)
    with pytest.raises(ImportError, match="Install grandalf to draw graphs: `pip install grandalf`."):
        sequence(FG).get_graph().draw_ascii()


@pytest.mark.parametrize("method", ["api", "pyppeteer"])
def test_mermaid_png_refuses_the_network(method):
    from ferrograph.graph.draw import MermaidDrawMethod

    graph = sequence(FG).get_graph()
    with pytest.raises(ValueError, match="needs the network"):
        graph.draw_mermaid_png(draw_method=MermaidDrawMethod(method))
    with pytest.raises(ValueError, match="Invalid draw method"):
        graph.draw_mermaid_png(draw_method="svg")


def test_unknown_command_destination_is_refused_at_compile():
    Command = FG.Command

    def a(state) -> Command[Literal["nowhere"]]:
        return Command(goto="nowhere")

    for impl, error in ((LG, ValueError), (FG, ValueError)):
        g = impl.StateGraph(State)
        g.add_node("a", a if impl is FG else _lg_twin(a))
        g.add_edge(impl.START, "a")
        with pytest.raises(error, match="Found edge ending at unknown node `nowhere`"):
            g.compile()


def _lg_twin(fn):
    def a(state) -> LG.Command[Literal["nowhere"]]:
        return fn(state)

    return a


def test_command_is_generic_and_prints_as_langgraph():
    Command = FG.Command
    assert Command[Literal["a", "b"]] is not None
    assert repr(Command(goto="a", update={"x": 1})) == repr(LG.Command(goto="a", update={"x": 1}))
    assert repr(Command()) == repr(LG.Command()) == "Command()"
    assert Command.PARENT == LG.Command.PARENT


def test_bad_destinations_are_refused():
    from ferrograph.errors import GraphValidationError

    with pytest.raises(GraphValidationError, match="destinations of node 'a'"):
        FG.StateGraph(State).add_node("a", _noop, destinations="b")
