"""The citation-verification threshold: `python evals/tune_verify.py [STORE_DIR]`.

LLM mode marks a sentence verified when its MiniLM cosine to some evidence of a
cited paper (an abstract sentence or the retrieved chunk, ``bot.llm.evidence_for``)
reaches ``PAPERBOT_VERIFY_THRESHOLD``. Labelled pairs come from the eval sets:
each sentence of a reference answer against its gold paper is "supported", and
against the other retrieved papers "not supported" (a topic neighbour, the hard
case). The threshold with the best balanced accuracy on the dev set is then
scored on the held-out set. Results are in evals/llm_local_report.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from bot.answer import Engine
from bot.citations import evidence_for
from bot.config import Settings
from bot.embedding import get_encoder
from bot.normalize import normalize_title
from bot.text import split_sentences

HERE = Path(__file__).resolve().parent
THRESHOLDS = np.round(np.arange(0.40, 0.701, 0.025), 3)


def labelled_pairs(engine: Engine, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(best cosine, supported?) for every reference sentence x retrieved paper."""
    encoder = get_encoder()
    scores: list[float] = []
    labels: list[bool] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if not row["gold"] or not row.get("reference_answer"):
            continue
        gold = {normalize_title(g) for g in row["gold"]} | set(row["gold"])
        hits = engine.retrieve_for(row["question"]).hits
        sentences = [s for s in split_sentences(row["reference_answer"]) if len(s) >= 20]
        if not sentences:
            continue
        svec = encoder.encode(sentences)
        for hit, (_, evidence) in zip(hits, evidence_for(engine.retriever, hits), strict=True):
            best = (svec @ evidence.T).max(axis=1)
            is_gold = normalize_title(hit.paper.title) in gold or hit.paper.arxiv_id in gold
            scores += best.tolist()
            labels += [is_gold] * len(best)
    return np.array(scores), np.array(labels)


def balanced_accuracy(scores: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float, float, float]:
    said = scores >= threshold
    tpr = float(said[labels].mean())
    tnr = float((~said[~labels]).mean())
    return (tpr + tnr) / 2, tpr, tnr


def main(store_dir: str | None) -> None:
    settings = Settings(store_dir=store_dir) if store_dir else Settings()
    engine = Engine(settings)
    dev = labelled_pairs(engine, HERE / "questions.jsonl")
    held = labelled_pairs(engine, HERE / "heldout.jsonl")
    for name, (_, labels) in (("dev", dev), ("held-out", held)):
        print(f"{name}: {int(labels.sum())} supported pairs, {int((~labels).sum())} not supported")
    print("threshold | dev bal.acc (TPR/TNR) | held-out bal.acc (TPR/TNR)")
    best = max(THRESHOLDS, key=lambda t: balanced_accuracy(*dev, t)[0])
    for t in THRESHOLDS:
        d, h = balanced_accuracy(*dev, t), balanced_accuracy(*held, t)
        mark = "  <- best on dev" if t == best else ""
        print(f"{t:.3f} | {d[0]:.3f} ({d[1]:.2f}/{d[2]:.2f}) | {h[0]:.3f} ({h[1]:.2f}/{h[2]:.2f}){mark}")
    print(f"configured PAPERBOT_VERIFY_THRESHOLD: {settings.verify_threshold}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
