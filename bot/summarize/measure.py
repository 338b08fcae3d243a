"""Scoring a summary against gold papers (used by evals/summary_eval.py and the tests)."""

from __future__ import annotations

from bot.answer import Engine
from bot.normalize import GoldIndex
from bot.summarize.types import Summary


# -- measuring -------------------------------------------------------------------
def summary_recall(summary: Summary, gold: list[str], engine: Engine) -> dict:
    """Share of gold papers the summary cites (recall) and of cited papers in gold (precision)."""
    found, missing = GoldIndex(engine.manifest.papers).resolve_all(gold)
    gold_ids = set(found)
    cited = {r.paper_id for r in summary.references}
    hits = len(cited & gold_ids)
    return {
        "recall": hits / len(gold_ids) if gold_ids else (1.0 if not cited else 0.0),
        "precision": hits / len(cited) if cited else (1.0 if not gold_ids else 0.0),
        "cited": len(cited),
        "gold": len(gold_ids),
        "unresolved_gold": missing,
    }
