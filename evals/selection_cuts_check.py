"""Two more candidates for summary selection, scored leave-one-set-out on the topic sets (evals/summary_report.md).

    .venv/bin/python evals/selection_cuts_check.py evals/topics.jsonl evals/topics2.jsonl ... evals/topics8.jsonl

For every covered topic, the top ``--candidates`` papers by the shipped relevance rule and its four features:
- a topic-membership model: a logistic regression on the product of the topic's and the paper's MiniLM
  vectors, trained on the other sets' topic-paper pairs (cross-fitted within them), its log-odds added
  as a fifth feature to the refitted rule;
- a cut relative to the best paper: a paper is kept only when its P(on topic) is at least ``ratio``
  times the best paper's, beside the shipped fixed cut, ``ratio`` chosen on the other sets.
Prints recall / precision macro over topics, per form.
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from topic_features_check import cut_topic, fold_arguments, shipped_candidates  # noqa: E402

from bot.answer import Engine  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.eval.dataset import load_topics  # noqa: E402
from bot.normalize import GoldIndex  # noqa: E402


def topic_rows(engine: Engine, paths: list[Path], candidates: int) -> list[dict]:
    index = GoldIndex(engine.manifest.papers)
    rows = []
    for path in paths:
        for row in load_topics(path):
            if not row.gold:
                continue
            found = shipped_candidates(engine, row.topic, candidates)
            gold, _ = index.resolve_all(row.gold)
            chosen = [found.ids[i] for i in found.top]
            rows.append(
                {
                    "set": path.stem,
                    "form": row.form or "-",
                    "x": found.x[found.top],
                    "prob": found.prob[found.top],
                    "ids": chosen,
                    "gold": set(gold),
                    "pairs": engine.retriever.paper_vectors(chosen) * (found.qvec / np.linalg.norm(found.qvec)),
                }
            )
    return rows


def labels(rows: list[dict]) -> np.ndarray:
    return np.concatenate([[i in r["gold"] for i in r["ids"]] for r in rows])


def membership(train: list[dict], C: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=3000).fit(np.concatenate([r["pairs"] for r in train]), labels(train))


def macro(scored: dict[str, list[tuple[float, float]]]) -> dict[str, tuple[float, float]]:
    return {form: tuple(statistics.mean(v) for v in zip(*pairs, strict=True)) for form, pairs in scored.items()}


def with_membership(rows: list[dict], limit: int, C: float | None) -> dict[str, tuple[float, float]]:
    """The rule refitted on each fold's other sets, with the membership log-odds (C set) or without."""
    from sklearn.linear_model import LogisticRegression

    scored = defaultdict(list)
    for held in sorted({r["set"] for r in rows}):
        train = [r for r in rows if r["set"] != held]
        extra: dict[int, np.ndarray] = {}
        if C is not None:
            for inner in sorted({r["set"] for r in train}):
                model = membership([r for r in train if r["set"] != inner], C)
                extra |= {id(r): model.decision_function(r["pairs"]) for r in train if r["set"] == inner}
            model = membership(train, C)
            extra |= {id(r): model.decision_function(r["pairs"]) for r in rows if r["set"] == held}

        def design(r: dict, extra: dict = extra) -> np.ndarray:
            return np.column_stack([r["x"], extra[id(r)]]) if C is not None else r["x"]

        rule = LogisticRegression(max_iter=2000).fit(np.concatenate([design(r) for r in train]), labels(train))
        probs = {id(r): rule.predict_proba(design(r))[:, 1] for r in rows if C is None or id(r) in extra}

        def mean_f1(cut: float, train: list[dict] = train, probs: dict = probs) -> float:
            f1 = [
                2 * rc * pr / (rc + pr) if rc + pr else 0.0
                for rc, pr in (cut_topic(r, probs[id(r)], cut, limit) for r in train)
            ]
            return statistics.mean(f1)

        cut = max(np.arange(0.1, 0.9, 0.025), key=mean_f1)
        for r in (r for r in rows if r["set"] == held):
            result = cut_topic(r, probs[id(r)], cut, limit)
            scored[r["form"]].append(result)
            scored["all"].append(result)
    return macro(scored)


def relative_cut(r: dict, cut: float, ratio: float, limit: int) -> tuple[float, float]:
    floor = max(cut, ratio * float(r["prob"].max()))
    return cut_topic(r, r["prob"], floor, limit)


def with_ratio(rows: list[dict], limit: int, cut: float, ratios: list[float]) -> dict[str, tuple[float, float]]:
    """The shipped rule and cut, plus a ratio to the best paper chosen on each fold's other sets."""
    scored = defaultdict(list)
    for held in sorted({r["set"] for r in rows}):
        train = [r for r in rows if r["set"] != held]

        def mean_f1(ratio: float, train: list[dict] = train) -> float:
            f1 = [
                2 * rc * pr / (rc + pr) if rc + pr else 0.0
                for rc, pr in (relative_cut(r, cut, ratio, limit) for r in train)
            ]
            return statistics.mean(f1)

        ratio = max(ratios, key=mean_f1)
        for r in (r for r in rows if r["set"] == held):
            result = relative_cut(r, cut, ratio, limit)
            scored[r["form"]].append(result)
            scored["all"].append(result)
    return macro(scored)


def main() -> int:
    settings = Settings()
    args = fold_arguments(__doc__.splitlines()[0], settings)
    rows = topic_rows(Engine(settings, progress=False), args.topics, args.candidates)
    forms = sorted({r["form"] for r in rows})
    print("| variant | all | " + " | ".join(forms) + " |")
    print("| --- " * (len(forms) + 2) + "|")
    cut = settings.summary.relevance_cut
    results = {
        "shipped rule, fixed cut": with_ratio(rows, args.papers, cut, [0.0]),
        "shipped rule, fixed cut and a ratio to the best paper": with_ratio(
            rows, args.papers, cut, [0.0, 0.3, 0.4, 0.5, 0.6, 0.7]
        ),
        "rule refitted": with_membership(rows, args.papers, None),
        **{f"rule refitted + membership (C={C})": with_membership(rows, args.papers, C) for C in (0.1, 1.0, 10.0)},
    }
    for name, result in results.items():
        cells = " | ".join(f"{result[f][0]:.3f} / {result[f][1]:.3f}" for f in ["all", *forms])
        print(f"| {name} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
