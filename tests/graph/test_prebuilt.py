"""`ferrograph.prebuilt` against `langgraph.prebuilt`, differentially: the same agent or tool
node program, driven by the same deterministic fake chat model that calls tools, must give the
same results, streams, checkpoints and errors on both. Scenarios ported from langgraph's
libs/prebuilt/tests/test_react_agent.py and test_tool_node.py."""

import asyncio
import dataclasses
from types import SimpleNamespace
from typing import Annotated, Any, Optional, Sequence, TypedDict

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import InjectedToolCallId, ToolException
from langchain_core.tools import tool as dec_tool
from pydantic import BaseModel

from difftest_harness import canon, load_ferrograph, load_langgraph

pytestmark = pytest.mark.filterwarnings("ignore:.*has been moved to .langchain.agents.*", "ignore:.*AgentState.*")


class FakeToolCallingModel(BaseChatModel):
    """Answers with its input's contents joined by '-', asking for the next of `tool_calls`."""

    tool_calls: Optional[list[list[dict]]] = None
    structured_response: Any = None
    index: int = 0

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        calls = self.tool_calls[self.index % len(self.tool_calls)] if self.tool_calls else []
        text = "-".join(str(m.content) for m in messages)
        message = AIMessage(content=text, id=str(self.index), tool_calls=list(calls))
        self.index += 1
        return ChatResult(generations=[ChatGeneration(message=message)])

    @property
    def _llm_type(self) -> str:
        return "fake-tool-calling"

    def with_structured_output(self, schema, **kwargs):
        return RunnableLambda(lambda _: self.structured_response)

    def bind_tools(self, tools, **kwargs):
        return self.bind(tools=[t if isinstance(t, dict) else {"type": "function", "function": {"name": t.name}} for t in tools])


def _impl(name):
    if name == "langgraph":
        from langgraph.checkpoint.memory import InMemorySaver
        from langgraph.prebuilt import InjectedState, ToolNode, create_react_agent, tools_condition
        from langgraph.types import Command, interrupt

        base = load_langgraph()
    else:
        from ferrograph.checkpointers import MemorySaver as InMemorySaver
        from ferrograph.prebuilt import InjectedState, ToolNode, create_react_agent, tools_condition
        from ferrograph.types import Command, interrupt

        base = load_ferrograph()
    return SimpleNamespace(
        **vars(base),
        InMemorySaver=InMemorySaver,
        InjectedState=InjectedState,
        ToolNode=ToolNode,
        create_react_agent=create_react_agent,
        tools_condition=tools_condition,
        interrupt=interrupt,
    )


LG = _impl("langgraph")
FG = _impl("ferrograph")


def same(program, *args):
    """Run `program(impl, *args)` on both; the canonical results (or errors) must match."""

    def outcome(impl):
        try:
            result = program(impl, *args)
            if asyncio.iscoroutine(result):
                result = asyncio.run(result)
            return _no_interrupt_ids(canon(result, impl))
        except Exception as exc:  # noqa: BLE001 - compared
            return {"error": type(exc).__name__, "message": str(exc).split("\nFor troubleshooting")[0]}

    expected = outcome(LG)
    assert outcome(FG) == expected
    return expected


def _no_interrupt_ids(value):
    """Interrupt ids hash task ids, which differ between the engines."""
    if isinstance(value, dict):
        if value.get("__dataclass__") == "Interrupt":
            # (LangGraph 1.2's Interrupt also has a response_schema field, None here)
            return {"__dataclass__": "Interrupt", "value": _no_interrupt_ids(value["value"]), "id": "<id>"}
        return {k: _no_interrupt_ids(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_interrupt_ids(v) for v in value]
    return value


@dec_tool
def get_weather(location: str) -> str:
    """Use this tool to get the weather."""
    return f"It's sunny in {location}!"


@dec_tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@dec_tool(return_direct=True)
def final_answer(answer: str) -> str:
    """Answer directly."""
    return f"final: {answer}"


PROMPTS = {
    "none": None,
    "system_message": SystemMessage(content="Foo"),
    "string": "Foo",
    "callable": lambda state: [HumanMessage(content=f"Bar {state['messages'][-1].content}")],
    "runnable": RunnableLambda(lambda state: [HumanMessage(content=f"Baz {state['messages'][-1].content}")]),
}


@pytest.mark.parametrize("prompt", list(PROMPTS))
def test_prompt(prompt):
    def program(impl):
        agent = impl.create_react_agent(FakeToolCallingModel(), [], prompt=PROMPTS[prompt])
        return agent.invoke({"messages": [HumanMessage("hi?")]})

    result = same(program)
    assert result["messages"][-1]["content"] in ("hi?", "Foo-hi?", "Bar hi?", "Baz hi?")


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_no_prompt_with_checkpointer_sync_and_async(version):
    def program(impl, aio):
        saver = impl.InMemorySaver()
        agent = impl.create_react_agent(FakeToolCallingModel(), [], checkpointer=saver, version=version)
        thread = {"configurable": {"thread_id": "123"}}

        async def run():
            result = await agent.ainvoke({"messages": [HumanMessage("hi?")]}, thread)
            return result, (await agent.aget_state(thread)).values

        if aio:
            result, values = asyncio.run(run())
        else:
            result = agent.invoke({"messages": [HumanMessage("hi?")]}, thread)
            values = agent.get_state(thread).values
        saved = saver.get_tuple(thread)
        return result, values, saved.metadata["step"], saved.metadata["source"], saved.pending_writes

    same(program, False)
    same(program, True)


TOOL_CALLS = [
    [{"args": {"location": "sf"}, "id": "1", "name": "get_weather"}, {"args": {"a": 2, "b": 3}, "id": "2", "name": "add"}],
    [{"args": {"location": "nyc"}, "id": "3", "name": "get_weather"}],
    [],
]


@pytest.mark.parametrize("bound", [False, True])
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_agent_calls_tools_until_it_answers(version, bound):
    def program(impl):
        model = FakeToolCallingModel(tool_calls=TOOL_CALLS)
        if bound:
            model = model.bind_tools([get_weather, add])
        agent = impl.create_react_agent(model, [get_weather, add], version=version)
        updates = list(agent.stream({"messages": [("user", "weather?")]}, stream_mode="updates"))
        # parallel tool tasks finish in any order: compare each step's updates as a set
        return agent.invoke({"messages": [("user", "weather?")]}), sorted(map(repr, map(lambda u: canon(u, impl), updates)))

    result = same(program)
    assert [m["__message__"] for m in result[0]["messages"]] == ["human", "ai", "tool", "tool", "ai", "tool", "ai"]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_agent_async(version):
    async def program(impl):
        agent = impl.create_react_agent(FakeToolCallingModel(tool_calls=TOOL_CALLS), [get_weather, add], version=version)
        return await agent.ainvoke({"messages": [("user", "weather?")]})

    same(program)


def test_bound_tools_must_match():
    def program(impl):
        model = FakeToolCallingModel().bind_tools([get_weather])
        return impl.create_react_agent(model, [get_weather, add])

    assert same(program)["error"] == "ValueError"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_structured_response(version):
    class WeatherResponse(BaseModel):
        temperature: float

    def program(impl):
        model = FakeToolCallingModel(tool_calls=TOOL_CALLS[1:], structured_response=WeatherResponse(temperature=75))
        agent = impl.create_react_agent(model, [get_weather], response_format=WeatherResponse, version=version)
        result = agent.invoke({"messages": [HumanMessage("What's the weather?")]})
        with_prompt = impl.create_react_agent(
            FakeToolCallingModel(structured_response=WeatherResponse(temperature=60)),
            [get_weather],
            response_format=("Answer in Fahrenheit", WeatherResponse),
            version=version,
        )
        return result, with_prompt.invoke({"messages": [HumanMessage("and now?")]})

    result = same(program)
    assert result[0]["structured_response"]["temperature"] == 75


class CustomState(TypedDict, total=False):
    messages: Annotated[list, None]
    user_name: Optional[str]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_tool_command_with_interrupt_and_injected_call_id(version):
    """test_react_agent_update_state: a tool interrupts, then returns a Command updating the
    state with its ToolMessage (InjectedToolCallId)."""

    def program(impl):
        @dec_tool
        def get_user_name(tool_call_id: Annotated[str, InjectedToolCallId]):
            """Retrieve user name"""
            user_name = impl.interrupt("Please provider user name:")
            return impl.Command(
                update={
                    "user_name": user_name,
                    "messages": [ToolMessage("Successfully retrieved user name", tool_call_id=tool_call_id)],
                }
            )

        class State(TypedDict, total=False):
            messages: Annotated[Sequence[BaseMessage], impl.add_messages]
            user_name: Optional[str]
            remaining_steps: int

        def prompt(state):
            if state.get("user_name") is None:
                return state["messages"]
            return [{"role": "system", "content": f"User name is {state['user_name']}"}] + state["messages"]

        model = FakeToolCallingModel(tool_calls=[[{"args": {}, "id": "1", "name": "get_user_name"}], []])
        agent = impl.create_react_agent(
            model, [get_user_name], state_schema=State, prompt=prompt, checkpointer=impl.InMemorySaver(), version=version
        )
        config = {"configurable": {"thread_id": "1"}}
        first = agent.invoke({"messages": [("user", "what's my name")]}, config)
        return first, agent.invoke(impl.Command(resume="Archibald"), config)

    result = same(program)
    assert result[1]["user_name"] == "Archibald"
    assert result[1]["messages"][-2]["name"] == "get_user_name"


def test_parallel_tool_calls_with_an_interrupt():
    """test_react_agent_parallel_tool_calls (v2: each call its own task, only the
    interrupted one runs again)."""

    def program(impl):
        counts = {"help": 0, "weather": 0}

        @dec_tool
        def human_assistance(query: str) -> str:
            """Request assistance from a human."""
            answer = impl.interrupt({"query": query})
            counts["help"] += 1
            return answer["data"]

        @dec_tool
        def weather(location: str) -> str:
            """Use this tool to get the weather."""
            counts["weather"] += 1
            return "It's sunny!"

        calls = [
            [
                {"args": {"location": "sf"}, "id": "1", "name": "weather"},
                {"args": {"query": "request help"}, "id": "2", "name": "human_assistance"},
            ],
            [],
        ]
        agent = impl.create_react_agent(
            FakeToolCallingModel(tool_calls=calls), [human_assistance, weather], checkpointer=impl.InMemorySaver()
        )
        config = {"configurable": {"thread_id": "1"}}
        paused = agent.invoke({"messages": [("user", "help")]}, config)
        state = agent.get_state(config)
        done = agent.invoke(impl.Command(resume={"data": "Hello"}), config)
        return paused, state.next, [m.type for m in state.values["messages"]], done, counts

    result = same(program)
    assert result[4] == {"help": 1, "weather": 1}


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_interrupt_before_tools_then_resume(version):
    def program(impl):
        agent = impl.create_react_agent(
            FakeToolCallingModel(tool_calls=TOOL_CALLS),
            [get_weather, add],
            checkpointer=impl.InMemorySaver(),
            interrupt_before=["tools"],
            version=version,
        )
        config = {"configurable": {"thread_id": "t"}}
        paused = agent.invoke({"messages": [("user", "weather?")]}, config)
        state = agent.get_state(config)
        resumed = agent.invoke(None, config)
        return paused, state.next, resumed, agent.get_state(config).next

    result = same(program)
    assert result[1] == ["tools"] * (2 if version == "v2" else 1)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_return_direct(version):
    def program(impl):
        calls = [[{"args": {"answer": "42"}, "id": "1", "name": "final_answer"}], []]
        agent = impl.create_react_agent(FakeToolCallingModel(tool_calls=calls), [final_answer, add], version=version)
        return agent.invoke({"messages": [("user", "q")]})

    result = same(program)
    assert result["messages"][-1]["content"] == "final: 42"


def test_history_without_tool_answers_is_refused():
    def program(impl):
        agent = impl.create_react_agent(FakeToolCallingModel(), [add])
        dangling = AIMessage(content="", tool_calls=[{"args": {"a": 1, "b": 2}, "id": "9", "name": "add"}])
        return agent.invoke({"messages": [HumanMessage("x"), dangling]})

    assert same(program)["error"] == "ValueError"


@pytest.mark.parametrize("missing", ["messages", "remaining_steps"])
def test_state_schema_needs_its_keys(missing):
    class Full(TypedDict):
        messages: list
        remaining_steps: int

    schema = TypedDict("Partial", {k: v for k, v in Full.__annotations__.items() if k != missing})

    def program(impl):
        return impl.create_react_agent(FakeToolCallingModel(), [add], state_schema=schema)

    assert same(program)["error"] == "ValueError"


def test_tools_condition_in_a_hand_built_graph():
    def program(impl):
        model = FakeToolCallingModel(tool_calls=TOOL_CALLS).bind_tools([get_weather, add])

        def chatbot(state):
            return {"messages": [model.invoke(state["messages"])]}

        g = impl.StateGraph(impl.MessagesState)
        g.add_node("chatbot", chatbot)
        g.add_node("tools", impl.ToolNode([get_weather, add]))
        g.add_edge(impl.START, "chatbot")
        g.add_conditional_edges("chatbot", impl.tools_condition)
        g.add_edge("tools", "chatbot")
        app = g.compile()
        return app.invoke({"messages": [("user", "go")]}), app.get_graph().draw_mermaid()

    same(program)


def _tool_node_on(impl, tools, message, **kwargs):
    node = impl.ToolNode(tools, **kwargs)
    g = impl.StateGraph(impl.MessagesState)
    g.add_node("tools", node)
    g.add_edge(impl.START, "tools")
    return g.compile().invoke({"messages": [message]})


def _calls(*calls):
    return AIMessage("", tool_calls=[{"name": n, "args": a, "id": i} for n, a, i in calls])


@dec_tool
def fails(some_val: int) -> str:
    """Always fails."""
    raise ValueError("Test error")


@dec_tool
def fails_with_tool_exception(some_val: int) -> str:
    """Raises a ToolException."""
    raise ToolException("Tool error")


ERROR_HANDLING = {
    "default-invocation-error": dict(tools=[add], call=("add", {"a": "not a number", "b": 1}, "1"), kwargs={}),
    "default-exception-raises": dict(tools=[fails], call=("fails", {"some_val": 0}, "1"), kwargs={}),
    "true": dict(tools=[fails], call=("fails", {"some_val": 0}, "1"), kwargs=dict(handle_tool_errors=True)),
    "string": dict(tools=[fails], call=("fails", {"some_val": 0}, "1"), kwargs=dict(handle_tool_errors="oops")),
    "callable": dict(
        tools=[fails], call=("fails", {"some_val": 0}, "1"), kwargs=dict(handle_tool_errors=lambda e: f"handled: {e}")
    ),
    "types-match": dict(tools=[fails], call=("fails", {"some_val": 0}, "1"), kwargs=dict(handle_tool_errors=(ValueError,))),
    "types-miss": dict(tools=[fails], call=("fails", {"some_val": 0}, "1"), kwargs=dict(handle_tool_errors=(KeyError,))),
    "false": dict(tools=[add], call=("add", {"a": "x", "b": 1}, "1"), kwargs=dict(handle_tool_errors=False)),
    "tool-exception": dict(
        tools=[fails_with_tool_exception], call=("fails_with_tool_exception", {"some_val": 0}, "1"), kwargs={}
    ),
    "unknown-tool": dict(tools=[add], call=("nope", {"a": 1}, "1"), kwargs={}),
    "utf8-and-json": dict(tools=[dec_tool(lambda s: {"text": "héllo " + s}, description="x")], call=None, kwargs={}),
}


@pytest.mark.parametrize("case", list(ERROR_HANDLING))
def test_tool_node_error_handling(case):
    spec = ERROR_HANDLING[case]

    def program(impl):
        tools = spec["tools"]
        call = spec["call"] or (tools[0].name, {"s": "wörld"}, "1")
        return _tool_node_on(impl, tools, _calls(call), **spec["kwargs"])

    same(program)


def test_tool_node_on_lists_and_tool_calls_async():
    async def program(impl):
        node = impl.ToolNode([get_weather, add])
        message = _calls(("get_weather", {"location": "sf"}, "1"), ("add", {"a": 1, "b": 2}, "2"))
        g = impl.StateGraph(impl.MessagesState)
        g.add_node("tools", node)
        g.add_edge(impl.START, "tools")
        return await g.compile().ainvoke({"messages": [message]})

    same(program)


@pytest.mark.parametrize("kind", ["typeddict", "pydantic", "dataclass"])
def test_tool_node_injects_state(kind):
    """test_tool_node_inject_state, on the three kinds of state schema."""

    def program(impl):
        if kind == "typeddict":

            class S(TypedDict):
                messages: Annotated[list, impl.add_messages]
                foo: str

        elif kind == "pydantic":

            class S(BaseModel):  # type: ignore[no-redef]
                messages: Annotated[list, impl.add_messages]
                foo: str

        else:

            @dataclasses.dataclass
            class S:  # type: ignore[no-redef]
                messages: Annotated[list, impl.add_messages]
                foo: str

        @dec_tool
        def whole(some_val: int, state: Annotated[Any, impl.InjectedState]) -> str:
            """Reads the whole state."""
            foo = state["foo"] if isinstance(state, dict) else state.foo
            return f"{foo}{some_val}"

        @dec_tool
        def one_key(some_val: int, foo: Annotated[str, impl.InjectedState("foo")]) -> str:
            """Reads one key."""
            return f"{foo}:{some_val}"

        g = impl.StateGraph(S)
        g.add_node("tools", impl.ToolNode([whole, one_key]))
        g.add_edge(impl.START, "tools")
        message = _calls(("whole", {"some_val": 1}, "1"), ("one_key", {"some_val": 2}, "2"))
        return g.compile().invoke({"messages": [message], "foo": "bar"})

    result = same(program)
    assert [m["content"] for m in result["messages"][1:]] == ["bar1", "bar:2"]


def test_tool_node_messages_key():
    def program(impl):
        class S(TypedDict):
            subgraph_messages: Annotated[list, impl.add_messages]

        model = FakeToolCallingModel(tool_calls=TOOL_CALLS)

        def chat(state):
            return {"subgraph_messages": [model.invoke(state["subgraph_messages"])]}

        g = impl.StateGraph(S)
        g.add_node("agent", chat)
        g.add_node("tools", impl.ToolNode([get_weather, add], messages_key="subgraph_messages"))
        g.add_edge(impl.START, "agent")
        g.add_conditional_edges("agent", lambda s: impl.tools_condition(s, messages_key="subgraph_messages"))
        g.add_edge("tools", "agent")
        return g.compile().invoke({"subgraph_messages": [("user", "hi")]})

    same(program)


def test_tool_command_must_answer_its_call():
    def program(impl):
        @dec_tool
        def silent(tool_call_id: Annotated[str, InjectedToolCallId]):
            """Updates nothing it should."""
            return impl.Command(update={"messages": [ToolMessage("other", tool_call_id="not-mine")]})

        return _tool_node_on(impl, [silent], _calls(("silent", {}, "1")))

    assert same(program)["error"] == "ValueError"


def test_tool_command_goto():
    def program(impl):
        @dec_tool
        def transfer(tool_call_id: Annotated[str, InjectedToolCallId]):
            """Hands over."""
            return impl.Command(
                update={"messages": [ToolMessage("moved", tool_call_id=tool_call_id)]}, goto="after"
            )

        g = impl.StateGraph(impl.MessagesState)
        g.add_node("tools", impl.ToolNode([transfer]))
        g.add_node("after", lambda s: {"messages": [AIMessage("after", id="after")]})
        g.add_edge(impl.START, "tools")
        return g.compile().invoke({"messages": [_calls(("transfer", {}, "1"))]})

    same(program)


def test_prebuilt_needs_langchain_core(monkeypatch):
    import builtins
    import importlib
    import sys

    real_import = builtins.__import__

    def without_langchain(name, *args, **kwargs):
        if name.startswith("langchain_core"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    for module in [m for m in sys.modules if m.startswith("ferrograph.prebuilt")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setattr(builtins, "__import__", without_langchain)
    with pytest.raises(ImportError, match=r'pip install "ferrograph\[prebuilt\]"'):
        importlib.import_module("ferrograph.prebuilt")


@dec_tool
async def async_weather(location: str) -> str:
    """Weather, from a coroutine-only tool."""
    await asyncio.sleep(0)
    return f"async sunny in {location}"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_coroutine_tools(version):
    """A tool with only a coroutine, under ainvoke: LangGraph awaits it, ferrograph's tool
    node (a sync node, on a worker thread) runs it on an event loop of its own."""

    async def program(impl):
        calls = [[{"args": {"location": "sf"}, "id": "1", "name": "async_weather"}], []]
        agent = impl.create_react_agent(FakeToolCallingModel(tool_calls=calls), [async_weather], version=version)
        return await agent.ainvoke({"messages": [("user", "q")]})

    result = same(program)
    assert result["messages"][2]["content"] == "async sunny in sf"
