"""The regression gate: a run's metrics against a stored baseline, within per-metric tolerances."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.config import EvalSettings
from bot.eval.dataset import EvalError
from bot.eval.metrics import ALL, METRICS, TIMING_PREFIXES
from bot.eval.results import Change, Comparison, EvalRun, GroupMetrics

BASELINE_DECIMALS = 6  # baseline values are stored rounded to this many decimals
_EPSILON = 1e-5  # above the rounding error of a stored value: a baseline equals the run it came from
GROUP_TOLERANCE = "by_type"  # the baseline's key for every group but "all" (named when groups were types)
# The per-question figures a baseline keeps, to list the questions that changed.
QUESTION_KEYS = ("hit@5", "mrr@10", "citation_recall")

Tolerances = dict[str, float | None]


class Baseline(BaseModel):
    """A stored run's group metrics, the tolerances to gate with, and a few per-question figures."""

    model_config = ConfigDict(extra="allow")

    created: str | None = None
    dataset: str | None = None
    dataset_sha256: str | None = None
    mode: str | None = None
    retriever: str | None = None
    k: int | None = None
    tolerance: Tolerances = {}
    metrics: GroupMetrics
    questions: dict[str, dict[str, float | bool | None]] = {}


def default_tolerances(cfg: EvalSettings) -> Tolerances:
    """The tolerances a new baseline starts with; timings never gate (the machine is noisy)."""
    timings = [m.key for m in METRICS if m.key.startswith(TIMING_PREFIXES)]
    return {
        "default": cfg.tolerance,
        GROUP_TOLERANCE: cfg.group_tolerance,
        "dangling_markers": cfg.dangling_tolerance,
    } | dict.fromkeys(timings)


def _tolerance(tolerances: Tolerances, group: str, key: str, default: float | None) -> float | None:
    for name in (f"{group}/{key}", key):
        if name in tolerances:
            return tolerances[name]
    if group != ALL and GROUP_TOLERANCE in tolerances:
        return tolerances[GROUP_TOLERANCE]
    return tolerances.get("default", default)


def compare(metrics: GroupMetrics, baseline: Baseline, defaults: Tolerances | None = None) -> Comparison:
    """Each gated metric of the baseline's groups against this run's.

    Beyond tolerance it is a regression (also when the run no longer has it), above the baseline
    an improvement. Groups the baseline does not have (a style the set gained) are not gated.
    """
    defaults = default_tolerances(EvalSettings()) if defaults is None else defaults
    tolerances = {**defaults, **baseline.tolerance}
    comparison = Comparison()
    for group, old_values in baseline.metrics.items():
        for metric in METRICS:
            if not (metric.gate if group == ALL else metric.gate_by_type):
                continue
            old = old_values.get(metric.key)
            tolerance = _tolerance(tolerances, group, metric.key, defaults.get("default"))
            if old is None or tolerance is None:
                continue
            new = metrics.get(group, {}).get(metric.key)
            entry = Change(group=group, metric=metric.key, baseline=old, current=new, tolerance=tolerance, delta=None)
            if new is None:
                comparison.regressions.append(entry)
                continue
            gain = (new - old) if metric.higher_is_better else (old - new)
            entry.delta = new - old
            if gain < -tolerance - _EPSILON:
                comparison.regressions.append(entry)
            elif gain > _EPSILON:
                comparison.improvements.append(entry)
            else:
                comparison.unchanged_or_within_tolerance += 1
    return comparison


def load_baseline(path: Path) -> Baseline:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EvalError(f"baseline {path} does not exist (create it with --update-baseline)") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvalError(f"baseline {path} cannot be read ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise EvalError(f"baseline {path} has no 'metrics' table")
    try:
        return Baseline.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise EvalError(f"baseline {path}: {where}: {first['msg']}") from exc


def make_baseline(results: EvalRun, previous: Baseline | None, defaults: Tolerances) -> Baseline:
    """The baseline file for ``results``, keeping the previous file's tolerances."""
    meta = results.meta
    keep = previous is not None and "tolerance" in previous.model_fields_set
    return Baseline(
        created=meta.started,
        dataset=meta.dataset,
        dataset_sha256=meta.dataset_sha256,
        mode=meta.mode,
        retriever=meta.retriever,
        k=meta.k,
        tolerance=previous.tolerance if keep and previous is not None else defaults,
        metrics={
            group: {key: (round(v, BASELINE_DECIMALS) if v is not None else None) for key, v in values.items()}
            for group, values in results.metrics.items()
        },
        questions={
            r.id: {key: r.metrics.get(key) for key in QUESTION_KEYS} | {"refused": r.refused} for r in results.questions
        },
    )


def baseline_warnings(results: EvalRun, baseline: Baseline) -> list[str]:
    """Why differences from this baseline may not be regressions."""
    warnings = []
    meta = results.meta
    if baseline.dataset_sha256 and baseline.dataset_sha256 != meta.dataset_sha256:
        warnings.append("the baseline was made on a different dataset file; differences may not be regressions")
    for key in ("mode", "retriever", "k"):
        old, new = getattr(baseline, key), getattr(meta, key)
        if key in baseline.model_fields_set and old != new:
            warnings.append(f"baseline {key} was {old!r}, this run's is {new!r}")
    return warnings


def question_changes(results: EvalRun, baseline: Baseline) -> list[str]:
    """Questions whose hit@5 or refusal flipped since the baseline: where to look first."""
    lines = []
    for r in results.questions:
        before = baseline.questions.get(r.id)
        if not before:
            continue
        hit_old, hit_new = before.get("hit@5"), r.metrics.get("hit@5")
        if hit_old is not None and hit_new is not None and hit_old != hit_new:
            lines.append(f"{r.id}: hit@5 {hit_old:.0f} -> {hit_new:.0f}")
        if before.get("refused") is not None and before["refused"] != r.refused:
            lines.append(f"{r.id}: {'now refused' if r.refused else 'no longer refused'}")
    return lines
