"""The fast layer's corpus: nine real papers (tests/fixtures/tiny.jsonl) in a private store."""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "tiny.jsonl"
FRACTAL_TITLE = "The boundary of neural network trainability is fractal"
FRACTAL_QUESTION = "Is the boundary between trainable and untrainable neural network hyperparameters fractal?"
OFF_TOPIC = "Which bananas grow best in humid tropical climates?"


def tiny_settings(root: Path, **update):
    """Settings over a copy of the fixture corpus, with a store under ``root``.

    The reader is off unless ``update`` switches it on: the fast layer's answers come from the
    coverage rule, and tests/test_reader_fast.py injects scripted readers or loads the shipped one.
    """
    from bot.config import ReaderSettings, Settings

    update.setdefault("reader", ReaderSettings(enabled=False))

    sources = root / "sources"
    sources.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURE, sources / FIXTURE.name)
    return Settings(sources_dir=sources, store_dir=root / "store", collection="tiny", **update)
