"""Nodes that take the run's config (a config: RunnableConfig parameter, by name and by
annotation) and read configurable values (docs: use-graph-api, "Add runtime configuration"
(legacy configurable); test suite: test_pregel.py::test_state_graph_w_config_inherited_state_keys)."""

from langchain_core.runnables import RunnableConfig
from typing_extensions import TypedDict

from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    greeting: str


def by_name(state: State, config: RunnableConfig):
    user = config["configurable"].get("user", "nobody")
    return {"greeting": f"hello {user}"}


def by_annotation(state: State, cfg: RunnableConfig):
    return {"greeting": state["greeting"] + f" ({cfg['configurable'].get('lang', '?')})"}


def through_get_config(state: State):
    return {"greeting": state["greeting"] + f" [{get_config()['configurable'].get('lang')}]"}


def build():
    builder = StateGraph(State)
    builder.add_node("by_name", by_name)
    builder.add_node("by_annotation", by_annotation)
    builder.add_node("through_get_config", through_get_config)
    builder.add_edge(START, "by_name")
    builder.add_edge("by_name", "by_annotation")
    builder.add_edge("by_annotation", "through_get_config")
    builder.add_edge("through_get_config", END)
    return builder.compile()


def main():
    graph = build()
    print(graph.invoke({"greeting": ""}, {"configurable": {"user": "ada", "lang": "en"}}))
    print(graph.invoke({"greeting": ""}))


async def amain():
    graph = build()
    print(await graph.ainvoke({"greeting": ""}, {"configurable": {"user": "bob", "lang": "fr"}}))
