"""The `ferrograph ui` JSON API through Starlette's test client, on a MemorySaver, SQLite and
Postgres: what it reads (threads, history, checkpoints, diffs), what it refuses (no token, no
CSRF token, a foreign Host or Origin, actions without a graph, bad input) and the actions
(fork, replay, resume, new input, streamed as server-sent events)."""

from __future__ import annotations

import dataclasses
import json
from typing import TypedDict

import pytest
from starlette.testclient import TestClient
from cli_helpers import THREADS, interrupting_graph
from ui_helpers import BASE, TOKEN, csrf_headers, events, get_json, make_client

from ferrograph.demo import TOPIC, build
from ferrograph.graph import START, StateGraph
from ferrograph.serde import Serializer
from ferrograph.ui import create_app


def test_threads_page_with_status_search_metadata_and_pages(client):
    page = get_json(client, "/api/threads")
    assert page["total"] == len(THREADS) and page["offset"] == 0
    threads = {t["thread_id"]: t for t in page["threads"]}
    assert set(threads) == THREADS
    assert [t["thread_id"] for t in page["threads"]] == ["raw", "paused", "failed", "agent-2", "agent-1"]
    assert threads["paused"]["status"] == "interrupted"
    assert threads["failed"]["status"] == "failed"
    assert threads["agent-1"]["status"] is None and threads["agent-1"]["checkpoints"] == 14
    assert threads["agent-1"]["last_source"] == "loop" and threads["agent-1"]["last_step"] == 7

    assert [t["thread_id"] for t in get_json(client, "/api/threads", {"search": "AGENT"})["threads"]] == ["agent-2", "agent-1"]
    only_forked = get_json(client, "/api/threads", {"metadata": json.dumps({"source": "update"})})
    assert [t["thread_id"] for t in only_forked["threads"]] == ["agent-1"] and only_forked["total"] == 1

    first = get_json(client, "/api/threads", {"limit": 2})
    second = get_json(client, "/api/threads", {"limit": 2, "offset": 2})
    last = get_json(client, "/api/threads", {"limit": 2, "offset": 4})
    assert first["total"] == second["total"] == last["total"] == 5
    pages = [t["thread_id"] for p in (first, second, last) for t in p["threads"]]
    assert pages == [t["thread_id"] for t in page["threads"]]

    for bad, message in [
        ({"limit": "x"}, "limit must be an integer"),
        ({"limit": 0}, "limit >= 1"),
        ({"limit": 501}, "at most 500"),
        ({"metadata": "{nope"}, "metadata is not valid JSON"),
        ({"metadata": "[1]"}, "metadata must be a JSON object"),
    ]:
        response = client.get("/api/threads", params=bad)
        assert response.status_code == 400 and message in response.json()["error"], (bad, response.text)


def test_threads_page_reads_only_the_page_on_sql_savers(saver_and_facts, monkeypatch):
    """Without a metadata filter the table comes from `thread_summaries` (no checkpoint listed,
    no value read) plus one latest checkpoint per thread on the page."""
    saver, _ = saver_and_facts
    if not hasattr(saver, "thread_summaries"):
        pytest.skip("only the SQL savers have an aggregate query to serve the table from")
    http = make_client(saver)
    read: list[str] = []
    get_tuple = saver.get_tuple

    def no_listing(*args, **kwargs):
        raise AssertionError("the threads table listed checkpoints")

    def counted(config):
        read.append(config["configurable"]["thread_id"])
        return get_tuple(config)

    monkeypatch.setattr(saver, "list", no_listing)
    monkeypatch.setattr(saver, "get_tuple", counted)
    page = get_json(http, "/api/threads", {"limit": 2, "offset": 1})
    assert [t["thread_id"] for t in page["threads"]] == read == ["paused", "failed"]
    assert page["total"] == 5


def test_history_is_the_tree_with_the_fork(saver_and_facts):
    saver, facts = saver_and_facts
    http = make_client(saver)
    rows = get_json(http, "/api/threads/agent-1/history")["checkpoints"]
    assert len(rows) == 14
    by_id = {r["checkpoint_id"]: r for r in rows}
    forks = [r for r in rows if r["fork"]]
    assert [r["checkpoint_id"] for r in forks] == [facts["fork"]]
    assert by_id[facts["fork"]]["parent_checkpoint_id"] == facts["fork_parent"]
    assert len(by_id[facts["fork_parent"]]["children"]) == 2
    assert by_id[facts["fork"]]["source"] == "update" and by_id[facts["fork"]]["ran"] == []  # written, nothing ran
    # The nodes each step ran: the fan-out's research tasks (Sends), then review.
    original = [r for r in rows if r["checkpoint_id"] < facts["fork"] or r["checkpoint_id"] == facts["fork_parent"]]
    assert [r["ran"] for r in sorted(original, key=lambda r: r["checkpoint_id"])][:5] == [
        [], ["__start__"], ["plan"], ["research"], ["review"]
    ]
    response = http.get("/api/threads/nope/history")
    assert response.status_code == 404 and "thread 'nope' has no checkpoints" in response.json()["error"]


def test_checkpoint_view_types_writes_and_interrupts(saver_and_facts):
    saver, facts = saver_and_facts
    http = make_client(saver)
    raw = get_json(http, "/api/threads/raw/checkpoints/latest")
    assert raw["values"] == {
        "when": {"$type": "datetime", "value": "2024-05-01T12:00:01"},
        "tags": {"$type": "set", "value": ["a", "b"]},
        "pair": {"$type": "tuple", "value": [1, "x"]},
        "blob": {"$type": "bytes", "value": "base64:AP8="},
        "amount": {"$type": "Decimal", "value": "1.50"},
        "id": {"$type": "UUID", "value": "00000000-0000-0000-0000-000000000001"},
    }
    assert raw["pending_writes"] == [
        {
            "task_id": "task-1",
            "writes": [
                {"channel": "tags", "value": {"$type": "set", "value": ["c"]}},
                {"channel": "pair", "value": {"$type": "tuple", "value": [9, "y"]}},
            ],
        }
    ]
    assert raw["next"] is None  # no graph: nothing to say what is due
    child = get_json(http, "/api/threads/raw/checkpoints/latest", {"ns": "child:1"})
    assert child["checkpoint_ns"] == "child:1" and child["values"]["pair"]["value"] == [2, "x"]

    paused = get_json(http, "/api/threads/paused/checkpoints/latest")
    assert paused["status"] == "interrupted"
    assert [i["value"]["value"] for i in paused["interrupts"]] == ["what now?"]
    assert paused["interrupts"][0]["$type"] == "Interrupt"
    failed = get_json(http, "/api/threads/failed/checkpoints/latest")
    assert failed["status"] == "failed"
    assert failed["errors"] == [{"task_id": failed["errors"][0]["task_id"], "error": "RuntimeError('boom')"}]
    tasks = {w["channel"] for task in failed["pending_writes"] for w in task["writes"]}
    assert tasks == {"log", "__error__"}

    fork = get_json(http, f"/api/threads/agent-1/checkpoints/{facts['fork']}")
    assert fork["parent_checkpoint_id"] == facts["fork_parent"]
    assert fork["metadata"]["source"] == "update"
    assert any(s["$type"] == "Send" for s in fork["internal"]["__pregel_tasks"])

    for path, message in [
        ("/api/threads/nope/checkpoints/latest", "thread 'nope' not found"),
        ("/api/threads/agent-1/checkpoints/1f000000-0000-6000-8000-000000000000", "not found"),
    ]:
        response = http.get(path)
        assert response.status_code == 404 and message in response.json()["error"]


def test_checkpoint_view_with_a_graph_says_what_is_next(saver_and_facts):
    saver, facts = saver_and_facts
    http = make_client(saver, build())
    fork = get_json(http, f"/api/threads/agent-1/checkpoints/{facts['fork']}")
    assert fork["next"] == ["research"]  # the fork was written as plan: research is due
    assert [t["name"] for t in fork["tasks"]] == ["research"]
    latest = get_json(http, "/api/threads/agent-1/checkpoints/latest")
    assert latest["next"] == []
    info = get_json(http, "/api/info")
    assert info["read_only"] is False and info["graph"]["spec"] == "ferrograph.demo:build"
    assert info["graph"]["mermaid"] == build().get_graph().draw_mermaid()
    assert info["graph"]["nodes"] == ["plan", "research", "review", "deepen", "write"]


def test_diff_between_checkpoints(saver_and_facts):
    saver, facts = saver_and_facts
    http = make_client(saver)
    diff = get_json(http, "/api/threads/agent-1/diff", {"a": facts["fork_parent"], "b": facts["fork"]})
    assert diff["a"]["checkpoint_id"] == facts["fork_parent"] and diff["b"]["checkpoint_id"] == facts["fork"]
    assert diff["changes"] == [
        {"path": ["questions", 0], "kind": "changed", "before": "What is pregel?", "after": "What is rust?"},
        {"path": ["questions", 1], "kind": "removed", "before": "What is reducer?", "after": None},
        {"path": ["questions", 2], "kind": "removed", "before": "What is send?", "after": None},
        {"path": ["questions", 3], "kind": "removed", "before": "What is rust?", "after": None},
    ]
    same = get_json(http, "/api/threads/agent-1/diff", {"a": facts["fork"], "b": facts["fork"]})
    assert same["changes"] == []
    response = http.get("/api/threads/agent-1/diff", params={"a": facts["fork"]})
    assert response.status_code == 400 and "diff needs a" in response.json()["error"]
    response = http.get("/api/threads/agent-1/diff", params={"a": "1f000000-0000-6000-8000-000000000000", "b": facts["fork"]})
    assert response.status_code == 404


def test_every_api_request_needs_the_token(saver_and_facts):
    saver, _ = saver_and_facts
    anonymous = make_client(saver, login=False)
    for path in ("/api/info", "/api/threads", "/api/threads/agent-1/history", "/api/threads/agent-1/checkpoints/latest"):
        response = anonymous.get(path)
        assert response.status_code == 401 and "token" in response.json()["error"], path
    assert anonymous.get("/api/info", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert anonymous.get("/api/info", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert anonymous.get("/?token=wrong", follow_redirects=False).status_code == 401
    # The page and its files load without the token: they hold no data.
    page = anonymous.get("/")
    assert page.status_code == 200 and "ferrograph ui" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "no-referrer"
    assert anonymous.get("/static/vendor/mermaid.min.js").status_code == 200
    login = anonymous.get(f"/?token={TOKEN}", follow_redirects=False)
    assert login.status_code == 303 and login.headers["location"] == "/"
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert anonymous.get("/api/info").status_code == 200


def test_actions_need_the_csrf_token_and_this_origin(saver_and_facts):
    saver, facts = saver_and_facts
    http = make_client(saver, build())
    body = {"checkpoint_id": facts["fork_parent"], "values": {"questions": ["What is send?"]}, "as_node": "plan"}
    before = len(get_json(http, "/api/threads/agent-1/history")["checkpoints"])
    for headers in ({}, {"X-Ferrograph-CSRF": "wrong"}):
        response = http.post("/api/threads/agent-1/fork", json=body, headers=headers)
        assert response.status_code == 403 and "CSRF" in response.json()["error"]
    good = csrf_headers(http)
    response = http.post("/api/threads/agent-1/fork", json=body, headers={**good, "Origin": "http://evil.example"})
    assert response.status_code == 403 and "cross-origin" in response.json()["error"]
    response = http.post("/api/threads/agent-1/run", json={"kind": "input", "input": {"topic": "x"}})
    assert response.status_code == 403
    assert len(get_json(http, "/api/threads/agent-1/history")["checkpoints"]) == before  # nothing written

    response = http.post("/api/threads/agent-1/fork", json=body, headers={**good, "Origin": BASE})
    assert response.status_code == 200, response.text
    # A script with the token in a header needs no CSRF token: no browser sends that header for another site.
    scripted = make_client(saver, build(), login=False)
    response = scripted.post("/api/threads/agent-1/fork", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text


def test_requests_must_name_this_server(saver_and_facts):
    saver, _ = saver_and_facts
    http = make_client(saver)
    for host in ("evil.example", "evil.example:8765", "127.0.0.1.evil.example"):
        response = http.get("/api/info", headers={"Host": host})
        assert response.status_code == 403 and "not an address of this server" in response.json()["error"]
        assert http.get("/", headers={"Host": host}).status_code == 403
    for host in ("localhost:8765", "[::1]:8765", "127.0.0.1:8765"):
        assert http.get("/api/info", headers={"Host": host}).status_code == 200, host
    everywhere = make_client(saver, host="0.0.0.0")
    assert everywhere.get("/api/info", headers={"Host": "box.lan:8765"}).status_code == 200


def test_read_only_without_a_graph(saver_and_facts):
    saver, facts = saver_and_facts
    http = make_client(saver)
    assert get_json(http, "/api/info")["read_only"] is True
    headers = csrf_headers(http)
    for path, body in [
        ("/api/threads/agent-1/fork", {"checkpoint_id": facts["fork"], "values": {"questions": []}}),
        ("/api/threads/agent-1/run", {"kind": "replay", "checkpoint_id": facts["fork"]}),
        ("/api/threads/new/run", {"kind": "input", "input": {"topic": TOPIC}}),
    ]:
        response = http.post(path, json=body, headers=headers)
        assert response.status_code == 403 and "read-only" in response.json()["error"], path
    assert get_json(http, "/api/threads")["total"] == len(THREADS)


def test_fork_writes_a_branch(saver_and_facts):
    saver, facts = saver_and_facts
    http = make_client(saver, build())
    headers = csrf_headers(http)
    response = http.post(
        "/api/threads/agent-1/fork",
        json={"checkpoint_id": facts["fork_parent"], "values": {"questions": ["What is send?"]}, "as_node": "plan"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    new_id = response.json()["config"]["checkpoint_id"]
    rows = {r["checkpoint_id"]: r for r in get_json(http, "/api/threads/agent-1/history")["checkpoints"]}
    assert rows[new_id]["parent_checkpoint_id"] == facts["fork_parent"] and rows[new_id]["fork"]
    assert len(rows[facts["fork_parent"]]["children"]) == 3
    view = get_json(http, f"/api/threads/agent-1/checkpoints/{new_id}")
    assert view["values"]["questions"] == ["What is send?"] and view["next"] == ["research"]
    # The same as update_state on the saver directly.
    expected = build(saver).get_state({"configurable": {"thread_id": "agent-1", "checkpoint_id": new_id}})
    assert expected.values["questions"] == ["What is send?"] and expected.metadata["source"] == "update"

    for body, status, message in [
        ({"checkpoint_id": facts["fork"], "values": [1]}, 400, "fork needs values"),
        ({"checkpoint_id": facts["fork"], "values": {}, "as_node": "nope"}, 400, "update_state refused"),
        ({"checkpoint_id": facts["fork"], "values": {}, "bogus": 1}, 400, "unknown: bogus"),
        ({"checkpoint_id": "1f000000-0000-6000-8000-000000000000", "values": {}}, 404, "not found"),
    ]:
        response = http.post("/api/threads/agent-1/fork", json=body, headers=headers)
        assert response.status_code == status and message in response.json()["error"], (body, response.text)
    response = http.post("/api/threads/agent-1/fork", content=b"{not json", headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]


def test_a_run_streams_its_chunks_as_server_sent_events(saver_and_facts):
    saver, _ = saver_and_facts
    http = make_client(saver, build())
    headers = csrf_headers(http)
    with http.stream("POST", "/api/threads/fresh/run", json={"kind": "input", "input": {"topic": TOPIC}}, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
    streamed = events(body)
    assert [e for e, _ in streamed] == ["chunk"] * (len(streamed) - 1) + ["done"]
    # The chunks are the `updates` stream of the same run made directly.
    direct = list(build(saver).stream({"topic": TOPIC}, {"configurable": {"thread_id": "direct"}}, stream_mode="updates"))
    assert [list(data) for e, data in streamed if e == "chunk"] == [list(chunk) for chunk in direct]
    assert streamed[-2][1] == {"write": {"report": direct[-1]["write"]["report"]}}
    done = streamed[-1][1]
    latest = build(saver).get_state({"configurable": {"thread_id": "fresh"}})
    assert done == {"checkpoint_id": latest.config["configurable"]["checkpoint_id"], "next": [], "interrupts": []}


def test_replay_from_a_checkpoint(saver_and_facts):
    saver, facts = saver_and_facts
    http = make_client(saver, build())
    before = {r["checkpoint_id"] for r in get_json(http, "/api/threads/agent-1/history")["checkpoints"]}
    response = http.post(
        "/api/threads/agent-1/run", json={"kind": "replay", "checkpoint_id": facts["fork_parent"]}, headers=csrf_headers(http)
    )
    assert response.status_code == 200
    streamed = events(response.text)
    # After plan: the four research tasks of the original questions run again, then the rest.
    chunks = [data for event, data in streamed if event == "chunk"]
    assert [list(c) for c in chunks[:5]] == [["research"]] * 4 + [["review"]]
    rows = get_json(http, "/api/threads/agent-1/history")["checkpoints"]
    new = [r for r in rows if r["checkpoint_id"] not in before]
    assert new[0]["parent_checkpoint_id"] == facts["fork_parent"] and new[0]["fork"]
    assert streamed[-1][0] == "done" and streamed[-1][1]["checkpoint_id"] == new[-1]["checkpoint_id"]
    assert get_json(http, "/api/threads/agent-1/checkpoints/latest")["values"]["questions"][0] == "What is pregel?"
    response = http.post("/api/threads/agent-1/run", json={"kind": "replay"}, headers=csrf_headers(http))
    assert response.status_code == 400 and "replay needs the checkpoint_id" in response.json()["error"]


def test_resume_an_interrupt(saver_and_facts):
    saver, _ = saver_and_facts
    http = make_client(saver, interrupting_graph(None))
    headers = csrf_headers(http)
    view = get_json(http, "/api/threads/paused/checkpoints/latest")
    assert "ask" in view["next"]
    ask = next(t for t in view["tasks"] if t["name"] == "ask")
    assert ask["interrupts"][0]["value"]["value"] == "what now?"
    response = http.post("/api/threads/paused/run", json={"kind": "resume", "resume": "carry on"}, headers=headers)
    assert response.status_code == 200
    streamed = events(response.text)
    assert ("chunk", {"ask": {"answer": "carry on"}}) in streamed
    assert streamed[-1][0] == "done" and streamed[-1][1]["next"] == []
    assert get_json(http, "/api/threads/paused/checkpoints/latest")["values"]["answer"] == "carry on"

    # A run that interrupts says so when it is done; a node's error is an event, not a crash.
    response = http.post("/api/threads/again/run", json={"kind": "input", "input": {"log": []}}, headers=headers)
    streamed = events(response.text)
    assert "ask" in streamed[-1][1]["next"]
    assert streamed[-1][1]["interrupts"][0]["value"]["value"] == "what now?"
    response = http.post("/api/threads/x/run", json={"kind": "resume"}, headers=headers)
    assert response.status_code == 400 and "resume needs resume" in response.json()["error"]
    response = http.post("/api/threads/x/run", json={"kind": "sing"}, headers=headers)
    assert response.status_code == 400 and "kind must be replay, resume or input" in response.json()["error"]


def test_a_failing_node_is_an_error_event(saver_and_facts):
    from cli_helpers import failing_graph

    saver, _ = saver_and_facts
    http = make_client(saver, failing_graph(None))
    response = http.post("/api/threads/boom/run", json={"kind": "input", "input": {"log": []}}, headers=csrf_headers(http))
    assert response.status_code == 200
    streamed = events(response.text)
    assert ("error", {"error": "RuntimeError: boom"}) in streamed
    assert streamed[-1][0] == "done" and streamed[-1][1]["next"] == ["boom"]
    assert get_json(http, "/api/threads", {"search": "boom"})["threads"][0]["status"] == "failed"


def test_a_state_graph_builder_is_compiled_on_the_saver(saver_and_facts):
    saver, _ = saver_and_facts
    builder = build().builder
    assert isinstance(builder, StateGraph)
    http = make_client(saver, builder)
    response = http.post("/api/threads/b/run", json={"kind": "input", "input": {"topic": "pregel"}}, headers=csrf_headers(http))
    assert events(response.text)[-1][0] == "done"
    assert build(saver).get_state({"configurable": {"thread_id": "b"}}).values["report"].startswith("# Report: pregel")


@dataclasses.dataclass
class Memo:
    """A class of the user's own, named by a state schema only."""

    text: str


class MemoState(TypedDict):
    memo: Memo


def _memo_graph(checkpointer=None):
    g = StateGraph(MemoState)
    g.add_node("keep", lambda s: {"memo": Memo(s["memo"].text + "!")})
    g.add_edge(START, "keep")
    return g.compile(checkpointer=checkpointer)


def test_the_graph_lets_the_page_read_the_classes_its_schemas_name(saver_and_facts):
    saver, _ = saver_and_facts
    _memo_graph(saver).invoke({"memo": Memo("hi")}, {"configurable": {"thread_id": "memo"}})

    with_graph = make_client(saver, _memo_graph())
    view = get_json(with_graph, "/api/threads/memo/checkpoints/latest")
    assert view["values"] == {"memo": {"$type": "Memo", "value": {"text": "hi!"}}}
    assert get_json(with_graph, "/api/threads", {"search": "memo"})["threads"][0]["status"] is None

    # Without the graph the class is not allowed: the SQL savers' table still lists the thread
    # (the summaries read no value), the checkpoint says why it cannot be read. Other savers
    # list threads by reading their checkpoints, so there the table says it.
    without = make_client(saver)
    if hasattr(saver, "thread_summaries"):
        assert get_json(without, "/api/threads", {"search": "memo"})["threads"][0]["status"] == "unreadable"
    else:
        response = without.get("/api/threads", params={"search": "memo"})
        assert response.status_code == 400 and "Memo" in response.json()["error"]
    response = without.get("/api/threads/memo/checkpoints/latest")
    assert response.status_code == 400 and "Memo" in response.json()["error"]
    allowed = TestClient(create_app(saver, token=TOKEN, serializer=Serializer(allowed=[Memo])), base_url=BASE)
    view = allowed.get("/api/threads/memo/checkpoints/latest", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert view["values"]["memo"]["value"] == {"text": "hi!"}
