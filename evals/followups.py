"""Measures extractive mode's follow-up heuristic: `python evals/followups.py [STORE_DIR]`.

`followups.jsonl` holds two kinds of second turns: generic follow-ups that only
make sense with the first question ("What are their limitations?") and
standalone questions asked after an unrelated first one. For each, hit@5 of
the gold paper is reported with the heuristic rewrite and without it; a good
rule lifts the first kind and leaves the second alone. With an LLM configured
(OPENAI_BASE_URL ...) the model's condensed question is scored too, as it
comes and after the check that it kept the follow-up's own words.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bot.answer import Engine
from bot.answerers import LLMAnswerer, condense_heuristic
from bot.config import Settings
from bot.normalize import normalize_title
from bot.schema import Turn


def main(store_dir: str) -> None:
    engine = Engine(Settings(store_dir=store_dir))
    llm = None
    if engine.settings.llm_configured:
        llm = LLMAnswerer(engine.settings, engine.retriever, engine.llm())
    rows = [json.loads(line) for line in open(Path(__file__).parent / "followups.jsonl")]
    tally: dict[str, dict[str, int]] = {}
    for row in rows:
        gold = {normalize_title(g) for g in row["gold"]}
        history = [Turn("user", q) for q in row["history"]]
        queries = {"raw": row["question"], "heuristic": condense_heuristic(row["question"], history, engine.settings)}
        if llm is not None:
            queries["model"] = llm.model_rewrite(row["question"], history)
            queries["guarded"] = llm.condense(row["question"], history)
            print(f"{row['id']} {row['kind']}: {queries['model']!r} -> {queries['guarded']!r}", file=sys.stderr)
        counts = tally.setdefault(row["kind"], {"n": 0, "rewritten": 0})
        counts["n"] += 1
        counts["rewritten"] += queries["heuristic"] != row["question"]
        for key, query in queries.items():
            hits = engine.retriever.search(query, k=5)
            counts[key] = counts.get(key, 0) + any(normalize_title(h.paper.title) in gold for h in hits)
    extra = " hit@5 model rewrite | hit@5 model rewrite, guarded |" if llm is not None else ""
    print("| second turn | n | rewritten by heuristic | hit@5 without | hit@5 with heuristic |" + extra)
    print("| --- | --- | --- | --- | --- |" + (" --- | --- |" if extra else ""))
    for kind, c in tally.items():
        n = c["n"]
        cells = [c["rewritten"], c["raw"], c["heuristic"]] + ([c["model"], c["guarded"]] if extra else [])
        print(f"| {kind} | {n} | " + " | ".join(f"{v / n:.2f}" for v in cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "index/store")
