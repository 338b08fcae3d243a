"""Retrieval and refusal figures for one index: `python evals/tune_retrieval.py STORE_DIR`.

Prints hit@1, hit@5 and MRR@10 for BM25, dense and hybrid retrieval, and the
refusal rule's accuracy, on the dev and held-out sets. Used to choose the
chunk size, the fusion mode and the refusal rule (see evals/README.md); build
an index with other settings first, e.g.
`PAPERBOT_CHUNK_SIZE=200 PAPERBOT_CHUNK_OVERLAP=40 PAPERBOT_STORE_DIR=/tmp/s200 paperbot index`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from bot.answer import Engine
from bot.config import Settings
from bot.normalize import GoldIndex


def main(store_dir: str) -> None:
    engine = Engine(Settings(store_dir=store_dir))

    index = GoldIndex(engine.manifest.papers)

    def gold_ids(gold: list[str]) -> set[str]:
        return set(index.resolve_all(gold)[0])

    for name in ["questions", *sorted(path.stem for path in Path("evals").glob("heldout*.jsonl"))]:
        questions = [json.loads(line) for line in open(f"evals/{name}.jsonl")]
        answerable = [q for q in questions if q["type"] != "unanswerable"]
        for kind in ["bm25", "dense", "hybrid"]:
            h1 = h5 = mrr = 0.0
            for q in answerable:
                hits = engine.retriever.search(q["question"], k=10, kind=kind)
                gold = gold_ids(q["gold"])
                ranks = [i for i, h in enumerate(hits) if h.paper.paper_id in gold]
                if ranks:
                    h1, h5, mrr = h1 + (ranks[0] == 0), h5 + (ranks[0] < 5), mrr + 1 / (ranks[0] + 1)
            n = len(answerable)
            print(f"{name:9s} {kind:6s} hit@1 {h1 / n:.3f} hit@5 {h5 / n:.3f} mrr@10 {mrr / n:.3f}")
        refused = {q["id"]: not engine.retrieve_for(q["question"]).answered for q in questions}
        unanswerable = [refused[q["id"]] for q in questions if q["type"] == "unanswerable"]
        false = [refused[q["id"]] for q in answerable]
        print(f"{name:9s} refusal accuracy {np.mean(unanswerable):.3f} false refusals {np.mean(false):.3f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "index/store")
