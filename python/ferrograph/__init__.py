"""ferrograph: LangGraph-style state graphs on a Rust Pregel core."""
