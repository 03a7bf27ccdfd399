"""Managed values, as LangGraph's `langgraph.managed`: state keys the engine fills for each
step instead of storing them. Annotate a key with one of them:

    class State(TypedDict):
        remaining_steps: RemainingSteps   # steps left before the recursion limit
        is_last_step: IsLastStep          # True in the last step the limit allows

Nodes read them like any key; what a node writes to them is ignored, and they are never
checkpointed or returned.
"""

from __future__ import annotations

from typing import Annotated

__all__ = ["RemainingSteps", "IsLastStep", "ManagedValue", "RemainingStepsManager", "IsLastStepManager"]


class ManagedValue:
    """The value of a managed key, from the step a task runs at and the run's last step."""

    @staticmethod
    def get(step: int, stop: int) -> object:
        raise NotImplementedError  # each manager below says what it counts


class RemainingStepsManager(ManagedValue):
    @staticmethod
    def get(step: int, stop: int) -> int:
        return stop - step


class IsLastStepManager(ManagedValue):
    @staticmethod
    def get(step: int, stop: int) -> bool:
        return step == stop - 1


RemainingSteps = Annotated[int, RemainingStepsManager]
IsLastStep = Annotated[bool, IsLastStepManager]
