"""The derived data's format: the manifest table, stored manifest parts, incremental BM25, the upgrade path.

End-to-end with the real model and Chroma (marked slow): each test indexes a few real papers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bot import derived
from bot.config import Settings
from bot.corpus import load_corpus
from bot.indexing import MANIFEST_ID, MANIFEST_KEY_ID, MANIFEST_PART_PREFIX, Store, open_index, sync
from bot.schema import Chunk

from .conftest import SOURCES, library_settings, write_jsonl

pytestmark = pytest.mark.slow

REAL_PAPERS, _ = load_corpus([SOURCES])
QUESTIONS = ["graph neural networks", "policy optimization for reinforcement learning", "diffusion models"]


def searches(settings: Settings) -> list[list[tuple[str, float]]]:
    from bot.answer import Engine

    engine = Engine(settings)
    return [[(h.paper.paper_id, round(h.score, 6)) for h in engine.search(q, k=5)] for q in QUESTIONS]


def test_table_holds_the_manifest_and_parts_are_reused(tmp_path: Path):
    settings = library_settings(tmp_path, "derived", manifest_part_papers=3)
    write_jsonl(settings.sources_dir / "a.jsonl", REAL_PAPERS[:12])
    first = sync(settings, progress=False).manifest
    store = Store(settings)
    loaded = store.load_manifest()
    assert loaded.table is not None  # read from the derived table, not parsed from Chroma
    assert list(loaded.papers) == list(first.papers) and list(loaded.chunks) == list(first.chunks)
    assert loaded.stats() == first.stats()
    parts_before = {i for i in store.meta.get(include=[])["ids"] if i.startswith(MANIFEST_PART_PREFIX)}
    assert len(parts_before) > 1

    # Papers added in a second file: the first file's parts stay, new ones hold the new papers.
    write_jsonl(settings.sources_dir / "b.jsonl", REAL_PAPERS[12:16])
    second = sync(settings, progress=False).manifest
    parts_after = {i for i in store.meta.get(include=[])["ids"] if i.startswith(MANIFEST_PART_PREFIX)}
    assert len(parts_before & parts_after) >= len(parts_before) - 2

    # The parts in Chroma are the source of truth: without the derived data the same manifest comes back.
    shutil.rmtree(derived.derived_root(settings))
    again = Store(settings).load_manifest()
    assert again.table is None and again.key == second.key
    assert list(again.papers) == list(second.papers) and list(again.chunks) == list(second.chunks)


def test_incremental_bm25_equals_a_full_build(tmp_path: Path):
    settings = library_settings(tmp_path, "derived")
    write_jsonl(settings.sources_dir / "a.jsonl", REAL_PAPERS[:20])
    sync(settings, progress=False)
    write_jsonl(settings.sources_dir / "b.jsonl", REAL_PAPERS[20:30])
    write_jsonl(settings.sources_dir / "a.jsonl", REAL_PAPERS[2:20])  # two papers gone
    manifest = sync(settings, progress=False).manifest
    root = derived.derived_root(settings)
    incremental = derived.Derived(root, manifest.key)

    # The same generation built from nothing: every chunk tokenized in one go.
    fresh = tmp_path / "fresh"
    shutil.copytree(root, fresh)
    shutil.rmtree(derived.generation_dir(fresh, manifest.key))
    store = Store(settings)
    derived.build(
        fresh,
        manifest.key,
        manifest.head(),
        manifest.papers,
        manifest.chunks,
        chunk_text=lambda c: _embed_text(c, manifest),
        chunk_vectors=store.embeddings,
        encoder=None,  # type: ignore[arg-type]  (every paper's data is in the copied segments)
        previous=None,
        pieces_of=lambda papers: [incremental.pieces(_row(manifest, p.paper_id)) for p in papers],
    )
    full = derived.Derived(fresh, manifest.key)
    stemmer = derived.english_stemmer()
    for question in QUESTIONS:
        words = derived.bm25_tokenize([question], stemmer, return_ids=False)[0]
        a = incremental.bm25().get_scores(words)
        b = full.bm25().get_scores(words)
        np.testing.assert_allclose(a, b, rtol=1e-5)


def _row(manifest, paper_id: str) -> int:
    return next(i for i, p in enumerate(manifest.papers) if p.paper_id == paper_id)


def _embed_text(chunk, manifest) -> str:
    from bot.indexing import embed_text

    return embed_text(chunk, manifest.papers[_row(manifest, chunk.paper_id)])


def test_a_store_of_the_previous_format_is_upgraded_on_open(tmp_path: Path):
    """A version-1 generation and a one-document manifest (what paperbot wrote before) keep working."""
    settings = library_settings(tmp_path, "derived")
    write_jsonl(settings.sources_dir / "a.jsonl", REAL_PAPERS[:10])
    manifest = sync(settings, progress=False).manifest
    expected = searches(settings)
    root = derived.derived_root(settings)

    # Rewrite the store as the previous format left it: the manifest as one document whose sha1 is
    # its key, a version-1 generation named gen-<key> (chunk ids in meta.json, no table, no tokens).
    store = Store(settings)
    full = store.load_manifest()
    document = full.to_json()
    key = derived.manifest_key(document)
    for name in [i for i in store.meta.get(include=[])["ids"] if i.startswith(MANIFEST_PART_PREFIX)]:
        store.meta.delete(ids=[name])
    store.meta.upsert(ids=[MANIFEST_ID, MANIFEST_KEY_ID], documents=[document, key], embeddings=[[0.0], [0.0]])
    old = derived.generation_dir(root, key, version=1)
    derived.generation_dir(root, manifest.key).rename(old)
    meta = json.loads((old / "meta.json").read_text())
    meta |= {"version": 1, "key": key, "chunk_ids": [c.chunk_id for c in full.chunks]}
    (old / "meta.json").write_text(json.dumps(meta))
    shutil.rmtree(old / "table")
    shutil.rmtree(old / "bm25_tokens")
    segments = sorted(p.name for p in root.glob("seg-*"))

    _, opened = open_index(settings, progress=False)
    assert derived.Derived.exists(root, key) and opened.key == key
    assert sorted(p.name for p in root.glob("seg-*")) == segments  # sentences were not encoded again
    assert searches(settings) == expected

    # The next index run moves the manifest to parts and removes the old generation.
    write_jsonl(settings.sources_dir / "b.jsonl", REAL_PAPERS[10:12])
    sync(settings, progress=False)
    assert not old.exists()
    assert Store(settings).load_manifest().table is not None


def test_an_index_run_keeps_its_latex_conversions_for_the_next(tmp_path: Path):
    from bot import latex

    settings = library_settings(tmp_path, "derived")
    marked = {"title": "A \\emph{marked} title", "abstract": REAL_PAPERS[0].abstract + " With $\\alpha$ markup."}
    (settings.sources_dir / "a.jsonl").write_text(json.dumps(marked) + "\n")
    manifest = sync(settings, progress=False).manifest
    kept = derived.Derived(derived.derived_root(settings), manifest.key).conversions(latex.conversion_version())
    assert kept.get(marked["title"]) == "A marked title"
    assert any(display.endswith("With α markup.") for display in kept.values())
    # Made by other rules (another pylatexenc, changed rules), they are not used.
    assert derived.Derived(derived.derived_root(settings), manifest.key).conversions("0-other") == {}


def test_stored_ids_come_from_the_manifest_unless_chroma_holds_more(tmp_path: Path, monkeypatch):
    settings = library_settings(tmp_path, "derived")
    write_jsonl(settings.sources_dir / "a.jsonl", REAL_PAPERS[:6])
    manifest = sync(settings, progress=False).manifest
    store = Store(settings)
    listed = store.chunk_ids()
    assert listed == set(manifest.chunk_ids())
    with monkeypatch.context() as patched:  # the counts agree: no listing
        patched.setattr(Store, "chunk_ids", lambda self: pytest.fail("listed every id"))
        assert store.stored_ids(manifest) == listed
    # A killed build's leftover: Chroma holds one chunk more than the manifest names, so all are listed.
    store.put_chunks([Chunk("stray", "p:x", "text", 0)], np.ones((1, 384), np.float32), 99)
    assert store.stored_ids(manifest) == listed | {"stray"}
