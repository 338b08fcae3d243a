"""Fit the query adapter (bot/adapter.py) on the library's example questions and write the matrix paperbot ships.

    python evals/train_adapter.py                 # writes bot/data/query_adapter.npy
    python evals/train_adapter.py --check         # refits and compares with the shipped matrix

The training questions are the papers' example questions (`Paper.questions`; for the shipped corpus
index/sources/examples.questions.jsonl). Four helpers wrote them on 2026-11-30 from the shipped
papers' titles and abstracts, running no retrieval: per paper two questions in everyday words
without the paper's terms, one chatty question and one keyword query. (Each also wrote a near miss,
a detail the abstract does not state: evals/near_miss_questions.jsonl, not used here.) Each
question's target is its paper's vector, the mean of its chunk vectors. No eval set enters the fit.

The shipped matrix is fitted on that file alone (``--questions``): refitted with the everyday-words
lines of index/sources/everyday.questions.jsonl as well, it moved nothing on the dev sets (style sets
lookup P 0.86 either way, multi R 0.77 -> 0.76; evals/README.md "Everyday-words example lines; several-paper questions").
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.adapter import SHIPPED_PATH, fit, loss  # noqa: E402
from bot.answer import Engine  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.corpus import attach_questions, read_questions  # noqa: E402
from bot.latex import search_text  # noqa: E402

# Refits on another machine's BLAS differ in the last bits; the matrix's entries are O(1).
CHECK_TOLERANCE = 1e-3


SHIPPED_QUESTIONS = Path(__file__).resolve().parent.parent / "index" / "sources" / "examples.questions.jsonl"


def training_data(engine: Engine, questions: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The vectors of the example questions in ``questions``, each one's paper row, and the library's paper vectors."""
    by_key, problems = read_questions(questions, questions.name)
    if problems:
        raise SystemExit(f"{problems[0]}")
    library = [replace(engine.retriever.paper(paper_id), questions=[]) for paper_id in engine.retriever.papers]
    papers, _ = attach_questions(library, by_key)
    pairs = [(question, row) for row, paper in enumerate(papers) for question in paper.questions]
    vectors = engine.retriever.encode([search_text(question) for question, _ in pairs])
    targets = np.array([row for _, row in pairs])
    return vectors, targets, engine.retriever.paper_vectors([p.paper_id for p in papers])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SHIPPED_PATH)
    parser.add_argument("--check", action="store_true", help="compare a refit with --out instead of writing it")
    parser.add_argument("--questions", type=Path, default=SHIPPED_QUESTIONS, help="the example questions to fit on")
    args = parser.parse_args()
    settings = Settings()
    engine = Engine(settings.model_copy(update={"adapter": settings.adapter.model_copy(update={"enabled": False})}))
    cfg = settings.adapter
    queries, targets, papers = training_data(engine, args.questions)
    if not len(targets):
        print("the library's papers carry no example questions", file=sys.stderr)
        return 1
    print(f"{len(targets)} example questions of {len(set(targets.tolist()))} papers")
    matrix = fit(queries, targets, papers, cfg)
    identity = np.eye(queries.shape[1], dtype=np.float32)
    before, after = (loss(queries, targets, papers, m, cfg.scale) for m in (identity, matrix))
    print(f"training loss {before:.3f} -> {after:.3f}; |M - I| = {np.linalg.norm(matrix - identity):.3f}")
    if args.check:
        gap = float(np.abs(np.load(args.out) - matrix).max())
        print(f"largest difference from {args.out}: {gap:.2e}")
        return 0 if gap <= CHECK_TOLERANCE else 1
    np.save(args.out, matrix)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
