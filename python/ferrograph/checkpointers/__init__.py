"""Checkpoint savers: where a graph's steps are persisted. Every saver speaks LangGraph's saver
protocol (`BaseCheckpointSaver`)."""

from ferrograph.checkpointers.base import BaseCheckpointSaver, Checkpoint, CheckpointMetadata, CheckpointTuple
from ferrograph.checkpointers.memory import InMemorySaver, MemorySaver

__all__ = [
    "BaseCheckpointSaver",
    "Checkpoint",
    "CheckpointMetadata",
    "CheckpointTuple",
    "InMemorySaver",
    "MemorySaver",
]
