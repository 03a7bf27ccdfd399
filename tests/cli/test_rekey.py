"""`ferrograph rekey URL`: re-encrypts a database's values with the newest key from the
environment (FERROGRAPH_AES_KEY, its id, and the old keys), resumably; the reading commands use
the same keys, on SQLite and Postgres."""

from __future__ import annotations

import base64
import json
import os

from cli_helpers import run

from ferrograph.checkpointers import Encryption, open_saver
from ferrograph.checkpointers.base import empty_checkpoint

OLD = os.urandom(32)
NEW = os.urandom(32)


def fill(url: str) -> None:
    with open_saver(url, encryption=Encryption(key=OLD, key_id="old")) as saver:
        parent = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
        for step in range(5):
            c = empty_checkpoint()
            c["channel_values"] = {"text": f"secret {step}"}
            c["channel_versions"] = {"text": f"{step + 1:032}.0"}
            parent = saver.put(parent, c, {"source": "loop", "step": step, "parents": {}}, {"text": c["channel_versions"]["text"]})
        saver.put_writes(parent, [("text", "secret write")], "task")


def test_rekey_moves_every_value_to_the_new_key(url, capsys, monkeypatch):
    fill(url)
    code, out, err = run(capsys, "rekey", url)
    assert code != 0 and "rekey needs the keys: FERROGRAPH_AES_KEY" in err
    monkeypatch.setenv("FERROGRAPH_AES_KEY", base64.b64encode(NEW).decode())
    monkeypatch.setenv("FERROGRAPH_AES_KEY_ID", "new")
    # Without the old key, reading names the key it lacks.
    code, out, err = run(capsys, "show", url, "t")
    assert code != 0 and "key id \"old\"" in err
    monkeypatch.setenv("FERROGRAPH_AES_OLD_KEYS", "old:" + base64.b64encode(OLD).decode())
    code, out, err = run(capsys, "rekey", url, "--batch-size", "2", "--json")
    assert code == 0, err
    # Checkpoint rows, then blob rows, then pending writes, two rows per transaction.
    assert json.loads(out) == {"key_id": "new", "examined": 6, "reencrypted": 6, "batches": 7}
    code, out, err = run(capsys, "rekey", url, "--vacuum")
    assert code == 0, err
    assert "vacuum: " in out and " bytes) after" in out
    assert out.startswith("re-encrypted 0 of 6 stored values with key id 'new' in 3 transactions; 6 were under that key already")
    # Only the new key is needed now.
    monkeypatch.delenv("FERROGRAPH_AES_OLD_KEYS")
    code, out, err = run(capsys, "show", url, "t", "--json")
    assert code == 0, err
    assert json.loads(out)["values"]["text"] == "secret 4"
    with open_saver(url, create=False, encryption=Encryption(key=NEW, key_id="new")) as saver:
        found = saver.get_tuple({"configurable": {"thread_id": "t"}})
        assert found.pending_writes == [("task", "text", "secret write")]
    # Metadata encrypted too, from the environment: rekey encrypts each checkpoint's, and
    # `threads` still shows the latest step, decrypted.
    monkeypatch.setenv("FERROGRAPH_AES_METADATA", "1")
    code, out, err = run(capsys, "rekey", url, "--json")
    assert code == 0, err
    assert json.loads(out)["reencrypted"] == 5
    code, out, err = run(capsys, "threads", url, "--json")
    assert code == 0, err
    assert [(t["thread_id"], t["last_step"], t["last_source"]) for t in json.loads(out)] == [("t", 4, "loop")]
