"""Can another refusal rule do better? `python evals/tune_refusal.py [STORE_DIR]`.

Computes, for every question of the eval sets, the signals a rule could use
without an LLM, then scores rules leave-one-set-out: fit a logistic regression
on the other sets, put its threshold where at most 4% of their answerable
questions are refused, and count refusals on the held-out set. The shipped
rule (``Engine.retrieve_for``) is scored on each set as it is, and the coverage
signal is cut at a range of thresholds; the threshold rule (the highest pooled
refusal accuracy with at most 4% pooled false refusals) is applied to all sets
and leave-one-set-out. Results are in evals/README.md ("The refusal rule").

Signals per question:
  cover   word-piece coverage of the question by the top 5 papers (the shipped rule)
  best    best dense cosine of a retrieved chunk (the rule shipped before it, with unknown)
  unknown share of the question's content words no abstract uses
  cover3  IDF-weighted share of the question's words found in the top 3 abstracts
  sent    best cosine of one abstract sentence of the top 3 papers
  gap     best cosine minus the mean of ranks 2-5 (a paper that stands out)
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import Stemmer
from sklearn.linear_model import LogisticRegression

from bot.answer import Engine
from bot.config import Settings
from bot.text import QUESTION_STOPWORDS, tokens

HERE = Path(__file__).resolve().parent
SETS = ("questions", "heldout", "heldout2", "heldout3", "heldout4", "heldout5", "heldout6", "styles_dev")
# The shipped threshold (0.53) was picked on these; held-out 5 and 6 were written blind to check it.
CHOSEN_ON = SETS[:5]
SIGNALS = ("cover", "best", "unknown", "cover3", "sent", "gap")
MAX_FALSE_REFUSALS = 0.04


def signals(engine: Engine) -> list[dict]:
    retriever = engine.retriever
    stem = Stemmer.Stemmer("english").stemWords
    words_of = {p.paper_id: set(stem(tokens(f"{p.title} {p.abstract}"))) for p in engine.manifest.papers}
    df = Counter(w for words in words_of.values() for w in words)
    vocabulary = set(df)
    rows = []
    for name in SETS:
        for line in (HERE / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            q = json.loads(line)
            retrieval = engine.retrieve_for(q["question"], k=5)
            hits, qvec, cover, answered = retrieval.hits, retrieval.query_vector, retrieval.coverage, retrieval.answered
            sims = sorted((h.similarity for h in hits), reverse=True)
            words = stem([w for w in tokens(q["question"]) if len(w) > 2 and w not in QUESTION_STOPWORDS])
            idf = {w: math.log((len(words_of) + 1) / (df.get(w, 0) + 0.5)) for w in words}
            top3 = set().union(*(words_of[h.paper.paper_id] for h in hits[:3]))
            rows.append(
                {
                    "set": name,
                    "style": q.get("style", "-"),
                    "answerable": q["type"] != "unanswerable",
                    "shipped": answered,
                    "cover": cover,
                    "best": sims[0],
                    "unknown": sum(w not in vocabulary for w in words) / (len(words) or 1),
                    "cover3": sum(v for w, v in idf.items() if w in top3) / (sum(idf.values()) or 1.0),
                    "sent": max(float((retriever.sentence_vectors(h.paper)[1] @ qvec).max()) for h in hits[:3]),
                    "gap": sims[0] - float(np.mean(sims[1:5])),
                }
            )
    return rows


def rates(answered: np.ndarray, answerable: np.ndarray) -> str:
    """Refusal accuracy on unanswerable questions / false refusals on answerable ones."""
    return f"{np.mean(~answered[~answerable]):.2f} / {np.mean(~answered[answerable]):.2f}"


def pick_cut(rows: list[dict], cuts: list[float]) -> float:
    """The coverage threshold with the most unanswerable questions refused while at most
    MAX_FALSE_REFUSALS of the answerable ones are; the lowest such threshold on a tie."""
    answerable = np.array([r["answerable"] for r in rows])
    cover = np.array([r["cover"] for r in rows])
    allowed = [c for c in cuts if np.mean(cover[answerable] < c) <= MAX_FALSE_REFUSALS]
    return max(allowed, key=lambda c: (np.mean(cover[~answerable] < c), -c))


def main(store_dir: str) -> None:
    rows = signals(Engine(Settings(store_dir=store_dir)))
    print(f"{'rule':24s}" + "".join(f"{name:>14s}" for name in SETS) + "   (refusal accuracy / false refusals)")

    shipped = []
    for name in SETS:
        part = [r for r in rows if r["set"] == name]
        shipped.append(rates(np.array([r["shipped"] for r in part]), np.array([r["answerable"] for r in part])))
    print(f"{'shipped rule':24s}" + "".join(f"{s:>14s}" for s in shipped))

    previous = []  # the rule shipped until 2026-11-23: best >= 0.42 + 0.6 * unknown
    for name in SETS:
        part = [r for r in rows if r["set"] == name]
        answered = np.array([r["best"] >= 0.42 + 0.6 * r["unknown"] for r in part])
        previous.append(rates(answered, np.array([r["answerable"] for r in part])))
    print(f"{'previous rule':24s}" + "".join(f"{s:>14s}" for s in previous))

    # The shipped signal alone, cut at a range of thresholds (the setting is refusal_threshold).
    cuts = [round(c, 3) for c in np.arange(0.48, 0.5625, 0.005)]
    for cut in cuts:
        cells = []
        for name in SETS:
            part = [r for r in rows if r["set"] == name]
            cells.append(rates(np.array([r["cover"] >= cut for r in part]), np.array([r["answerable"] for r in part])))
        pooled = rates(np.array([r["cover"] >= cut for r in rows]), np.array([r["answerable"] for r in rows]))
        print(f"{f'cover >= {cut:.3f}':24s}" + "".join(f"{c:>14s}" for c in cells) + f"   pooled {pooled}")
    picked = pick_cut([r for r in rows if r["set"] in CHOSEN_ON], cuts)
    print(f"threshold rule on {', '.join(CHOSEN_ON)}: cover >= {picked:.3f}")
    cells = []
    for held in SETS:
        cut = pick_cut([r for r in rows if r["set"] != held], cuts)
        test = [r for r in rows if r["set"] == held]
        cells.append(rates(np.array([r["cover"] >= cut for r in test]), np.array([r["answerable"] for r in test])))
    print(f"{'cover, leave-one-out':24s}" + "".join(f"{c:>14s}" for c in cells))

    for size in (1, 2, 3):
        for features in itertools.combinations(SIGNALS, size):
            cells = []
            for held in SETS:
                train = [r for r in rows if r["set"] != held]
                test = [r for r in rows if r["set"] == held]
                x_train = np.array([[r[f] for f in features] for r in train])
                y_train = np.array([r["answerable"] for r in train])
                model = LogisticRegression(C=10, max_iter=2000).fit(x_train, y_train)
                cut = np.quantile(model.decision_function(x_train)[y_train], MAX_FALSE_REFUSALS)
                x_test = np.array([[r[f] for f in features] for r in test])
                answered = model.decision_function(x_test) >= cut
                cells.append(rates(answered, np.array([r["answerable"] for r in test])))
            print(f"{'+'.join(features):24s}" + "".join(f"{c:>14s}" for c in cells))

    # styles_dev by question style: the shipped rule and two-signal rules fitted on the other sets.
    styles = ("plain", "keyword", "chatty", "typo", "expert")
    print(f"{'styles_dev':24s}" + "".join(f"{st:>14s}" for st in styles))
    dev = [r for r in rows if r["set"] == "styles_dev"]
    train = [r for r in rows if r["set"] != "styles_dev"]
    for features in (("cover",), ("cover", "sent"), ("cover", "best"), ("cover", "sent", "best")):
        x_train = np.array([[r[f] for f in features] for r in train])
        y_train = np.array([r["answerable"] for r in train])
        model = LogisticRegression(C=10, max_iter=2000).fit(x_train, y_train)
        cut = np.quantile(model.decision_function(x_train)[y_train], MAX_FALSE_REFUSALS)
        cells = []
        for st in styles:
            part = [r for r in dev if r["style"] == st]
            answered = model.decision_function(np.array([[r[f] for f in features] for r in part])) >= cut
            cells.append(rates(answered, np.array([r["answerable"] for r in part])))
        print(f"{'+'.join(features):24s}" + "".join(f"{c:>14s}" for c in cells))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "index/store")
