"""Fixtures of the `ferrograph ui` tests: the databases of the CLI tests (their `fill`, from
tests/cli, whose folder pytest does not put on the path when only tests/ui runs) behind the
application, on a MemorySaver, SQLite and Postgres."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "cli"))

from ui_helpers import client, saver_and_facts  # noqa: E402, F401
