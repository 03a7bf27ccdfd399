"""Micro-benchmarks of the checkpoint codec (`ferrograph._core.dumps/loads`) against orjson on
the same payloads, in one process run, printed as a Markdown table of per-call times.

    python benchmarks/codec.py            # needs orjson installed
    python benchmarks/codec.py --quick
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any, Callable


def _message(i: int) -> dict:
    """The chat-message-like dict of benchmarks/run.py (about 200 bytes)."""
    return {
        "role": "assistant" if i % 2 else "user",
        "content": f"message {i}: " + "lorem ipsum dolor sit amet " * 5,
        "id": f"msg-{i:06d}",
        "metadata": {"tokens": 42 + i, "model": "local"},
    }


def payloads() -> dict[str, Any]:
    return {
        "20 chat messages (~4 KB)": [_message(i) for i in range(20)],
        "1000 ints": list(range(-500_000, 500_000, 1000)),
        "1000 floats": [i / 7 for i in range(1000)],
        "100 KB str": "lorem ipsum dolor sit amet " * 3800,
        "100 KB str, escapes + non-ASCII": ("line one\n\t\"quoted\" café → ok " * 3000)[:100_000],
        "nested dicts (depth 6, 729 leaves)": _nested(6),
    }


def _nested(depth: int) -> Any:
    if depth == 0:
        return {"leaf": True, "n": 1}
    return {f"k{i}": _nested(depth - 1) for i in range(3)}


def _time_per_call(fn: Callable[[], Any], repeat: int, number: int) -> float:
    fn()
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - start) / number)
    return statistics.median(rounds)


def _fmt(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:,.1f} µs" if us < 100 else f"{us:,.0f} µs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args(argv)
    import orjson

    from ferrograph import _core

    repeat, number = (3, 100) if args.quick else (7, 500)
    print("| payload | op | orjson | ferrograph | ferrograph / orjson |")
    print("|---|---|---:|---:|---:|")
    for name, value in payloads().items():
        data_fg, data_oj = _core.dumps(value), orjson.dumps(value)
        assert _core.loads(data_fg) == value and orjson.loads(data_oj) == value
        for op, fg, oj in (
            ("dumps", lambda: _core.dumps(value), lambda: orjson.dumps(value)),
            ("loads", lambda: _core.loads(data_fg), lambda: orjson.loads(data_oj)),
        ):
            t_oj = _time_per_call(oj, repeat, number)
            t_fg = _time_per_call(fg, repeat, number)
            print(f"| {name} | {op} | {_fmt(t_oj)} | {_fmt(t_fg)} | {t_fg / t_oj:.1f}x |")
    print(f"\nPython {sys.version.split()[0]}, one process, median of {repeat} rounds of {number} calls.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
