"""`paperbot eval`: score every answer on a question set, compare with a baseline, report.

Each question goes through the same :class:`~bot.answer.Engine` as the CLI and
the UI. Retrieval is scored on a ranked list of papers (hit@1, hit@5,
recall@5, MRR@10, nDCG@10), answers on their citations, refusals, similarity to
the reference answer and groundedness; an LLM judge adds correctness and
faithfulness when an LLM is configured. A run writes ``results.json``,
``report.md`` and a chart; ``--baseline`` turns it into a regression gate.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.citations import markers_in, strip_markers
from bot.config import PROJECT_ROOT
from bot.errors import UserError
from bot.normalize import GoldIndex
from bot.retrieval import RETRIEVER_KINDS
from bot.schema import Answer, Hit, Paper
from bot.text import split_sentences, token_f1

if TYPE_CHECKING:
    from bot.answer import Engine
    from bot.retrieval import HybridRetriever

DEFAULT_DATASET = PROJECT_ROOT / "evals" / "questions.jsonl"
DEFAULT_BASELINE = PROJECT_ROOT / "evals" / "baseline.json"
RUNS_DIR = PROJECT_ROOT / "evals" / "runs"
# Tolerances a new baseline starts with; the baseline file keeps its own.
# Per-type groups are small (a dozen questions), so they get more slack than "all".
DEFAULT_TOLERANCE: dict[str, float | None] = {
    "default": 0.02,
    "by_type": 0.08,
    "dangling_markers": 0.05,
    "latency_p50_ms": None,  # timings never gate: the machine is noisy
    "latency_p95_ms": None,
    "ttft_p50_ms": None,
    "ttft_p95_ms": None,
}
_EPSILON = 1e-5  # baseline values are stored rounded to 6 decimals


class EvalError(UserError, ValueError):
    """A problem with the eval's inputs; the message is for the user."""


class DatasetError(EvalError):
    """A malformed or unusable question set."""


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool = True
    gate: bool = True  # compared with the baseline on the "all" group
    gate_by_type: bool = False  # also compared per question type
    percent: bool = False  # shown as a share (0.000) rather than a number


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
    Metric("latency_p50_ms", "latency p50 (ms)", higher_is_better=False, gate=False),
    Metric("latency_p95_ms", "latency p95 (ms)", higher_is_better=False, gate=False),
    Metric("ttft_p50_ms", "first text p50 (ms)", higher_is_better=False, gate=False),
    Metric("ttft_p95_ms", "first text p95 (ms)", higher_is_better=False, gate=False),
)
_TIMINGS = {"latency": "latency_ms", "ttft": "ttft_ms"}
METRIC_BY_KEY = {m.key: m for m in METRICS}
# Per-question values averaged into the group metrics (latency is handled apart).
_MEAN_KEYS = [m.key for m in METRICS if not m.key.startswith(tuple(_TIMINGS))]
CHART_METRICS = ("hit@5", "mrr@10", "citation_recall", "citation_precision", "refusal_accuracy", "groundedness")


# -- dataset ------------------------------------------------------------------
@dataclass
class EvalQuestion:
    id: str
    question: str
    type: str
    gold: list[str]
    reference_answer: str
    line: int

    @property
    def answerable(self) -> bool:
        return bool(self.gold)


def load_dataset(path: Path) -> list[EvalQuestion]:
    """Read a JSONL question set; any malformed line raises :class:`DatasetError` naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DatasetError(f"dataset {path} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"dataset {path} cannot be read ({exc})") from exc
    questions: list[EvalQuestion] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: expected a JSON object, got {type(row).__name__}")
        missing = [key for key in ("id", "question", "type", "gold") if key not in row]
        if missing:
            raise DatasetError(f"{where}: missing field(s) {', '.join(missing)}")
        qid, question, kind, gold = row["id"], row["question"], row["type"], row["gold"]
        reference = row.get("reference_answer", "")
        if not isinstance(qid, str | int) or isinstance(qid, bool) or not str(qid).strip():
            raise DatasetError(f"{where}: 'id' must be a non-empty string")
        if not isinstance(question, str) or not question.strip():
            raise DatasetError(f"{where}: 'question' must be non-empty text")
        if not isinstance(kind, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", kind):
            raise DatasetError(f"{where}: 'type' must be a word such as lookup, multi, detail or unanswerable")
        if not isinstance(gold, list) or not all(isinstance(g, str) and g.strip() for g in gold):
            raise DatasetError(f"{where}: 'gold' must be a list of paper titles or arXiv ids")
        if not isinstance(reference, str):
            raise DatasetError(f"{where}: 'reference_answer' must be text")
        if kind == "unanswerable" and gold:
            raise DatasetError(f"{where}: an unanswerable question must have an empty 'gold'")
        if kind != "unanswerable" and not gold:
            raise DatasetError(f"{where}: 'gold' is empty; only type 'unanswerable' has no gold papers")
        qid = str(qid)
        if qid in seen:
            raise DatasetError(f"{where}: id {qid!r} already used on line {seen[qid]}")
        seen[qid] = number
        questions.append(EvalQuestion(qid, question.strip(), kind, [g.strip() for g in gold], reference, number))
    if not questions:
        raise DatasetError(f"dataset {path} has no questions")
    return questions


def resolve_gold(questions: list[EvalQuestion], papers: Iterable[Paper], path: Path | str) -> dict[str, list[str]]:
    """Map each question id to its gold paper ids; a gold naming no indexed paper is an error."""
    index = GoldIndex(papers)
    resolved: dict[str, list[str]] = {}
    problems: list[str] = []
    for q in questions:
        resolved[q.id], missing = index.resolve_all(q.gold)
        problems += [f"{path} line {q.line} ({q.id}): gold {gold!r} matches no indexed paper" for gold in missing]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DatasetError(problems[0] + more)
    return resolved


def dataset_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


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


# -- answer checks ----------------------------------------------------------------
def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


class SupportChecker:
    """Scores answer sentences against the abstracts of the papers they cite."""

    def __init__(self, retriever: HybridRetriever) -> None:
        self.retriever = retriever
        self.papers = retriever.papers

    def _paper_vectors(self, paper_id: str) -> np.ndarray:
        # Cached by the retriever, which embeds the same sentences for extractive answers.
        return self.retriever.sentence_vectors(self.papers[paper_id])[1]

    def support(self, sentences: list[tuple[str, list[str]]]) -> list[float]:
        """Best cosine of each (sentence, cited paper ids) against those papers' abstract sentences."""
        scores: list[float | None] = []
        to_embed: list[int] = []
        for i, (text, paper_ids) in enumerate(sentences):
            norm = _norm(text)
            # A verbatim quote needs no model; extractive answers are all quotes.
            if len(norm) >= 20 and any(norm in _norm(self.papers[p].abstract) for p in paper_ids):
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
        return [float(s) for s in scores]  # type: ignore[arg-type]


def answer_sentences(answer: Answer) -> list[tuple[str, list[int]]]:
    """The answer's sentences without markers, each with the citation numbers it carries."""
    if answer.sentences:
        return [(strip_markers(s.text), sorted(set(s.citations) | set(markers_in(s.text)))) for s in answer.sentences]
    return [(strip_markers(s), markers_in(s)) for s in split_sentences(answer.answer)]


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


# -- one run ------------------------------------------------------------------
def retrieval_list(engine: Engine, question: str, answer: Answer, retriever: str, k: int | None) -> list[Hit]:
    """The ranked papers the retrieval metrics score: 10 unless ``k`` asks for fewer."""
    limit = engine.settings.eval.retrieval_depth
    depth = min(k, limit) if k else limit
    if retriever == "hybrid" and len(answer.hits) >= depth and answer.standalone_question is None:
        return answer.hits[:depth]
    return engine.search(question, k=depth, kind=retriever)


def score_question(
    q: EvalQuestion,
    gold_ids: list[str],
    answer: Answer,
    ranked: list[Hit],
    checker: SupportChecker,
    seconds: float,
    first_text: float | None,
    mode: str | None,
    grounded_threshold: float,
) -> dict[str, Any]:
    """The per-question record: what was retrieved and cited, and every metric that applies."""
    ranked_ids = [h.paper.paper_id for h in ranked]
    cited_ids = list(dict.fromkeys(c.paper_id for c in answer.citations))
    numbers = {c.n: c.paper_id for c in answer.citations}
    record: dict[str, Any] = {
        "id": q.id,
        "type": q.type,
        "line": q.line,
        "question": q.question,
        "gold": q.gold,
        "gold_ids": gold_ids,
        "reference_answer": q.reference_answer,
        "answer": answer.answer,
        "refused": answer.refused,
        "coverage": answer.coverage,
        "mode": answer.mode,
        "notes": answer.notes,
        "retrieved": [
            {
                "rank": i,
                "paper_id": h.paper.paper_id,
                "title": h.paper.title,
                "arxiv_id": h.paper.arxiv_id,
                "similarity": round(h.similarity, 4),
                "gold": h.paper.paper_id in gold_ids,
            }
            for i, h in enumerate(ranked, start=1)
        ],
        "cited": [
            {"n": c.n, "paper_id": c.paper_id, "title": c.title, "gold": c.paper_id in gold_ids}
            for c in answer.citations
        ],
        "latency_ms": round(seconds * 1000, 1),
        "ttft_ms": round((seconds if first_text is None else first_text) * 1000, 1),
    }
    values: dict[str, float | None] = dict.fromkeys(_MEAN_KEYS)
    if mode == "llm":
        values["fallback"] = 0.0 if answer.mode == "llm" else 1.0
        values["truncated"] = 1.0 if any("cut off" in note for note in answer.notes) else 0.0
    if q.answerable:
        values["hit@1"] = hit_at(ranked_ids, gold_ids, 1)
        values["hit@5"] = hit_at(ranked_ids, gold_ids, 5)
        values["recall@5"] = recall_at(ranked_ids, gold_ids, 5)
        values["mrr@10"] = mrr_at(ranked_ids, gold_ids, 10)
        values["ndcg@10"] = ndcg_at(ranked_ids, gold_ids, 10)
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
        sentences = answer_sentences(answer)
        if sentences:
            pairs = [(text, [numbers[n] for n in ns if n in numbers]) for text, ns in sentences]
            support = checker.support(pairs)
            record["support"] = [round(s, 4) for s in support]
            values["groundedness"] = sum(s >= grounded_threshold for s in support) / len(support)
    if q.answerable and q.reference_answer.strip():
        values["answer_f1"] = token_f1(strip_markers(answer.answer), q.reference_answer)
    record["metrics"] = values
    return record


def _add_answer_cosines(records: list[dict[str, Any]], encoder: HybridRetriever) -> None:
    # One batch for the whole run: encoding is the slow part.
    todo = [r for r in records if r["metrics"].get("answer_f1") is not None]
    if not todo:
        return
    texts = [strip_markers(r["answer"]) for r in todo] + [r["reference_answer"] for r in todo]
    vectors = encoder.encode(texts)
    for i, record in enumerate(todo):
        record["metrics"]["answer_cosine"] = float(vectors[i] @ vectors[len(todo) + i])


def aggregate(records: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Metrics for "all" and for each question type, in dataset order."""
    groups: dict[str, list[dict[str, Any]]] = {"all": records}
    for record in records:
        groups.setdefault(record["type"], []).append(record)
    out: dict[str, dict[str, float | None]] = {}
    for name, members in groups.items():
        metrics: dict[str, float | None] = {"questions": float(len(members))}
        metrics["answerable"] = float(sum(1 for r in members if r["gold_ids"]))
        for key in _MEAN_KEYS:
            metrics[key] = _mean(r["metrics"].get(key) for r in members)
        for timing, field_name in _TIMINGS.items():
            # Records written before a timing existed fall back to the total time.
            times = [r.get(field_name, r["latency_ms"]) for r in members]
            metrics[f"{timing}_p50_ms"] = float(np.percentile(times, 50))
            metrics[f"{timing}_p95_ms"] = float(np.percentile(times, 95))
        out[name] = metrics
    return out


def run_eval(
    engine: Engine,
    questions: list[EvalQuestion],
    gold: dict[str, list[str]],
    mode: str = "auto",
    retriever: str = "hybrid",
    k: int | None = None,
    judge: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Ask every question and score it; returns the results (JSON-ready)."""
    from tqdm import tqdm

    if retriever not in RETRIEVER_KINDS:
        raise EvalError(f"unknown retriever {retriever!r}; use {', '.join(RETRIEVER_KINDS)}")
    resolved = engine.resolve_mode(mode)
    if resolved == "llm" and not engine.settings.llm_configured:
        raise EvalError("--mode llm needs an LLM: set OPENAI_API_KEY or OPENAI_BASE_URL")
    checker = SupportChecker(engine.retriever)
    started = datetime.now(UTC)
    records: list[dict[str, Any]] = []
    for q in tqdm(questions, desc="Evaluating", unit="q", disable=not progress, file=sys.stderr):
        t0 = time.perf_counter()
        first_text = None
        # Streamed like the CLI and the UI, so the time to the first text is the user's wait.
        response = engine.as_query_engine(mode=resolved, k=k, streaming=True).query(q.question)
        for piece in response.response_gen:
            if first_text is None and piece.strip():
                first_text = time.perf_counter() - t0
        answer: Answer = response.metadata["answer"]
        seconds = time.perf_counter() - t0
        ranked = retrieval_list(engine, q.question, answer, retriever, k)
        records.append(
            score_question(
                q,
                gold[q.id],
                answer,
                ranked,
                checker,
                seconds,
                first_text,
                resolved,
                grounded_threshold=engine.settings.eval.grounded_threshold,
            )
        )
    _add_answer_cosines(records, engine.retriever)
    judged = None
    if judge and engine.settings.llm_configured:
        judged = run_judge(engine, records, progress=progress)
    settings = engine.settings
    return {
        "meta": {
            "started": started.isoformat(timespec="seconds"),
            "seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
            "mode": resolved,
            "mode_label": engine.mode_label(resolved),
            "retriever": retriever,
            "k": k,
            "retrieval_depth": min(k, settings.eval.retrieval_depth) if k else settings.eval.retrieval_depth,
            "grounded_threshold": settings.eval.grounded_threshold,
            "index": engine.stats(),
            "settings": {
                name: getattr(settings, name)
                for name in (
                    "top_k",
                    "candidate_k",
                    "dense_weight",
                    "sparse_weight",
                    "refusal_threshold",
                    "answer_sentences",
                    "chunk_size",
                    "chunk_overlap",
                    "verify_threshold",
                    "llm_context_window",
                    "llm_max_tokens",
                )
            },
        },
        "metrics": aggregate(records),
        "judge": judged,
        "questions": records,
    }


# -- LLM judge ----------------------------------------------------------------------
_JUDGE_FIELD = re.compile(r'"?(correctness|faithfulness)"?\s*[:=]\s*"?([0-9]+(?:\.[0-9]+)?|yes|no|true|false)', re.I)


def parse_judgement(text: str) -> dict[str, float] | None:
    """Read the judge's reply: correctness 1-5 (scaled to 0-1) and faithfulness yes/no (1/0)."""
    found: dict[str, float] = {}
    for name, raw in _JUDGE_FIELD.findall(text):
        name, raw = name.lower(), raw.lower()
        if name in found:
            continue
        if raw in ("yes", "true"):
            value = 1.0
        elif raw in ("no", "false"):
            value = 0.0
        else:
            value = float(raw)
        if name == "correctness":
            if not 1 <= value <= 5:
                continue
            value = (value - 1) / 4
        elif value not in (0.0, 1.0):
            continue
        found[name] = value
    return found if len(found) == 2 else None


def _judge_sources(engine: Engine, record: dict[str, Any]) -> str:
    lines = []
    for cited in record["cited"]:
        paper = engine.retriever.papers[cited["paper_id"]]
        lines.append(f"[{cited['n']}] {paper.title}\n{paper.abstract}")
    return "\n\n".join(lines) or "(none)"


def run_judge(engine: Engine, records: list[dict[str, Any]], progress: bool = True) -> dict[str, Any]:
    """Ask the configured LLM to grade each non-refused answer; kept apart from the other metrics."""
    from tqdm import tqdm

    from bot.llm import describe_failure, fill, load_prompt, model_errors

    try:
        template = load_prompt("judge", engine.settings)
        llm = engine.llm()
    except model_errors() as exc:
        return {"error": describe_failure(exc, engine.settings), "metrics": {}}
    errors: list[str] = []
    todo = [r for r in records if not r["refused"]]
    for record in tqdm(todo, desc="Judging", unit="q", disable=not progress, file=sys.stderr):
        prompt = fill(
            template,
            question=record["question"],
            reference=record["reference_answer"] or "(none given)",
            sources=_judge_sources(engine, record),
            answer=record["answer"],
        )
        try:
            reply = llm.complete(prompt).text
        except model_errors() as exc:  # reported; the run goes on
            errors.append(f"{record['id']}: {describe_failure(exc, engine.settings)}")
            continue
        verdict = parse_judgement(reply)
        record["judge"] = verdict if verdict is not None else {"unparsed": reply[:500]}
        if verdict is None:
            errors.append(f"{record['id']}: reply not in the expected form")
    groups: dict[str, list[dict[str, Any]]] = {"all": records}
    for record in records:
        groups.setdefault(record["type"], []).append(record)
    metrics = {}
    for name, members in groups.items():
        verdicts = [r["judge"] for r in members if isinstance(r.get("judge"), dict) and "correctness" in r["judge"]]
        metrics[name] = {
            "judged": float(len(verdicts)),
            "judge_correctness": _mean(v["correctness"] for v in verdicts),
            "judge_faithfulness": _mean(v["faithfulness"] for v in verdicts),
        }
    return {"model": engine.settings.llm_model, "metrics": metrics, "errors": errors}


# -- baseline -----------------------------------------------------------------------
def _tolerance(tolerances: dict[str, Any], group: str, key: str) -> float | None:
    for name in (f"{group}/{key}", key):
        if name in tolerances:
            return tolerances[name]
    if group != "all" and "by_type" in tolerances:
        return tolerances["by_type"]
    return tolerances.get("default", DEFAULT_TOLERANCE["default"])


def compare(metrics: dict[str, dict[str, float | None]], baseline: dict[str, Any]) -> dict[str, Any]:
    """Each gated metric against the baseline: regressions beyond tolerance, improvements, missing ones."""
    tolerances = {**DEFAULT_TOLERANCE, **baseline.get("tolerance", {})}
    regressions: list[dict[str, Any]] = []
    improvements: list[dict[str, Any]] = []
    within = 0
    for group, old_values in baseline.get("metrics", {}).items():
        for metric in METRICS:
            if not (metric.gate if group == "all" else metric.gate_by_type):
                continue
            old = old_values.get(metric.key)
            tolerance = _tolerance(tolerances, group, metric.key)
            if old is None or tolerance is None:
                continue
            new = metrics.get(group, {}).get(metric.key)
            entry = {"group": group, "metric": metric.key, "baseline": old, "current": new, "tolerance": tolerance}
            if new is None:
                regressions.append(entry | {"delta": None})
                continue
            gain = (new - old) if metric.higher_is_better else (old - new)
            entry["delta"] = new - old
            if gain < -tolerance - _EPSILON:
                regressions.append(entry)
            elif gain > _EPSILON:
                improvements.append(entry)
            else:
                within += 1
    return {"regressions": regressions, "improvements": improvements, "unchanged_or_within_tolerance": within}


def load_baseline(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EvalError(f"baseline {path} does not exist (create it with --update-baseline)") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise EvalError(f"baseline {path} cannot be read ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise EvalError(f"baseline {path} has no 'metrics' table")
    return data


def make_baseline(results: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """The baseline file for ``results``, keeping the previous file's tolerances."""
    meta = results["meta"]
    return {
        "created": meta["started"],
        "dataset": meta.get("dataset"),
        "dataset_sha256": meta.get("dataset_sha256"),
        "mode": meta["mode"],
        "retriever": meta["retriever"],
        "k": meta["k"],
        "tolerance": (previous or {}).get("tolerance", DEFAULT_TOLERANCE),
        "metrics": {
            group: {key: (round(v, 6) if v is not None else None) for key, v in values.items()}
            for group, values in results["metrics"].items()
        },
        "questions": {
            r["id"]: {key: r["metrics"].get(key) for key in ("hit@5", "mrr@10", "citation_recall")}
            | {"refused": r["refused"]}
            for r in results["questions"]
        },
    }


def question_changes(results: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """Questions whose hit@5 or refusal flipped since the baseline: where to look first."""
    old = baseline.get("questions") or {}
    lines = []
    for r in results["questions"]:
        before = old.get(r["id"])
        if not before:
            continue
        hit_old, hit_new = before.get("hit@5"), r["metrics"].get("hit@5")
        if hit_old is not None and hit_new is not None and hit_old != hit_new:
            lines.append(f"{r['id']}: hit@5 {hit_old:.0f} -> {hit_new:.0f}")
        if before.get("refused") is not None and before["refused"] != r["refused"]:
            lines.append(f"{r['id']}: {'now refused' if r['refused'] else 'no longer refused'}")
    return lines


# -- reports ------------------------------------------------------------------------
def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "–"
    if key.startswith(tuple(_TIMINGS)) or key in ("questions", "answerable", "judged"):
        return f"{value:.0f}"
    return f"{value:.3f}"


def metric_table(metrics: dict[str, dict[str, float | None]], keys: Iterable[str] | None = None) -> str:
    groups = list(metrics)
    # "all" last, after the types it sums up.
    groups = [g for g in groups if g != "all"] + ["all"]
    keys = list(keys) if keys is not None else ["questions", "answerable", *[m.key for m in METRICS]]
    header = "| metric | " + " | ".join(groups) + " |"
    lines = [header, "|---|" + "---:|" * len(groups)]
    for key in keys:
        label = METRIC_BY_KEY[key].label if key in METRIC_BY_KEY else key.replace("_", " ")
        row = [_fmt(key, metrics[g].get(key)) for g in groups]
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def _failure_reasons(record: dict[str, Any]) -> list[str]:
    m = record["metrics"]
    if not record["gold_ids"]:
        return [] if record["refused"] else ["answered an unanswerable question"]
    reasons = []
    if m.get("hit@5") == 0:
        reasons.append("no gold paper in the top 5")
    if record["refused"]:
        reasons.append("refused")
    elif m.get("citation_recall") == 0:
        reasons.append("cited no gold paper")
    return reasons


def render_report(results: dict[str, Any], chart: str | None) -> str:
    meta = results["meta"]
    lines = [
        f"# paperbot eval: {meta.get('dataset_name', 'dataset')}",
        "",
        f"- started {meta['started']} ({meta['seconds']} s), mode **{meta['mode_label']}**, "
        f"retriever **{meta['retriever']}**, k {meta['k'] or 'default'}, ranked list of {meta['retrieval_depth']}",
        f"- dataset `{meta.get('dataset')}` (sha256 {meta.get('dataset_sha256')}), "
        f"{int(results['metrics']['all']['questions'])} questions",
        f"- index: {meta['index'].get('papers')} papers, {meta['index'].get('chunks')} chunks",
        f"- settings: {', '.join(f'{k}={v}' for k, v in meta['settings'].items())}",
        "",
        "## Metrics by question type",
        "",
        "Retrieval metrics count answerable questions only; citation precision, dangling markers, sources cited and "
        "groundedness count answers that were not refusals; refusal accuracy counts unanswerable questions. "
        f"A sentence is grounded when its cited abstract has a sentence with cosine >= {meta['grounded_threshold']}.",
        "",
        metric_table(results["metrics"]),
        "",
    ]
    judged = results.get("judge")
    if judged:
        lines += ["## LLM judge", ""]
        if judged.get("error"):
            lines += [f"Not run: {judged['error']}", ""]
        else:
            lines += [
                f"Judge model `{judged['model']}` (prompts/judge.txt); correctness 1-5 scaled to 0-1, "
                "faithfulness the share judged fully supported by the cited abstracts.",
                "",
                metric_table(judged["metrics"], ["judged", "judge_correctness", "judge_faithfulness"]),
                "",
            ]
            for error in judged.get("errors", [])[:20]:
                lines.append(f"- {error}")
            lines.append("")
    comparison = results.get("comparison")
    if comparison:
        lines += ["## Compared with the baseline", "", f"Baseline: `{comparison['baseline']}`", ""]
        lines += [f"- warning: {w}" for w in comparison.get("warnings", [])]
        lines += ["", f"**{len(comparison['regressions'])} regression(s)**", ""]
        lines += [_change_line(e) for e in comparison["regressions"]]
        lines += ["", f"{len(comparison['improvements'])} improvement(s)", ""]
        lines += [_change_line(e) for e in comparison["improvements"]]
        if comparison.get("questions"):
            lines += ["", "Questions that changed:", ""] + [f"- {c}" for c in comparison["questions"]]
        lines.append("")
    if chart:
        lines += ["## Over time", "", f"![main metrics over the runs in evals/runs]({chart})", ""]
    failures = [(r, _failure_reasons(r)) for r in results["questions"]]
    failures = [(r, why) for r, why in failures if why]
    lines += ["## Failed questions", "", f"{len(failures)} of {len(results['questions'])} questions.", ""]
    for record, why in failures:
        lines += [f"### {record['id']} ({record['type']}): {'; '.join(why)}", "", f"> {record['question']}", ""]
        if record["gold"]:
            ranks = {r["paper_id"]: r["rank"] for r in record["retrieved"]}
            for title, pid in zip(record["gold"], record["gold_ids"], strict=False):
                where = f"rank {ranks[pid]}" if pid in ranks else f"not in the top {len(record['retrieved'])}"
                lines.append(f"- gold: {title} ({where})")
        lines.append("- retrieved instead:" if record["gold"] else "- retrieved:")
        for r in record["retrieved"][:5]:
            mark = " (gold)" if r["gold"] else ""
            lines.append(f"  {r['rank']}. {r['title']}{mark} (cosine {r['similarity']:.2f})")
        if record["cited"]:
            lines.append("- cited: " + "; ".join(f"[{c['n']}] {c['title']}" for c in record["cited"]))
        lines.append("")
    return "\n".join(lines)


def _change_line(entry: dict[str, Any]) -> str:
    label = METRIC_BY_KEY[entry["metric"]].label
    if entry["current"] is None:
        return f"- {entry['group']} / {label}: {entry['baseline']:.3f} -> missing"
    return (
        f"- {entry['group']} / {label}: {entry['baseline']:.3f} -> {entry['current']:.3f} "
        f"({entry['delta']:+.3f}, tolerance {entry['tolerance']})"
    )


def write_chart(out_dir: Path, results: dict[str, Any], runs_dir: Path = RUNS_DIR) -> str | None:
    """Plot the main metrics over the runs of the same dataset in ``runs_dir`` and beside this one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs: dict[str, dict[str, Any]] = {}
    # Sibling run folders count too, for runs kept outside evals/runs.
    found = {*Path(runs_dir).glob("*/results.json"), *Path(out_dir).resolve().parent.glob("*/results.json")}
    for path in sorted(found):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # a run that was interrupted mid-write
        if data.get("meta", {}).get("dataset_name") == results["meta"].get("dataset_name"):
            runs[str(path.parent.resolve())] = data
    runs[str(Path(out_dir).resolve())] = results
    ordered = sorted(runs.values(), key=lambda r: r["meta"]["started"])
    labels = [f"{r['meta']['started'][:16]}\n{r['meta']['mode']}/{r['meta']['retriever']}" for r in ordered]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(ordered) + 3), 4.5))
    for key in CHART_METRICS:
        values = [r["metrics"]["all"].get(key) for r in ordered]
        values = [np.nan if v is None else v for v in values]
        ax.plot(range(len(ordered)), values, marker="o", label=METRIC_BY_KEY[key].label)
    ax.set_xticks(range(len(ordered)), labels, fontsize=7, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("all questions")
    ax.set_title(f"paperbot eval over {len(ordered)} run(s): {results['meta'].get('dataset_name')}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    name = "metrics_over_runs.png"
    fig.savefig(Path(out_dir) / name, dpi=110)
    plt.close(fig)
    return name


# -- the command --------------------------------------------------------------------
def default_out_dir() -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = RUNS_DIR / stamp
    n = 1
    while out.exists():
        n += 1
        out = RUNS_DIR / f"{stamp}-{n}"
    return out


def _dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def run_command(
    engine_factory: Callable[[], Engine],
    dataset: Path,
    mode: str = "auto",
    baseline: Path | None = None,
    out: Path | None = None,
    update_baseline: bool = False,
    as_json: bool = False,
    retriever: str = "hybrid",
    k: int | None = None,
    judge: bool = True,
    echo: Callable[[str], None] = print,
) -> int:
    """Everything `paperbot eval` does; returns the exit status (1 on a regression)."""
    questions = load_dataset(dataset)  # before the engine: a bad file fails fast
    if retriever not in RETRIEVER_KINDS:
        raise EvalError(f"unknown retriever {retriever!r}; use {', '.join(RETRIEVER_KINDS)}")
    if baseline is None and update_baseline:
        baseline = DEFAULT_BASELINE
    # Updating may create the file; otherwise a missing baseline is an error.
    old = load_baseline(baseline) if baseline is not None and (not update_baseline or baseline.exists()) else None
    engine = engine_factory()
    gold = resolve_gold(questions, engine.manifest.papers, dataset)
    results = run_eval(engine, questions, gold, mode=mode, retriever=retriever, k=k, judge=judge, progress=True)
    shown = Path(dataset).resolve()
    shown = shown.relative_to(PROJECT_ROOT) if shown.is_relative_to(PROJECT_ROOT) else shown
    results["meta"].update(dataset=str(shown), dataset_name=shown.name, dataset_sha256=dataset_digest(dataset))
    status = 0
    if old is not None:
        comparison = compare(results["metrics"], old)
        warnings = []
        if old.get("dataset_sha256") and old["dataset_sha256"] != results["meta"]["dataset_sha256"]:
            warnings.append("the baseline was made on a different dataset file; differences may not be regressions")
        for key in ("mode", "retriever", "k"):
            if key in old and old[key] != results["meta"][key]:
                warnings.append(f"baseline {key} was {old[key]!r}, this run's is {results['meta'][key]!r}")
        comparison.update(baseline=str(baseline), warnings=warnings, questions=question_changes(results, old))
        results["comparison"] = comparison
        if comparison["regressions"] and not update_baseline:
            status = 1
    out = Path(out) if out is not None else default_out_dir()
    out.mkdir(parents=True, exist_ok=True)
    _dump(out / "results.json", results)
    chart = write_chart(out, results)
    (out / "report.md").write_text(render_report(results, chart), encoding="utf-8")
    if update_baseline and baseline is not None:
        _dump(baseline, make_baseline(results, old))
    if as_json:
        summary = {k: results[k] for k in ("meta", "metrics", "judge")}
        summary |= {"comparison": results.get("comparison"), "out": str(out), "status": status}
        echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return status
    echo(metric_table(results["metrics"]))
    if results.get("judge") and results["judge"].get("metrics"):
        echo("\nLLM judge (" + results["judge"]["model"] + "):")
        echo(metric_table(results["judge"]["metrics"], ["judged", "judge_correctness", "judge_faithfulness"]))
    comparison = results.get("comparison")
    if comparison:
        for warning in comparison["warnings"]:
            echo(f"warning: {warning}")
        echo(f"\n{len(comparison['regressions'])} regression(s) against {baseline}:")
        for entry in comparison["regressions"]:
            echo(_change_line(entry))
        if comparison["improvements"]:
            echo(f"{len(comparison['improvements'])} improvement(s):")
            for entry in comparison["improvements"]:
                echo(_change_line(entry))
        if comparison["questions"]:
            echo("questions that changed: " + ", ".join(comparison["questions"]))
    echo(f"\nreport: {out / 'report.md'}")
    if update_baseline:
        echo(f"baseline written: {baseline}")
    return status
