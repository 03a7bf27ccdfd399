"""Checkpoint savers: where a graph's steps are persisted. Every saver speaks LangGraph's saver
protocol (`BaseCheckpointSaver`)."""

from ferrograph.checkpointers.base import BaseCheckpointSaver, Checkpoint, CheckpointMetadata, CheckpointTuple

__all__ = ["BaseCheckpointSaver", "Checkpoint", "CheckpointMetadata", "CheckpointTuple"]
