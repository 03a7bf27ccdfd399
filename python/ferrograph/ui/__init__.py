"""`ferrograph ui`: a local web page over a checkpoint database, to see, compare, fork, replay
and resume threads. `create_app` builds the Starlette application (its JSON API under `/api`,
the static page under `/static`); `serve` runs it with uvicorn, as the command does. Needs the
`ui` extra: `pip install 'ferrograph[ui]'`.

What the page reads comes from `ferrograph._inspect`, which the other inspection commands share;
this package only adds the HTTP layer, the safety around it and the actions that run a graph.
"""

from ferrograph.ui.app import create_app, serve

__all__ = ["create_app", "serve"]
