"""Small text helpers shared by answers, summaries and citation checks."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from bot.errors import UserError

MAX_QUESTION_CHARS = 2000

# Abbreviations whose period does not end a sentence in abstracts.
_ABBREV = (
    r"(?<!\be\.g)(?<!\bi\.e)(?<!\bet al)(?<!\bvs)(?<!\bcf)(?<!\bFig)(?<!\bEq)(?<!\bw\.r\.t)(?<!\bresp)(?<!\bapprox)"
)
_SENTENCE_END = re.compile(_ABBREV + r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
# Not "[0,1]^d": a bracket followed by an exponent or subscript is maths, not a citation.
_MARKER = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\](?![\^_])")
_REFERENCE_MARK = re.compile(r"\s+\[\d+(?:\s*,\s*\d+)*\](?=[\s.,;:)]|$)")


class BadQuestion(UserError, ValueError):
    """A question paperbot will not run; the message is for the user."""


def check_question(question: object) -> str:
    """Return the cleaned question or raise :class:`BadQuestion` with a one-line reason."""
    if not isinstance(question, str):
        raise BadQuestion("the question must be text")
    text = unicodedata.normalize("NFKC", question).strip()
    if not text:
        raise BadQuestion("the question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise BadQuestion(f"the question is {len(text):,} characters long; the limit is {MAX_QUESTION_CHARS:,}")
    printable = sum(ch.isprintable() or ch in "\n\t" for ch in text)
    letters = sum(ch.isalpha() for ch in text)
    if printable < 0.95 * len(text) or "\ufffd" in text or letters < 2:
        raise BadQuestion("the question is not readable text (binary or control characters)")
    return " ".join(text.split())


def split_sentences(text: str) -> list[str]:
    """Split an abstract into sentences, keeping decimals and common abbreviations whole."""
    parts = _SENTENCE_END.split(text.strip())
    return [p.strip() for p in parts if p.strip()]


def markers_in(text: str) -> list[int]:
    """Citation numbers in ``text``: "[2]" and "[1, 3]" both count."""
    return [int(n) for group in _MARKER.findall(text) for n in group.split(",")]


def map_markers(text: str, mapping: Callable[[list[int]], list[int]]) -> str:
    """Rewrite each "[n, m]" group through ``mapping``; a group mapped to nothing is removed."""

    def rewrite(match: re.Match[str]) -> str:
        kept = list(dict.fromkeys(mapping(markers_in(match.group(0)))))
        return f" [{', '.join(map(str, kept))}]" if kept else ""

    return _MARKER.sub(rewrite, text).strip()


def strip_markers(text: str) -> str:
    return _MARKER.sub("", text).strip()


def drop_reference_marks(abstract: str) -> str:
    """Remove an abstract's own bibliography marks ("Hypothesis [27]", "et al. [2022]").

    They point into a reference list nobody here can see, and in an answer they
    would read as paperbot's [n] citations. Brackets not preceded by a space,
    such as the interval in "L^2([0,1]^d)", stay.
    """
    return _REFERENCE_MARK.sub("", abstract)


def with_marker(sentence: str, n: int | str) -> str:
    """Put "[n]" before the sentence's final punctuation."""
    sentence = sentence.rstrip()
    if sentence and sentence[-1] in ".!?":
        return f"{sentence[:-1]} [{n}]{sentence[-1]}"
    return f"{sentence} [{n}]"


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = tokens(prediction), tokens(reference)
    if not pred or not ref:
        return 0.0
    common: dict[str, int] = {}
    for t in pred:
        common[t] = common.get(t, 0) + 1
    overlap = 0
    for t in ref:
        if common.get(t, 0) > 0:
            overlap += 1
            common[t] -= 1
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)
