"""More features for summary selection, scored leave-one-set-out on the topic sets (evals/summary_report.md).

    .venv/bin/python evals/topic_features_check.py evals/topics.jsonl evals/topics2.jsonl ... evals/topics7.jsonl

For every covered topic: the relevance rule's four features for every paper (``summary_eval.topic_features``),
the top ``--candidates`` papers by the shipped rule, and for those the cross-encoder reader's P(yes) for the
topic as typed and as "Which papers are about <topic>?", the cosine of the topic to the paper's research-area
line (the first everyday-words line) and to its title. A logistic rule is refitted on the candidates of all
other sets, its cut chosen there for the best mean F1, and the held-out set's topics are cut with it
(at most ``--papers`` papers). Prints recall / precision macro over topics, per form.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from summary_eval import topic_features  # noqa: E402

from bot import summarize as S  # noqa: E402
from bot.answer import Engine  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.eval.dataset import load_topics  # noqa: E402
from bot.normalize import GoldIndex  # noqa: E402

EXTRA = ("reader", "reader_which", "area", "title")
VARIANTS = ((), ("reader",), ("reader_which",), ("area",), ("area", "title"))


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def zscore(v: np.ndarray) -> np.ndarray:
    return (v - v.mean()) / v.std()


def paper_lines(engine: Engine) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each paper's research-area line vector (the first everyday-words line) and title vector."""
    area = {}
    for line in (engine.settings.base_sources / "everyday.questions.jsonl").read_text().splitlines():
        record = json.loads(line)
        area[record["paper_id"]] = engine.retriever.embed_query(record["questions"][0])
    titles = {p.paper_id: engine.retriever.embed_query(p.title) for p in engine.manifest.papers}
    return area, titles


@dataclass
class Candidates:
    """A topic's best papers by the shipped relevance rule: ids, the rule's features and P(on topic)."""

    qvec: np.ndarray
    ids: list[str]
    x: np.ndarray
    prob: np.ndarray
    top: np.ndarray  # positions of the best ``n`` papers in ``ids``, best first


def shipped_candidates(engine: Engine, topic: str, n: int) -> Candidates:
    qvec = engine.retriever.embed_query(topic)
    scores = engine.retriever.score_papers(topic, qvec)
    prob = S.relevance(scores, engine.retriever.paper_vectors(scores.paper_ids), engine.settings.summary)
    ids, x = topic_features(engine, topic)
    return Candidates(qvec, ids, x, prob, np.argsort(-prob)[:n])


def topic_rows(engine: Engine, path: Path, candidates: int, vectors: tuple[dict, dict]) -> list[dict]:
    """Per covered topic: candidate features (rule features + EXTRA) and gold labels."""
    index = GoldIndex(engine.manifest.papers)
    papers = {p.paper_id: p for p in engine.manifest.papers}
    area_vec, title_vec = vectors
    rows = []
    for row in load_topics(path):
        if not row.gold:
            continue
        found = shipped_candidates(engine, row.topic, candidates)
        qvec, ids, x, top = found.qvec, found.ids, found.x, found.top
        gold, _ = index.resolve_all(row.gold)
        cols = {}
        for name, question in (("reader", row.topic), ("reader_which", f"Which papers are about {row.topic}?")):
            qv = engine.retriever.embed_query(question)
            yes = engine.reader().judge(question, [engine.passage(papers[ids[i]], qv) for i in top])
            cols[name] = logit(np.asarray(yes))
        a = np.array([float(area_vec[p] @ qvec) if p in area_vec else np.nan for p in ids])
        cols["area"] = zscore(np.where(np.isnan(a), np.nanmean(a), a))[top]
        titles = np.array([float(title_vec[p] @ qvec) for p in ids])
        cols["title"] = zscore(titles)[top]
        rows.append(
            {
                "set": path.stem,
                "form": row.form or "-",
                "x": x[top],
                "extra": cols,
                "ids": [ids[i] for i in top],
                "gold": set(gold),
            }
        )
        print(path.stem, row.id, file=sys.stderr, flush=True)
    return rows


def design(row: dict, extra: tuple[str, ...]) -> np.ndarray:
    return np.column_stack([row["x"], *[row["extra"][e] for e in extra]])


def cut_topic(row: dict, prob: np.ndarray, cut: float, limit: int) -> tuple[float, float]:
    chosen = [row["ids"][i] for i in np.argsort(-prob)[:limit] if prob[i] >= cut]
    hits = len(row["gold"] & set(chosen))
    return hits / len(row["gold"]), (hits / len(chosen) if chosen else 0.0)


def leave_one_set_out(rows: list[dict], extra: tuple[str, ...], limit: int) -> dict[str, tuple[float, float]]:
    from sklearn.linear_model import LogisticRegression

    scored = defaultdict(list)
    for held in sorted({r["set"] for r in rows}):
        train = [r for r in rows if r["set"] != held]
        clf = LogisticRegression(max_iter=2000).fit(
            np.concatenate([design(r, extra) for r in train]),
            np.concatenate([[i in r["gold"] for i in r["ids"]] for r in train]),
        )
        probs = {id(r): clf.predict_proba(design(r, extra))[:, 1] for r in rows}

        def mean_f1(cut: float, train: list[dict] = train, probs: dict = probs) -> float:
            f1 = []
            for r in train:
                rc, pr = cut_topic(r, probs[id(r)], cut, limit)
                f1.append(2 * rc * pr / (rc + pr) if rc + pr else 0.0)
            return statistics.mean(f1)

        cut = max(np.arange(0.1, 0.9, 0.025), key=mean_f1)
        for r in rows:
            if r["set"] == held:
                result = cut_topic(r, probs[id(r)], cut, limit)
                scored[r["form"]].append(result)
                scored["all"].append(result)
    return {form: tuple(statistics.mean(v) for v in zip(*pairs, strict=True)) for form, pairs in scored.items()}


def fold_arguments(description: str, settings: Settings) -> argparse.Namespace:
    """The command line of the leave-one-set-out checks: topic sets, candidates per topic, papers per summary."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("topics", type=Path, nargs="+", help="topic sets (one fold each)")
    parser.add_argument("--candidates", type=int, default=40, help="papers per topic, best by the shipped rule")
    parser.add_argument("--papers", type=int, default=settings.summary.default_papers)
    return parser.parse_args()


def main() -> int:
    settings = Settings()
    args = fold_arguments(__doc__.splitlines()[0], settings)
    engine = Engine(settings, progress=False)
    vectors = paper_lines(engine)
    rows = [r for path in args.topics for r in topic_rows(engine, path, args.candidates, vectors)]
    forms = sorted({r["form"] for r in rows})
    print("| features | all | " + " | ".join(forms) + " |")
    print("| --- " * (len(forms) + 2) + "|")
    for extra in VARIANTS:
        result = leave_one_set_out(rows, extra, args.papers)
        cells = " | ".join(f"{result[f][0]:.3f} / {result[f][1]:.3f}" for f in ["all", *forms])
        print(f"| rule features{''.join(' + ' + e for e in extra)} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
