"""`paperbot eval`: ask every question of a set through the engine, score it, gate and report.

Each question goes through the engine's LlamaIndex query engine, streamed as in the CLI and the UI,
so the time to the first text is the user's wait. A run writes ``results.json``, ``report.md`` and
a chart; ``--baseline`` turns it into a regression gate.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import PROJECT_ROOT, Settings
from bot.eval.baseline import (
    Baseline,
    baseline_warnings,
    compare,
    default_tolerances,
    load_baseline,
    make_baseline,
    question_changes,
)
from bot.eval.dataset import EvalError, EvalQuestion, dataset_digest, load_dataset, resolve_gold
from bot.eval.judge import JUDGE_KEYS, run_judge
from bot.eval.metrics import SupportChecker, add_answer_cosines, aggregate, score_question
from bot.eval.report import change_line, group_tables, metric_table, render_report, write_chart
from bot.eval.results import EvalRun, QuestionResult, RunMeta
from bot.outputs import folder_problem
from bot.schema import Answer, Hit

if TYPE_CHECKING:
    from bot.answer import Engine

DEFAULT_DATASET = PROJECT_ROOT / "evals" / "questions.jsonl"
DEFAULT_BASELINE = PROJECT_ROOT / "evals" / "baseline.json"
RUNS_DIR = PROJECT_ROOT / "evals" / "runs"
# The settings a run records beside its figures.
RECORDED_SETTINGS = (
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


def reader_label(settings: Settings) -> str:
    """Whether the reader judged the answers, and with which model and thresholds."""
    cfg = settings.reader
    if not cfg.enabled:
        return "off"
    if cfg.backend == "minilm":
        name = "minilm cross-encoder"
    else:
        name = cfg.model_path.name if cfg.model_path else "injected"
    rerank = ", rerank" if cfg.rerank else ""
    return (
        f"{name} (weight {cfg.reader_weight:g}, threshold {cfg.answer_threshold:g}, "
        f"cite {cfg.cite_threshold:g}, {cfg.candidates} papers{rerank})"
    )


def _check_retriever(retriever: str) -> None:
    from bot.retrieval import RETRIEVER_KINDS

    if retriever not in RETRIEVER_KINDS:
        raise EvalError(f"unknown retriever {retriever!r}; use {', '.join(RETRIEVER_KINDS)}")


def retrieval_depth(engine: Engine, k: int | None) -> int:
    """Papers in the ranked list the retrieval metrics score: the setting, unless ``k`` asks for fewer."""
    limit = engine.settings.eval.retrieval_depth
    return min(k, limit) if k else limit


def retrieval_list(engine: Engine, question: str, answer: Answer, retriever: str, k: int | None) -> list[Hit]:
    """The ranked papers the retrieval metrics score (the answer's own when it retrieved enough)."""
    depth = retrieval_depth(engine, k)
    if retriever == "hybrid" and len(answer.hits) >= depth and answer.standalone_question is None:
        return answer.hits[:depth]
    return engine.search(question, k=depth, kind=retriever)


def run_eval(
    engine: Engine,
    questions: list[EvalQuestion],
    gold: dict[str, list[str]],
    mode: str = "auto",
    retriever: str = "hybrid",
    k: int | None = None,
    judge: bool = True,
    progress: bool = True,
) -> EvalRun:
    """Ask every question and score it."""
    from tqdm import tqdm

    _check_retriever(retriever)
    resolved = engine.resolve_mode(mode)
    if resolved == "llm" and not engine.settings.llm_configured:
        raise EvalError("--mode llm needs an LLM: set OPENAI_API_KEY or OPENAI_BASE_URL")
    settings = engine.settings
    checker = SupportChecker(engine.retriever, settings.eval.quote_min_chars)
    started = datetime.now(UTC)
    records: list[QuestionResult] = []
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
            score_question(q, gold[q.id], answer, ranked, checker, seconds, first_text, resolved, settings.eval)
        )
    add_answer_cosines(records, engine.retriever)
    judged = run_judge(engine, records, progress=progress) if judge and settings.llm_configured else None
    meta = RunMeta(
        started=started.isoformat(timespec="seconds"),
        seconds=round((datetime.now(UTC) - started).total_seconds(), 1),
        mode=resolved,
        mode_label=engine.mode_label(resolved),
        retriever=retriever,
        k=k,
        retrieval_depth=retrieval_depth(engine, k),
        grounded_threshold=settings.eval.grounded_threshold,
        index=engine.stats(),
        settings={name: getattr(settings, name) for name in RECORDED_SETTINGS} | {"reader": reader_label(settings)},
    )
    return EvalRun(meta=meta, metrics=aggregate(records), judge=judged, questions=records)


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


def _echo_summary(results: EvalRun, baseline: Path | None, echo: Callable[[str], None]) -> None:
    for n, (title, table) in enumerate(group_tables(results.metrics)):
        echo(table if n == 0 else f"\n{title}:\n{table}")
    if results.judge and results.judge.metrics:
        echo(f"\nLLM judge ({results.judge.model}):")
        echo(metric_table(results.judge.metrics, JUDGE_KEYS))
    comparison = results.comparison
    if comparison:
        for warning in comparison.warnings:
            echo(f"warning: {warning}")
        echo(f"\n{len(comparison.regressions)} regression(s) against {baseline}:")
        for entry in comparison.regressions:
            echo(change_line(entry))
        if comparison.improvements:
            echo(f"{len(comparison.improvements)} improvement(s):")
            for entry in comparison.improvements:
                echo(change_line(entry))
        if comparison.questions:
            echo("questions that changed: " + ", ".join(comparison.questions))


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
    runs_dir: Path = RUNS_DIR,
) -> int:
    """Everything `paperbot eval` does; returns the exit status (1 on a regression)."""
    questions = load_dataset(dataset)  # before the engine: a bad file fails fast
    _check_retriever(retriever)
    if baseline is None and update_baseline:
        baseline = DEFAULT_BASELINE
    if out is not None and (problem := folder_problem(Path(out))):
        raise EvalError(problem)  # before the run, not after it
    # Updating may create the file; otherwise a missing baseline is an error.
    old: Baseline | None = None
    if baseline is not None and (not update_baseline or baseline.exists()):
        old = load_baseline(baseline)
    engine = engine_factory()
    gold = resolve_gold(questions, engine.manifest.papers, dataset)
    results = run_eval(engine, questions, gold, mode=mode, retriever=retriever, k=k, judge=judge, progress=True)
    shown = Path(dataset).resolve()
    shown = shown.relative_to(PROJECT_ROOT) if shown.is_relative_to(PROJECT_ROOT) else shown
    results.meta.dataset, results.meta.dataset_name = str(shown), shown.name
    results.meta.dataset_sha256 = dataset_digest(dataset)
    tolerances = default_tolerances(engine.settings.eval)
    status = 0
    if old is not None:
        comparison = compare(results.metrics, old, tolerances)
        comparison.baseline = str(baseline)
        comparison.warnings = baseline_warnings(results, old)
        comparison.questions = question_changes(results, old)
        results.comparison = comparison
        if comparison.regressions and not update_baseline:
            status = 1
    out = Path(out) if out is not None else default_out_dir()
    out.mkdir(parents=True, exist_ok=True)
    _dump(out / "results.json", results.to_json())
    chart = write_chart(out, results, runs_dir)
    (out / "report.md").write_text(render_report(results, chart), encoding="utf-8")
    if update_baseline and baseline is not None:
        _dump(baseline, make_baseline(results, old, tolerances).model_dump(mode="json"))
    if as_json:
        data = results.to_json()
        summary = {key: data[key] for key in ("meta", "metrics", "judge")}
        summary |= {"comparison": data.get("comparison"), "out": str(out), "status": status}
        echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return status
    _echo_summary(results, baseline, echo)
    echo(f"\nreport: {out / 'report.md'}")
    if update_baseline:
        echo(f"baseline written: {baseline}")
    return status
