"""Helpers for the `ferrograph ui` tests: a filled saver of each kind, and Starlette test
clients of the application on it (logged in or not, with or without a graph)."""

from __future__ import annotations

import json
from typing import Any, Iterator, Optional

import pytest
from cli_helpers import fill_saver
from starlette.testclient import TestClient

from ferrograph.checkpointers import MemorySaver, open_saver
from ferrograph.ui import create_app

TOKEN = "test-token-0123456789"
BASE = "http://127.0.0.1:8765"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def saver_and_facts(request: Any, tmp_path: Any) -> Iterator[tuple[Any, dict]]:
    """A saver holding the CLI tests' threads (agent-1 with a fork, agent-2, failed, paused,
    raw), and the facts `fill_saver` returns."""
    if request.param == "memory":
        saver = MemorySaver()
        yield saver, fill_saver(saver)
        return
    url = request.getfixturevalue("ferrograph_postgres_url") if request.param == "postgres" else str(tmp_path / "ui.db")
    with open_saver(url) as saver:
        yield saver, fill_saver(saver)


def make_client(saver: Any, graph: Any = None, *, login: bool = True, host: str = "127.0.0.1") -> TestClient:
    """A test client of the application; logged in (the token cookie set by opening
    `/?token=...`, as the browser does) unless `login` is False."""
    app = create_app(saver, graph=graph, graph_spec="ferrograph.demo:build" if graph is not None else None, token=TOKEN, host=host)
    http = TestClient(app, base_url=BASE)
    if login:
        response = http.get(f"/?token={TOKEN}", follow_redirects=False)
        assert response.status_code == 303 and "ferrograph_token_8765" in response.cookies
    return http


@pytest.fixture
def client(saver_and_facts: tuple[Any, dict]) -> TestClient:
    """A logged-in, read-only client on the filled saver."""
    return make_client(saver_and_facts[0])


def csrf_headers(http: TestClient) -> dict[str, str]:
    return {"X-Ferrograph-CSRF": http.get("/api/info").json()["csrf_token"]}


def events(body: str) -> list[tuple[str, Any]]:
    """The (event, data) pairs of a server-sent events body."""
    found = []
    for message in body.split("\n\n"):
        if not message.strip():
            continue
        fields = dict(line.split(": ", 1) for line in message.splitlines())
        found.append((fields["event"], json.loads(fields["data"])))
    return found


def get_json(http: TestClient, path: str, params: Optional[dict] = None) -> Any:
    response = http.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()
