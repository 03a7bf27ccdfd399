"""`stream_mode="messages"`, differentially: the same graphs with LangChain fake chat models
inside their nodes, on LangGraph and on ferrograph, sync and async, must stream the same
`(message chunk, metadata)` pairs (task ids aside), in the same order per node, alone and
mixed with other modes."""

import asyncio
import operator
import re
from typing import Annotated, TypedDict

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.tools import tool as dec_tool

from difftest_harness import canon, load_ferrograph, load_langgraph

LG = load_langgraph()
FG = load_ferrograph()

pytestmark = pytest.mark.filterwarnings("ignore:.*has been moved to .langchain.agents.*")

_TASK_ID = re.compile(r"^([^:]+):[0-9a-f-]{36}$")


def _meta(metadata):
    """Metadata as compared: task ids (in the checkpoint namespaces) differ between engines."""
    out = {}
    for key, value in metadata.items():
        if key in ("langgraph_checkpoint_ns", "checkpoint_ns") and isinstance(value, str):
            value = _TASK_ID.sub(r"\1:<task>", value)
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def _chunk(item, impl):
    mode, payload = item if isinstance(item, tuple) and item and isinstance(item[0], str) else ("messages", item)
    if mode != "messages":
        return [mode, canon(payload, impl)]
    message, metadata = payload
    body = canon(message, impl)
    if str(body.get("id")).startswith("lc_run--"):  # LangChain's id of a model run, a uuid
        body["id"] = "<run>"
    return ["messages", body, type(message).__name__, _meta(metadata)]


def model(*replies):
    return GenericFakeChatModel(messages=iter([AIMessage(r, id=f"m{i}") if isinstance(r, str) else r for i, r in enumerate(replies)]))


def chat_graph(impl, aio=False):
    """A node calling a model (no config passed), a node returning a whole message without
    id, a node passing its config on, and a node echoing an input message."""
    first = model("hello there world")
    second = model("with config passed")

    def call(state):
        return {"messages": [first.invoke(state["messages"])]}

    async def acall(state):
        return {"messages": [await first.ainvoke(state["messages"])]}

    def whole(state):
        return {"messages": [AIMessage("a whole message")]}

    def with_config(state, config):
        return {"messages": [second.invoke(state["messages"], config)]}

    def echo(state):
        return {"messages": [state["messages"][0]]}

    g = impl.StateGraph(impl.MessagesState)
    g.add_node("call", acall if aio else call, metadata={"team": "a"})
    g.add_node("whole", whole)
    g.add_node("with_config", with_config)
    g.add_node("echo", echo)
    g.add_edge(impl.START, "call")
    g.add_edge("call", "whole")
    g.add_edge("whole", "with_config")
    g.add_edge("with_config", "echo")
    return g.compile()


CONFIG = {"configurable": {"thread_id": "t1", "user": "u"}, "metadata": {"run": "r"}, "tags": ["mine"]}


def _run(impl, build, modes, aio, config=CONFIG, input=None):
    graph = build(impl, aio) if build.__code__.co_argcount > 1 else build(impl)
    input = input or {"messages": [HumanMessage("hi", id="h1")]}
    if aio:

        async def go():
            return [c async for c in graph.astream(input, config, stream_mode=modes)]

        chunks = asyncio.run(go())
    else:
        chunks = list(graph.stream(input, config, stream_mode=modes))
    return [_chunk(c, impl) for c in chunks]


@pytest.mark.parametrize("aio", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("modes", ["messages", ["messages", "updates"], ["values", "messages"]], ids=str)
def test_messages_stream_same_as_langgraph(modes, aio):
    expected = _run(LG, chat_graph, modes, aio)
    assert _run(FG, chat_graph, modes, aio) == expected
    streamed = [c for c in expected if c[0] == "messages"]
    assert [c[2] for c in streamed] == ["AIMessageChunk"] * 5 + ["AIMessage"] + ["AIMessageChunk"] * 5
    assert streamed[0][3]["langgraph_node"] == "call" and streamed[0][3]["team"] == "a"


def parallel_graph(impl):
    """Two nodes of one step stream at once; a model tagged nostream is not streamed (its
    message still comes when the node returns)."""

    class S(TypedDict):
        messages: Annotated[list, operator.add]

    left = model("left side tokens")
    right = GenericFakeChatModel(messages=iter([AIMessage("right side", id="r0")])).with_config(tags=["nostream"])

    def a(state):
        return {"messages": [left.invoke("x")]}

    def b(state):
        return {"messages": [right.invoke("y")]}

    g = impl.StateGraph(S)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_edge(impl.START, "a")
    g.add_edge(impl.START, "b")
    return g.compile()


@pytest.mark.parametrize("aio", [False, True], ids=["sync", "async"])
def test_parallel_nodes_and_nostream(aio):
    def per_node(chunks):
        nodes: dict = {}
        for c in chunks:
            nodes.setdefault(c[3]["langgraph_node"], []).append(c)
        return nodes

    expected = per_node(_run(LG, parallel_graph, "messages", aio, input={"messages": []}))
    assert per_node(_run(FG, parallel_graph, "messages", aio, input={"messages": []})) == expected
    assert [c[2] for c in expected["b"]] == ["AIMessage"]


class StreamingToolModel(BaseChatModel):
    """Streams a tool call first (as one chunk), then a three-word answer."""

    turn: int = 0

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        chunks = list(self._stream(messages, stop, run_manager, **kwargs))
        merged = chunks[0].message
        for chunk in chunks[1:]:
            merged = merged + chunk.message
        return ChatResult(generations=[ChatGeneration(message=merged)])

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        self.turn += 1
        if self.turn == 1:
            call = {"name": "lookup", "args": '{"q": "x"}', "id": "call1", "index": 0}
            chunks = [AIMessageChunk(content="", id="c1", tool_call_chunks=[call])]
        else:
            chunks = [AIMessageChunk(content=w, id="d1") for w in ("all ", "done ", "now")]
        for chunk in chunks:
            if run_manager:
                run_manager.on_llm_new_token(chunk.content, chunk=ChatGenerationChunk(message=chunk))
            yield ChatGenerationChunk(message=chunk)

    @property
    def _llm_type(self):
        return "streaming-tool-model"

    def bind_tools(self, tools, **kwargs):
        return self


def test_react_agent_streams_model_and_tool_messages():
    @dec_tool
    def lookup(q: str) -> str:
        """Look something up."""
        return f"found {q}"

    def run(impl):
        if impl is LG:
            from langgraph.prebuilt import create_react_agent
        else:
            from ferrograph.prebuilt import create_react_agent

        agent = create_react_agent(StreamingToolModel(), [lookup])
        return [_chunk(c, impl) for c in agent.stream({"messages": [("user", "go")]}, CONFIG, stream_mode="messages")]

    expected = run(LG)
    assert run(FG) == expected
    kinds = [(c[2], c[3]["langgraph_node"]) for c in expected]
    assert ("ToolMessage", "tools") in kinds
    assert kinds[kinds.index(("ToolMessage", "tools")) + 1 :] == [("AIMessageChunk", "agent")] * 4  # 3 words + the closing chunk


def test_commands_and_messages_as_updates():
    def run(impl):
        def node(state):
            return impl.Command(update={"messages": [ToolMessage("from a command", tool_call_id="1", id="t1")]}, goto="last")

        def last(state):
            return {"messages": AIMessage("single, not in a list", id="s1")}

        g = impl.StateGraph(impl.MessagesState)
        g.add_node("node", node)
        g.add_node("last", last)
        g.add_edge(impl.START, "node")
        return [_chunk(c, impl) for c in g.compile().stream({"messages": []}, stream_mode="messages")]

    assert run(FG) == run(LG)


def test_graph_without_chat_models_streams_nothing(monkeypatch):
    """Without langchain-core (simulated: the module finds no BaseMessage) the mode still runs
    the graph and streams nothing; with it, dict messages are not streamed either."""
    from ferrograph.graph import _messages

    def run(impl):
        g = impl.StateGraph(impl.MessagesState)
        g.add_node("a", lambda s: {"messages": [{"role": "ai", "content": "x"}]})
        g.add_edge(impl.START, "a")
        return list(g.compile().stream({"messages": []}, stream_mode=["messages", "values"]))

    with_langchain = run(FG)
    assert [m for m, _ in with_langchain if m == "messages"] == [m for m, _ in run(LG) if m == "messages"]
    monkeypatch.setattr(_messages, "BaseMessage", None)

    class S(TypedDict):
        log: Annotated[list, operator.add]

    g = FG.StateGraph(S)
    g.add_node("a", lambda s: {"log": ["ran"]})
    g.add_edge(FG.START, "a")
    assert list(g.compile().stream({"log": []}, stream_mode=["messages", "values"])) == [
        ("values", {"log": []}),
        ("values", {"log": ["ran"]}),
    ]


def test_node_config_carries_the_task_metadata():
    seen = {}

    def run(impl):
        def node(state, config):
            seen[impl.name] = {k: v for k, v in config["metadata"].items() if k.startswith("langgraph_")}
            return None

        g = impl.StateGraph(impl.MessagesState)
        g.add_node("node", node)
        g.add_edge(impl.START, "node")
        list(g.compile().stream({"messages": []}, stream_mode="messages"))
        return _meta(seen[impl.name])

    assert run(FG) == run(LG)


@pytest.mark.parametrize("aio", [False, True], ids=["sync", "async"])
def test_messages_with_a_checkpointer_an_interrupt_and_a_resume(aio):
    """The node streams its model's tokens, pauses on interrupt(), and on resume streams again
    (a new model reply) before returning."""

    def run(impl):
        if impl is LG:
            from langgraph.checkpoint.memory import InMemorySaver
            from langgraph.types import Command, interrupt
        else:
            from ferrograph.checkpointers import MemorySaver as InMemorySaver
            from ferrograph.types import Command, interrupt

        chat = model("first reply here", "second reply")

        def ask(state):
            draft = chat.invoke(state["messages"])
            answer = interrupt("approve?")
            return {"messages": [draft, AIMessage(f"approved: {answer}", id="ok")]}

        g = impl.StateGraph(impl.MessagesState)
        g.add_node("ask", ask)
        g.add_edge(impl.START, "ask")
        app = g.compile(checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": "t"}}

        async def astream(value):
            return [c async for c in app.astream(value, config, stream_mode=["messages", "updates"])]

        out = []
        for value in ({"messages": [HumanMessage("hi", id="h")]}, Command(resume="yes")):
            chunks = asyncio.run(astream(value)) if aio else list(app.stream(value, config, stream_mode=["messages", "updates"]))
            out.append([_chunk(c, impl) for c in chunks if c[0] == "messages"])
        return out

    expected = run(LG)
    assert run(FG) == expected
    assert len(expected[1]) > 0
