"""A deterministic chat model for the sweep's programs, standing in for the LLM calls of
LangGraph's examples: it answers with scripted messages in turn (cycling), streams an answer
word by word, and accepts `bind_tools` (the script decides the tool calls)."""

from __future__ import annotations

import json
from typing import Any, Iterator, Optional, Sequence

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult


class FakeChatModel(BaseChatModel):
    """`FakeChatModel(responses=[AIMessage(...), "text", ...])`; each call answers the next."""

    responses: list
    i: int = 0

    @property
    def _llm_type(self) -> str:
        return "fake-chat"

    def _next(self) -> AIMessage:
        reply = self.responses[self.i % len(self.responses)]
        self.i += 1
        return AIMessage(content=reply) if isinstance(reply, str) else reply.model_copy()

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next())])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        reply = self._next()
        words = str(reply.content).split(" ")
        for k, word in enumerate(words):
            text = word if k == len(words) - 1 else word + " "
            last = k == len(words) - 1
            chunk = AIMessageChunk(content=text, tool_call_chunks=[] if not last else [
                {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": n}
                for n, c in enumerate(reply.tool_calls)
            ])
            if run_manager:
                run_manager.on_llm_new_token(text, chunk=ChatGenerationChunk(message=chunk))
            yield ChatGenerationChunk(message=chunk)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> "FakeChatModel":
        return self
