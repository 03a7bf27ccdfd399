"""Metadata of checkpoints: config metadata and configurable values copied in, history
filtered on it (test suite: test_pregel.py::test_checkpoint_metadata, reduced)."""

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    n: int


def inc(state: State):
    return {"n": state["n"] + 1}


def build(checkpointer):
    builder = StateGraph(State)
    builder.add_node("inc", inc)
    builder.add_edge(START, "inc")
    builder.add_edge("inc", END)
    return builder.compile(checkpointer=checkpointer)


def main(checkpointer):
    app = build(checkpointer)
    config = {
        "configurable": {"thread_id": "1", "user": "ada", "n_retries": 3, "__secret": "x"},
        "metadata": {"run_name": "first", "tags": ["a"]},
    }
    app.invoke({"n": 0}, config)
    for snapshot in app.get_state_history({"configurable": {"thread_id": "1"}}):
        md = dict(snapshot.metadata)
        md.pop("run_id", None)
        print(md)
    print(len(list(app.get_state_history({"configurable": {"thread_id": "1"}}, filter={"user": "ada", "source": "loop"}))))
    app.invoke({"n": 10}, {"configurable": {"thread_id": "1", "user": "bob"}})
    print([s.metadata.get("user") for s in app.get_state_history({"configurable": {"thread_id": "1"}})])
    print([s.metadata["step"] for s in checkpointer.list({"configurable": {"thread_id": "1"}}, limit=3)])


async def amain(checkpointer):
    app = build(checkpointer)
    await app.ainvoke({"n": 0}, {"configurable": {"thread_id": "1", "user": "ada"}})
    print([s.metadata["user"] async for s in app.aget_state_history({"configurable": {"thread_id": "1"}})])
