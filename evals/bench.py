"""Index and query timings, measured in one run: `python evals/bench.py [--out evals/bench_report.md]`.

Full build vs. the raw embedding time of the same texts (their ratio is the
indexing overhead; the texts are the chunks and, for the derived data, every
abstract's sentences, title and example questions), a no-op re-index, and cold (new process) and
warm (loaded engine) `ask` times, medians over a few runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bot.answer import Engine
from bot.config import Settings
from bot.corpus import load_corpus
from bot.embedding import get_encoder
from bot.indexing import chunk_papers, embed_text, sync
from bot.text import split_sentences

QUESTIONS = [
    "Why do diffusion models hallucinate?",
    "How can sampling from diffusion models be made faster?",
    "Which methods remove the influence of training examples from a trained model?",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("evals/bench_report.md"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # The default collection in a private store: it holds the shipped corpus.
        settings = Settings(store_dir=Path(tmp) / "store")
        started = time.perf_counter()
        build = sync(settings, progress=False)
        build_s = time.perf_counter() - started

        papers, _ = load_corpus([settings.base_sources])
        by_id = {p.paper_id: p for p in papers}
        texts = [embed_text(c, by_id[c.paper_id]) for c in chunk_papers(papers, settings)]
        sentences = [s for p in papers for s in (*split_sentences(p.abstract), p.title, *p.questions)]
        started = time.perf_counter()
        get_encoder().encode(texts, batch_size=settings.embed_batch_size)
        chunks_s = time.perf_counter() - started
        get_encoder().encode(sentences, batch_size=settings.embed_batch_size)
        raw_s = time.perf_counter() - started

        noop = []
        for _ in range(3):
            started = time.perf_counter()
            sync(settings, progress=False)
            noop.append(time.perf_counter() - started)

        env = {
            "PAPERBOT_STORE_DIR": str(settings.store_dir),
            "PATH": str(Path(sys.executable).parent),
        }
        cold = []
        for question in QUESTIONS:
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "bot", "ask", question, "--json"], env=env, check=True, capture_output=True
            )
            cold.append(time.perf_counter() - started)

        engine = Engine(settings)
        engine.ask(QUESTIONS[0])
        warm = []
        for question in QUESTIONS * 3:
            started = time.perf_counter()
            engine.ask(question)
            warm.append(time.perf_counter() - started)

    rows = [
        ("chunks embedded", f"{build.added}"),
        ("full index build (s)", f"{build_s:.1f}"),
        ("raw embedding of the same texts (s)", f"{raw_s:.1f}"),
        ("  of which the chunks (s)", f"{chunks_s:.1f}"),
        ("  chunk embedding + sentence pass in the build (s)", f"{build.embed_seconds + build.sentence_seconds:.1f}"),
        ("build / raw embedding", f"{build_s / raw_s:.2f}"),
        ("no-op re-index, median of 3 (s)", f"{statistics.median(noop):.2f}"),
        ("cold `paperbot ask` (new process), median of 3 (s)", f"{statistics.median(cold):.2f}"),
        ("warm ask (loaded engine), median of 9 (s)", f"{statistics.median(warm):.3f}"),
    ]
    table = "| measure | value |\n| --- | --- |\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)
    args.out.write_text(f"# Index and query timings\n\nMeasured by `python evals/bench.py`.\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
