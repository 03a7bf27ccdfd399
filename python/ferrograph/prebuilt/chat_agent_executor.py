"""`create_react_agent`: a chat model that calls tools in a loop until it answers without
tool calls (langgraph-prebuilt 1.1.3's graph: an "agent" node, a "tools" node reached by one
`Send` per tool call, an optional "generate_structured_response" node), on ferrograph's engine.
"""

from __future__ import annotations

import inspect
import typing
from typing import Annotated, Any, Callable, Literal, Optional, Sequence, TypedDict, Union

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableBinding, RunnableLambda, RunnableSequence
from langchain_core.tools import BaseTool

from ferrograph.graph import END, StateGraph
from ferrograph.graph.message import add_messages
from ferrograph.graph.pregel import CompiledStateGraph
from ferrograph.prebuilt.tool_node import ToolNode
from ferrograph.types import Send

__all__ = ["AgentState", "AgentStateWithStructuredResponse", "create_react_agent"]

Prompt = Union[SystemMessage, str, Callable[[Any], Any], Runnable]


class AgentState(TypedDict):
    """The agent's state: the conversation."""

    messages: Annotated[Sequence[BaseMessage], add_messages]


class AgentStateWithStructuredResponse(AgentState):
    """The agent's state when it also answers in a `response_format`."""

    structured_response: Any


def _state_value(state: Any, key: str, default: Any = None) -> Any:
    return state.get(key, default) if isinstance(state, dict) else getattr(state, key, default)


def _prompt_runnable(prompt: Optional[Prompt]) -> Runnable:
    """What turns the state into the model's input: its messages, after a system prompt."""
    if prompt is None:
        return RunnableLambda(lambda state: _state_value(state, "messages"), name="Prompt")
    if isinstance(prompt, str):
        prompt = SystemMessage(content=prompt)
    if isinstance(prompt, SystemMessage):
        system = prompt
        return RunnableLambda(lambda state: [system] + list(_state_value(state, "messages")), name="Prompt")
    if isinstance(prompt, Runnable):
        return prompt
    if inspect.iscoroutinefunction(prompt):
        raise ValueError("An async `prompt` function needs a sync twin: ferrograph's agent nodes run the prompt synchronously")
    if callable(prompt):
        return RunnableLambda(prompt, name="Prompt")
    raise ValueError(f"Got unexpected type for `prompt`: {type(prompt)}")


def _unwrap(model: Any) -> Any:
    if isinstance(model, RunnableSequence):
        model = next((s for s in model.steps if isinstance(s, (RunnableBinding, BaseChatModel))), model)
    return model


def _needs_binding(model: Any, tools: Sequence[BaseTool], builtin: int) -> bool:
    """Whether the model still needs `bind_tools`; a model already bound must have bound
    exactly these tools."""
    model = _unwrap(model)
    if not isinstance(model, RunnableBinding) or "tools" not in model.kwargs:
        return True
    bound = model.kwargs["tools"]
    if len(tools) != len(bound) - builtin:
        raise ValueError(
            "Number of tools in the model.bind_tools() and tools passed to create_react_agent must match"
            f" Got {len(tools)} tools, expected {len(bound) - builtin}"
        )
    names = set()
    for spec in bound:
        if spec.get("type") == "function":
            names.add(spec["function"]["name"])
        elif spec.get("name"):
            names.add(spec["name"])
    if missing := {t.name for t in tools} - names:
        raise ValueError(f"Missing tools '{missing}' in the model.bind_tools()")
    return False


def _chat_model(model: Any) -> BaseChatModel:
    model = _unwrap(model)
    if isinstance(model, RunnableBinding):
        model = model.bound
    if not isinstance(model, BaseChatModel):
        raise TypeError(
            f"Expected `model` to be a ChatModel or RunnableBinding (e.g. model.bind_tools(...)), got {type(model)}"
        )
    return model


def _check_history(messages: Sequence[BaseMessage]) -> None:
    """Every tool call in the history must have its ToolMessage (chat APIs refuse it otherwise)."""
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    missing = [c for m in messages if isinstance(m, AIMessage) for c in m.tool_calls if c["id"] not in answered]
    if missing:
        raise ValueError(
            "Found AIMessages with tool_calls that do not have a corresponding ToolMessage. "
            f"Here are the first few of those tool calls: {missing[:3]}.\n\n"
            "Every tool call (LLM requesting to call a tool) in the message history MUST have a corresponding "
            "ToolMessage (result of a tool invocation to return to the LLM) - this is required by most LLM providers."
        )


def create_react_agent(
    model: Union[BaseChatModel, Runnable],
    tools: Union[Sequence[Union[BaseTool, Callable[..., Any], dict[str, Any]]], ToolNode],
    *,
    prompt: Optional[Prompt] = None,
    response_format: Any = None,
    state_schema: Optional[type] = None,
    checkpointer: Any = None,
    interrupt_before: Optional[list[str]] = None,
    interrupt_after: Optional[list[str]] = None,
    debug: bool = False,
    version: Literal["v1", "v2"] = "v2",
    name: Optional[str] = None,
) -> CompiledStateGraph:
    """A graph that calls `model` (a LangChain chat model, bound to `tools` here unless it
    already is) and runs the tools it asks for, until it answers without tool calls.

    `prompt`: a system message (or its text), a function of the state returning the
    model's input, or a Runnable. `response_format`: a schema (or `(system prompt, schema)`)
    the final answer is also given in, as `structured_response`. `state_schema` must have
    `messages` and `remaining_steps` (and `structured_response` with a response format). `version="v2"` runs each
    tool call as its own task (`Send`), "v1" all in one. The graph is compiled with
    `checkpointer`, `interrupt_before`/`interrupt_after` (e.g. `["tools"]`) and `name`.
    """
    if version not in ("v1", "v2"):
        raise ValueError(f"Invalid version {version}. Supported versions are 'v1' and 'v2'.")
    if state_schema is not None:
        # As LangGraph: `remaining_steps` too (its managed step budget; not read here yet).
        required = {"messages", "remaining_steps"} | ({"structured_response"} if response_format is not None else set())
        if missing := required - set(typing.get_type_hints(state_schema)):
            raise ValueError(f"Missing required key(s) {missing} in state_schema")
    else:
        state_schema = AgentStateWithStructuredResponse if response_format is not None else AgentState
    if isinstance(model, str) or not isinstance(model, Runnable):
        raise TypeError(
            f"create_react_agent takes a LangChain chat model (or a Runnable around one), got {type(model).__name__}"
        )

    builtin: list[dict] = []
    if isinstance(tools, ToolNode):
        tool_node = tools
    else:
        builtin = [t for t in tools if isinstance(t, dict)]
        tool_node = ToolNode([t for t in tools if not isinstance(t, dict)])
    tool_list = list(tool_node.tools_by_name.values())
    if _needs_binding(model, tool_list, len(builtin)) and (tool_list or builtin):
        model = model.bind_tools([*tool_list, *builtin])  # type: ignore[union-attr]
    model_runnable = _prompt_runnable(prompt) | model
    return_direct = {t.name for t in tool_list if t.return_direct}

    def call_model(state: Any, config: Any) -> dict:
        messages = _state_value(state, "messages")
        if messages is None:
            raise ValueError(f"Expected input to call_model to have 'messages' key, but got {state}")
        _check_history(messages)
        response = model_runnable.invoke(state, config)
        response.name = name
        return {"messages": [response]}

    def generate_structured_response(state: Any, config: Any) -> dict:
        messages = list(_state_value(state, "messages"))
        schema = response_format
        if isinstance(response_format, tuple):
            system_prompt, schema = response_format
            messages = [SystemMessage(content=system_prompt), *messages]
        structured = _chat_model(model).with_structured_output(schema)
        return {"structured_response": structured.invoke(messages, config)}

    graph = StateGraph(state_schema)
    graph.add_node("agent", call_model)
    graph.set_entry_point("agent")
    if response_format is not None:
        graph.add_node("generate_structured_response", generate_structured_response)
    finish = "generate_structured_response" if response_format is not None else END
    if not tool_list:
        if response_format is not None:
            graph.add_edge("agent", "generate_structured_response")
        return graph.compile(
            checkpointer=checkpointer, interrupt_before=interrupt_before, interrupt_after=interrupt_after, debug=debug, name=name
        )

    def should_continue(state: Any) -> Union[str, list[Send]]:
        last = _state_value(state, "messages")[-1]
        if not isinstance(last, AIMessage) or not last.tool_calls:
            return finish
        if version == "v1":
            return "tools"
        return [
            Send("tools", {"__type": "tool_call_with_context", "tool_call": call, "state": state}) for call in last.tool_calls
        ]

    graph.add_node("tools", tool_node)
    graph.add_conditional_edges("agent", should_continue, path_map=["tools", finish])

    def route_tool_responses(state: Any) -> str:
        message: Any = None
        for message in reversed(_state_value(state, "messages")):
            if not isinstance(message, ToolMessage):
                break
            if message.name in return_direct:
                return END
        if isinstance(message, AIMessage) and any(c["name"] in return_direct for c in message.tool_calls):
            return END
        return "agent"

    if return_direct:
        graph.add_conditional_edges("tools", route_tool_responses, path_map=["agent", END])
    else:
        graph.add_edge("tools", "agent")
    return graph.compile(
        checkpointer=checkpointer, interrupt_before=interrupt_before, interrupt_after=interrupt_after, debug=debug, name=name
    )
