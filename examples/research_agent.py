"""A small research agent with no network and no LLM: it plans sub-questions, researches them
in parallel with Send, reviews the findings and loops until the review passes, then writes a
report. Run it with `make demo` (or `python examples/research_agent.py`)."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from ferrograph.graph import END, START, StateGraph
from ferrograph.types import Send

# A deterministic "search engine": facts per keyword.
FACTS = {
    "pregel": "Pregel runs a graph in supersteps; every node of a step sees the same state.",
    "checkpoint": "A checkpoint records channel values and versions after every superstep.",
    "reducer": "A reducer folds parallel writes to one key in a deterministic order.",
    "send": "Send starts one task per item: map-reduce inside a graph.",
    "rust": "The scheduling and write application run in Rust; nodes stay Python.",
}


class Research(TypedDict):
    topic: str
    questions: list[str]
    findings: Annotated[list[str], operator.add]
    rounds: int
    report: str


def plan(state: Research) -> dict:
    words = [w for w in FACTS if w in state["topic"].lower()]
    return {"questions": [f"What is {w}?" for w in words], "rounds": 0}


def fan_out(state: Research) -> list[Send]:
    return [Send("research", {"question": q}) for q in state["questions"]]


def research(task: dict) -> dict:
    keyword = task["question"].removeprefix("What is ").rstrip("?")
    return {"findings": [f"{task['question']} {FACTS[keyword]}"]}


def review(state: Research) -> dict:
    return {"rounds": state["rounds"] + 1}


def enough(state: Research) -> str:
    # Ask for one more round of research on the first question until two rounds are done.
    return "write" if state["rounds"] >= 2 else "deepen"


def deepen(state: Research) -> dict:
    first = state["questions"][0]
    return {"findings": [f"(round {state['rounds']}) {research({'question': first})['findings'][0]}"]}


def write(state: Research) -> dict:
    lines = [f"# Report: {state['topic']}", ""] + [f"- {f}" for f in state["findings"]]
    return {"report": "\n".join(lines)}


def build():
    g = StateGraph(Research)
    g.add_node("plan", plan)
    g.add_node("research", research)
    g.add_node("review", review)
    g.add_node("deepen", deepen)
    g.add_node("write", write)
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", fan_out, ["research"])
    g.add_edge("research", "review")
    g.add_conditional_edges("review", enough, {"write": "write", "deepen": "deepen"})
    g.add_edge("deepen", "review")
    g.add_edge("write", END)
    return g.compile()


def main() -> None:
    app = build()
    topic = "How do Pregel, reducers and Send fit together in Rust?"
    for update in app.stream({"topic": topic}, stream_mode="updates"):
        for node, values in update.items():
            print(f"[{node}] wrote {sorted(values) if values else 'nothing'}")
    final = app.invoke({"topic": topic})
    print()
    print(final["report"])
    print()
    print(app.get_graph().draw_mermaid())


if __name__ == "__main__":
    main()
