"""ferrograph: LangGraph-style state graphs on a fast Rust Pregel core."""

from ferrograph._core import __version__

__all__ = ["__version__"]
