"""Test support for graphs built with ferrograph. `ferrograph.testing.plugin` is a pytest plugin,
registered through the `pytest11` entry point and inert unless a test asks for its fixtures."""
