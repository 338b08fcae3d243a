"""Literature-summary quality on evals/topics.jsonl: gold recall/precision and time per summary.

    .venv/bin/python evals/summary_eval.py            # extractive summaries of all 19 topics
    .venv/bin/python evals/summary_eval.py --loto     # also the leave-one-topic-out estimate of the relevance rule
    .venv/bin/python evals/summary_eval.py --topics evals/topics2.jsonl   # the blind topic set

Scores each summary against the relabelled gold lists (``gold``) and against the original lists
(``gold`` minus ``gold_added``, see evals/topic_labels.jsonl). Uses the index named by the usual
PAPERBOT_* settings (for a private copy: PAPERBOT_STORE_DIR / PAPERBOT_SOURCES_DIR / PAPERBOT_COLLECTION).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bot import summarize as S  # noqa: E402
from bot.answer import Engine  # noqa: E402
from bot.config import RelevanceRule, Settings  # noqa: E402
from bot.eval.dataset import TopicRow, load_topics  # noqa: E402
from bot.normalize import GoldIndex  # noqa: E402

RULE_WEIGHTS = ("w_dense", "w_bm25", "w_seed", "w_questions")  # the relevance rule's features, in this order


def old_gold(row: TopicRow) -> list[str]:
    added = set(row.gold_added)
    return [g for g in row.gold if g not in added]


def macro(rows: list[dict], key: str) -> tuple[float, float]:
    covered = [r for r in rows if r["gold_n"]]
    return (
        statistics.mean(r[key]["recall"] for r in covered),
        statistics.mean(r[key]["precision"] for r in covered),
    )


def topic_features(engine: Engine, topic: str) -> tuple[list[str], np.ndarray]:
    """The relevance rule's three standardized features for every paper (as in select_papers).

    Read back through ``summarize.relevance`` itself, so the rule stays defined in one place: with
    one weight set to 1 and the others and the bias to 0 it returns sigmoid(feature), whose logit
    is the feature.
    """
    cfg = engine.settings.summary
    qvec = engine.retriever.embed_query(topic)
    scores = engine.retriever.score_papers(topic, qvec)
    vectors = engine.retriever.paper_vectors(scores.paper_ids)
    columns = []
    for weight in RULE_WEIGHTS:
        one = RelevanceRule(**(dict.fromkeys(RULE_WEIGHTS, 0.0) | {weight: 1.0, "bias": 0.0}))
        prob = S.relevance(scores, vectors, cfg, one)
        columns.append(np.log(prob) - np.log1p(-prob))
    return scores.paper_ids, np.stack(columns, axis=1)


def leave_one_topic_out(engine: Engine, rows: list[TopicRow], limit: int) -> dict:
    """Refit the logistic rule without each topic, cut that topic at the relevance cut, score it."""
    from sklearn.linear_model import LogisticRegression

    index = GoldIndex(engine.manifest.papers)
    cut = engine.settings.summary.relevance_cut
    covered = [r for r in rows if r.gold]
    data = {}
    for row in covered:
        paper_ids, x = topic_features(engine, row.topic)
        new, _ = index.resolve_all(row.gold)
        old, _ = index.resolve_all(old_gold(row))
        data[row.id] = (x, np.array([p in new for p in paper_ids]), np.array([p in old for p in paper_ids]))
    out = {}
    for labels in ("new", "old"):
        col = 1 if labels == "new" else 2
        recalls, precisions = [], []
        for row in covered:
            train = [t for t in data if t != row.id]
            clf = LogisticRegression(max_iter=1000).fit(
                np.concatenate([data[t][0] for t in train]), np.concatenate([data[t][col] for t in train])
            )
            x, gold = data[row.id][0], data[row.id][col]
            prob = clf.predict_proba(x)[:, 1]
            chosen = [i for i in np.argsort(-prob)[:limit] if prob[i] >= cut]
            hits = int(gold[chosen].sum())
            recalls.append(hits / gold.sum())
            precisions.append(hits / len(chosen) if chosen else 0.0)
        out[labels] = (statistics.mean(recalls), statistics.mean(precisions))
    return out


def main() -> int:
    settings = Settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=settings.summary.default_papers)
    parser.add_argument("--topics", type=Path, default=HERE / "topics.jsonl", help="the topic set")
    parser.add_argument("--loto", action="store_true", help="also the leave-one-topic-out estimate")
    parser.add_argument("--json", type=Path, help="write the per-topic rows here")
    args = parser.parse_args()

    rows = load_topics(args.topics)  # a malformed line stops here, before the index is opened
    engine = Engine(settings, progress=False)
    summarize_topic = S.summarize
    summarize_topic(engine, rows[0].topic, papers=args.papers, mode="extractive")  # warm the encoder
    results = []
    print("| id | covered | themes | cited | gold (old) | recall | precision | old recall | old precision | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        summary = summarize_topic(engine, row.topic, papers=args.papers, mode="extractive")
        new = S.summary_recall(summary, row.gold, engine)
        old = S.summary_recall(summary, old_gold(row), engine)
        assert not new["unresolved_gold"], new["unresolved_gold"]
        result = {
            "id": row.id,
            "form": row.form or "-",
            "covered": summary.covered,
            "themes": len(summary.themes),
            "cited": len(summary.references),
            "gold_n": new["gold"],
            "new": new,
            "old": old,
            "seconds": round(summary.seconds, 2),
        }
        results.append(result)
        if row.gold:
            print(
                f"| {row.id} | {'yes' if summary.covered else 'no'} | {len(summary.themes)} | {new['cited']} | "
                f"{new['gold']} ({old['gold']}) | {new['recall']:.2f} | {new['precision']:.2f} | "
                f"{old['recall']:.2f} | {old['precision']:.2f} | {summary.seconds:.1f} |"
            )
        else:
            print(
                f"| {row.id} | {'yes' if summary.covered else 'no'} | 0 | {new['cited']} | 0 | - | - | - | - | "
                f"{summary.seconds:.1f} |"
            )
    new_r, new_p = macro(results, "new")
    old_r, old_p = macro(results, "old")
    covered_times = [r["seconds"] for r in results if r["covered"]]
    print()
    print(
        f"macro, {sum(1 for r in results if r['gold_n'])} covered topics: relabelled gold recall {new_r:.3f} "
        f"precision {new_p:.3f}; original gold recall {old_r:.3f} precision {old_p:.3f}"
    )
    forms = sorted({r["form"] for r in results if r["gold_n"]})
    if len(forms) > 1:
        print()
        print("| form | topics | recall | precision |")
        print("| --- | --- | --- | --- |")
        for form in forms:
            group = [r for r in results if r["form"] == form]
            recall, precision = macro(group, "new")
            print(f"| {form} | {len(group)} | {recall:.3f} | {precision:.3f} |")
    uncovered_ok = all(not r["covered"] and r["cited"] == 0 for r in results if not r["gold_n"])
    print(f"uncovered topics reported as not covered: {uncovered_ok}")
    print(
        f"seconds per covered summary: mean {statistics.mean(covered_times):.2f}, "
        f"median {statistics.median(covered_times):.2f}, max {max(covered_times):.2f}"
    )
    if args.loto:
        loto = leave_one_topic_out(engine, rows, args.papers)
        print(
            f"leave-one-topic-out (rule refit without the scored topic): relabelled gold recall "
            f"{loto['new'][0]:.3f} precision {loto['new'][1]:.3f}; original gold recall {loto['old'][0]:.3f} "
            f"precision {loto['old'][1]:.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
