"""The typed records a run produces and writes to ``results.json``.

The JSON keeps the shape older runs have, so their files still load: optional fields that a run
did not produce (a question's style, its support scores, the judge's verdict, ...) are left out
rather than written as null.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_serializer

from bot.eval.dataset import Style, UnanswerableKind

# A group's metric values by key ("hit@5", ...); None when no question of the group has one.
MetricValues = dict[str, float | None]
GroupMetrics = dict[str, MetricValues]


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")
    omit_when_none: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _drop_absent(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        for key in self.omit_when_none:
            if data.get(key) is None:
                data.pop(key, None)
        return data


class RetrievedPaper(BaseModel):
    """A paper of the ranked list the retrieval metrics score."""

    rank: int
    paper_id: str
    title: str
    arxiv_id: str | None = None
    similarity: float
    gold: bool


class CitedPaper(BaseModel):
    """A paper the answer cites as [n]."""

    n: int
    paper_id: str
    title: str
    gold: bool


class QuestionResult(_Record):
    """One question's outcome: what was retrieved, answered and cited, and every metric that applies."""

    omit_when_none = frozenset({"style", "kind", "expected", "ttft_ms", "support", "judge"})

    id: str
    type: str
    style: Style | None = None
    kind: UnanswerableKind | None = None
    line: int
    question: str
    gold: list[str]
    gold_ids: list[str]
    reference_answer: str = ""
    expected: list[str] | None = None
    answer: str
    refused: bool
    coverage: float | None = None
    confidence: str | None = None
    mode: str
    notes: list[str] = []
    retrieved: list[RetrievedPaper]
    cited: list[CitedPaper]
    latency_ms: float
    ttft_ms: float | None = None  # runs written before it existed have only latency_ms
    support: list[float] | None = None  # each answer sentence's best cosine to its cited abstracts
    metrics: MetricValues
    judge: dict[str, float | str] | None = None  # the LLM judge's verdict, or its unparsed reply

    @property
    def answerable(self) -> bool:
        return bool(self.gold_ids)

    @property
    def first_text_ms(self) -> float:
        return self.latency_ms if self.ttft_ms is None else self.ttft_ms


class RunMeta(BaseModel):
    """How a run was made."""

    model_config = ConfigDict(extra="allow")

    started: str
    seconds: float
    mode: str
    mode_label: str
    retriever: str
    k: int | None = None
    retrieval_depth: int
    grounded_threshold: float
    index: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    dataset: str | None = None
    dataset_name: str | None = None
    dataset_sha256: str | None = None


class JudgeResult(BaseModel):
    """The LLM judge's group metrics, or why it did not run."""

    model: str | None = None
    error: str | None = None
    metrics: GroupMetrics = {}
    errors: list[str] = []

    @model_serializer(mode="wrap")
    def _one_form(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if self.error is not None:
            return {"error": data["error"], "metrics": data["metrics"]}
        return {"model": data["model"], "metrics": data["metrics"], "errors": data["errors"]}


class Change(BaseModel):
    """A gated metric that moved against the baseline."""

    group: str
    metric: str
    baseline: float
    current: float | None
    tolerance: float
    delta: float | None


class Comparison(_Record):
    """The run against a baseline: regressions beyond tolerance, improvements, and what to look at."""

    omit_when_none = frozenset({"baseline"})

    regressions: list[Change] = []
    improvements: list[Change] = []
    unchanged_or_within_tolerance: int = 0
    baseline: str | None = None
    warnings: list[str] = []
    questions: list[str] = []


class EvalRun(_Record):
    """Everything one run measured; ``results.json`` is its JSON."""

    omit_when_none = frozenset({"comparison"})

    meta: RunMeta
    metrics: GroupMetrics
    judge: JudgeResult | None = None
    questions: list[QuestionResult]
    comparison: Comparison | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def load(cls, path: Path) -> EvalRun:
        return cls.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
