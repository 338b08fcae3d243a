"""Measures extractive mode's follow-up heuristic: `python evals/followups.py [STORE_DIR]`.

`followups.jsonl` holds two kinds of second turns: generic follow-ups that only
make sense with the first question ("What are their limitations?") and
standalone questions asked after an unrelated first one. For each, hit@5 of
the gold paper is reported with the heuristic rewrite and without it; a good
rule lifts the first kind and leaves the second alone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bot.answer import Engine, Turn, condense_heuristic
from bot.config import Settings
from bot.corpus import normalize_title


def main(store_dir: str) -> None:
    engine = Engine(Settings(store_dir=store_dir))
    rows = [json.loads(line) for line in open(Path(__file__).parent / "followups.jsonl")]
    tally: dict[str, dict[str, int]] = {}
    for row in rows:
        gold = {normalize_title(g) for g in row["gold"]}
        history = [Turn("user", q) for q in row["history"]]
        rewritten = condense_heuristic(row["question"], history)
        counts = tally.setdefault(row["kind"], {"n": 0, "raw": 0, "heuristic": 0, "rewritten": 0})
        counts["n"] += 1
        counts["rewritten"] += rewritten != row["question"]
        for key, query in (("raw", row["question"]), ("heuristic", rewritten)):
            hits = engine.retriever.search(query, k=5)
            counts[key] += any(normalize_title(h.paper.title) in gold for h in hits)
    print("| second turn | n | rewritten | hit@5 without | hit@5 with heuristic |")
    print("| --- | --- | --- | --- | --- |")
    for kind, c in tally.items():
        n = c["n"]
        print(f"| {kind} | {n} | {c['rewritten'] / n:.2f} | {c['raw'] / n:.2f} | {c['heuristic'] / n:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "index/store")
