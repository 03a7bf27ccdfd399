"""Validate human input: interrupt() again in a loop until the answer is valid (docs:
interrupts, "Validate human input")."""

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt


class State(TypedDict):
    age: int


def get_valid_age(state: State) -> State:
    prompt = "Please enter your age (must be a non-negative integer)."

    while True:
        user_input = interrupt(prompt)

        # Validate the input
        try:
            age = int(user_input)
            if age < 0:
                raise ValueError("Age must be non-negative.")
            break  # Valid input received
        except (ValueError, TypeError):
            prompt = f"'{user_input}' is not valid. Please enter a non-negative integer for age."

    return {"age": age}


def report_age(state: State) -> State:
    print(f"✅ Human is {state['age']} years old.")
    return state


def build(checkpointer):
    builder = StateGraph(State)
    builder.add_node("get_valid_age", get_valid_age)
    builder.add_node("report_age", report_age)
    builder.set_entry_point("get_valid_age")
    builder.add_edge("get_valid_age", "report_age")
    builder.add_edge("report_age", END)
    return builder.compile(checkpointer=checkpointer)


def main(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": "1"}}
    result = graph.invoke({}, config=config)
    print(result["__interrupt__"])
    result = graph.invoke(Command(resume="not a number"), config=config)
    print(result["__interrupt__"])
    result = graph.invoke(Command(resume="-10"), config=config)
    print(result["__interrupt__"])
    final_result = graph.invoke(Command(resume="25"), config=config)
    print(final_result)
    print(len(list(graph.get_state_history(config))))


async def amain(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": "1"}}
    print(await graph.ainvoke({}, config=config))
    print(await graph.ainvoke(Command(resume="x"), config=config))
    print(await graph.ainvoke(Command(resume="3"), config=config))
