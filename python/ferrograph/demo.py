"""ferrograph in one command (`ferrograph demo`): a small research agent with no network and no
LLM runs on SQLite, then we look back at its history, fork it from an earlier step with a
different value, replay the fork, and print both branches.

The agent plans sub-questions, researches them in parallel (one `Send` per question), reviews
the findings and loops (a conditional edge) until two review rounds are done, then writes a
report. Its tools are a dictionary lookup, so every run gives the same answers.

Each run uses a new thread (`demo-<time>-<random>`), so running it again adds a thread to the
same file; `--reset` deletes the earlier demo threads first.
"""

from __future__ import annotations

import datetime
import operator
import uuid
from typing import Annotated, Any, Optional, TypedDict

from ferrograph.graph import END, START, StateGraph
from ferrograph.types import Send

__all__ = ["FACTS", "TOPIC", "FORK_QUESTIONS", "Research", "build", "builder", "run", "main"]

DEFAULT_DB = "ferrograph-demo.db"
TOPIC = "How do Pregel, reducers and Send fit together in Rust?"
#: The value the fork changes: the plan's questions, as if the planner had chosen others.
FORK_QUESTIONS = ["What is checkpoint?", "What is rust?"]

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


def builder() -> StateGraph:
    """The research agent's StateGraph (not compiled)."""
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
    return g


def build(checkpointer: Any = None) -> Any:
    """The compiled research agent (`ferrograph graph ferrograph.demo:build` draws it)."""
    return builder().compile(checkpointer=checkpointer)


def _new_thread_id() -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"demo-{now}-{uuid.uuid4().hex[:6]}"


def _checkpoint_id(config: dict) -> str:
    return config["configurable"]["checkpoint_id"]


def run(db: str = DEFAULT_DB, *, json_output: bool = False, reset: bool = False, thread_id: Optional[str] = None) -> dict:
    """Runs the demo on the SQLite file `db` and prints it (or, with `json_output`, prints one
    JSON document). Returns what it printed as data."""
    from rich.panel import Panel
    from rich.table import Table

    from ferrograph._inspect import console, dumps, history_rows, jsonable, render_history, scan_threads
    from ferrograph.checkpointers.url import open_saver

    out = console()
    say = (lambda *a, **k: None) if json_output else out.print
    thread_id = thread_id or _new_thread_id()
    config = {"configurable": {"thread_id": thread_id}}

    with open_saver(db, create=True) as saver:
        if reset:
            for t in scan_threads(saver):
                if t.thread_id.startswith("demo-"):
                    saver.delete_thread(t.thread_id)
        app = build(checkpointer=saver)

        say(Panel.fit(
            f"[bold]ferrograph demo[/bold]: a research agent (Send fan-out, a review loop) on SQLite\n"
            f"database [cyan]{db}[/cyan], thread [cyan]{thread_id}[/cyan]"
        ))
        say(f"\n[bold]1. Run[/bold] the graph on: {TOPIC!r}")
        for update in app.stream({"topic": TOPIC}, config, stream_mode="updates"):
            for node, values in update.items():
                say(f"   [green]{node:<8}[/green] wrote {', '.join(sorted(values)) if values else 'nothing'}")
        original = app.get_state(config)
        say(Panel(original.values["report"], title="report (original branch)", expand=False))

        say("\n[bold]2. History[/bold]: one checkpoint per superstep, newest first (get_state_history)")
        history = list(app.get_state_history(config))
        table = Table()
        for column in ("step", "source", "next", "checkpoint id"):
            table.add_column(column)
        for snap in history:
            table.add_row(str(snap.metadata["step"]), snap.metadata["source"], ", ".join(snap.next) or "-",
                          _checkpoint_id(snap.config))
        say(table)

        # Fork from the checkpoint right after `plan` (research is next), with other questions.
        after_plan = next(s for s in history if s.next and s.next[0] == "research")
        say(
            f"\n[bold]3. Fork[/bold] from step {after_plan.metadata['step']} (after plan, before research) with "
            f"questions = {FORK_QUESTIONS} (update_state as 'plan')"
        )
        fork_config = app.update_state(after_plan.config, {"questions": FORK_QUESTIONS}, as_node="plan")
        say(f"   new checkpoint {_checkpoint_id(fork_config)}, child of {_checkpoint_id(after_plan.config)}")

        say("\n[bold]4. Replay[/bold] the fork: invoke(None, fork_config) runs from there; earlier steps are not re-run")
        for update in app.stream(None, fork_config, stream_mode="updates"):
            for node, values in update.items():
                say(f"   [green]{node:<8}[/green] wrote {', '.join(sorted(values)) if values else 'nothing'}")
        forked = app.get_state(config)  # the thread's latest checkpoint is now the fork's end

        say("\n[bold]5. Both branches[/bold]")
        both = Table(show_lines=True)
        both.add_column("branch")
        both.add_column("final checkpoint")
        both.add_column("questions")
        both.add_column("report")
        both.add_row("original", _checkpoint_id(original.config), "\n".join(original.values["questions"]),
                     original.values["report"])
        both.add_row("fork", _checkpoint_id(forked.config), "\n".join(forked.values["questions"]),
                     forked.values["report"])
        say(both)

        tuples = list(saver.list(config))
        rows, roots = history_rows(tuples)
        say(f"\n[bold]6. The thread as a tree[/bold] (what `ferrograph history {db} {thread_id}` prints)")
        say(render_history(thread_id, roots))

    say(
        "\nLook again any time:\n"
        f"   ferrograph threads {db}\n"
        f"   ferrograph history {db} {thread_id}\n"
        f"   ferrograph show {db} {thread_id}\n"
        "   ferrograph graph ferrograph.demo:build"
    )
    result = {
        "db": db,
        "thread_id": thread_id,
        "fork_from": _checkpoint_id(after_plan.config),
        "fork": _checkpoint_id(fork_config),
        "branches": {
            "original": {"checkpoint_id": _checkpoint_id(original.config), "values": jsonable(original.values)},
            "fork": {"checkpoint_id": _checkpoint_id(forked.config), "values": jsonable(forked.values)},
        },
        "history": [r.as_json() for r in rows],
    }
    if json_output:
        print(dumps(result))
    return result


def main(argv: Optional[list[str]] = None) -> None:
    """`python -m ferrograph.demo [--db PATH] [--reset] [--json]`, the same as `ferrograph demo`."""
    import argparse

    parser = argparse.ArgumentParser(prog="ferrograph-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=DEFAULT_DB)
    parser.add_argument("--reset", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    run(args.db, json_output=args.json, reset=args.reset)


if __name__ == "__main__":
    main()
