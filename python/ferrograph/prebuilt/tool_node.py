"""`ToolNode` runs the tool calls of the latest AI message and answers each with a
ToolMessage (or the `Command` a tool returns); `tools_condition` routes to it while the last
message asks for tools. Behaviour follows langgraph-prebuilt 1.1.3's: the same inputs (a
state with messages, a list of messages, or one tool call sent with its state by
`create_react_agent`), the same outputs, the same error messages.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import typing
from typing import Any, Callable, Literal, Optional, Sequence, Union

from langchain_core.messages import AIMessage, RemoveMessage, ToolCall, ToolMessage, convert_to_messages
from langchain_core.tools import BaseTool, InjectedToolArg
from langchain_core.tools import tool as create_tool
from pydantic import ValidationError

from ferrograph.errors import GraphInterrupt
from ferrograph.graph.message import REMOVE_ALL_MESSAGES
from ferrograph.types import Command, Send

__all__ = ["ToolNode", "tools_condition", "InjectedState", "msg_content_output"]

INVALID_TOOL_NAME_ERROR_TEMPLATE = "Error: {requested_tool} is not a valid tool, try one of [{available_tools}]."
TOOL_CALL_ERROR_TEMPLATE = "Error: {error}\n Please fix your mistakes."
TOOL_INVOCATION_ERROR_TEMPLATE = (
    "Error invoking tool '{tool_name}' with kwargs {tool_kwargs} with error:\n {error}\n Please fix the error and try again."
)
#: Content blocks a ToolMessage may carry as they are.
_BLOCK_TYPES = ("text", "image_url", "image", "json", "search_result", "custom_tool_call_output", "document", "file")

ErrorHandling = Union[bool, str, Callable[..., str], type[Exception], tuple[type[Exception], ...]]
InputKind = Literal["list", "dict", "tool_calls"]


class InjectedState(InjectedToolArg):
    """Annotates a tool argument filled from the graph's state, unseen by the model: the
    whole state, or its key `field`."""

    def __init__(self, field: Optional[str] = None) -> None:
        self.field = field


class ToolInvocationError(Exception):
    """A tool was called with arguments its schema refuses (the model sees the message)."""

    def __init__(self, tool_name: str, source: ValidationError, tool_kwargs: dict[str, Any], injected: set[str]) -> None:
        errors = [e for e in source.errors() if not (e.get("loc") and e["loc"][0] in injected)]
        details = "\n".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'Unknown error')}" for e in errors)
        self.message = TOOL_INVOCATION_ERROR_TEMPLATE.format(tool_name=tool_name, tool_kwargs=tool_kwargs, error=details)
        self.tool_name, self.tool_kwargs, self.source = tool_name, tool_kwargs, source
        super().__init__(self.message)


def msg_content_output(output: Any) -> Union[str, list]:
    """A tool's result as ToolMessage content: text and content blocks as they are,
    anything else as JSON (or its str when it is not JSON)."""
    if isinstance(output, str) or (
        isinstance(output, list) and all(isinstance(x, dict) and x.get("type") in _BLOCK_TYPES for x in output)
    ):
        return output
    try:
        return json.dumps(output, ensure_ascii=False)
    except Exception:
        return str(output)


def _raise_unless_invocation_error(e: Exception) -> str:
    """The default error handling: bad arguments go back to the model; any other error
    stops the run."""
    if isinstance(e, ToolInvocationError):
        return e.message
    raise e


def _handled_types(flag: ErrorHandling) -> tuple[type[Exception], ...]:
    if isinstance(flag, type) and issubclass(flag, Exception):
        return (flag,)
    if isinstance(flag, tuple):
        return flag
    if callable(flag) and not isinstance(flag, type):
        return _annotated_exceptions(flag)
    return (Exception,)


def _annotated_exceptions(handler: Callable[..., str]) -> tuple[type[Exception], ...]:
    """The exception types a handler's first parameter is annotated with (all by default)."""
    try:
        params = list(inspect.signature(handler).parameters.values())
        hints = typing.get_type_hints(handler)
    except (TypeError, ValueError, NameError):
        return (Exception,)
    if not params or params[0].name not in hints:
        return (Exception,)
    hint = hints[params[0].name]
    types = typing.get_args(hint) if typing.get_origin(hint) is Union else (hint,)
    if all(isinstance(t, type) and issubclass(t, Exception) for t in types):
        return tuple(types)
    raise ValueError(
        f"All types in the error handler error annotation must be Exception types. For example, "
        f"`def custom_handler(e: Union[ValueError, TypeError])`. Got '{hint}' instead."
    )


def _error_content(e: Exception, flag: ErrorHandling) -> str:
    if isinstance(flag, (bool, tuple)) or (isinstance(flag, type) and issubclass(flag, Exception)):
        return TOOL_CALL_ERROR_TEMPLATE.format(error=repr(e))
    if isinstance(flag, str):
        return flag
    if callable(flag):
        content: str = flag(e)  # type: ignore[call-arg,assignment]
        return content
    raise ValueError(f"Got unexpected type of `handle_tool_error`. Expected bool, str or callable. Received: {flag}")


class _Injected:
    """Which arguments of a tool the node fills in: state (argument -> state key or None
    for the whole state), and every injected argument (hidden from the model)."""

    def __init__(self, tool: BaseTool) -> None:
        from langchain_core.tools.base import _is_injected_arg_type, get_all_basemodel_annotations

        schema = tool.get_input_schema()
        func = getattr(tool, "func", None) or getattr(tool, "coroutine", None)
        annotations = {**(typing.get_type_hints(func, include_extras=True) if func else {}), **get_all_basemodel_annotations(schema)}
        self.state: dict[str, Optional[str]] = {}
        self.optional: set[str] = set()
        self.all: set[str] = set()
        for name, hint in annotations.items():
            if _is_injected_arg_type(hint):
                self.all.add(name)
            marker = _state_marker(hint)
            if marker is None:
                continue
            field = marker.field if isinstance(marker, InjectedState) else None
            self.state[name] = field
            info = getattr(schema, "model_fields", {}).get(name) if field else None
            if info is not None and not info.is_required():
                self.optional.add(name)


def _state_marker(hint: Any) -> Any:
    """The InjectedState (instance or class) in an annotation, if there is one."""
    if isinstance(hint, InjectedState) or (isinstance(hint, type) and issubclass(hint, InjectedState)):
        return hint
    if typing.get_origin(hint) in (typing.Annotated, Union):
        for arg in typing.get_args(hint):
            found = _state_marker(arg)
            if found is not None:
                return found
    return None


class ToolNode:
    """A node that runs the tool calls of the latest AIMessage in the state (or the tool
    call it is sent) and returns their ToolMessages under `messages_key`.

    `handle_tool_errors`: by default only arguments the tool refuses become an error
    message for the model; True turns every error into one, a string is the message to
    send, a callable makes it, an exception type (or tuple) limits which errors do.
    """

    def __init__(
        self,
        tools: Sequence[Union[BaseTool, Callable[..., Any]]],
        *,
        name: str = "tools",
        tags: Optional[list[str]] = None,
        handle_tool_errors: ErrorHandling = _raise_unless_invocation_error,
        messages_key: str = "messages",
    ) -> None:
        self.name = self.__name__ = name
        self.tags = list(tags or ())
        self.handle_tool_errors = handle_tool_errors
        self.messages_key = messages_key
        self.tools_by_name: dict[str, BaseTool] = {}
        self._injected: dict[str, _Injected] = {}
        for item in tools:
            made = item if isinstance(item, BaseTool) else create_tool(item)
            self.tools_by_name[made.name] = made
            self._injected[made.name] = _Injected(made)

    def __repr__(self) -> str:
        return f"ToolNode(tools={list(self.tools_by_name)!r}, name={self.name!r})"

    def __call__(self, input: Any, config: dict) -> Any:
        calls, kind = self._parse_input(input)
        state = input["state"] if kind == "tool_calls" and isinstance(input, dict) else input
        outputs = [self._run_one(call, kind, state, config) for call in calls]
        return self._combine(outputs, kind)

    def _parse_input(self, input: Any) -> tuple[list[ToolCall], InputKind]:
        kind: InputKind
        if isinstance(input, list):
            if isinstance(input[-1], dict) and input[-1].get("type") == "tool_call":
                return list(input), "tool_calls"
            messages, kind = input, "list"
        elif isinstance(input, dict) and input.get("__type") == "tool_call_with_context":
            return [input["tool_call"]], "tool_calls"
        elif isinstance(input, dict) and (messages := input.get(self.messages_key, [])):
            kind = "dict"
        elif messages := getattr(input, self.messages_key, []):
            kind = "dict"
        else:
            raise ValueError("No message found in input")
        latest = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
        if latest is None:
            raise ValueError("No AIMessage found in input")
        return list(latest.tool_calls), kind

    def _run_one(self, call: ToolCall, kind: InputKind, state: Any, config: dict) -> Any:
        tool = self.tools_by_name.get(call["name"])
        if tool is None:
            return ToolMessage(
                INVALID_TOOL_NAME_ERROR_TEMPLATE.format(
                    requested_tool=call["name"], available_tools=", ".join(self.tools_by_name)
                ),
                name=call["name"],
                tool_call_id=call["id"],
                status="error",
            )
        injected = self._injected[call["name"]]
        try:
            try:
                response = _invoke(tool, {**self._inject(call, injected, state), "type": "tool_call"}, config)
            except ValidationError as exc:
                raise ToolInvocationError(call["name"], exc, call["args"], injected.all) from exc
            return self._normalize(response, call, kind)
        except GraphInterrupt:
            raise
        except Exception as e:
            flag = self.handle_tool_errors
            if not flag or not isinstance(e, _handled_types(flag)):
                raise
            return ToolMessage(content=_error_content(e, flag), name=call["name"], tool_call_id=call["id"], status="error")

    def _inject(self, call: ToolCall, injected: _Injected, state: Any) -> ToolCall:
        if not injected.state:
            return call
        if isinstance(state, list):
            fields = list(injected.state.values())
            if (len(fields) == 1 and fields[0] == self.messages_key) or fields[0] is None:
                state = {self.messages_key: state}
            else:
                message = f"Invalid input to ToolNode. Tool {call['name']} requires graph state dict as input."
                if any(fields):
                    message += f" State should contain fields {', '.join(f for f in fields if f)}."
                raise ValueError(message)
        values: dict[str, Any] = {}
        for arg, field in injected.state.items():
            if not field:
                values[arg] = state
            elif isinstance(state, dict):
                if field in state:
                    values[arg] = state[field]
                elif arg not in injected.optional:
                    raise KeyError(field)
            elif hasattr(state, field):
                values[arg] = getattr(state, field)
            elif arg not in injected.optional:
                raise AttributeError(field)
        args = {k: v for k, v in call["args"].items() if k not in injected.all}
        filled = copy.copy(call)
        filled["args"] = {**args, **values}
        return filled

    def _normalize(self, response: Any, call: ToolCall, kind: InputKind) -> Any:
        if isinstance(response, Command):
            return self._check_command(response, call, kind)
        if isinstance(response, ToolMessage):
            response.content = msg_content_output(response.content)
            return response
        if isinstance(response, list) and all(isinstance(r, (Command, ToolMessage)) for r in response):
            return self._check_command_list(response, call, kind)
        if isinstance(response, list):
            raise TypeError(
                f"Tool {call['name']} returned a list with invalid element types: expected all Command or ToolMessage"
            )
        raise TypeError(f"Tool {call['name']} returned unexpected type: {type(response)}")

    def _check_command_list(self, response: list, call: ToolCall, kind: InputKind) -> list:
        answers = 0
        for item in response:
            if isinstance(item, ToolMessage):
                answers += item.tool_call_id == call["id"]
            elif isinstance(item.update, dict):
                answers += sum(
                    isinstance(m, ToolMessage) and m.tool_call_id == call["id"]
                    for m in item.update.get(self.messages_key, [])
                )
        if answers != 1:
            raise ValueError(
                f"Tool {call['name']} returned a list with {answers} messages bound to tool_call_id "
                f"{call['id']!r}; expected exactly one terminating ToolMessage."
            )
        checked = []
        for item in response:
            if isinstance(item, Command):
                checked.append(self._check_command(item, call, kind, require_answer=False))
            else:
                item.content = msg_content_output(item.content)
                checked.append(item)
        return checked

    def _check_command(self, command: Command, call: ToolCall, kind: InputKind, *, require_answer: bool = True) -> Command:
        """A tool's Command must carry the ToolMessage answering its call (named after the tool)."""
        if isinstance(command.update, dict):
            if kind not in ("dict", "tool_calls"):
                raise ValueError(
                    f"Tools can provide a dict in Command.update only when using dict with '{self.messages_key}' "
                    f"key as ToolNode input, got: {command.update} for tool '{call['name']}'"
                )
            command = copy.deepcopy(command)
            messages = command.update.get(self.messages_key, [])
        elif isinstance(command.update, list):
            if kind != "list":
                raise ValueError(
                    "Tools can provide a list of messages in Command.update only when using list of messages "
                    f"as ToolNode input, got: {command.update} for tool '{call['name']}'"
                )
            command = copy.deepcopy(command)
            messages = command.update
        else:
            return command
        messages = convert_to_messages(messages)
        if messages == [RemoveMessage(id=REMOVE_ALL_MESSAGES)]:
            return command
        answered = False
        for message in messages:
            if isinstance(message, ToolMessage) and message.tool_call_id == call["id"]:
                message.name = call["name"]
                answered = True
        if require_answer and command.graph is None and not answered:
            example = (
                '`Command(update={"messages": [ToolMessage("Success", tool_call_id=tool_call_id), ...]}, ...)`'
                if kind == "dict"
                else '`Command(update=[ToolMessage("Success", tool_call_id=tool_call_id), ...], ...)`'
            )
            raise ValueError(
                f"Expected to have a matching ToolMessage in Command.update for tool '{call['name']}', got: {messages}. "
                "Every tool call (LLM requesting to call a tool) in the message history MUST have a corresponding "
                f"ToolMessage. You can fix it by modifying the tool to return {example}."
            )
        return command

    def _combine(self, outputs: list, kind: InputKind) -> Any:
        flat: list = []
        for output in outputs:
            flat.extend(output if isinstance(output, list) else [output])
        if not any(isinstance(o, Command) for o in flat):
            return flat if kind == "list" else {self.messages_key: flat}
        combined: list = []
        parent_sends: Optional[Command] = None
        for output in flat:
            if not isinstance(output, Command):
                combined.append([output] if kind == "list" else {self.messages_key: [output]})
            elif (
                output.graph == Command.PARENT
                and isinstance(output.goto, list)
                and all(isinstance(s, Send) for s in output.goto)
            ):
                sends = (list(parent_sends.goto) if parent_sends is not None else []) + output.goto  # type: ignore[arg-type]
                parent_sends = Command(graph=Command.PARENT, goto=sends)
            else:
                combined.append(output)
        if parent_sends is not None:
            combined.append(parent_sends)
        # One Command is returned as it is (the engine also takes a list of Commands).
        return combined[0] if len(combined) == 1 else combined


def _invoke(tool: BaseTool, call: dict, config: Any) -> Any:
    """Run a tool the way a sync node can: a tool with only a coroutine runs on an event
    loop of its own (the node runs on a worker thread under ainvoke/astream)."""
    if getattr(tool, "func", None) is None and getattr(tool, "coroutine", None) is not None:
        return asyncio.run(tool.ainvoke(call, config))
    return tool.invoke(call, config)


def tools_condition(state: Any, messages_key: str = "messages") -> Literal["tools", "__end__"]:
    """Route to "tools" while the last message asks for tool calls, else to the end."""
    if isinstance(state, list):
        last = state[-1]
    elif (isinstance(state, dict) and (messages := state.get(messages_key, []))) or (
        messages := getattr(state, messages_key, [])
    ):
        last = messages[-1]
    else:
        raise ValueError(f"No messages found in input state to tool_edge: {state}")
    if hasattr(last, "tool_calls") and len(last.tool_calls) > 0:
        return "tools"
    return "__end__"
