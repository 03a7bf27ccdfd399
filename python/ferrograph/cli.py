"""The `ferrograph` command.

    ferrograph demo [--db PATH]                      a research agent on SQLite: history, fork, replay
    ferrograph threads URL                           threads, checkpoint counts, last activity
    ferrograph history URL THREAD                    the checkpoint tree (forks as branches)
    ferrograph show URL THREAD [CHECKPOINT]          a checkpoint's state as JSON
    ferrograph diff URL THREAD [FROM] [TO]           what changed between two checkpoints
    ferrograph stats URL [--thread T]                counts, bytes per channel and thread, activity
    ferrograph prune URL [--keep-last N] [--older-than 30d] [--thread T] [--filter K=V] [--dry-run] [--vacuum]
    ferrograph rekey URL [--batch-size N]            re-encrypt stored values with the newest key
    ferrograph delete-thread URL THREAD              drop a thread
    ferrograph copy URL_FROM URL_TO [--thread T]     copy threads between savers (resumable)
    ferrograph import-langgraph URL_FROM URL_TO      import a LangGraph Sqlite/PostgresSaver database
    ferrograph graph MODULE:ATTR                     a graph's Mermaid text
    ferrograph ui URL [--graph MODULE:ATTR]          a local web page over the database (extra `ui`)
    ferrograph db upgrade|downgrade|current|history  the SQL savers' schema (Alembic)

Every command takes `--json` for scripts (`db`: current and history). Each command is a subparser with a handler.
A URL is a SQLite file path, `sqlite:///path`, or `postgresql://...`. With FERROGRAPH_AES_KEY set
(and FERROGRAPH_AES_KEY_ID, FERROGRAPH_AES_OLD_KEYS while rotating), every command reads and
writes the database with that encryption (`Encryption.from_env()`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import sys
from typing import Any, Callable, Iterator, Optional, Protocol, Sequence

from ferrograph.errors import FerrographError

__all__ = ["main"]


def _current_revision(url: str) -> Optional[str]:
    """The database's revision; None when it has no ferrograph schema (or, for SQLite, when the
    file does not exist: reading must not create it)."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine, make_url, pool

    from ferrograph.migrations import VERSION_TABLE, sqlalchemy_url

    sa_url = make_url(sqlalchemy_url(url))
    if sa_url.get_backend_name() == "sqlite" and (not sa_url.database or not os.path.exists(sa_url.database)):
        return None
    engine = create_engine(sa_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()
    finally:
        engine.dispose()


def _db_upgrade(args: argparse.Namespace) -> None:
    from alembic import command

    from ferrograph.migrations import alembic_config, check_revision

    try:
        current = _current_revision(args.url)
    except Exception:
        if not args.sql:
            raise
        current = None  # printing SQL for a database we cannot reach: start from the base
    check_revision(current)
    revision = args.revision
    if args.sql and current and ":" not in revision:
        revision = f"{current}:{revision}"
    command.upgrade(alembic_config(args.url), revision, sql=args.sql)


def _db_downgrade(args: argparse.Namespace) -> None:
    from alembic import command

    from ferrograph.migrations import alembic_config, check_revision

    revision = args.revision
    if args.sql and ":" in revision:
        command.downgrade(alembic_config(args.url), revision, sql=True)
        return
    current = _current_revision(args.url)
    check_revision(current)
    if args.sql:
        if current is None:
            raise FerrographError("the database has no ferrograph schema: nothing to downgrade")
        revision = f"{current}:{revision}"
    command.downgrade(alembic_config(args.url), revision, sql=args.sql)


def _db_current(args: argparse.Namespace) -> None:
    from ferrograph.migrations import check_revision, head_revision

    current = _current_revision(args.url)
    if current is not None:
        check_revision(current)
    if args.json:
        _emit_json({"revision": current, "head": head_revision(), "is_head": current == head_revision()})
        return
    if current is None:
        print("none (no ferrograph schema)")
        return
    print(f"{current} (head)" if current == head_revision() else current)


def _db_history(args: argparse.Namespace) -> None:
    from ferrograph.migrations import script_directory

    current = _current_revision(args.url) if args.url else None
    if args.json:
        _emit_json(
            [
                {
                    "revision": script.revision,
                    "down_revision": script.down_revision,
                    "is_head": bool(script.is_head),
                    "is_current": script.revision == current,
                    "doc": (script.doc or "").strip(),
                }
                for script in script_directory().walk_revisions()
            ]
        )
        return
    for script in script_directory().walk_revisions():
        marks = []
        if script.is_head:
            marks.append("head")
        if script.revision == current:
            marks.append("current")
        down = script.down_revision or "<base>"
        suffix = f" ({', '.join(marks)})" if marks else ""
        summary = (script.doc or "").strip().splitlines()[0] if script.doc else ""
        print(f"{down} -> {script.revision}{suffix}, {summary}")



# ---- inspection and data commands


def _emit_json(data: Any) -> None:
    from ferrograph._inspect import dumps

    print(dumps(data))


class _Advance(Protocol):
    """Moves a progress bar on by `n` (1 by default, so it serves as a no-argument callback)."""

    def __call__(self, n: int = 1) -> None: ...


@contextlib.contextmanager
def _progress(description: str, total: Optional[int]) -> Iterator[_Advance]:
    """A rich progress bar on stderr (only when stderr is a terminal); yields `advance(n=1)`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from ferrograph._inspect import console

    err = console(stderr=True)
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            progress.advance(task, n)

        yield advance


def _scan(saver: Any, thread: Optional[str], what: str) -> list:
    from ferrograph._inspect import scan_threads

    with _progress(f"reading {what}", None) as advance:
        return scan_threads(saver, thread, on_item=advance)


def _threads(args: argparse.Namespace) -> None:
    from ferrograph._inspect import console, render_threads
    from ferrograph.checkpointers.url import open_saver

    with open_saver(args.url, create=False, encryption=_env_encryption()) as saver:
        threads = _scan(saver, None, "checkpoints")
    if args.json:
        _emit_json([t.as_json() for t in threads])
    else:
        console().print(render_threads(threads))


def _history(args: argparse.Namespace) -> None:
    from ferrograph._inspect import console, render_history, thread_history
    from ferrograph.checkpointers.url import open_saver

    from ferrograph import serde

    with open_saver(args.url, create=False, encryption=_env_encryption()) as saver, serde.using(_reading_serializer(args)):
        rows, roots = thread_history(saver, args.thread)
    if args.json:
        _emit_json([r.as_json() for r in rows])
    else:
        forks = sum(1 for r in rows if r.fork)
        out = console()
        out.print(render_history(args.thread, roots))
        out.print(f"{len(rows)} checkpoints, {forks} fork{'s' if forks != 1 else ''}")


def _show(args: argparse.Namespace) -> None:
    from ferrograph._inspect import console, dumps, get_checkpoint, state_record
    from ferrograph.checkpointers.url import open_saver

    configurable = {"thread_id": args.thread, "checkpoint_ns": args.ns}
    if args.checkpoint:
        configurable["checkpoint_id"] = args.checkpoint
    from ferrograph import serde

    with open_saver(args.url, create=False, encryption=_env_encryption()) as saver, serde.using(_reading_serializer(args)):
        record = state_record(get_checkpoint(saver, {"configurable": configurable}))
    if args.json:
        _emit_json(record)
    else:
        console().print_json(dumps(record))


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"


def _metadata_filter(pairs: Sequence[str]) -> dict[str, Any]:
    """`--filter key=value` options as a metadata filter: a value that reads as JSON (a number,
    true, false, null, a quoted string, a list) is that value, any other is the text."""
    import json

    found: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise FerrographError(f"--filter takes KEY=VALUE, got {pair!r}")
        try:
            found[key] = json.loads(text)
        except ValueError:
            found[key] = text
    return found


def _diff(args: argparse.Namespace) -> None:
    from ferrograph import serde
    from ferrograph._inspect import console, diff, render_diff
    from ferrograph.checkpointers.url import open_saver

    def config(checkpoint_id: Optional[str]) -> dict:
        configurable = {"thread_id": args.thread, "checkpoint_ns": args.ns}
        if checkpoint_id:
            configurable["checkpoint_id"] = checkpoint_id
        return {"configurable": configurable}

    with open_saver(args.url, create=False, encryption=_env_encryption()) as saver, serde.using(_reading_serializer(args)):
        to = config(args.to)
        if args.frm is None:
            latest = saver.get_tuple(to)
            if latest is None:
                raise FerrographError(f"thread {args.thread!r} has no checkpoints")
            if latest.parent_config is None:
                raise FerrographError(
                    f"checkpoint {latest.config['configurable']['checkpoint_id']!r} has no parent: name the checkpoint to compare it with"
                )
            frm = {"configurable": {**latest.parent_config["configurable"], "checkpoint_ns": args.ns}}
        else:
            frm = config(args.frm)
        result = diff(saver, frm, to)
    if args.json:
        _emit_json(result.as_json())
    else:
        console().print(render_diff(result))


def _stats(args: argparse.Namespace) -> None:
    from ferrograph._inspect import console, render_stats, storage_stats
    from ferrograph.checkpointers.url import open_saver

    if args.largest < 0:
        raise FerrographError(f"--largest must be >= 0, got {args.largest}")
    with open_saver(args.url, create=False, encryption=_env_encryption()) as saver:
        stats = storage_stats(saver, args.thread, args.largest)
    if args.thread is not None and stats.checkpoints == 0:
        raise FerrographError(f"thread {args.thread!r} has no checkpoints")
    if args.json:
        _emit_json(stats.as_json())
    else:
        console().print(render_stats(stats))


def _prune(args: argparse.Namespace) -> None:
    from ferrograph._inspect import console, human_bytes
    from ferrograph.checkpointers import Retention
    from ferrograph.checkpointers.url import open_saver, url_kind

    keep_last = args.keep_last
    if args.keep_latest:
        if keep_last is not None and keep_last != 1:
            raise FerrographError("--keep-latest is --keep-last 1: give one of them")
        keep_last = 1
    if keep_last is None and args.older_than is None:
        raise FerrographError("prune needs what to keep: --keep-last N (or --keep-latest), --older-than AGE, or both")
    if args.vacuum and url_kind(args.url) == "memory":
        raise FerrographError("--vacuum needs a SQLite or Postgres database")
    try:
        policy = Retention(
            keep_last=keep_last,
            older_than=args.older_than,
            threads=args.threads or None,
            filter=_metadata_filter(args.filters) or None,
            keep_forks=args.keep_forks,
        )
    except ValueError as e:
        raise FerrographError(str(e).replace("keep_last", "--keep-last").replace("older_than", "--older-than")) from e
    with open_saver(args.url, create=False, encryption=_env_encryption()) as saver:
        with _progress("pruning", None):
            result = saver.apply_retention(policy, dry_run=args.dry_run)  # type: ignore[attr-defined]
        vacuumed = None
        if args.vacuum and not args.dry_run:
            with _progress("vacuuming", None):
                vacuumed = saver.vacuum(full=args.vacuum == "full")  # type: ignore[attr-defined]
    if args.json:
        data = result.as_json()
        if vacuumed is not None:
            data["vacuum"] = {"bytes_before": vacuumed[0], "bytes_after": vacuumed[1], "full": args.vacuum == "full"}
        _emit_json(data)
        return
    out = console()
    out.print(
        f"{'would delete' if args.dry_run else 'deleted'} {_count(result.checkpoints, 'checkpoint')},"
        f" {_count(result.writes, 'pending write')} and {human_bytes(result.bytes)} ({result.bytes} bytes);"
        f" {_count(result.threads, 'thread')} {'would be' if args.dry_run else 'were'} left empty and deleted whole"
    )
    if vacuumed is not None:
        before, after = vacuumed
        out.print(f"vacuum{' full' if args.vacuum == 'full' else ''}: {human_bytes(before)} ({before} bytes) before, {human_bytes(after)} ({after} bytes) after")


def _env_encryption() -> Any:
    """`Encryption.from_env()` when FERROGRAPH_AES_KEY is set, else None (no encryption)."""
    from ferrograph.checkpointers.encryption import KEY_ENV, Encryption

    return Encryption.from_env() if os.environ.get(KEY_ENV) else None


def _rekey(args: argparse.Namespace) -> None:
    from ferrograph._inspect import console, human_bytes
    from ferrograph.checkpointers.encryption import KEY_ENV
    from ferrograph.checkpointers.url import open_saver, url_kind

    if url_kind(args.url) == "memory":
        raise FerrographError("rekey needs a SQLite or Postgres database")
    if args.batch_size <= 0:
        raise FerrographError(f"--batch-size must be positive, got {args.batch_size}")
    encryption = _env_encryption()
    if encryption is None:
        raise FerrographError(
            f"rekey needs the keys: {KEY_ENV} (the new key, base64 of 32 bytes), FERROGRAPH_AES_KEY_ID (its id) and,"
            " to read what older keys encrypted, FERROGRAPH_AES_OLD_KEYS (id:base64,...)"
        )
    with open_saver(args.url, create=False, encryption=encryption) as saver:
        with _progress("re-encrypting", None):
            result = saver.rekey(batch_size=args.batch_size)  # type: ignore[attr-defined]
        vacuumed = None
        if args.vacuum:
            with _progress("vacuuming", None):
                vacuumed = saver.vacuum(full=args.vacuum == "full")  # type: ignore[attr-defined]
    if args.json:
        data: dict[str, Any] = {"key_id": result.key_id, "examined": result.examined,
                                "reencrypted": result.reencrypted, "batches": result.batches}
        if vacuumed is not None:
            data["vacuum"] = {"bytes_before": vacuumed[0], "bytes_after": vacuumed[1], "full": args.vacuum == "full"}
        _emit_json(data)
        return
    out = console()
    skipped = result.examined - result.reencrypted
    out.print(
        f"re-encrypted {result.reencrypted} of {_count(result.examined, 'stored value')} with key id {result.key_id!r}"
        f" in {_count(result.batches, 'transaction')}" + (f"; {skipped} were under that key already" if skipped else "")
    )
    if vacuumed is not None:
        before, after = vacuumed
        out.print(f"vacuum{' full' if args.vacuum == 'full' else ''}: {human_bytes(before)} ({before} bytes) before, {human_bytes(after)} ({after} bytes) after")


def _delete_thread(args: argparse.Namespace) -> None:
    from ferrograph._inspect import console
    from ferrograph.checkpointers.url import open_saver

    with open_saver(args.url, create=False, encryption=_env_encryption()) as saver:
        threads = _scan(saver, args.thread, "checkpoints")
        if not threads:
            raise FerrographError(f"thread {args.thread!r} has no checkpoints")
        saver.delete_thread(args.thread)
    result = {"thread_id": args.thread, "checkpoints_deleted": threads[0].checkpoints}
    if args.json:
        _emit_json(result)
    else:
        console().print(f"deleted thread {args.thread} ({threads[0].checkpoints} checkpoints)")


def _copy_from(src: Any, dst: Any, thread: Optional[str], json_out: bool, verb: str) -> None:
    from ferrograph._inspect import console
    from ferrograph._transfer import CopyStats, copy_thread

    threads = _scan(src, thread, "the source")
    if thread is not None and not threads:
        raise FerrographError(f"thread {thread!r} has no checkpoints at the source")
    stats = CopyStats()
    try:
        with _progress(f"{verb} checkpoints", sum(t.checkpoints for t in threads)) as advance:
            for summary in threads:
                stats.add(copy_thread(src, dst, summary.thread_id, on_checkpoint=advance))
    except KeyboardInterrupt:
        raise FerrographError(f"interrupted after {stats.checkpoints} checkpoints: run the same command again to resume")
    if json_out:
        _emit_json(stats.as_json())
    else:
        console().print(
            f"{verb} {stats.threads} thread{'s' if stats.threads != 1 else ''}: {stats.checkpoints} checkpoints"
            f" and {stats.writes} pending writes copied, {stats.skipped} checkpoints already there"
        )


def _copy(args: argparse.Namespace) -> None:
    from ferrograph.checkpointers.url import open_saver

    with open_saver(args.url_from, create=False, encryption=_env_encryption()) as src, open_saver(
        args.url_to, create=True, encryption=_env_encryption()
    ) as dst:
        _copy_from(src, dst, args.thread, args.json, "copied")


def _import_langgraph(args: argparse.Namespace) -> None:
    from ferrograph._transfer import open_langgraph_saver
    from ferrograph.checkpointers.url import open_saver

    with open_langgraph_saver(args.url_from) as src, open_saver(args.url_to, create=True, encryption=_env_encryption()) as dst:
        _copy_from(src, dst, args.thread, args.json, "imported")


def load_graph(spec: str) -> Any:
    """The compiled graph `MODULE:ATTR` names (ATTR may be dotted): a compiled graph, a
    StateGraph builder (compiled here), or a zero-argument callable returning either. MODULE may
    also be a path to a .py file."""
    obj = _import_attr(spec)
    from ferrograph.graph import StateGraph

    if not hasattr(obj, "get_graph") and not isinstance(obj, StateGraph) and callable(obj):
        obj = obj()
    if isinstance(obj, StateGraph):
        obj = obj.compile()
    if not hasattr(obj, "get_graph"):
        raise FerrographError(f"{spec} is a {type(obj).__name__}, not a compiled graph, a StateGraph or a callable returning one")
    return obj


def _import_attr(spec: str) -> Any:
    """The object `MODULE:ATTR` names (ATTR may be dotted; MODULE may be a path to a .py file)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise FerrographError(f"expected MODULE:ATTR (e.g. my_app.graphs:agent), got {spec!r}")
    if module_name.endswith(".py") or os.sep in module_name:
        path = os.path.abspath(module_name)
        if not os.path.exists(path):
            raise FerrographError(f"no such file: {module_name}")
        name = os.path.splitext(os.path.basename(path))[0]
        loader_spec = importlib.util.spec_from_file_location(name, path)
        assert loader_spec is not None and loader_spec.loader is not None
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules.setdefault(name, module)
        loader_spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and module_name.startswith(e.name):
                raise FerrographError(f"cannot import module {module_name!r}: {e}") from e
            raise
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise FerrographError(f"{module_name!r} has no attribute {attr!r}") from None
    return obj


def _reading_serializer(args: argparse.Namespace) -> Optional[Any]:
    """The allowed set a reading command uses: the classes of `--allow MODULE:CLASS` and those of
    the graphs of `--graph MODULE:ATTR` (their schemas' classes), or None for the process-wide
    one."""
    from ferrograph import serde

    classes: list[type] = []
    for spec in args.allow:
        cls = _import_attr(spec)
        if not isinstance(cls, type):
            raise FerrographError(f"--allow {spec}: not a class but a {type(cls).__name__}")
        classes.append(cls)
    for spec in args.graphs:
        classes.extend(load_graph(spec).allowed_types)
    return serde.Serializer(allowed=classes) if classes else None


def _graph(args: argparse.Namespace) -> None:
    mermaid = load_graph(args.target).get_graph().draw_mermaid()
    if args.json:
        _emit_json({"mermaid": mermaid})
    else:
        sys.stdout.write(mermaid)


def _ui(args: argparse.Namespace) -> None:
    try:
        from ferrograph.ui import serve
    except ImportError as e:  # Starlette and uvicorn are the `ui` extra
        raise FerrographError(f"`ferrograph ui` needs the ui extra ({e.name} is not installed): pip install 'ferrograph[ui]'") from e
    from ferrograph.checkpointers.url import display_url, open_saver

    if not 0 < args.port < 65536:
        raise FerrographError(f"--port must be between 1 and 65535, got {args.port}")
    if len(args.graphs) > 1:
        raise FerrographError("ferrograph ui runs one graph: give --graph once")
    spec = args.graphs[0] if args.graphs else None
    graph = load_graph(spec) if spec else None
    with open_saver(args.url, create=False, encryption=_env_encryption()) as saver:
        serve(
            saver,
            host=args.host,
            port=args.port,
            graph=graph,
            graph_spec=spec,
            saver_label=display_url(args.url),
            json_output=args.json,
            serializer=_reading_serializer(args),
        )


def _demo(args: argparse.Namespace) -> None:
    from ferrograph import demo

    demo.run(args.db, json_output=args.json, reset=args.reset)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ferrograph", description="ferrograph's command line.")
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)

    db = groups.add_parser("db", help="manage the schema of a SQL saver's database (Alembic)")
    commands = db.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    url_help = "a SQLite file path, sqlite:///path, or postgresql://..."

    upgrade = commands.add_parser("upgrade", help="upgrade the schema (to the latest revision by default)")
    upgrade.add_argument("url", help=url_help)
    upgrade.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    upgrade.add_argument(
        "--sql",
        action="store_true",
        help="print the SQL instead of running it (from the database's revision when it can be read)",
    )
    upgrade.set_defaults(handler=_db_upgrade)

    downgrade = commands.add_parser("downgrade", help="downgrade the schema to REVISION (e.g. 0001, -1, base)")
    downgrade.add_argument("url", help=url_help)
    downgrade.add_argument("revision", help="target revision, or FROM:TO with --sql")
    downgrade.add_argument("--sql", action="store_true", help="print the SQL instead of running it")
    downgrade.set_defaults(handler=_db_downgrade)

    current = commands.add_parser("current", help="show the database's schema revision")
    current.add_argument("url", help=url_help)
    current.add_argument("--json", action="store_true", help="print JSON for scripts")
    current.set_defaults(handler=_db_current)

    history = commands.add_parser("history", help="list the schema revisions (marking the database's)")
    history.add_argument("url", nargs="?", help=url_help)
    history.add_argument("--json", action="store_true", help="print JSON for scripts")
    history.set_defaults(handler=_db_history)

    def command(name: str, help: str, handler: Callable[[argparse.Namespace], None]) -> argparse.ArgumentParser:
        sub = groups.add_parser(name, help=help, description=help)
        sub.add_argument("--json", action="store_true", help="print JSON for scripts instead of tables")
        sub.add_argument(
            "--import",
            dest="imports",
            action="append",
            default=[],
            metavar="MODULE",
            help="import MODULE first (one that allows the classes stored in the checkpoints); repeatable",
        )
        sub.set_defaults(handler=handler)
        return sub

    def reading(
        sub: argparse.ArgumentParser,
        graph_help: str = "rebuild the classes this graph's schemas name (a compiled graph, a StateGraph or a "
        "callable returning one); repeatable",
    ) -> None:
        sub.add_argument(
            "--allow",
            action="append",
            default=[],
            metavar="MODULE:CLASS",
            help="rebuild instances of this class of yours (imported); repeatable",
        )
        sub.add_argument(
            "--graph",
            dest="graphs",
            action="append",
            default=[],
            metavar="MODULE:ATTR",
            help=graph_help,
        )

    demo = command("demo", "run a research agent on SQLite, then show its history, a fork and its replay", _demo)
    demo.add_argument("--db", default="ferrograph-demo.db", help="the SQLite file (default: ./ferrograph-demo.db)")
    demo.add_argument("--reset", action="store_true", help="delete the demo's earlier threads from the file first")

    threads = command("threads", "list the threads of a checkpoint database", _threads)
    threads.add_argument("url", help=url_help)

    hist = command("history", "show a thread's checkpoint tree (forks as branches)", _history)
    hist.add_argument("url", help=url_help)
    hist.add_argument("thread", help="thread id")
    reading(hist)

    show = command("show", "show a checkpoint's state as JSON (the thread's latest by default)", _show)
    show.add_argument("url", help=url_help)
    show.add_argument("thread", help="thread id")
    show.add_argument("checkpoint", nargs="?", help="checkpoint id (default: the latest)")
    show.add_argument("--ns", default="", help="checkpoint namespace (default: the root graph's)")
    reading(show)

    diff = command(
        "diff", "what changed between two checkpoints of a thread (default: the latest and its parent)", _diff
    )
    diff.add_argument("url", help=url_help)
    diff.add_argument("thread", help="thread id")
    diff.add_argument("frm", nargs="?", metavar="FROM", help="the older checkpoint (default: TO's parent)")
    diff.add_argument("to", nargs="?", metavar="TO", help="the newer checkpoint (default: the thread's latest)")
    diff.add_argument("--ns", default="", help="checkpoint namespace (default: the root graph's)")
    reading(diff)

    stats = command("stats", "what the database holds: counts, bytes per channel and thread, activity; reads no value", _stats)
    stats.add_argument("url", help=url_help)
    stats.add_argument("--thread", help="only this thread")
    stats.add_argument("--largest", type=int, default=10, metavar="N", help="list the N largest threads (default: 10)")

    prune = command(
        "prune",
        "delete the checkpoints a retention policy does not keep (see the README, Keeping the database healthy)",
        _prune,
    )
    prune.add_argument("url", help=url_help)
    prune.add_argument(
        "--keep-last",
        type=int,
        metavar="N",
        help="keep each thread's latest checkpoint and its ancestors, N in all (per namespace; 0: none)",
    )
    prune.add_argument("--keep-latest", action="store_true", help="the same as --keep-last 1")
    prune.add_argument("--older-than", metavar="AGE", help="delete checkpoints older than AGE (30d, 12h, 10m, 2w)")
    prune.add_argument(
        "--keep-forks", action="store_true", help="with --keep-last, keep the last N steps of every branch, not only the latest's"
    )
    prune.add_argument("--thread", dest="threads", action="append", default=[], help="prune only this thread; repeatable")
    prune.add_argument(
        "--filter",
        dest="filters",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="prune only threads with a checkpoint whose metadata has KEY=VALUE (VALUE read as JSON when it is); repeatable",
    )
    prune.add_argument("--dry-run", action="store_true", help="delete nothing; print what would be deleted")
    prune.add_argument(
        "--vacuum",
        nargs="?",
        const="plain",
        choices=["plain", "full"],
        help="then give the space back and print the bytes before and after (SQLite: VACUUM; Postgres: VACUUM,"
        " or VACUUM FULL with --vacuum full, which locks the tables while it runs)",
    )

    rekey = command(
        "rekey",
        "re-encrypt every stored value and pending write with the newest key (FERROGRAPH_AES_KEY; older keys in"
        " FERROGRAPH_AES_OLD_KEYS); resumable: run it again after an interruption",
        _rekey,
    )
    rekey.add_argument("url", help=url_help)
    rekey.add_argument("--batch-size", type=int, default=500, metavar="N", help="rows per transaction (default: 500)")
    rekey.add_argument(
        "--vacuum",
        nargs="?",
        const="plain",
        choices=["plain", "full"],
        help="then rewrite the database so that no page keeps an old copy of a value (SQLite: VACUUM; Postgres:"
        " VACUUM, or VACUUM FULL with --vacuum full) and print the bytes before and after",
    )

    delete = command("delete-thread", "delete a thread's checkpoints and writes", _delete_thread)
    delete.add_argument("url", help=url_help)
    delete.add_argument("thread", help="thread id")

    copy = command("copy", "copy threads between databases (resumable; copies nothing twice)", _copy)
    copy.add_argument("url_from", metavar="URL_FROM", help=url_help)
    copy.add_argument("url_to", metavar="URL_TO", help=url_help + " (created and migrated if needed)")
    copy.add_argument("--thread", help="copy only this thread")

    imp = command(
        "import-langgraph",
        "import a LangGraph SqliteSaver/PostgresSaver database as ferrograph threads (resumable)",
        _import_langgraph,
    )
    imp.add_argument("url_from", metavar="URL_FROM", help="a LangGraph database: " + url_help)
    imp.add_argument("url_to", metavar="URL_TO", help=url_help + " (created and migrated if needed)")
    imp.add_argument("--thread", help="import only this thread")

    graph = command("graph", "print a compiled graph's Mermaid text", _graph)
    graph.add_argument(
        "target", metavar="MODULE:ATTR", help="a compiled graph, a StateGraph, or a zero-argument callable returning one"
    )

    ui = command("ui", "serve a local web page to see, compare, fork, replay and resume threads", _ui)
    ui.add_argument("url", help=url_help)
    reading(
        ui,
        graph_help="the graph that wrote the threads: rebuilds the classes its schemas name and turns on fork, "
        "replay, resume and new runs (read-only without)",
    )
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    ui.add_argument("--port", type=int, default=8765, help="port to listen on (default: 8765)")
    return parser


def _prepare_codec(args: argparse.Namespace) -> None:
    """Imports the modules whose classes the codec may have to rebuild: ferrograph's own types
    (the engine stores `Send`s) and those named with --import."""
    import ferrograph.types  # noqa: F401

    for name in getattr(args, "imports", None) or ():
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise FerrographError(f"cannot import {name!r} (--import): {e}") from e


def _langgraph_classes_needed(error: Exception) -> bool:
    """Whether reading failed on a LangGraph class (a database LangGraph wrote through
    ferrograph's savers) and LangGraph is there to allowlist it. LangGraph is imported only then:
    it takes over a second to import."""
    if "class 'langgraph." not in str(error):
        return False
    return importlib.util.find_spec("langgraph") is not None


def main(argv: Optional[Sequence[str]] = None) -> int:
    from ferrograph.errors import CorruptCheckpointError

    parser = _parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], None] = args.handler
    try:
        _prepare_codec(args)
        try:
            handler(args)
        except CorruptCheckpointError as e:
            if not _langgraph_classes_needed(e):
                raise
            from ferrograph.integrations.langgraph import _allow_langgraph_types

            _allow_langgraph_types()
            handler(args)  # every command is safe to run again: reads, and idempotent writes
    except BrokenPipeError:  # `ferrograph ... | head`: the reader left; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except FerrographError as e:
        hint = ""
        if isinstance(e, CorruptCheckpointError) and "not imported" in str(e):
            hint = " (pass --import MODULE for the module that defines that class)"
        print(f"ferrograph: error: {e}{hint}", file=sys.stderr)
        return 1
    except Exception as e:  # Alembic and driver errors: one line, not a traceback
        print(f"ferrograph: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
