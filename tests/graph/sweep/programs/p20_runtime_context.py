"""Runtime context: context_schema, invoke(context=...), nodes taking runtime: Runtime[...]
(docs: use-graph-api, "Add runtime configuration")."""

from dataclasses import dataclass

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime, get_runtime


@dataclass
class ContextSchema:
    my_runtime_value: str


class State(TypedDict):
    my_state_value: str


def node(state: State, runtime: Runtime[ContextSchema]):
    if runtime.context.my_runtime_value == "a":
        return {"my_state_value": "1"}
    elif runtime.context.my_runtime_value == "b":
        return {"my_state_value": "2"}
    else:
        raise ValueError("Unknown values.")


def other(state: State):
    runtime = get_runtime(ContextSchema)
    return {"my_state_value": state["my_state_value"] + runtime.context.my_runtime_value}


def build():
    builder = StateGraph(State, context_schema=ContextSchema)
    builder.add_node(node)
    builder.add_node(other)
    builder.add_edge(START, "node")
    builder.add_edge("node", "other")
    builder.add_edge("other", END)
    return builder.compile()


def main():
    graph = build()
    print(graph.invoke({}, context={"my_runtime_value": "a"}))
    print(graph.invoke({}, context=ContextSchema(my_runtime_value="b")))
    try:
        graph.invoke({}, context={"my_runtime_value": "c"})
    except ValueError as e:
        print("error", e)


async def amain():
    graph = build()
    print(await graph.ainvoke({}, context={"my_runtime_value": "b"}))
