"""Build and run state graphs: `StateGraph`, `START`, `END` and the messages reducer."""

from ferrograph.graph.message import MessagesState, add_messages
from ferrograph.graph.pregel import CompiledStateGraph
from ferrograph.graph.state import END, START, StateGraph

__all__ = ["StateGraph", "CompiledStateGraph", "START", "END", "add_messages", "MessagesState"]
