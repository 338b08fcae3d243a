"""Cache the reader's yes-probabilities for the top retrieved papers of a question set (issue 14).

    PAPERBOT_READER__MODEL_PATH=/path/to/model.gguf \\
        python evals/reader_scores.py evals/styles_dev.jsonl --out evals/reader_cache/qwen15b_styles_dev.jsonl

One line per question: the coverage rule's decision (coverage, answered), the top papers' ids, and
the reader's P(yes) for each of the first ``--candidates`` papers (their title and the abstract
sentences closest to the question, as the engine reads them), with the seconds it took. Lines
already in the output are kept, so an interrupted run resumes; `evals/tune_reader.py` scores rules
on the cache without running the model again.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from bot.answer import Engine
from bot.config import load_settings
from bot.reader import build_reader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--candidates", type=int, default=None, help="papers read per question (setting)")
    parser.add_argument("--limit", type=int, default=None, help="questions at most (a shuffled sample)")
    args = parser.parse_args()

    settings = load_settings()
    engine = Engine(settings)
    reader = build_reader(settings.reader, settings.onnx_threads, settings.onnx_spinning)
    n = args.candidates or settings.reader.candidates
    rows = [json.loads(line) for line in args.dataset.read_text(encoding="utf-8").splitlines() if line.strip()]
    # Shuffled so that a partial cache is a fair sample of the styles and kinds.
    random.Random(14).shuffle(rows)
    rows = rows[: args.limit] if args.limit else rows
    done = set()
    if args.out.exists():
        done = {json.loads(line)["id"] for line in args.out.read_text(encoding="utf-8").splitlines() if line.strip()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a", encoding="utf-8") as out:
        for i, row in enumerate(rows, 1):
            if row["id"] in done:
                continue
            retrieval = engine.retrieve_for(row["question"])
            passages = engine.passages(row["question"], retrieval, n)
            t0 = time.perf_counter()
            yes = reader.judge(row["question"], passages)
            seconds = time.perf_counter() - t0
            record = {
                "id": row["id"],
                "question": row["question"],
                "coverage": round(retrieval.coverage, 4),
                "answered": retrieval.answered,
                "papers": [h.paper.paper_id for h in retrieval.hits[: settings.top_k]],
                "titles": [h.paper.title for h in retrieval.hits[:n]],
                "yes": [round(p, 4) for p in yes],
                "seconds": round(seconds, 2),
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            print(f"{i}/{len(rows)} {row['id']} {seconds:.1f}s yes={record['yes']}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
