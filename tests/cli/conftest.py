"""The fixtures live in cli_helpers (importable by name from the tests)."""

from cli_helpers import filled, url  # noqa: F401
