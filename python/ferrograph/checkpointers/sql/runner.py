"""The statement runner: how the SQL savers' operations talk to a database without doing I/O.

Each protocol method is an *operation*: a generator that yields `Query` steps, receives each
step's rows (None for statements without a result), and returns the method's result. `list`
operations also yield `Emit` steps carrying finished tuples, so a caller can stream them page by
page. `drive` and `drive_iter` run an operation against a synchronous `execute(query)`, `adrive`
and `adrive_iter` against an asynchronous one; the saver classes only supply `execute`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Generator, Iterable, Iterator, NamedTuple, Optional, Sequence, Union

__all__ = [
    "Emit",
    "Op",
    "Query",
    "Step",
    "Transactions",
    "adrive",
    "adrive_iter",
    "adrive_transactions",
    "drive",
    "drive_iter",
    "drive_transactions",
]


class Query(NamedTuple):
    """One statement: a tuple, since operations make one per statement and a frozen dataclass
    took three times as long to make. `params` is a sequence, a sequence of sequences when
    `many`, or None for a statement run without parameter parsing (migration DDL). `rows` False:
    the operation does not read the statement's result, so a driver may queue it without waiting
    (Postgres pipeline). `depends`: the statement reads rows that statements before it write (a
    delta's row, a line's latest checkpoint), so a driver that regroups statements must not move
    it before them. `alone`: the operation's first and only statement, atomic on its own, so a
    driver on an autocommit connection may run it without a transaction around it (SQLite: no
    BEGIN and no COMMIT to run); an operation marks it so only when nothing else can follow it."""

    sql: str
    params: Optional[Sequence[Any]] = ()
    many: bool = False
    rows: bool = True
    depends: bool = False
    alone: bool = False


@dataclass(frozen=True)
class Emit:
    """Results of a streaming operation, built as they are iterated (before the operation's
    next step)."""

    items: Iterable[Any]


Step = Union[Query, Emit]
Op = Generator[Step, Any, Any]
#: Work done as several operations, each in its own transaction: a generator yielding pairs of
#: a function making the next operation (called again if a driver retries it) and whether it
#: writes, receiving each operation's result, and returning its own.
Transactions = Generator[tuple[Callable[[], Op], bool], Any, Any]


def drive(op: Op, execute: Callable[[Query], Any], first: Optional[Step] = None) -> Any:
    """Runs an operation to its result with a synchronous `execute`; `first`: its first step,
    when the caller has taken it already (to look at it before starting a transaction)."""
    try:
        step = next(op) if first is None else first
        while True:
            if isinstance(step, Emit):
                raise TypeError("a streaming operation must be run with drive_iter")
            step = op.send(execute(step))
    except StopIteration as stop:
        return stop.value


def drive_iter(op: Op, execute: Callable[[Query], Any]) -> Iterator[Any]:
    """Runs a streaming operation, yielding the items it emits."""
    try:
        step = next(op)
        while True:
            if isinstance(step, Emit):
                yield from step.items
                step = op.send(None)
            else:
                step = op.send(execute(step))
    except StopIteration:
        return


async def adrive(op: Op, execute: Callable[[Query], Awaitable[Any]], first: Optional[Step] = None) -> Any:
    """Runs an operation to its result with an asynchronous `execute` (`first` as in `drive`)."""
    try:
        step = next(op) if first is None else first
        while True:
            if isinstance(step, Emit):
                raise TypeError("a streaming operation must be run with adrive_iter")
            step = op.send(await execute(step))
    except StopIteration as stop:
        return stop.value


async def adrive_iter(op: Op, execute: Callable[[Query], Awaitable[Any]]) -> AsyncIterator[Any]:
    """Runs a streaming operation, yielding the items it emits."""
    try:
        step = next(op)
        while True:
            if isinstance(step, Emit):
                for item in step.items:
                    yield item
                step = op.send(None)
            else:
                step = op.send(await execute(step))
    except StopIteration:
        return


def drive_transactions(work: Transactions, run: Callable[[Callable[[], Op], bool], Any]) -> Any:
    """Runs `work` with a synchronous `run(make_op, writes)` (the saver's transaction runner)."""
    try:
        step = next(work)
        while True:
            step = work.send(run(*step))
    except StopIteration as stop:
        return stop.value


async def adrive_transactions(work: Transactions, run: Callable[[Callable[[], Op], bool], Awaitable[Any]]) -> Any:
    """Runs `work` with an asynchronous `run`."""
    try:
        step = next(work)
        while True:
            step = work.send(await run(*step))
    except StopIteration as stop:
        return stop.value
