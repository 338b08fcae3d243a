"""How the example questions' settings were chosen: the coverage offset and the search leg's weight.

    python evals/tune_questions.py            # both sweeps over the dev sets (about 3 min)

1. ``question_coverage_offset``: each question's coverage with the offset at 0, swept against
   the refusal threshold (0.53). The shipped 0.05 was chosen before the search's question leg
   existed, as the largest offset with at most 4% of the answerable questions refused (pooled);
   with the leg that rule gives 0.07, which refuses 4.6% of the style sets' answerable questions
   (2.6% at 0.05) for 0.647 of their unanswerable ones (0.607): evals/README.md.
2. ``question_weight``: hybrid hit@5 per style and recall@5 for weights of the third leg.

Dev sets only: the seven older sets, styles_dev and styles1-4. The blind styles5 never enters.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bot.answer import Engine  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.eval.dataset import load_dataset, resolve_gold  # noqa: E402

OLDER = ("questions", "heldout", "heldout2", "heldout3", "heldout4", "heldout5", "heldout6")
STYLES = ("styles_dev", "styles1", "styles2", "styles3", "styles4")
MAX_FALSE_REFUSALS = 0.04


def questions(engine: Engine):
    for name in OLDER + STYLES:
        path = HERE / f"{name}.jsonl"
        rows = load_dataset(path)
        gold = resolve_gold(rows, engine.manifest.papers, path)
        for row in rows:
            yield name, row, gold[row.id]


def offset_sweep(settings: Settings) -> None:
    engine = Engine(settings.model_copy(update={"question_coverage_offset": 0.0}))
    seen = [(name, bool(gold), engine.retrieve_for(row.question).coverage) for name, row, gold in questions(engine)]
    print("offset | answerable refused (pooled / styles / older) | unanswerable refused (pooled / styles / older)")
    chosen = 0.0
    for offset in np.arange(0.0, 0.1001, 0.01):
        cut = settings.refusal_threshold + offset
        cells = []
        for answerable in (True, False):
            for group in (OLDER + STYLES, STYLES, OLDER):
                refused = [cov < cut for name, a, cov in seen if a == answerable and name in group]
                cells.append(f"{np.mean(refused):.3f}")
        print(f"{offset:.2f} | {' / '.join(cells[:3])} | {' / '.join(cells[3:])}")
        if float(cells[0]) <= MAX_FALSE_REFUSALS:
            chosen = offset
    print(f"largest offset with at most {MAX_FALSE_REFUSALS:.0%} answerable refused (pooled): {chosen:.2f}")


def weight_sweep(settings: Settings, weights=(0.0, 0.25, 0.5, 1.0)) -> None:
    for weight in weights:
        engine = Engine(settings.model_copy(update={"question_weight": weight}))
        hits, recall = defaultdict(list), []
        for _name, row, gold in questions(engine):
            if not gold:
                continue
            found = {h.paper.paper_id for h in engine.search(row.question, k=5)} & set(gold)
            hits[row.style or "older"].append(bool(found))
            recall.append(len(found) / len(gold))
        cells = " ".join(f"{style} {np.mean(v):.3f}" for style, v in sorted(hits.items()))
        print(f"question_weight {weight}: hit@5 {cells}; recall@5 {np.mean(recall):.3f}")


if __name__ == "__main__":
    base = Settings()
    offset_sweep(base)
    weight_sweep(base)
