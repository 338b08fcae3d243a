"""What a run measures: the metric table, retrieval metrics, answer checks and per-question scoring.

Retrieval is scored on a ranked list of papers (binary relevance, paper level), answers on their
citations, refusals, similarity to the reference answer, groundedness and, for detail questions
that list them, the strings a correct answer must contain.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from bot.citations import markers_in, strip_markers
from bot.config import EvalSettings
from bot.eval.dataset import KINDS, STYLES, EvalQuestion
from bot.eval.results import CitedPaper, GroupMetrics, MetricValues, QuestionResult, RetrievedPaper
from bot.latex import latex_to_text
from bot.schema import Answer, Hit
from bot.text import split_sentences, token_f1

if TYPE_CHECKING:
    from bot.retrieval import HybridRetriever


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool = True
    gate: bool = True  # compared with the baseline on the "all" group
    gate_by_type: bool = False  # also compared per group (question type, style, kind)
    optional: bool = False  # reported only when some question of the run has a value


METRICS: tuple[Metric, ...] = (
    Metric("hit@1", "hit@1", gate_by_type=False),
    Metric("hit@5", "hit@5", gate_by_type=True),
    Metric("recall@5", "recall@5", gate_by_type=True),
    Metric("mrr@10", "MRR@10", gate_by_type=True),
    Metric("ndcg@10", "nDCG@10"),
    Metric("citation_precision", "citation precision", gate_by_type=True),
    Metric("citation_recall", "citation recall", gate_by_type=True),
    Metric("dangling_markers", "dangling markers / answer", higher_is_better=False),
    # LLM mode strips markers that point nowhere before showing the answer; this counts them.
    Metric("dangling_removed", "dangling markers removed / answer", higher_is_better=False, gate=False),
    Metric("sources_cited", "share of sources cited"),
    # Share of an answer's sentences whose cited source supports them (the engine's own check).
    Metric("sentences_verified", "sentences verified"),
    # LLM mode only: answers that fell back to extractive, or stopped at the token limit.
    Metric("fallback", "fell back to extractive", higher_is_better=False, gate=False),
    Metric("truncated", "cut off at max tokens", higher_is_better=False, gate=False),
    Metric("refusal_accuracy", "refusal accuracy (unanswerable)", gate_by_type=True),
    Metric("false_refusal", "false refusals (answerable)", higher_is_better=False, gate_by_type=True),
    Metric("answer_cosine", "answer cosine vs reference"),
    Metric("answer_f1", "answer token F1 vs reference"),
    Metric("groundedness", "groundedness"),
    # Detail questions that list the strings a correct answer contains (the style sets do).
    Metric("expected_found", "expected strings found (detail)", gate=False, optional=True),
    # Answers shown as "closest evidence, may not answer" (Answer.confidence "low").
    Metric("low_confidence", "answers shown low-confidence", higher_is_better=False, gate=False),
    Metric("latency_p50_ms", "latency p50 (ms)", higher_is_better=False, gate=False),
    Metric("latency_p95_ms", "latency p95 (ms)", higher_is_better=False, gate=False),
    Metric("ttft_p50_ms", "first text p50 (ms)", higher_is_better=False, gate=False),
    Metric("ttft_p95_ms", "first text p95 (ms)", higher_is_better=False, gate=False),
)
METRIC_BY_KEY = {m.key: m for m in METRICS}
TIMING_PREFIXES = ("latency", "ttft")
PERCENTILES = (50, 95)
# Per-question values averaged into the group metrics (timings are percentiles, computed apart).
MEAN_KEYS = [m.key for m in METRICS if not m.key.startswith(TIMING_PREFIXES) and not m.optional]
OPTIONAL_KEYS = [m.key for m in METRICS if m.optional]
# The note bot/answerers.py adds when the model stopped at PAPERBOT_LLM_MAX_TOKENS.
TRUNCATION_NOTE = "cut off"
ALL = "all"
STYLE_GROUP = "style:"
KIND_GROUP = "kind:"


# -- retrieval metrics (binary relevance, paper level) --------------------------
def hit_at(retrieved: list[str], expected: list[str], k: int) -> float:
    return 1.0 if any(pid in expected for pid in retrieved[:k]) else 0.0


def recall_at(retrieved: list[str], expected: list[str], k: int) -> float:
    return len(set(retrieved[:k]) & set(expected)) / len(expected)


def mrr_at(retrieved: list[str], expected: list[str], k: int) -> float:
    for rank, pid in enumerate(retrieved[:k], start=1):
        if pid in expected:
            return 1.0 / rank
    return 0.0


def ndcg_at(retrieved: list[str], expected: list[str], k: int) -> float:
    dcg = sum(1.0 / math.log2(rank + 1) for rank, pid in enumerate(retrieved[:k], start=1) if pid in expected)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(expected), k) + 1))
    return dcg / ideal


# Each ranking metric and its cut-off (part of its name).
RANKING_METRICS = {
    "hit@1": (hit_at, 1),
    "hit@5": (hit_at, 5),
    "recall@5": (recall_at, 5),
    "mrr@10": (mrr_at, 10),
    "ndcg@10": (ndcg_at, 10),
}


# -- answer checks ----------------------------------------------------------------
def _quote_key(text: str) -> str:
    """Lower-case letters and digits: a quote matches its abstract whatever the spacing and punctuation."""
    return re.sub(r"[^a-z0-9]+", "", text.lower())


class Support(Protocol):
    def support(self, sentences: list[tuple[str, list[str]]]) -> list[float]: ...


class SupportChecker:
    """Scores answer sentences against the abstracts of the papers they cite."""

    def __init__(self, retriever: HybridRetriever, quote_min_chars: int) -> None:
        self.retriever = retriever
        self.papers = retriever.papers
        self.quote_min_chars = quote_min_chars

    def _paper_vectors(self, paper_id: str) -> np.ndarray:
        # Cached by the retriever, which embeds the same sentences for extractive answers.
        return self.retriever.sentence_vectors(self.papers[paper_id])[1]

    def support(self, sentences: list[tuple[str, list[str]]]) -> list[float]:
        """Best cosine of each (sentence, cited paper ids) against those papers' abstract sentences."""
        scores: list[float | None] = []
        to_embed: list[int] = []
        for i, (text, paper_ids) in enumerate(sentences):
            key = _quote_key(text)
            # A verbatim quote needs no model; extractive answers are all quotes.
            if len(key) >= self.quote_min_chars and any(key in _quote_key(self.papers[p].abstract) for p in paper_ids):
                scores.append(1.0)
            elif not paper_ids:
                scores.append(0.0)
            else:
                scores.append(None)
                to_embed.append(i)
        if to_embed:
            vectors = self.retriever.encode([sentences[i][0] for i in to_embed])
            for vector, i in zip(vectors, to_embed, strict=True):
                scores[i] = max(float(np.max(self._paper_vectors(p) @ vector)) for p in sentences[i][1])
        return [float(s) for s in scores if s is not None]


def answer_sentences(answer: Answer) -> list[tuple[str, list[int]]]:
    """The answer's sentences without markers, each with the citation numbers it carries."""
    if answer.sentences:
        return [(strip_markers(s.text), sorted(set(s.citations) | set(markers_in(s.text)))) for s in answer.sentences]
    return [(strip_markers(s), markers_in(s)) for s in split_sentences(answer.answer)]


def expected_found(answer: Answer, expected: list[str]) -> float:
    """1 when every expected string is in the answer (case-insensitive), else 0; a refusal finds none.

    An expected string copied from an abstract with LaTeX markup ("n^{-1/2}") also counts in the
    display form answers carry (bot.latex: "n^(-1/2)").
    """
    if answer.refused:
        return 0.0
    text = strip_markers(answer.answer).casefold()
    return 1.0 if all(any(f.casefold() in text for f in (item, latex_to_text(item))) for item in expected) else 0.0


def mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


# -- one question -------------------------------------------------------------------
def score_question(
    q: EvalQuestion,
    gold_ids: list[str],
    answer: Answer,
    ranked: list[Hit],
    checker: Support,
    seconds: float,
    first_text: float | None,
    mode: str | None,
    cfg: EvalSettings,
) -> QuestionResult:
    """The per-question record: what was retrieved and cited, and every metric that applies."""
    ranked_ids = [h.paper.paper_id for h in ranked]
    cited_ids = list(dict.fromkeys(c.paper_id for c in answer.citations))
    numbers = {c.n: c.paper_id for c in answer.citations}
    values: MetricValues = dict.fromkeys(MEAN_KEYS)
    support: list[float] | None = None
    if mode == "llm":
        values["fallback"] = 0.0 if answer.mode == "llm" else 1.0
        values["truncated"] = 1.0 if any(TRUNCATION_NOTE in note for note in answer.notes) else 0.0
    if q.answerable:
        for key, (metric, k) in RANKING_METRICS.items():
            values[key] = metric(ranked_ids, gold_ids, k)
        values["false_refusal"] = 1.0 if answer.refused else 0.0
        # A refusal cites nothing, so it finds none of the gold papers.
        values["citation_recall"] = len(set(cited_ids) & set(gold_ids)) / len(gold_ids)
        if not answer.refused and cited_ids:
            values["citation_precision"] = len(set(cited_ids) & set(gold_ids)) / len(cited_ids)
    else:
        values["refusal_accuracy"] = 1.0 if answer.refused else 0.0
    if not answer.refused:
        markers = markers_in(answer.answer)
        values["dangling_markers"] = float(sum(1 for n in markers if n not in numbers))
        values["dangling_removed"] = float(answer.dangling_removed)
        if answer.sentences:
            values["sentences_verified"] = sum(s.verified for s in answer.sentences) / len(answer.sentences)
        if numbers:
            values["sources_cited"] = len(set(markers) & set(numbers)) / len(numbers)
        values["low_confidence"] = 1.0 if answer.confidence == "low" else 0.0
        sentences = answer_sentences(answer)
        if sentences:
            pairs = [(text, [numbers[n] for n in ns if n in numbers]) for text, ns in sentences]
            scores = checker.support(pairs)
            support = [round(s, 4) for s in scores]
            values["groundedness"] = sum(s >= cfg.grounded_threshold for s in scores) / len(scores)
    if q.answerable and q.reference_answer.strip():
        values["answer_f1"] = token_f1(strip_markers(answer.answer), q.reference_answer)
    if q.expected:
        values["expected_found"] = expected_found(answer, q.expected)
    return QuestionResult(
        id=q.id,
        type=q.type,
        style=q.style,
        kind=q.kind,
        line=q.line,
        question=q.question,
        gold=q.gold,
        gold_ids=gold_ids,
        reference_answer=q.reference_answer,
        expected=q.expected,
        answer=answer.answer,
        refused=answer.refused,
        coverage=answer.coverage,
        confidence=answer.confidence,
        mode=answer.mode,
        notes=answer.notes,
        retrieved=[
            RetrievedPaper(
                rank=i,
                paper_id=h.paper.paper_id,
                title=h.paper.title,
                arxiv_id=h.paper.arxiv_id,
                similarity=round(h.similarity, 4),
                gold=h.paper.paper_id in gold_ids,
            )
            for i, h in enumerate(ranked, start=1)
        ],
        cited=[
            CitedPaper(n=c.n, paper_id=c.paper_id, title=c.title, gold=c.paper_id in gold_ids) for c in answer.citations
        ],
        latency_ms=round(seconds * 1000, 1),
        ttft_ms=round((seconds if first_text is None else first_text) * 1000, 1),
        support=support,
        metrics=values,
    )


def add_answer_cosines(records: list[QuestionResult], encoder: HybridRetriever) -> None:
    """Each answer's cosine to its reference answer, where the answer F1 is scored too."""
    # One batch for the whole run: encoding is the slow part.
    todo = [r for r in records if r.metrics.get("answer_f1") is not None]
    if not todo:
        return
    texts = [strip_markers(r.answer) for r in todo] + [r.reference_answer for r in todo]
    vectors = encoder.encode(texts)
    for i, record in enumerate(todo):
        record.metrics["answer_cosine"] = float(vectors[i] @ vectors[len(todo) + i])


# -- groups ---------------------------------------------------------------------------
def group_records(records: list[QuestionResult]) -> dict[str, list[QuestionResult]]:
    """The groups: "all", each question type in dataset order, then each style and unanswerable kind present."""
    groups: dict[str, list[QuestionResult]] = {ALL: records}
    for record in records:
        groups.setdefault(record.type, []).append(record)
    for prefix, names, field in ((STYLE_GROUP, STYLES, "style"), (KIND_GROUP, KINDS, "kind")):
        for name in names:
            members = [r for r in records if getattr(r, field) == name]
            if members:
                groups[prefix + name] = members
    return groups


def aggregate(records: list[QuestionResult]) -> GroupMetrics:
    """The metrics of every group: means of the per-question values, percentiles of the timings."""
    optional = [key for key in OPTIONAL_KEYS if any(key in r.metrics for r in records)]
    out: GroupMetrics = {}
    for name, members in group_records(records).items():
        metrics: MetricValues = {"questions": float(len(members))}
        metrics["answerable"] = float(sum(1 for r in members if r.answerable))
        for key in MEAN_KEYS:
            metrics[key] = mean(r.metrics.get(key) for r in members)
        for key in optional:
            metrics[key] = mean(r.metrics.get(key) for r in members)
        for prefix in TIMING_PREFIXES:
            times = [r.latency_ms if prefix == "latency" else r.first_text_ms for r in members]
            for p in PERCENTILES:
                metrics[f"{prefix}_p{p}_ms"] = float(np.percentile(times, p))
        out[name] = metrics
    return out
