"""The query adapter: the fit on toy vectors, loading, and that only the dense search reads it."""

from __future__ import annotations

import numpy as np
import pytest

from bot.adapter import SHIPPED_PATH, AdapterError, QueryAdapter, fit, load, loss
from bot.answer import Engine
from bot.config import AdapterSettings
from bot.embedding import DIMENSION
from tests.fast_corpus import FRACTAL_QUESTION, FRACTAL_TITLE


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def rotated_queries(seed: int = 0):
    """Eight papers in 16 dimensions; each query is its paper turned by one fixed rotation, plus noise."""
    rng = np.random.default_rng(seed)
    papers = unit(rng.normal(size=(8, 16)))
    rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    targets = np.repeat(np.arange(8), 6)
    queries = unit(papers[targets] @ rotation + 0.05 * rng.normal(size=(len(targets), 16)))
    return queries, targets, papers


def nearest(queries: np.ndarray, papers: np.ndarray) -> np.ndarray:
    return np.argmax(queries @ papers.T, axis=1)


def test_fit_learns_a_rotation_the_raw_vectors_miss():
    queries, targets, papers = rotated_queries()
    cfg = AdapterSettings(l2=0.001, steps=400, learning_rate=0.01)

    matrix = fit(queries, targets, papers, cfg)

    eye = np.eye(16, dtype=np.float32)
    assert np.mean(nearest(queries, papers) == targets) < 0.5
    assert np.mean(nearest(QueryAdapter(matrix)(queries), papers) == targets) == 1.0
    assert loss(queries, targets, papers, matrix, cfg.scale) < loss(queries, targets, papers, eye, cfg.scale) / 2


def test_a_strong_l2_pull_keeps_the_identity():
    queries, targets, papers = rotated_queries(1)

    matrix = fit(queries, targets, papers, AdapterSettings(l2=1e4, steps=50))

    assert np.abs(matrix - np.eye(16)).max() < 0.01


def test_load_is_off_when_disabled_and_rejects_bad_files(tmp_path):
    assert load(AdapterSettings(enabled=False), DIMENSION) is None
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.eye(3))
    with pytest.raises(AdapterError, match="shape"):
        load(AdapterSettings(path=wrong), DIMENSION)
    garbage = tmp_path / "garbage.npy"
    garbage.write_text("not a matrix")
    with pytest.raises(AdapterError, match="cannot be read"):
        load(AdapterSettings(path=garbage), DIMENSION)
    with pytest.raises(AdapterError, match="cannot be read"):
        load(AdapterSettings(path=tmp_path / "missing.npy"), DIMENSION)


def test_the_shipped_adapter_is_a_small_correction_of_the_identity():
    adapter = load(AdapterSettings(), DIMENSION)

    assert adapter is not None and adapter.matrix.shape == (DIMENSION, DIMENSION)
    assert SHIPPED_PATH.stat().st_size < 1_000_000
    assert 0.1 < np.linalg.norm(adapter.matrix - np.eye(DIMENSION)) < 0.5 * np.sqrt(DIMENSION)


def test_only_the_dense_search_reads_the_adapted_vector(tiny, tmp_path):
    """An adapter that sends the question to another paper moves the dense ranking, not the cosines."""
    plain = Engine(tiny.settings.model_copy(update={"adapter": AdapterSettings(enabled=False)}), store=tiny.store)
    qvec = plain.retriever.embed_query(FRACTAL_QUESTION)
    before = plain.retriever.search(FRACTAL_QUESTION, kind="dense")
    assert before[0].paper.title == FRACTAL_TITLE
    other = before[-1].paper
    target = plain.retriever.paper_vectors([other.paper_id])[0]
    path = tmp_path / "to_other.npy"
    np.save(path, np.outer(qvec, target).astype(np.float32))  # q M = (q . q) target
    moved = Engine(tiny.settings.model_copy(update={"adapter": AdapterSettings(path=path)}), store=tiny.store)

    after = moved.retriever.search(FRACTAL_QUESTION, kind="dense")

    assert after[0].paper.paper_id == other.paper_id
    raw = {h.paper.paper_id: h.similarity for h in before}
    assert after[0].similarity == pytest.approx(raw[other.paper_id], abs=1e-5)
    assert moved.retriever.coverage(FRACTAL_QUESTION, [after[0].paper]) == plain.retriever.coverage(
        FRACTAL_QUESTION, [after[0].paper]
    )
