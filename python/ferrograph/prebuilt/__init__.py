"""LangGraph's prebuilt agent parts on ferrograph's engine: `ToolNode`, `tools_condition`,
`create_react_agent`, `InjectedState` (as `langgraph.prebuilt` names them).

They work on LangChain chat models and tools, so they need langchain-core:
`pip install "ferrograph[prebuilt]"`.
"""

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without langchain-core
    raise ImportError(
        "ferrograph.prebuilt works on LangChain chat models and tools and needs langchain-core: "
        'pip install "ferrograph[prebuilt]"'
    ) from exc

from ferrograph.prebuilt.chat_agent_executor import AgentState, create_react_agent
from ferrograph.prebuilt.tool_node import InjectedState, ToolNode, tools_condition

__all__ = ["AgentState", "create_react_agent", "InjectedState", "ToolNode", "tools_condition"]
