"""The `ferrograph ui` application: a JSON API over one saver (reads through
`ferrograph._inspect`), the actions that run a graph on it (fork, replay, resume, new input,
their chunks streamed as server-sent events), and the guards around both:

- every `/api` request needs the session token (the `ferrograph_token_PORT` cookie that opening the
  printed `/?token=...` address sets, or an `Authorization: Bearer TOKEN` header);
- an action (a POST) sent with the cookie also needs the `X-Ferrograph-CSRF` header holding the
  CSRF token `/api/info` hands to the page, and an `Origin`, when sent, naming this server;
- a request whose `Host` is not an address this server was bound to is refused (a web page
  cannot reach the API through a DNS name that points at 127.0.0.1);
- without a graph the API is read-only: actions answer 403.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import sys
from typing import Any, Awaitable, Callable, Iterator, Mapping, Optional, TypeVar
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from ferrograph import _inspect, serde
from ferrograph.checkpointers.base import BaseCheckpointSaver
from ferrograph.errors import FerrographError
from ferrograph.serde import Serializer

__all__ = ["create_app", "serve", "LOOPBACK_HOSTS"]

T = TypeVar("T")

STATIC = os.path.join(os.path.dirname(__file__), "static")
#: The token's cookie, named per port: browsers send a host's cookies to all its ports, and two
#: servers on one machine must not log each other out.
TOKEN_COOKIE = "ferrograph_token_{port}"
CSRF_HEADER = "x-ferrograph-csrf"
#: Host names that always mean this machine.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: The page loads its own files only: no network, no inline script.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class ApiError(Exception):
    """An API request that cannot be served: answered as `{"error": message}` with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Guard:
    """The ASGI middleware that checks the Host of every request and the token (and, for
    actions, the CSRF token and Origin) of every `/api` request, and adds the security
    headers to every response."""

    def __init__(self, app: ASGIApp, *, token: str, csrf_token: str, allowed_hosts: Optional[set[str]]) -> None:
        self.app = app
        self.token = token
        self.csrf_token = csrf_token
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refusal(request)
        if refusal is not None:
            await _json_error(refusal)(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)

    def _refusal(self, request: Request) -> Optional[ApiError]:
        host = _host_name(request.headers.get("host", ""))
        if self.allowed_hosts is not None and host not in self.allowed_hosts:
            return ApiError(403, f"host {host!r} is not an address of this server")
        if not request.url.path.startswith("/api/"):
            return None
        bearer = request.headers.get("authorization", "")
        by_header = bearer.startswith("Bearer ") and _same(bearer[len("Bearer ") :], self.token)
        by_cookie = _same(request.cookies.get(_cookie_name(request), ""), self.token)
        if not (by_header or by_cookie):
            return ApiError(401, "missing or wrong token: open the address `ferrograph ui` printed (it ends in ?token=...)")
        if request.method not in ("GET", "HEAD") and not by_header:
            # A browser sends the cookie with any request to this server, even one another
            # site's page makes; only this server's page knows the CSRF token.
            if not _same(request.headers.get(CSRF_HEADER, ""), self.csrf_token):
                return ApiError(403, "missing or wrong CSRF token (X-Ferrograph-CSRF)")
            origin = request.headers.get("origin")
            if origin is not None and _host_of_origin(origin) != request.headers.get("host", "").lower():
                return ApiError(403, f"cross-origin request from {origin!r} refused")
        return None


def _cookie_name(request: Request) -> str:
    return TOKEN_COOKIE.format(port=request.url.port or 80)


def _same(given: str, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def _host_name(host_header: str) -> str:
    """`127.0.0.1:8765` -> `127.0.0.1`, `[::1]:8765` -> `::1`."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _host_of_origin(origin: str) -> str:
    return urlsplit(origin).netloc.lower()


def _json_error(error: ApiError) -> JSONResponse:
    return JSONResponse({"error": str(error)}, status_code=error.status)


def _api(handler: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
    """An API endpoint: its result as JSON; `ApiError` with its status, `FerrographError` as 404
    when something is not found and 400 otherwise."""

    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(request)
        except ApiError as e:
            return _json_error(e)
        except FerrographError as e:
            missing = "not found" in str(e) or "has no checkpoints" in str(e)  # _inspect's words for a missing thing
            return _json_error(ApiError(404 if missing else 400, str(e)))
        return result if isinstance(result, Response) else JSONResponse(result)

    return endpoint


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, got {raw!r}") from None


def _json_param(raw: Optional[str], name: str) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise ApiError(400, f"{name} is not valid JSON: {e}") from None


async def _body(request: Request) -> dict:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ApiError(400, f"the request body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def _only_keys(body: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, f"{what} takes {', '.join(sorted(allowed))}; unknown: {', '.join(unknown)}")


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class _Ui:
    """The endpoints, over one saver and (for actions) one graph compiled on it."""

    def __init__(
        self,
        saver: BaseCheckpointSaver,
        graph: Any,
        graph_spec: Optional[str],
        saver_label: str,
        csrf_token: str,
        serializer: Optional[Serializer],
    ) -> None:
        self.saver = saver
        self.serializer = serializer
        self.graph = graph
        self.graph_spec = graph_spec
        self.saver_label = saver_label
        self.csrf_token = csrf_token

    def _config(self, thread_id: str, checkpoint_id: Optional[str] = None, ns: str = "") -> dict:
        configurable = {"thread_id": thread_id, "checkpoint_ns": ns}
        if checkpoint_id:
            configurable["checkpoint_id"] = checkpoint_id
        return {"configurable": configurable}

    async def _read(self, read: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`read(*args, **kwargs)` in a worker thread, with the serializer active."""

        def call() -> T:
            with serde.using(self.serializer):
                return read(*args, **kwargs)

        return await run_in_threadpool(call)

    def _writable_graph(self) -> Any:
        if self.graph is None:
            raise ApiError(403, "read-only: start `ferrograph ui URL --graph MODULE:ATTR` to fork, replay, resume and run")
        return self.graph

    async def page(self, request: Request) -> Response:
        token = request.query_params.get("token")
        if token is not None:
            if not _same(token, request.app.state.token):
                return Response("wrong token: open the address `ferrograph ui` printed", status_code=401, media_type="text/plain")
            response: Response = RedirectResponse("/", status_code=303)
            response.set_cookie(_cookie_name(request), token, httponly=True, samesite="strict", path="/")
            return response
        return FileResponse(os.path.join(STATIC, "index.html"))

    async def info(self, request: Request) -> Any:
        graph: dict[str, Any] = {"spec": self.graph_spec, "mermaid": None, "nodes": []}
        if self.graph is not None:
            drawing = self.graph.get_graph()
            graph["mermaid"] = drawing.draw_mermaid()
            graph["nodes"] = [n for n in drawing.nodes if not n.startswith("__")]
        return {"saver": self.saver_label, "read_only": self.graph is None, "graph": graph, "csrf_token": self.csrf_token}

    async def threads(self, request: Request) -> Any:
        metadata = _json_param(request.query_params.get("metadata"), "metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise ApiError(400, "metadata must be a JSON object of key: value to match")
        search = request.query_params.get("search", "")
        offset, limit = _int_param(request, "offset", 0), _int_param(request, "limit", 50)
        if limit > 500:
            raise ApiError(400, f"limit is at most 500, got {limit}")
        return await self._read(_inspect.thread_page, self.saver, search=search, metadata=metadata, offset=offset, limit=limit)

    async def history(self, request: Request) -> Any:
        thread_id = request.path_params["thread_id"]

        def read() -> dict:
            rows, _ = _inspect.thread_history(self.saver, thread_id)
            return {"thread_id": thread_id, "checkpoints": [r.as_json() for r in rows]}

        return await self._read(read)

    async def checkpoint(self, request: Request) -> Any:
        thread_id = request.path_params["thread_id"]
        checkpoint_id = request.path_params["checkpoint_id"]
        ns = request.query_params.get("ns", "")
        config = self._config(thread_id, None if checkpoint_id == "latest" else checkpoint_id, ns)

        def read() -> dict:
            view = _inspect.checkpoint_view(_inspect.get_checkpoint(self.saver, config))
            view["next"] = None
            view["tasks"] = []
            if self.graph is not None and ns == "":
                snapshot = self.graph.get_state(self._config(thread_id, view["checkpoint_id"]))
                view["next"] = list(snapshot.next)
                view["tasks"] = [
                    {"id": t.id, "name": t.name, "error": _inspect.typed(t.error), "interrupts": _inspect.typed(list(t.interrupts))}
                    for t in snapshot.tasks
                ]
            return view

        return await self._read(read)

    async def diff(self, request: Request) -> Any:
        thread_id = request.path_params["thread_id"]
        ns = request.query_params.get("ns", "")
        a, b = request.query_params.get("a"), request.query_params.get("b")
        if not a or not b:
            raise ApiError(400, "diff needs a (the checkpoint to compare from) and b (the one to compare to)")
        result = await self._read(_inspect.diff, self.saver, self._config(thread_id, a, ns), self._config(thread_id, b, ns))
        return result.as_json()

    async def fork(self, request: Request) -> Any:
        graph = self._writable_graph()
        body = await _body(request)
        _only_keys(body, {"checkpoint_id", "values", "as_node"}, "fork")
        values, as_node = body.get("values"), body.get("as_node") or None
        if not isinstance(values, dict):
            raise ApiError(400, "fork needs values: a JSON object of the state keys to write")
        if as_node is not None and not isinstance(as_node, str):
            raise ApiError(400, "as_node must be a node name")
        config = self._config(request.path_params["thread_id"], body.get("checkpoint_id"))

        def write() -> dict:
            _inspect.get_checkpoint(self.saver, config)
            try:
                written = graph.update_state(config, values, as_node=as_node)
            except (ValueError, TypeError, KeyError, FerrographError) as e:
                raise ApiError(400, f"update_state refused the fork: {type(e).__name__}: {e}") from e
            return {"config": written["configurable"]}

        return await self._read(write)

    async def run(self, request: Request) -> Response:
        """Starts a run and streams it: `event: chunk` per `updates` chunk, then `event: done`
        with the thread's latest checkpoint, next nodes and interrupts (or `event: error`)."""
        from ferrograph.types import Command

        graph = self._writable_graph()
        body = await _body(request)
        _only_keys(body, {"kind", "checkpoint_id", "input", "resume"}, "run")
        kind = body.get("kind")
        thread_id = request.path_params["thread_id"]
        checkpoint_id = body.get("checkpoint_id")
        config = self._config(thread_id, checkpoint_id)
        if kind == "replay":
            if not checkpoint_id:
                raise ApiError(400, "replay needs the checkpoint_id to replay from")
            await self._read(_inspect.get_checkpoint, self.saver, config)
            run_input: Any = None
        elif kind == "resume":
            if "resume" not in body:
                raise ApiError(400, "resume needs resume: the value interrupt() returns")
            run_input = Command(resume=body["resume"])
        elif kind == "input":
            if not isinstance(body.get("input"), dict):
                raise ApiError(400, "a run needs input: a JSON object of the state keys")
            run_input = body["input"]
        else:
            raise ApiError(400, f"kind must be replay, resume or input, got {kind!r}")

        def events() -> Iterator[str]:
            try:
                for chunk in graph.stream(run_input, config, stream_mode="updates"):
                    yield _sse("chunk", _inspect.typed(chunk))
            except Exception as e:  # the node's own error: shown in the page, the server goes on
                yield _sse("error", {"error": f"{type(e).__name__}: {e}"})
            snapshot = graph.get_state(self._config(thread_id))
            yield _sse(
                "done",
                {
                    "checkpoint_id": (snapshot.config.get("configurable") or {}).get("checkpoint_id"),
                    "next": list(snapshot.next),
                    "interrupts": _inspect.typed(list(snapshot.interrupts)),
                },
            )

        return StreamingResponse(events(), media_type="text/event-stream", headers={"x-accel-buffering": "no"})


def create_app(
    saver: BaseCheckpointSaver,
    *,
    graph: Any = None,
    graph_spec: Optional[str] = None,
    token: Optional[str] = None,
    host: str = "127.0.0.1",
    saver_label: str = "",
    serializer: Optional[Serializer] = None,
) -> Starlette:
    """The application over `saver`. With `graph` (a compiled graph or a StateGraph) the
    actions run it, compiled on `saver`; without, the API is read-only. `token` is the
    session's secret (a random one when None: read it back as `app.state.token`). The page's
    reads rebuild the classes `serializer` allows (by default those of `graph`, else the
    process-wide set; see `ferrograph.serde`). Requests must
    name `host` (or, when it is a loopback address, any loopback name) unless `host` listens on
    every address (0.0.0.0, ::)."""
    from ferrograph.graph import StateGraph

    if graph is not None:
        builder = graph if isinstance(graph, StateGraph) else graph.builder
        graph = builder.compile(
            checkpointer=saver,
            interrupt_before=getattr(graph, "interrupt_before", None) or None,
            interrupt_after=getattr(graph, "interrupt_after", None) or None,
            allowed_types=getattr(graph, "allowed_types", ()),
        )
    token = token or secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    if serializer is None and graph is not None:
        serializer = graph.serializer
    ui = _Ui(saver, graph, graph_spec, saver_label, csrf_token, serializer)
    routes = [
        Route("/", ui.page),
        Route("/api/info", _api(ui.info)),
        Route("/api/threads", _api(ui.threads)),
        Route("/api/threads/{thread_id:path}/history", _api(ui.history)),
        Route("/api/threads/{thread_id:path}/checkpoints/{checkpoint_id}", _api(ui.checkpoint)),
        Route("/api/threads/{thread_id:path}/diff", _api(ui.diff)),
        Route("/api/threads/{thread_id:path}/fork", _api(ui.fork), methods=["POST"]),
        Route("/api/threads/{thread_id:path}/run", _api(ui.run), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    allowed = None if host in ("0.0.0.0", "::", "") else ({host.lower(), *LOOPBACK_HOSTS} if _is_loopback(host) else {host.lower()})
    app.state.token = token
    app.add_middleware(_Guard, token=token, csrf_token=csrf_token, allowed_hosts=allowed)
    return app


def _is_loopback(host: str) -> bool:
    return host.lower() in LOOPBACK_HOSTS or host.startswith("127.")


def serve(
    saver: BaseCheckpointSaver,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    graph: Any = None,
    graph_spec: Optional[str] = None,
    saver_label: str = "",
    json_output: bool = False,
    serializer: Optional[Serializer] = None,
) -> None:
    """Serves the page until interrupted. First prints its address with the token on stderr
    (with `json_output`, `{"url", "read_only", "graph"}` as one JSON line on stdout instead),
    and a warning on stderr when `host` is not a loopback address."""
    import uvicorn

    app = create_app(saver, graph=graph, graph_spec=graph_spec, host=host, saver_label=saver_label, serializer=serializer)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if ":" in host else host)
    url = f"http://{shown_host}:{port}/?token={app.state.token}"
    if not _is_loopback(host):
        print(
            f"ferrograph ui: WARNING: listening on {host}: anyone who can reach this machine can try the page; "
            "the token is the only guard (prefer 127.0.0.1 and an SSH tunnel)",
            file=sys.stderr,
        )
    if json_output:
        print(json.dumps({"url": url, "read_only": graph is None, "graph": graph_spec}), flush=True)
    else:
        mode = f"actions on (graph {graph_spec})" if graph is not None else "read-only (pass --graph MODULE:ATTR for actions)"
        print(f"ferrograph ui: {saver_label or 'saver'}, {mode}\n    open {url}", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
