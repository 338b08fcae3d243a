"""An in-process reader with queued verdicts, for the fast test layer.

Each ``judge`` call takes the next queued reply: a list of P(yes), one per passage it is
given (cut or padded with 0.0 to the passages' count), or an exception instance (raised).
The calls it got are kept in ``calls`` as (question, passages).
"""

from __future__ import annotations

from bot.reader import Passage


class ScriptedReader:
    def __init__(self, *replies: list[float] | BaseException) -> None:
        self.replies: list[list[float] | BaseException] = list(replies)
        self.calls: list[tuple[str, list[Passage]]] = []

    def judge(self, question: str, passages: list[Passage]) -> list[float]:
        self.calls.append((question, passages))
        if not self.replies:
            raise AssertionError("ScriptedReader: no verdict queued")
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return (list(reply) + [0.0] * len(passages))[: len(passages)]
