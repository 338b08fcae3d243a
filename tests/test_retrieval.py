"""The refusal signal on the real corpus: word-piece coverage of a question by the top papers."""

from __future__ import annotations

import numpy as np

from bot.embedding import get_encoder

OPTICAL_FLOW = (
    "Which deep architectures give the most accurate optical flow estimates between consecutive video frames?"
)


def test_one_model_pass_gives_sentence_and_word_piece_vectors():
    encoder = get_encoder()
    texts = ["How can the key-value cache of LLMs be compressed?", "Hi"]
    vectors, pieces = encoder.encode_with_tokens(texts)
    assert np.allclose(vectors, encoder.encode(texts), atol=1e-6)
    # Punctuation and the special tokens are dropped; a split word names its pieces' word.
    assert pieces[0].words == ["how", "can", "the", "key", "value", "cache", "of", "llms", "llms", "be", "compressed"]
    assert len(pieces[0].ids) == len(pieces[0].vectors) == 11
    assert np.allclose(np.linalg.norm(pieces[0].vectors.astype(np.float32), axis=1), 1.0, atol=1e-2)


def test_a_papers_own_sentence_is_covered_and_an_unrelated_one_is_not(engine):
    retriever = engine.retriever
    paper = next(p for p in engine.manifest.papers if p.title == "Deep Sets")
    own = retriever.sentence_vectors(paper)[0][0]
    assert retriever.coverage(own, [paper]) > 0.95
    assert retriever.coverage("What is the best oven temperature for baking sourdough bread?", [paper]) < 0.4
    # The best of several papers counts, and no papers (or no content words) cover nothing.
    other = next(p for p in engine.manifest.papers if p.paper_id != paper.paper_id)
    assert retriever.coverage(own, [other, paper]) == retriever.coverage(own, [paper])
    assert retriever.coverage(own, []) == 0.0
    assert retriever.coverage("What is it?", [paper]) == 0.0


def test_near_topic_question_is_refused_though_its_embedding_is_close(engine):
    # Optical flow is not in the corpus, but "flow", "video" and "frames" are: the whole-question
    # cosine clears the old 0.42 bar, and the word pieces of "optical flow" find no match.
    retrieval = engine.retrieve_for(OPTICAL_FLOW)
    hits, coverage, answered = retrieval.hits, retrieval.coverage, retrieval.answered
    assert max(h.similarity for h in hits) > 0.42
    assert not answered and coverage < engine.settings.refusal_threshold
    answer = engine.ask(OPTICAL_FLOW)
    assert answer.refused and answer.hits and answer.coverage == coverage


def test_paraphrased_question_is_answered(engine):
    # In other words than the abstract's ("schedule-free", "stopping time", "iterate averaging").
    question = "Can an optimizer do without a learning-rate schedule and without knowing in advance how long training will run?"
    retrieval = engine.retrieve_for(question)
    hits, coverage, answered = retrieval.hits, retrieval.coverage, retrieval.answered
    assert answered and "The Road Less Scheduled" in [h.paper.title for h in hits]
    assert coverage >= engine.settings.refusal_threshold and engine.ask(question).coverage == coverage
