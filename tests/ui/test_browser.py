"""`ferrograph ui` end to end: the real command serving the demo database, and the page in
Debian's headless chromium driven by Playwright (never a downloaded browser: `make test`
installs /usr/bin/chromium). Open the page, see the threads, open the demo thread, see its fork
in the tree, open a checkpoint and its diff and graph, fork it from the page, watch the new
branch appear, replay it and watch its chunks stream in. Screenshots go to
$FERROGRAPH_TEST_ARTIFACTS/ui (default ./test-artifacts/ui)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any, Iterator

import pytest
from playwright.sync_api import expect

from ferrograph import demo

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = os.path.join(os.environ.get("FERROGRAPH_TEST_ARTIFACTS", "test-artifacts"), "ui")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ui(db: str, *extra: str, host: str = "127.0.0.1") -> tuple[subprocess.Popen, str]:
    """`ferrograph ui DB --json ...` in a subprocess; returns it and the address it printed
    (with the token), once the server answers."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ferrograph.cli", "ui", db, "--port", str(port), "--host", host, "--json", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise AssertionError(f"ferrograph ui did not start: {process.communicate(timeout=10)[1]}")
    announced = json.loads(line)
    token = announced["url"].split("token=", 1)[1]
    deadline = time.monotonic() + 20
    while True:
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/info", headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=2) as response:
                assert response.status == 200
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise AssertionError(f"ferrograph ui does not answer: {process.communicate(timeout=10)[1]}")
            time.sleep(0.1)
    return process, announced["url"]


def stop(process: subprocess.Popen) -> str:
    """Stops the server; returns what it printed on stderr."""
    process.terminate()
    try:
        return process.communicate(timeout=10)[1]
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[1]


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: Any) -> tuple[str, dict]:
    """The demo's database and what the demo reports (thread id, fork point, history)."""
    db = str(tmp_path_factory.mktemp("ui") / "ferrograph-demo.db")
    result = demo.run(db, json_output=True)
    return db, result


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


class Watched:
    """A page whose requests to other hosts and script errors are recorded."""

    def __init__(self, browser: Any, origin: str) -> None:
        self.page = browser.new_page(viewport={"width": 1500, "height": 1100})
        self.elsewhere: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: None if r.url.startswith((origin, "data:")) else self.elsewhere.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def shot(self, name: str) -> None:
        os.makedirs(ARTIFACTS, exist_ok=True)
        self.page.screenshot(path=os.path.join(ARTIFACTS, f"{name}.png"), full_page=True)


def _tree_nodes(page: Any) -> int:
    return page.locator("#tree .node").count()


def test_browse_compare_fork_and_replay_in_chromium(browser, demo_db):
    db, result = demo_db
    thread_id, history = result["thread_id"], result["history"]
    process, url = start_ui(db, "--graph", "ferrograph.demo:build")
    origin = url.split("/?", 1)[0]
    watched = Watched(browser, origin)
    page = watched.page
    try:
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        assert page.url == origin + "/"  # the token left the address bar
        assert "actions on" in page.locator("#mode").inner_text()
        row = page.locator(f"#threads tbody tr[data-thread='{thread_id}']")
        assert row.count() == 1 and "update" not in row.inner_text()
        assert "1–1 of 1 threads" in page.locator("#page-info").inner_text()
        watched.shot("1-threads")

        row.click()
        page.wait_for_selector("#checkpoint:not([hidden])")
        assert page.locator("#thread-title").inner_text() == thread_id
        assert _tree_nodes(page) == len(history)
        forks = page.locator("#tree .node[data-fork='1']")
        assert forks.count() == 1 and forks.first.get_attribute("data-checkpoint-id") == result["fork"]
        assert page.locator("#tree").get_attribute("data-branches") == "2"

        # The fork's checkpoint: its diff against its parent, the state marked, the graph with research next.
        forks.first.click()
        expect(page.locator("#checkpoint-title")).to_have_text(result["fork"])
        page.wait_for_selector("#graph svg")
        assert "update" in page.locator("#checkpoint-facts").inner_text()
        assert page.locator("#diff-against").input_value() == result["fork_from"]
        diff_rows = page.locator("[data-testid='diff-row']")
        assert diff_rows.count() >= 1 and all(".questions" in t for t in diff_rows.all_inner_texts())
        assert page.locator("#state .diff-changed, #state .diff-added").count() >= 1
        next_nodes = page.locator("#graph .node[data-next='1']")
        assert next_nodes.count() == 1 and next_nodes.first.text_content().strip() == "research"
        assert "next: research" in page.locator("#next-nodes").inner_text()
        watched.shot("2-fork-checkpoint")

        # Compared with another checkpoint picked in the list: the original branch's final one.
        final = result["branches"]["original"]["checkpoint_id"]
        page.select_option("#diff-against", final)
        page.wait_for_selector(f"#tree .node.compared[data-checkpoint-id='{final}']")
        expect(page.locator("#diff")).to_contain_text(".report")  # the fork's branch has no report yet

        # Fork from the checkpoint after plan, as plan, with other questions.
        page.locator(f"#tree .node[data-checkpoint-id='{result['fork_from']}']").click()
        expect(page.locator("#checkpoint-title")).to_have_text(result["fork_from"])
        page.select_option("#fork-channel", "questions")
        assert json.loads(page.locator("#fork-value").input_value()) == ["What is pregel?", "What is reducer?", "What is send?", "What is rust?"]
        page.fill("#fork-value", json.dumps(["What is send?"]))
        page.select_option("#fork-as-node", "plan")
        page.click("[data-testid='fork']")
        expect(page.locator("#tree .node")).to_have_count(len(history) + 1)
        assert page.locator("#tree .node[data-fork='1']").count() == 2
        assert page.locator("#tree").get_attribute("data-branches") == "3"
        new_id = page.locator("#tree .node.selected").get_attribute("data-checkpoint-id")
        assert new_id not in {r["checkpoint_id"] for r in history}
        expect(page.locator("#checkpoint-title")).to_have_text(new_id)
        assert "update" in page.locator("#checkpoint-facts").inner_text()
        assert "next: research" in page.locator("#next-nodes").inner_text()
        watched.shot("3-forked")

        # Replay the new branch: its chunks stream into the log, the tree grows.
        page.click("[data-testid='replay']")
        page.wait_for_selector("#run-log li.done")
        log = page.locator("#run-log").inner_text()
        assert "research: " in log and "What is send?" in log and "write: " in log
        expect(page.locator("#tree .node")).to_have_count(len(history) + 1 + 5)  # the replay: steps 3 to 7
        expect(page.locator("#next-nodes")).to_contain_text("nothing next")
        watched.shot("4-replayed")

        assert watched.elsewhere == [], "the page loaded something from elsewhere"
        assert watched.errors == []
    finally:
        page.close()
        stop(process)


def test_read_only_page_and_the_login_prompt(browser, demo_db):
    db, result = demo_db
    process, url = start_ui(db)
    origin = url.split("/?", 1)[0]
    watched = Watched(browser, origin)
    page = watched.page
    try:
        page.goto(origin + "/")  # without the token
        page.wait_for_selector("#login:not([hidden])")
        assert "?token=" in page.locator("#login").inner_text()

        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator("#mode").inner_text() == "read-only"
        page.locator(f"#threads tbody tr[data-thread='{result['thread_id']}']").click()
        page.wait_for_selector("#checkpoint:not([hidden])")
        assert page.locator("#actions").is_hidden()
        expect(page.locator("#graph")).to_contain_text("--graph")
        assert watched.elsewhere == []
        watched.shot("5-read-only")
    finally:
        page.close()
        stop(process)


def test_listening_on_every_address_warns(demo_db):
    db, _ = demo_db
    process, url = start_ui(db, host="0.0.0.0")
    assert url.startswith("http://127.0.0.1:")
    assert "WARNING: listening on 0.0.0.0" in stop(process)


def test_the_command_refuses_bad_options_before_serving(demo_db, tmp_path, capsys):
    from ferrograph.cli import main

    db, _ = demo_db
    for argv, message in [
        (["ui", db, "--port", "0"], "--port must be between 1 and 65535"),
        (["ui", db, "--graph", "ferrograph.demo:build", "--graph", "ferrograph.demo:builder"], "give --graph once"),
        (["ui", str(tmp_path / "missing.db")], "no such SQLite database"),
        (["ui", db, "--graph", "ferrograph.demo:nope"], "has no attribute 'nope'"),
    ]:
        assert main(argv) == 1
        assert message in capsys.readouterr().err, argv
