"""Embedding throughput: paperbot's encoder against a bare onnxruntime session, in one run.

    python evals/bench_embed.py [--texts 400]

On the first ``--texts`` chunk texts of the shipped store (as the index embeds
them: title and chunk), measures chunks/s of

- the bare model: the same ONNX file, pre-tokenized, length-sorted batches,
  only ``session.run`` timed (the hardware's limit for this model and thread count);
- ``get_encoder().encode(texts, batch_size=b)`` (what the index build calls);
- ``encode_with_tokens`` (what the sentence pass of the derived data calls).

Vectors do not depend on the batch size (checked here: the largest difference is printed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import Settings  # noqa: E402
from bot.embedding import get_encoder  # noqa: E402
from bot.indexing import embed_text, open_index  # noqa: E402

BATCHES = (8, 16, 32)


def bare(encoder, texts: list[str], batch: int) -> float:
    """Seconds of session.run alone over length-sorted, padded batches."""
    encodings = encoder.tokenizer.encode_batch(sorted(texts, key=len))
    total = 0.0
    for start in range(0, len(encodings), batch):
        part = encodings[start : start + batch]
        width = max(len(e.ids) for e in part)
        ids = np.zeros((len(part), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, enc in enumerate(part):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        t = time.perf_counter()
        encoder.session.run(
            ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )
        total += time.perf_counter() - t
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=400)
    args = parser.parse_args()
    settings = Settings()
    _, manifest = open_index(settings, progress=False)
    by_id = {p.paper_id: p for p in manifest.papers}
    texts = [embed_text(c, by_id[c.paper_id]) for c in manifest.chunks[: args.texts]]
    encoder = get_encoder()
    pieces = np.mean([len(ids) for ids in encoder.piece_ids(texts)])
    encoder.encode(texts[:8])  # warm-up
    rows = []
    reference = None
    for batch in BATCHES:
        bare_s = bare(encoder, texts, batch)
        t = time.perf_counter()
        vectors = encoder.encode(texts, batch_size=batch)
        encode_s = time.perf_counter() - t
        t = time.perf_counter()
        encoder.encode_with_tokens(texts, batch_size=batch)
        tokens_s = time.perf_counter() - t
        reference = vectors if reference is None else reference
        rows.append((batch, bare_s, encode_s, tokens_s, float(np.abs(vectors - reference).max())))
    print(
        f"{len(texts)} chunk texts, {pieces:.0f} word pieces on average; {settings.onnx_threads} ONNX threads; "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| batch | bare model (chunks/s) | encode (chunks/s) | encode / bare time | with word pieces (chunks/s) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    n = len(texts)
    for batch, bare_s, encode_s, tokens_s, diff in rows:
        print(
            f"| {batch} | {n / bare_s:.1f} | {n / encode_s:.1f} | {encode_s / bare_s:.2f} | {n / tokens_s:.1f} |"
            + (f" (vectors differ by {diff:.1e})" if diff else "")
        )


if __name__ == "__main__":
    main()
