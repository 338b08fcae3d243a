"""Fit the query adapter (bot/adapter.py) on the training questions and write the matrix paperbot ships.

    python evals/train_adapter.py                 # writes bot/data/query_adapter.npy
    python evals/train_adapter.py --check         # refits and compares with the shipped matrix

The training questions (evals/adapter_queries.jsonl) were written on 2026-11-30 by four helpers that
read the shipped papers' titles and abstracts and ran no retrieval: per paper two questions in
everyday words without the paper's terms, one chatty question, one keyword query and one near miss
(a detail the abstract does not state; not used for fitting). Each question's target is its paper's
vector (the mean of its chunk vectors) in the shipped library. The blind test sets never enter the fit.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.adapter import SHIPPED_PATH, fit, loss  # noqa: E402
from bot.answer import Engine  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.latex import search_text  # noqa: E402

QUERIES = Path(__file__).resolve().parent / "adapter_queries.jsonl"
# Refits on another machine's BLAS differ in the last bits; the shipped matrix's entries are O(1).
CHECK_TOLERANCE = 1e-3


def training_data(engine: Engine, path: Path, styles: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Question vectors, target rows, the library's paper vectors, and how many questions had no paper."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    papers = list(engine.retriever.papers)
    row_of = {paper_id: i for i, paper_id in enumerate(papers)}
    kept = [r for r in rows if r["style"] in styles and r["paper_id"] in row_of]
    missing = sum(1 for r in rows if r["style"] in styles and r["paper_id"] not in row_of)
    vectors = engine.retriever.encode([search_text(r["query"]) for r in kept])
    targets = np.array([row_of[r["paper_id"]] for r in kept])
    return vectors, targets, engine.retriever.paper_vectors(papers), missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=Path, default=QUERIES)
    parser.add_argument("--out", type=Path, default=SHIPPED_PATH)
    parser.add_argument("--check", action="store_true", help="compare a refit with --out instead of writing it")
    args = parser.parse_args()
    settings = Settings()
    engine = Engine(settings.model_copy(update={"adapter": settings.adapter.model_copy(update={"enabled": False})}))
    cfg = settings.adapter
    queries, targets, papers, missing = training_data(engine, args.queries, cfg.styles)
    print(
        f"{len(targets)} training questions ({', '.join(cfg.styles)}) over {len(set(targets))} papers; {missing} skipped"
    )
    matrix = fit(queries, targets, papers, cfg)
    identity = np.eye(queries.shape[1], dtype=np.float32)
    print(
        f"training loss {loss(queries, targets, papers, identity, cfg.scale):.3f} -> "
        f"{loss(queries, targets, papers, matrix, cfg.scale):.3f}; |M - I| = {np.linalg.norm(matrix - identity):.3f}"
    )
    if args.check:
        shipped = np.load(args.out)
        gap = float(np.abs(shipped - matrix).max())
        print(f"largest difference from {args.out}: {gap:.2e}")
        return 0 if gap <= CHECK_TOLERANCE else 1
    np.save(args.out, matrix)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
