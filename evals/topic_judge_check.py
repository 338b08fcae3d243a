"""Issue 18: a cross-encoder fine-tuned on topic-paper pairs, measured as a judge of the summary selection.

    pip install -e '.[train]'
    python evals/topic_judge_check.py dump          # the rule's 40 best candidates of every covered topic
    python evals/topic_judge_check.py fit C         # train outside fold C (and topics10), score fold C
    python evals/topic_judge_check.py eval C        # AUC and selection, rule vs cross-encoder, per form

Measured on 2026-12-02 and not kept (evals/summary_report.md, thirteenth session): held-out AUC within
the candidates 0.595 against the rule's 0.909. The model is the shipped reader's layout
(evals/train_reader.py), read on the topic and "title. abstract". Work files go to ``--work``.
"""

from __future__ import annotations

import argparse
import math
import pickle
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "evals"))

CANDIDATES = 40  # the rule's best papers per topic the judge re-reads (1,478 of 1,582 gold papers lie within)
MAX_TOKENS = 160
BATCH = 16
LR = 4e-5
SETS = [f"topics{n}" if n > 1 else "topics" for n in range(1, 11)]
FOLDS = {
    "A": {"topics", "topics2", "topics3"},
    "B": {"topics4", "topics5", "topics6"},
    "C": {"topics7", "topics8", "topics9"},
}
NEVER_TRAINED = {"topics10"}  # the last blind set stays out of every fit


def dump(work: Path) -> None:
    from bot import summarize as S
    from bot.answer import Engine
    from bot.config import get_settings
    from bot.eval.dataset import load_topics
    from bot.normalize import GoldIndex

    engine = Engine(get_settings())
    index = GoldIndex(engine.manifest.papers)
    out = []
    for name in SETS:
        for row in load_topics(ROOT / "evals" / f"{name}.jsonl"):
            if not row.gold:
                continue
            scores = engine.retriever.score_papers(row.topic, engine.retriever.embed_query(row.topic))
            prob = S.relevance(scores, engine.retriever.paper_vectors(scores.paper_ids), engine.settings.summary)
            order = np.argsort(-prob)[:CANDIDATES]
            papers = [engine.retriever.paper(scores.paper_ids[i]) for i in order]
            out.append(
                {
                    "set": name,
                    "id": row.id,
                    "form": row.form or "original",
                    "topic": row.topic,
                    "pids": [p.paper_id for p in papers],
                    "texts": [f"{p.title}. {p.abstract}" for p in papers],
                    "prob": prob[order],
                    "gold": set(index.resolve_all(row.gold)[0]),
                }
            )
    (work / "candidates.pkl").write_bytes(pickle.dumps(out))
    inside = sum(len(set(t["pids"]) & t["gold"]) for t in out)
    print(f"{len(out)} covered topics, {sum(len(t['gold']) for t in out)} gold, {inside} within the candidates")


def fit(work: Path, fold: str, epochs: float) -> None:
    import torch
    from sklearn.metrics import roc_auc_score
    from torch import nn
    from train_reader import _cross_encoder, _model_dir, train_loop
    from transformers import AutoTokenizer

    torch.set_num_threads(2)
    topics = pickle.loads((work / "candidates.pkl").read_bytes())
    held = FOLDS[fold] | NEVER_TRAINED
    train = [
        (t["topic"], text, float(pid in t["gold"]))
        for t in topics
        if t["set"] not in held
        for pid, text in zip(t["pids"], t["texts"], strict=True)
    ]
    positives = sum(y for *_, y in train)
    print(f"train {len(train)} pairs ({positives:.0f} gold)", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(_model_dir())

    def batch(topic: list[str], texts: list[str]):
        return tokenizer(
            topic, texts, truncation="only_second", max_length=MAX_TOKENS, padding=True, return_tensors="pt"
        )

    model = _cross_encoder()
    # Gold papers are about one in seven pairs: weighted up by the square root of the imbalance.
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(math.sqrt((len(train) - positives) / positives)))

    def loss_of(rows: list[tuple[str, str, float]]):
        logits = model(**batch([r[0] for r in rows], [r[1] for r in rows]))
        return loss_fn(logits, torch.tensor([r[2] for r in rows]))

    t0 = time.time()
    train_loop(model, train, loss_of, epochs, BATCH, LR, random.Random(0))
    model.eval()
    scores = {}
    with torch.no_grad():
        for t in topics:
            if t["set"] in FOLDS[fold]:
                scores[t["id"]] = model(**batch([t["topic"]] * len(t["texts"]), t["texts"])).numpy()
    (work / f"scores_{fold}.pkl").write_bytes(pickle.dumps(scores))
    gold = [pid in t["gold"] for t in topics if t["id"] in scores for pid in t["pids"]]
    rule = [p for t in topics if t["id"] in scores for p in t["prob"]]
    judge = [s for t in topics if t["id"] in scores for s in scores[t["id"]]]
    print(
        f"held-out fold {fold}: AUC rule {roc_auc_score(gold, rule):.3f}, cross-encoder {roc_auc_score(gold, judge):.3f}"
    )
    print(f"done in {time.time() - t0:.0f} s")


def evaluate(work: Path, fold: str, limit: int, cut: float) -> None:
    """Recall / precision per form on the held-out fold: the rule at its cut, the cross-encoder at logit cuts."""
    topics = [t for t in pickle.loads((work / "candidates.pkl").read_bytes()) if t["set"] in FOLDS[fold]]
    scores = pickle.loads((work / f"scores_{fold}.pkl").read_bytes())

    def table(name: str, score_of, at: float) -> None:
        by_form: dict[str, list[tuple[float, float]]] = {}
        for t in topics:
            p = score_of(t)
            chosen = [i for i in np.argsort(-p)[:limit] if p[i] >= at]
            hits = sum(t["pids"][i] in t["gold"] for i in chosen)
            by_form.setdefault(t["form"], []).append((hits / len(t["gold"]), hits / len(chosen) if chosen else 0.0))
        every = [x for v in by_form.values() for x in v]
        forms = " | ".join(
            f"{f} {statistics.mean(r for r, _ in v):.3f} / {statistics.mean(p for _, p in v):.3f}"
            for f, v in sorted(by_form.items())
        )
        print(
            f"{name}: all {statistics.mean(r for r, _ in every):.3f} / {statistics.mean(p for _, p in every):.3f} | {forms}"
        )

    table(f"rule at {cut}", lambda t: t["prob"], cut)
    for at in (-1.0, 0.0):
        table(f"cross-encoder logit >= {at}", lambda t: scores[t["id"]], at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["dump", "fit", "eval"])
    parser.add_argument("fold", nargs="?", choices=sorted(FOLDS), default="C")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--papers", type=int, default=20, help="most papers a summary selects")
    parser.add_argument("--cut", type=float, default=0.40, help="the rule's relevance cut")
    parser.add_argument("--work", type=Path, default=Path("/tmp/topic_judge"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.command == "dump":
        dump(args.work)
    elif args.command == "fit":
        fit(args.work, args.fold, args.epochs)
    else:
        evaluate(args.work, args.fold, args.papers, args.cut)


if __name__ == "__main__":
    main()
