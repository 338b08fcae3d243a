"""The run's Markdown report, its console tables and the chart of the main metrics over past runs."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from bot.eval.judge import JUDGE_KEYS
from bot.eval.metrics import ALL, KIND_GROUP, METRIC_BY_KEY, METRICS, STYLE_GROUP, TIMING_PREFIXES
from bot.eval.results import Change, EvalRun, GroupMetrics, QuestionResult

CHART_METRICS = ("hit@5", "mrr@10", "citation_recall", "citation_precision", "refusal_accuracy", "groundedness")
CHART_NAME = "metrics_over_runs.png"
COUNT_KEYS = ("questions", "answerable", "judged")
KIND_KEYS = ("questions", "refusal_accuracy")  # kinds group unanswerable questions only
FAILED_TOP = 5  # retrieved papers listed under a failed question (the hit@5 cut-off)
JUDGE_ERRORS_SHOWN = 20


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "–"
    if key.startswith(TIMING_PREFIXES) or key in COUNT_KEYS:
        return f"{value:.0f}"
    return f"{value:.3f}"


def type_groups(metrics: GroupMetrics) -> list[str]:
    """The question-type groups, then "all" (which sums them up)."""
    return [g for g in metrics if g != ALL and not g.startswith((STYLE_GROUP, KIND_GROUP))] + [ALL]


def prefixed_groups(metrics: GroupMetrics, prefix: str) -> list[str]:
    return [g for g in metrics if g.startswith(prefix)]


def metric_keys(metrics: GroupMetrics) -> list[str]:
    """The rows of a table: counts, then every metric the run reports."""
    present = {key for values in metrics.values() for key in values}
    return ["questions", "answerable", *[m.key for m in METRICS if not m.optional or m.key in present]]


def metric_table(
    metrics: GroupMetrics, keys: Iterable[str] | None = None, groups: list[str] | None = None, strip: str = ""
) -> str:
    """A Markdown table: one row per metric, one column per group (its name without ``strip``)."""
    groups = type_groups(metrics) if groups is None else groups
    keys = list(keys) if keys is not None else metric_keys(metrics)
    header = "| metric | " + " | ".join(g.removeprefix(strip) for g in groups) + " |"
    lines = [header, "|---|" + "---:|" * len(groups)]
    for key in keys:
        label = METRIC_BY_KEY[key].label if key in METRIC_BY_KEY else key.replace("_", " ")
        row = [_fmt(key, metrics[g].get(key)) for g in groups]
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def group_tables(metrics: GroupMetrics) -> list[tuple[str, str]]:
    """(title, table) for each way the questions are grouped: by type, and by style and kind when present."""
    tables = [("Metrics by question type", metric_table(metrics))]
    styles = prefixed_groups(metrics, STYLE_GROUP)
    if styles:
        tables.append(("Metrics by question style", metric_table(metrics, groups=styles + [ALL], strip=STYLE_GROUP)))
    kinds = prefixed_groups(metrics, KIND_GROUP)
    if kinds:
        table = metric_table(metrics, KIND_KEYS, groups=kinds, strip=KIND_GROUP)
        tables.append(("Unanswerable questions by kind", table))
    return tables


def failure_reasons(record: QuestionResult) -> list[str]:
    m = record.metrics
    if not record.gold_ids:
        return [] if record.refused else ["answered an unanswerable question"]
    reasons = []
    if m.get("hit@5") == 0:
        reasons.append(f"no gold paper in the top {FAILED_TOP}")
    if record.refused:
        reasons.append("refused")
    elif m.get("citation_recall") == 0:
        reasons.append("cited no gold paper")
    return reasons


def change_line(entry: Change) -> str:
    label = METRIC_BY_KEY[entry.metric].label
    if entry.current is None or entry.delta is None:
        return f"- {entry.group} / {label}: {entry.baseline:.3f} -> missing"
    return (
        f"- {entry.group} / {label}: {entry.baseline:.3f} -> {entry.current:.3f} "
        f"({entry.delta:+.3f}, tolerance {entry.tolerance})"
    )


def render_report(results: EvalRun, chart: str | None) -> str:
    meta = results.meta
    lines = [
        f"# paperbot eval: {meta.dataset_name or 'dataset'}",
        "",
        f"- started {meta.started} ({meta.seconds} s), mode **{meta.mode_label}**, "
        f"retriever **{meta.retriever}**, k {meta.k or 'default'}, ranked list of {meta.retrieval_depth}",
        f"- dataset `{meta.dataset}` (sha256 {meta.dataset_sha256}), "
        f"{int(results.metrics[ALL]['questions'] or 0)} questions",
        f"- index: {meta.index.get('papers')} papers, {meta.index.get('chunks')} chunks",
        f"- settings: {', '.join(f'{k}={v}' for k, v in meta.settings.items())}",
        "",
    ]
    for n, (title, table) in enumerate(group_tables(results.metrics)):
        lines += [f"## {title}", ""]
        if n == 0:
            lines += [
                "Retrieval metrics count answerable questions only; citation precision, dangling markers, "
                "sources cited and groundedness count answers that were not refusals; refusal accuracy counts "
                "unanswerable questions. A sentence is grounded when its cited abstract has a sentence with "
                f"cosine >= {meta.grounded_threshold}.",
                "",
            ]
        lines += [table, ""]
    judged = results.judge
    if judged:
        lines += ["## LLM judge", ""]
        if judged.error:
            lines += [f"Not run: {judged.error}", ""]
        else:
            lines += [
                f"Judge model `{judged.model}` (prompts/judge.txt); correctness 1-5 scaled to 0-1, "
                "faithfulness the share judged fully supported by the cited abstracts.",
                "",
                metric_table(judged.metrics, JUDGE_KEYS),
                "",
            ]
            for error in judged.errors[:JUDGE_ERRORS_SHOWN]:
                lines.append(f"- {error}")
            lines.append("")
    comparison = results.comparison
    if comparison:
        lines += ["## Compared with the baseline", "", f"Baseline: `{comparison.baseline}`", ""]
        lines += [f"- warning: {w}" for w in comparison.warnings]
        lines += ["", f"**{len(comparison.regressions)} regression(s)**", ""]
        lines += [change_line(e) for e in comparison.regressions]
        lines += ["", f"{len(comparison.improvements)} improvement(s)", ""]
        lines += [change_line(e) for e in comparison.improvements]
        if comparison.questions:
            lines += ["", "Questions that changed:", ""] + [f"- {c}" for c in comparison.questions]
        lines.append("")
    if chart:
        lines += ["## Over time", "", f"![main metrics over the runs in evals/runs]({chart})", ""]
    failures = [(r, failure_reasons(r)) for r in results.questions]
    failures = [(r, why) for r, why in failures if why]
    lines += ["## Failed questions", "", f"{len(failures)} of {len(results.questions)} questions.", ""]
    for record, why in failures:
        lines += [f"### {record.id} ({record.type}): {'; '.join(why)}", "", f"> {record.question}", ""]
        if record.gold:
            ranks = {r.paper_id: r.rank for r in record.retrieved}
            for title, pid in zip(record.gold, record.gold_ids, strict=False):
                where = f"rank {ranks[pid]}" if pid in ranks else f"not in the top {len(record.retrieved)}"
                lines.append(f"- gold: {title} ({where})")
        lines.append("- retrieved instead:" if record.gold else "- retrieved:")
        for r in record.retrieved[:FAILED_TOP]:
            mark = " (gold)" if r.gold else ""
            lines.append(f"  {r.rank}. {r.title}{mark} (cosine {r.similarity:.2f})")
        if record.cited:
            lines.append("- cited: " + "; ".join(f"[{c.n}] {c.title}" for c in record.cited))
        lines.append("")
    return "\n".join(lines)


def write_chart(out_dir: Path, results: EvalRun, runs_dir: Path) -> str | None:
    """Plot the main metrics over the runs of the same dataset in ``runs_dir`` and beside this one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs: dict[str, dict[str, Any]] = {}
    # Sibling run folders count too, for runs kept outside evals/runs. Older runs are read as
    # plain JSON: the chart needs only their meta and "all" metrics.
    found = {*Path(runs_dir).glob("*/results.json"), *Path(out_dir).resolve().parent.glob("*/results.json")}
    for path in sorted(found):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # a run that was interrupted mid-write
        if data.get("meta", {}).get("dataset_name") == results.meta.dataset_name:
            runs[str(path.parent.resolve())] = data
    runs[str(Path(out_dir).resolve())] = results.to_json()
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
    ax.set_title(f"paperbot eval over {len(ordered)} run(s): {results.meta.dataset_name}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(Path(out_dir) / CHART_NAME, dpi=110)
    plt.close(fig)
    return CHART_NAME
