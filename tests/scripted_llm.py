"""An in-process LlamaIndex LLM with queued replies, for the fast test layer.

Each call takes the next queued reply: a string (the completion, streamed in
word-sized pieces) or an exception instance (raised, as a failing server's
client would). The prompts it was given are kept in ``prompts``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from llama_index.core.llms import CompletionResponse, CompletionResponseGen, CustomLLM, LLMMetadata
from llama_index.core.llms.callbacks import llm_completion_callback
from pydantic import PrivateAttr


class ScriptedLLM(CustomLLM):
    _replies: list[str | BaseException] = PrivateAttr(default_factory=list)
    _prompts: list[str] = PrivateAttr(default_factory=list)

    def queue(self, *replies: str | BaseException) -> ScriptedLLM:
        self._replies.extend(replies)
        return self

    @property
    def prompts(self) -> list[str]:
        return self._prompts

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="scripted", is_chat_model=False, context_window=8192, num_output=512)

    def _next(self, prompt: str) -> str:
        self._prompts.append(prompt)
        if not self._replies:
            raise AssertionError("ScriptedLLM: no reply queued")
        reply = self._replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self._next(prompt))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        text = self._next(prompt)

        def pieces() -> Iterator[CompletionResponse]:
            sent = ""
            for piece in re.findall(r"\S+\s*|\s+", text):
                sent += piece
                yield CompletionResponse(text=sent, delta=piece)

        return pieces()
