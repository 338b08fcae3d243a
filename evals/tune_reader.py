"""Reader rules scored on cached reader scores: `python evals/tune_reader.py CACHE.jsonl:SET.jsonl ...`.

Reads caches written by `evals/reader_scores.py` (the coverage rule's decision and the reader's
P(yes) for the top papers) and prints, per set and per question style, what each rule would do to
the answer/refuse decision:

  refused (a)   answerable questions refused (false refusals)
  refused (u)   unanswerable questions refused; near miss: the same for near-miss questions
  top yes       answerable questions whose gold paper is among the read papers with P(yes) >= t

Rules (t: the reader threshold):
  coverage          the shipped rule alone
  rescue t          coverage, or answer when a read paper has P(yes) >= t
  veto t            coverage, and refuse when the top paper has P(yes) < t
  reader t          answer exactly when a read paper has P(yes) >= t
  combined (chosen)  the shipped rule: answer when coverage + reader_weight * logit(max P(yes))
                    reaches answer_threshold (Settings.reader)
Also the separation of the reader's score: AUC of max P(yes) between answerable and unanswerable
questions, and of P(yes) between gold and non-gold read papers. Tuning uses dev sets only.

With ``--combined`` the combined rule is fitted on all the given sets together: a logistic
regression of answerable vs unanswerable on coverage and the best read paper's log-odds gives the
weight (log-odds coefficient over coverage coefficient), and the threshold is the one that refuses
4% of the answerable questions; per set, the refusal rates it gives are printed.

With ``--eval`` each set is run through the eval harness (extractive mode) with the reader on as
the environment sets it (PAPERBOT_READER__*), the reader replaced by the cached scores, and the
harness's tables are printed: citations, hit@k and refusals as `paperbot eval` would report them.
``--eval --reader-off`` runs the same questions with the reader off, for the comparison.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from bot.answer import judged_score
from bot.config import ReaderSettings, get_settings
from bot.indexing import open_index
from bot.normalize import GoldIndex

THRESHOLDS = (0.3, 0.45, 0.5, 0.6)


def auc(pos: list[float], neg: list[float]) -> float | None:
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def rules() -> dict[str, callable]:
    out = {"coverage": lambda r: r["answered"]}
    for t in THRESHOLDS:
        out[f"rescue {t}"] = lambda r, t=t: r["answered"] or max(r["yes"]) >= t
        out[f"veto {t}"] = lambda r, t=t: r["answered"] and r["yes"][0] >= t
        out[f"reader {t}"] = lambda r, t=t: max(r["yes"]) >= t
    cfg = get_settings().reader
    out["combined (chosen)"] = lambda r: judged_score(r["coverage"], max(r["yes"]), cfg) >= cfg.answer_threshold
    return out


def _jsonl(path: str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def _rows_by_id(dataset: str) -> dict[str, dict]:
    return {row["id"]: row for row in _jsonl(dataset)}


# The combined rule's threshold: the score below which this share of the answerable questions falls.
FALSE_REFUSAL_CAP = 0.04


def fit_combined(pairs: list[list[str]]) -> None:
    """Fit the combined rule's weight and threshold on the cached sets together (``--combined``)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    records = []
    for cache, dataset in pairs:
        rows = _rows_by_id(dataset)
        records += [{**c, "row": rows[c["id"]], "set": Path(dataset).name} for c in _jsonl(cache)]
    unit = ReaderSettings(reader_weight=1.0)
    log_odds = np.array([judged_score(0.0, max(r["yes"]), unit) for r in records])
    coverage = np.array([r["coverage"] for r in records])
    answerable = np.array([r["row"]["type"] != "unanswerable" for r in records])
    fit = LogisticRegression(C=10).fit(np.column_stack([coverage, log_odds]), answerable)
    weight = float(fit.coef_[0][1] / fit.coef_[0][0])
    score = coverage + weight * log_odds
    threshold = float(np.quantile(score[answerable], FALSE_REFUSAL_CAP))
    print(f"coefficients coverage {fit.coef_[0][0]:.2f}, log-odds {fit.coef_[0][1]:.2f}: reader_weight {weight:.4f}")
    print(f"answer_threshold {threshold:.3f} ({FALSE_REFUSAL_CAP:.0%} of the answerable questions refused)")
    print("| set | answerable refused | unanswerable refused | near misses refused |")
    print("| --- | --- | --- | --- |")
    for name in sorted({r["set"] for r in records}):
        idx = [i for i, r in enumerate(records) if r["set"] == name]
        a = [i for i in idx if answerable[i]]
        u = [i for i in idx if not answerable[i]]
        near = [i for i in u if records[i]["row"].get("kind") == "near_miss"]

        def refused(ids: list[int]) -> str:
            return f"{np.mean(score[ids] < threshold):.2f}" if ids else "-"

        print(f"| {name} | {refused(a)} | {refused(u)} | {refused(near)} |")


class CachedReader:
    """The reader's cached P(yes), looked up by question and paper title (a miss is a bug of the cache)."""

    def __init__(self, pairs: list[list[str]]) -> None:
        self.scores: dict[tuple[str, str], float] = {}
        self.questions: dict[str, str] = {}
        for cache, dataset in pairs:
            for line in Path(dataset).read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.questions[row["question"]] = row["id"]
            for line in Path(cache).read_text(encoding="utf-8").splitlines():
                if line.strip():
                    c = json.loads(line)
                    for title, yes in zip(c["titles"], c["yes"], strict=True):
                        self.scores[(c["id"], title)] = yes

    def judge(self, question: str, passages: list) -> list[float]:
        qid = self.questions[question]
        return [self.scores[(qid, p.title)] for p in passages]


def run_cached_eval(pairs: list[list[str]], enabled: bool = True) -> None:
    from bot.answer import Engine
    from bot.eval.dataset import load_dataset
    from bot.eval.dataset import resolve_gold as gold_of
    from bot.eval.report import group_tables
    from bot.eval.run import run_eval

    settings = get_settings().model_copy(
        update={"reader": get_settings().reader.model_copy(update={"enabled": enabled})}
    )
    reader = CachedReader(pairs)
    engine = Engine(settings, reader=reader)
    for cache, dataset in pairs:
        questions = load_dataset(Path(dataset))
        cached = {json.loads(line)["id"] for line in Path(cache).read_text(encoding="utf-8").splitlines() if line}
        questions = [q for q in questions if q.id in cached]
        run = run_eval(
            engine,
            questions,
            gold_of(questions, engine.manifest.papers, dataset),
            mode="extractive",
            judge=False,
            progress=False,
        )
        print(f"\n## {dataset} ({len(questions)} questions), reader {settings.reader}")
        for title, table in group_tables(run.metrics):
            print(f"\n{title}:\n{table}")
        print(f"\n{style_table(run)}")


def style_table(run) -> str:
    """The issue-14 figures per style: hit@5, refusals, lookup and multi citations, detail strings found."""

    def mean_of(records, key) -> str:
        values = [r.metrics.get(key) for r in records]
        values = [v for v in values if v is not None]
        return f"{sum(values) / len(values):.2f}" if values else "-"

    lines = [
        "| style | hit@5 | answerable refused | unanswerable refused | near misses refused | "
        "lookup citation P | lookup citation R | multi citation R | detail: expected found |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    styles = sorted({q.style for q in run.questions if q.style}) + ["all"]
    for style in styles:
        rs = [q for q in run.questions if style == "all" or q.style == style]
        answerable = [q for q in rs if q.type != "unanswerable"]
        unanswerable = [q for q in rs if q.type == "unanswerable"]
        near = [q for q in unanswerable if q.kind == "near_miss"]
        lookup = [q for q in rs if q.type == "lookup"]
        cells = [
            mean_of(answerable, "hit@5"),
            mean_of(answerable, "false_refusal"),
            mean_of(unanswerable, "refusal_accuracy"),
            mean_of(near, "refusal_accuracy"),
            mean_of(lookup, "citation_precision"),
            mean_of(lookup, "citation_recall"),
            mean_of([q for q in rs if q.type == "multi"], "citation_recall"),
            mean_of([q for q in rs if q.type == "detail"], "expected_found"),
        ]
        lines.append(f"| {style} ({len(rs)}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    args = sys.argv[1:]
    pairs = [arg.split(":") for arg in args if not arg.startswith("--")]
    if "--combined" in args:
        fit_combined(pairs)
        return
    if "--eval" in args:
        run_cached_eval(pairs, enabled="--reader-off" not in args)
        return
    _, manifest = open_index(get_settings())
    gold_index = GoldIndex(manifest.papers)
    for cache, dataset in pairs:
        rows = _rows_by_id(dataset)
        cached = _jsonl(cache)
        records = []
        for c in cached:
            row = rows[c["id"]]
            gold = set(gold_index.resolve_all(row.get("gold", []))[0])
            records.append({**c, "row": row, "gold_read": [p in gold for p in c["papers"][: len(c["yes"])]]})
        print(f"\n## {dataset} ({len(records)} questions cached)")
        answerable = [r for r in records if r["row"]["type"] != "unanswerable"]
        unanswerable = [r for r in records if r["row"]["type"] == "unanswerable"]
        pos_q = [max(r["yes"]) for r in answerable]
        neg_q = [max(r["yes"]) for r in unanswerable]
        gold_p = [y for r in answerable for y, g in zip(r["yes"], r["gold_read"], strict=False) if g]
        other_p = [y for r in answerable for y, g in zip(r["yes"], r["gold_read"], strict=False) if not g]
        cov_a, cov_u = [r["coverage"] for r in answerable], [r["coverage"] for r in unanswerable]
        print(f"AUC coverage answerable vs unanswerable: {auc(cov_a, cov_u):.3f}")
        print(f"AUC max P(yes) answerable vs unanswerable: {auc(pos_q, neg_q):.3f}")
        near = [max(r["yes"]) for r in unanswerable if r["row"].get("kind") == "near_miss"]
        print(f"AUC max P(yes) answerable vs near miss: {auc(pos_q, near):.3f}")
        print(f"AUC P(yes) gold vs other read papers (answerable): {auc(gold_p, other_p):.3f}")
        print(f"seconds per question: median {sorted(r['seconds'] for r in records)[len(records) // 2]:.1f}")
        styles = sorted({r["row"].get("style") or "-" for r in records})
        header = "| rule | " + " | ".join(f"{s} a / u" for s in styles) + " | all a / u / near |"
        print(header)
        print("|---" * (len(styles) + 2) + "|")
        for name, rule in rules().items():
            cells = []
            by_style: dict[str, list] = defaultdict(list)
            for r in records:
                by_style[r["row"].get("style") or "-"].append(r)
            for s in styles:
                cells.append(_cell(by_style[s], rule))
            near_rows = [r for r in unanswerable if r["row"].get("kind") == "near_miss"]
            near_refused = sum(not rule(r) for r in near_rows) / max(len(near_rows), 1)
            print(f"| {name} | " + " | ".join(cells) + f" | {_cell(records, rule)} / {near_refused:.2f} |")


def _cell(records: list[dict], rule) -> str:
    a = [r for r in records if r["row"]["type"] != "unanswerable"]
    u = [r for r in records if r["row"]["type"] == "unanswerable"]
    fa = sum(not rule(r) for r in a) / max(len(a), 1)
    ru = sum(not rule(r) for r in u) / max(len(u), 1)
    return f"{fa:.2f} / {ru:.2f}"


if __name__ == "__main__":
    main()
