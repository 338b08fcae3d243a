"""Fast checks of the derived data's array code: the BM25 build and the token-id gathers."""

from __future__ import annotations

import bm25s
import numpy as np
import pytest

from bot import derived
from bot.corpus import load_corpus
from bot.derived import TokenIds

from .fast_corpus import FIXTURE

PAPERS, _ = load_corpus([FIXTURE])


def _stock(docs: list[list[int]], vocab: dict[str, int]) -> dict:
    index = bm25s.BM25()
    index.index(bm25s.tokenization.Tokenized(ids=docs, vocab=dict(vocab)), show_progress=False)
    return index.scores


def _tokenized() -> tuple[list[list[int]], dict[str, int]]:
    words = derived.bm25_tokenize([f"{p.title}\n{p.abstract}" for p in PAPERS], derived.english_stemmer(), False)
    vocab: dict[str, int] = {}
    docs = [[vocab.setdefault(w, len(vocab)) for w in doc] for doc in words]
    vocab["never-used"] = len(vocab)  # a word no document holds any more (its chunk was removed)
    return docs + [[]], vocab  # and an empty document


@pytest.mark.parametrize("source", ["corpus", "random"])
def test_array_bm25_build_equals_bm25s_bit_for_bit(source: str):
    if source == "corpus":
        docs, vocab = _tokenized()
    else:
        rng = np.random.default_rng(3)
        vocab = {f"w{i}": i for i in range(300)}
        docs = [rng.integers(0, 300, size=rng.integers(0, 60)).tolist() for _ in range(500)]
    ours = derived.bm25_index(TokenIds.of([np.array(d, np.int32) for d in docs]), vocab)
    stock = _stock(docs, vocab)
    assert ours.scores["num_docs"] == stock["num_docs"]
    for name in ("data", "indices", "indptr"):
        assert ours.scores[name].dtype == stock[name].dtype
        np.testing.assert_array_equal(ours.scores[name], stock[name])
    query = [w for w in list(vocab)[:5]]
    np.testing.assert_array_equal(ours.get_scores(query), bm25s.BM25.get_scores(ours, query))


def test_token_ids_take_and_concat_keep_each_document():
    docs = [np.array(d, np.int32) for d in ([1, 2, 3], [], [4], [5, 6])]
    flat = TokenIds.of(docs)
    both = TokenIds.concat([flat, TokenIds.of([np.array([7, 8], np.int32)])])
    taken = both.take(np.array([4, 0, 1, 3, 3]))
    got = [taken.ids[a:b].tolist() for a, b in zip(taken.offsets[:-1], taken.offsets[1:], strict=True)]
    assert got == [[7, 8], [1, 2, 3], [], [5, 6], [5, 6]]
    assert taken.ids.dtype == np.int32 and len(taken) == 5


def test_manifest_parts_are_the_json_of_their_papers_and_chunks():
    """Parts are assembled from records serialized once; each must equal the plain JSON of its content."""
    import orjson

    from bot.indexing import Manifest
    from bot.schema import Chunk

    chunks = [
        Chunk(f"c{i}-{j}", p.paper_id, f"text {j} of {p.title}", j) for i, p in enumerate(PAPERS) for j in range(2)
    ]
    manifest = Manifest(list(PAPERS), chunks, {"entries": len(PAPERS)}, chunking={"chunk_size": 160}, generation=3)
    encoded = manifest.encode(part_papers=3)
    assert len(encoded.parts) > 1
    for body in encoded.parts.values():
        data = orjson.loads(body)
        assert body == orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    decoded = Manifest.decode(encoded.head, encoded.parts, encoded.key)
    assert list(decoded.papers) == list(PAPERS) and list(decoded.chunks) == chunks


def test_splitting_with_worked_out_sentences_gives_the_same_chunks():
    from bot.config import Settings
    from bot.indexing import splitter

    settings = Settings()
    run_on = "one long sentence without a full stop, " * 40  # longer than a chunk: split below sentences
    texts = [p.abstract for p in PAPERS] + [run_on + "and then it ends.", "Short. " * 3]
    plain, prepared = splitter(settings), splitter(settings, texts)
    for text in texts:
        assert prepared.split_text(text) == plain.split_text(text)
    assert prepared.split_text("A text it was not told about. It still splits.") == plain.split_text(
        "A text it was not told about. It still splits."
    )


@pytest.mark.parametrize("title", [None, "", "  Spaced title  "])
def test_embed_text_is_the_nodes_embedding_content(title):
    from llama_index.core.schema import MetadataMode

    from bot.indexing import embed_text, to_node
    from bot.schema import Chunk, Paper

    papers = list(PAPERS) if title is None else [Paper("p:x", title, "An abstract.")]
    for paper in papers:
        chunk = Chunk("c", paper.paper_id, paper.abstract[:200], 0)
        assert embed_text(chunk, paper) == to_node(chunk, paper).get_content(metadata_mode=MetadataMode.EMBED)
