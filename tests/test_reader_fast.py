"""The reader's part in the answer/refuse decision, with a scripted reader over the nine-paper index."""

from __future__ import annotations

import math

import pytest

from bot import reader as reader_module
from bot.answer import Engine, judged_score
from bot.config import ReaderSettings
from bot.embedding import ModelIntegrityError
from bot.reader import CrossEncoderReader, Passage, ReaderUnavailable, build_reader, check_reader
from bot.schema import REFUSAL
from tests.fast_corpus import FRACTAL_QUESTION, FRACTAL_TITLE, OFF_TOPIC
from tests.scripted_reader import ScriptedReader


def reader_engine(tiny, reader: ScriptedReader, refusal_threshold: float | None = None, **update) -> Engine:
    # One scripted verdict per question: the reader's pick of the top paper's sentence is tested on its own.
    cfg = tiny.settings.reader.model_copy(
        update={"enabled": True, "quote_sentences": 0, "detail_quote_sentences": 0, **update}
    )
    changes = {"reader": cfg}
    if refusal_threshold is not None:
        changes["refusal_threshold"] = refusal_threshold
    return Engine(tiny.settings.model_copy(update=changes), store=tiny.store, reader=reader)


# A fused-score lead no first paper has: the reader's order alone decides (rerank_keep_lead).
NO_LEAD = 1e9
# A coverage threshold no question reaches: the coverage rule refuses the on-topic question.
REFUSE_ALL = 1.01


def test_reader_off_is_never_asked(tiny):
    # OFF_TOPIC: refused by coverage, so neither side of the reader's rule would apply when off.
    reader = ScriptedReader()
    engine = Engine(tiny.settings, store=tiny.store, reader=reader)

    engine.ask(FRACTAL_QUESTION, mode="extractive")
    engine.ask(OFF_TOPIC, mode="extractive")

    assert reader.calls == []


def test_reader_reads_titles_and_closest_sentences_of_the_top_papers(tiny):
    reader = ScriptedReader([0.9, 0.1, 0.1])
    engine = reader_engine(tiny, reader, candidates=3, sentences=2)

    engine.ask(FRACTAL_QUESTION, mode="extractive")

    question, passages = reader.calls[0]
    assert question == FRACTAL_QUESTION and len(passages) == 3
    retrieval = engine.retrieve_for(FRACTAL_QUESTION)
    top = retrieval.hits[0].paper
    closest = engine.retriever.closest_sentences(top, retrieval.query_vector, 2)
    assert passages[0].title == top.title and passages[0].text == " ".join(closest)
    assert len(closest) == 2 and all(s in top.abstract for s in closest)


def test_judged_score_adds_the_weighted_log_odds_and_stays_finite():
    cfg = ReaderSettings(reader_weight=0.1)
    assert judged_score(0.5, 0.5, cfg) == pytest.approx(0.5)
    assert judged_score(0.5, 0.8, cfg) == pytest.approx(0.5 + 0.1 * math.log(4))
    assert judged_score(0.5, 0.0, cfg) == pytest.approx(0.5 - 0.1 * math.log((1 - 1e-4) / 1e-4))
    assert judged_score(0.5, 1.0, cfg) == pytest.approx(0.5 + 0.1 * math.log((1 - 1e-4) / 1e-4))


def _coverage(tiny) -> float:
    return tiny.retrieve_for(FRACTAL_QUESTION).coverage


def test_refused_question_is_answered_when_the_reader_says_a_paper_answers(tiny):
    # Answer when the best P(yes) has log-odds >= 1 (P >= 0.73): 0.8 passes.
    reader = ScriptedReader([0.8, 0.1, 0.2])
    threshold = _coverage(tiny) + 0.1
    engine = reader_engine(tiny, reader, REFUSE_ALL, reader_weight=0.1, answer_threshold=threshold)
    assert not engine.retrieve_for(FRACTAL_QUESTION).answered

    answer = engine.ask(FRACTAL_QUESTION, mode="extractive")

    assert not answer.refused and answer.confidence == "low"
    assert answer.citations[0].title == FRACTAL_TITLE


def test_refused_question_stays_refused_when_the_reader_says_no(tiny):
    threshold = _coverage(tiny) + 0.1
    engine = reader_engine(
        tiny, ScriptedReader([0.2, 0.1, 0.3]), REFUSE_ALL, reader_weight=0.1, answer_threshold=threshold
    )

    answer = engine.ask(FRACTAL_QUESTION, mode="extractive")

    assert answer.refused and answer.answer == REFUSAL and not answer.citations and answer.hits


def test_answered_question_is_refused_when_the_reader_says_no_to_every_paper(tiny):
    # Answer when the best P(yes) reaches 0.5 (log-odds 0): 0.3 does not.
    engine = reader_engine(tiny, ScriptedReader([0.2, 0.1, 0.3]), answer_threshold=_coverage(tiny))
    assert engine.retrieve_for(FRACTAL_QUESTION).answered

    answer = engine.ask(FRACTAL_QUESTION, mode="extractive")

    assert answer.refused and answer.answer == REFUSAL and not answer.citations


def test_answered_question_stands_when_a_read_paper_answers(tiny):
    engine = reader_engine(tiny, ScriptedReader([0.6, 0.1, 0.3]), answer_threshold=_coverage(tiny))

    answer = engine.ask(FRACTAL_QUESTION, mode="extractive")

    assert not answer.refused and answer.confidence == "high" and answer.citations[0].title == FRACTAL_TITLE


@pytest.mark.parametrize(("confident_yes", "confidence"), [(0.05, "low"), (0.0, "high")])
def test_an_answer_the_reader_doubts_on_every_read_paper_is_shown_low(tiny, confident_yes, confidence):
    # Every read paper below confident_yes (0.04 at most); a threshold the judged score passes keeps it answered.
    engine = reader_engine(tiny, ScriptedReader([0.04, 0.01, 0.02]), answer_threshold=0.0, confident_yes=confident_yes)
    assert _coverage(tiny) >= max(tiny.settings.confident_coverage, tiny.settings.refusal_threshold)

    answer = engine.ask(FRACTAL_QUESTION, mode="extractive")

    assert not answer.refused and answer.confidence == confidence
    assert answer.citations[0].title == FRACTAL_TITLE


@pytest.mark.parametrize("below_floor", [True, False])
def test_an_answered_question_whose_sentences_all_miss_the_floor_quotes_the_top_paper(tiny, below_floor):
    # A floor no sentence reaches: the judge answers, the floor alone would refuse.
    extractive = tiny.settings.extractive.model_copy(update={"quote_below_floor": below_floor})
    settings = tiny.settings.model_copy(update={"sentence_floor": 0.99, "extractive": extractive})
    cfg = settings.reader.model_copy(update={"enabled": True, "quote_sentences": 0, "detail_quote_sentences": 0})
    engine = Engine(
        settings.model_copy(update={"reader": cfg}), store=tiny.store, reader=ScriptedReader([0.9, 0.1, 0.1])
    )

    answer = engine.ask(FRACTAL_QUESTION, mode="extractive")

    if below_floor:
        assert not answer.refused and [c.title for c in answer.citations] == [FRACTAL_TITLE]
        assert len(answer.sentences) == 1
    else:
        assert answer.refused and answer.answer == REFUSAL


def test_rerank_puts_the_paper_the_reader_prefers_first(tiny):
    plain = tiny.retrieve_for(FRACTAL_QUESTION).hits
    engine = reader_engine(tiny, ScriptedReader([0.1, 0.9, 0.2]), rerank_keep_lead=NO_LEAD)

    hits = engine.judge(FRACTAL_QUESTION, engine.retrieve_for(FRACTAL_QUESTION)).hits

    assert [h.paper.paper_id for h in hits[:3]] == [plain[i].paper.paper_id for i in (1, 2, 0)]
    assert [h.paper.paper_id for h in hits[3:]] == [h.paper.paper_id for h in plain[3:]]


def test_a_near_tie_keeps_the_retrievers_first_paper_first(tiny):
    plain = tiny.retrieve_for(FRACTAL_QUESTION).hits
    engine = reader_engine(tiny, ScriptedReader([0.7, 0.75, 0.2]), rerank_margin=0.1, rerank_keep_lead=NO_LEAD)

    judged = engine.judge(FRACTAL_QUESTION, engine.retrieve_for(FRACTAL_QUESTION))

    assert [h.paper.paper_id for h in judged.hits[:3]] == [plain[i].paper.paper_id for i in (0, 1, 2)]
    assert judged.reader == [0.7, 0.75, 0.2]
    # Beyond the margin the reader's favourite leads.
    engine = reader_engine(tiny, ScriptedReader([0.6, 0.75, 0.2]), rerank_margin=0.1, rerank_keep_lead=NO_LEAD)
    assert engine.judge(FRACTAL_QUESTION, engine.retrieve_for(FRACTAL_QUESTION)).hits[0].paper == plain[1].paper


def test_a_clear_retrieval_lead_keeps_the_retrievers_first_paper_first(tiny):
    plain = tiny.retrieve_for(FRACTAL_QUESTION).hits
    lead = plain[0].score / plain[1].score
    assert lead > 1.0

    def first(keep_lead: float) -> str:
        engine = reader_engine(tiny, ScriptedReader([0.1, 0.9, 0.2]), rerank_keep_lead=keep_lead)
        return engine.judge(FRACTAL_QUESTION, engine.retrieve_for(FRACTAL_QUESTION)).hits[0].paper.paper_id

    assert first(lead * 0.99) == plain[0].paper.paper_id  # the first leads the reader's pick by more than the cut
    assert first(lead * 1.01) == plain[1].paper.paper_id  # it does not: the reader's pick leads


def test_rerank_off_keeps_the_retrieval_order(tiny):
    plain = tiny.retrieve_for(FRACTAL_QUESTION).hits
    engine = reader_engine(tiny, ScriptedReader([0.1, 0.9, 0.2]), rerank=False)

    judged = engine.judge(FRACTAL_QUESTION, engine.retrieve_for(FRACTAL_QUESTION))

    assert [h.paper.paper_id for h in judged.hits] == [h.paper.paper_id for h in plain]
    assert judged.reader == [0.1, 0.9, 0.2]


def test_gguf_reader_switched_on_without_a_model_fails_in_one_line(tiny, tmp_path):
    with pytest.raises(ReaderUnavailable, match="PAPERBOT_READER__MODEL_PATH"):
        check_reader(ReaderSettings(enabled=True, backend="gguf"))
    missing = tmp_path / "none.gguf"
    with pytest.raises(ReaderUnavailable, match="not found") as info:
        Engine(
            tiny.settings.model_copy(
                update={"reader": ReaderSettings(enabled=True, backend="gguf", model_path=missing)}
            ),
            store=tiny.store,
        )
    assert "\n" not in str(info.value) and str(missing) in str(info.value)


def test_a_read_paper_the_reader_says_no_to_is_not_quoted(tiny):
    question = "Which papers speed up sampling from diffusion models?"
    plain = tiny.ask(question, mode="extractive")
    assert len({c.paper_id for c in plain.citations}) > 1, "the question must cite several papers without the reader"
    engine = reader_engine(tiny, ScriptedReader([0.9, 0.1, 0.1]), rerank=False, cite_threshold=0.5)

    answer = engine.ask(question, mode="extractive")

    read = [h.paper.paper_id for h in answer.hits[:3]]
    cited = {c.paper_id for c in answer.citations}
    assert read[0] in cited and not cited & set(read[1:])


def test_eval_runs_record_whether_the_reader_judged(tiny):
    from pathlib import Path

    from bot.eval.run import reader_label

    assert reader_label(tiny.settings) == "off"
    on = tiny.settings.model_copy(
        update={
            "reader": ReaderSettings(
                backend="gguf", model_path=Path("/m/qwen.gguf"), reader_weight=0.05, answer_threshold=0.6
            )
        }
    )
    assert reader_label(on).startswith("qwen.gguf (weight 0.05, threshold 0.6")
    shipped = tiny.settings.model_copy(update={"reader": ReaderSettings()})
    cfg = ReaderSettings()
    assert reader_label(shipped).startswith(
        f"minilm cross-encoder (weight {cfg.reader_weight:g}, threshold {cfg.answer_threshold:g}"
    )


def test_summaries_do_not_ask_the_reader(tiny):
    # A topic is not a question: the reader's yes/no fits answers, and on topics3 it cut plain
    # topics' recall (evals/summary_report.md). No verdict is queued, so a call would fail the test.
    from bot.summarize import summarize

    reader = ScriptedReader()
    engine = reader_engine(tiny, reader)
    summary = summarize(engine, "neural network trainability", mode="extractive")

    assert reader.calls == [] and summary.topic == "neural network trainability"
    # The same engine's answers still go through the reader.
    reader.replies.append([0.9])
    engine.ask(FRACTAL_QUESTION, mode="extractive")
    assert len(reader.calls) == 1


# The shipped cross-encoder (backend "minilm"), the real model: it loads in well under a second.
ANSWERING = Passage(
    "Fractal image compression with iterated function systems",
    "We encode an image as the fixed point of a contractive map and store only the map's coefficients.",
)
UNRELATED = Passage(
    "Thompson sampling for Pareto bandits",
    "We prove regret bounds for Thompson sampling with a noninformative prior when rewards are heavy-tailed.",
)


@pytest.fixture(scope="module")
def cross_encoder():
    return build_reader(ReaderSettings(enabled=True))


def test_cross_encoder_prefers_the_passage_that_answers(cross_encoder):
    question = "How can an image be stored as the coefficients of a self-similar map?"
    yes = cross_encoder.judge(question, [UNRELATED, ANSWERING])

    assert len(yes) == 2 and all(0.0 < p < 1.0 for p in yes)
    assert yes[1] > 0.5 > yes[0]
    assert cross_encoder.judge(question, [ANSWERING, UNRELATED]) == pytest.approx(yes[::-1], abs=1e-5)
    assert cross_encoder.judge(question, []) == []


def test_cross_encoder_reads_long_passages_to_its_token_budget(cross_encoder):
    long = Passage(ANSWERING.title, " ".join([ANSWERING.text] * 60))
    (yes,) = cross_encoder.judge("How is an image stored as a map's coefficients?", [long])
    assert 0.0 < yes < 1.0


def test_cross_encoder_with_a_changed_model_file_refuses_to_load(monkeypatch):
    monkeypatch.setattr(reader_module, "CROSS_ENCODER_SHA256", "0" * 64)
    with pytest.raises(ModelIntegrityError, match="does not match the pinned"):
        CrossEncoderReader(ReaderSettings(enabled=True), threads=1, spinning=False)


PAELLA_STEPS = "How many sampling steps does the Paella text-to-image model need?"


def test_reader_cannot_refuse_a_figure_the_read_sentences_state(tiny):
    # The coverage rule answers; the reader says no; the top paper's read sentences state a number.
    engine = reader_engine(tiny, ScriptedReader([0.01, 0.01, 0.01], [0.01, 0.01, 0.01]), answer_threshold=0.99)
    retrieval = engine.retrieve_for(PAELLA_STEPS)
    assert retrieval.answered and retrieval.hits[0].paper.title.startswith("Fast Text-Conditional")

    assert engine.judge(PAELLA_STEPS, retrieval).answered
    # Without the rule, or for a question that asks for no figure, the reader's no stands.
    strict = reader_engine(tiny, ScriptedReader([0.01, 0.01, 0.01]), answer_threshold=0.99, trust_stated_answer=False)
    assert not strict.judge(PAELLA_STEPS, retrieval).answered
    plain = engine.retrieve_for(FRACTAL_QUESTION)
    assert plain.answered and not engine.judge(FRACTAL_QUESTION, plain).answered


FRACTAL_PAPERS = "Which papers ask whether the boundary between trainable and untrainable hyperparameters is fractal?"


def test_reader_cannot_refuse_a_question_for_papers_that_coverage_answers(tiny):
    # The reader reads one paper at a time, and each paper answers a part of a question for several.
    engine = reader_engine(tiny, ScriptedReader([0.01, 0.01, 0.01], [0.01, 0.01, 0.01]), answer_threshold=0.99)
    retrieval = engine.retrieve_for(FRACTAL_PAPERS)
    assert retrieval.answered

    assert engine.judge(FRACTAL_PAPERS, retrieval).answered
    strict = reader_engine(tiny, ScriptedReader([0.01, 0.01, 0.01]), answer_threshold=0.99, trust_several=False)
    assert not strict.judge(FRACTAL_PAPERS, retrieval).answered
    # A question for one paper stays refused.
    assert not engine.judge(FRACTAL_QUESTION, engine.retrieve_for(FRACTAL_QUESTION)).answered


def test_the_sentence_the_reader_rates_highest_is_quoted(tiny):
    plain = tiny.ask(FRACTAL_QUESTION, mode="extractive")
    top = tiny.retrieve_for(FRACTAL_QUESTION).hits[0].paper
    sentences, _ = tiny.retriever.sentence_vectors(top)
    quoted = {s.text.rsplit(" [", 1)[0] for s in plain.sentences}
    pick = next(i for i, s in enumerate(sentences) if s not in quoted and 40 <= len(s) <= 400)
    verdicts = [0.0] * len(sentences)
    verdicts[pick] = 0.9
    reader = ScriptedReader([0.9, 0.1, 0.1], verdicts)
    cfg = tiny.settings.reader.model_copy(update={"enabled": True})
    # Room for one more sentence: a full answer of papers quoted once keeps its sentences.
    settings = tiny.settings.model_copy(update={"reader": cfg, "answer_sentences": len(plain.sentences) + 1})
    engine = Engine(settings, store=tiny.store, reader=reader)

    answer = engine.ask(FRACTAL_QUESTION, mode="extractive")

    question, passages = reader.calls[1]
    assert [p.text for p in passages] == sentences and all(p.title == top.title for p in passages)
    assert any(s.text.startswith(sentences[pick][:30]) for s in answer.sentences)  # shown with markup cleaned
    assert {c.title for c in answer.citations} <= {c.title for c in plain.citations} | {top.title}


@pytest.mark.parametrize("n", [1, 2])
def test_the_reader_s_best_sentences_are_quoted(tiny, n):
    plain = tiny.ask(FRACTAL_QUESTION, mode="extractive")
    top = tiny.retrieve_for(FRACTAL_QUESTION).hits[0].paper
    sentences, _ = tiny.retriever.sentence_vectors(top)
    quoted = {s.text.rsplit(" [", 1)[0] for s in plain.sentences}
    picks = [i for i, s in enumerate(sentences) if s not in quoted and 40 <= len(s) <= 400][:2]
    verdicts = [0.0] * len(sentences)
    verdicts[picks[0]], verdicts[picks[1]] = 0.9, 0.8
    reader = ScriptedReader([0.9, 0.1, 0.1], verdicts)
    cfg = tiny.settings.reader.model_copy(
        update={"enabled": True, "quote_sentences": n, "quote_candidates": len(sentences)}
    )
    settings = tiny.settings.model_copy(update={"reader": cfg, "answer_sentences": len(plain.sentences) + 2})
    answer = Engine(settings, store=tiny.store, reader=reader).ask(FRACTAL_QUESTION, mode="extractive")

    shown = [any(s.text.startswith(sentences[i][:30]) for s in answer.sentences) for i in picks]
    assert shown == [True, n == 2]


def test_a_question_asking_for_a_detail_takes_more_of_the_reader_s_sentences(tiny):
    retrieval = tiny.retrieve_for(FRACTAL_QUESTION)
    top = retrieval.hits[0].paper
    sentences, _ = tiny.retriever.sentence_vectors(top)
    cfg = tiny.settings.reader.model_copy(
        update={"enabled": True, "quote_sentences": 1, "detail_quote_sentences": 2, "quote_candidates": len(sentences)}
    )
    verdicts = [0.9 - 0.1 * i for i in range(len(sentences))]
    engine = Engine(
        tiny.settings.model_copy(update={"reader": cfg}), store=tiny.store, reader=ScriptedReader(verdicts, verdicts)
    )

    assert len(engine.best_sentences(FRACTAL_QUESTION, top, retrieval.query_vector)) == 1
    asks_a_name = "Which optimizers did the fractal hyperparameter study train its networks with?"
    assert len(engine.best_sentences(asks_a_name, top, retrieval.query_vector)) == 2


def test_a_question_for_several_papers_quotes_the_read_papers_the_reader_vouches_for(tiny):
    # Without the reader, only the classifier-free guidance paper itself is quoted: the others rank and
    # score far below it.
    question = "Which papers are about classifier-free guidance?"

    def quoted(vouch: float) -> list[bool]:
        engine = reader_engine(tiny, ScriptedReader([0.95, 0.95, 0.95]), rerank=False, vouch_threshold=vouch)
        answer = engine.ask(question, mode="extractive")
        cited = {c.paper_id for c in answer.citations}
        return [h.paper.paper_id in cited for h in answer.hits[:3]]

    assert quoted(1.1) == [True, False, False]
    assert quoted(0.9) == [True, True, True]


def _one_paper_engine(tiny, reader: ScriptedReader, **update) -> Engine:
    # Another paper's sentences are quoted beside the top one's whatever they score: only the reader's backing decides.
    cfg = tiny.settings.reader.model_copy(
        update={"enabled": True, "quote_sentences": 0, "detail_quote_sentences": 0, "rerank": False, **update}
    )
    extractive = tiny.settings.extractive.model_copy(update={"other_paper_ratio": 0.0, "other_paper_min_fused": 0.0})
    settings = tiny.settings.model_copy(update={"reader": cfg, "extractive": extractive})
    return Engine(settings, store=tiny.store, reader=reader)


ONE_PAPER = "Which paper makes image generation faster?"


@pytest.mark.parametrize(("share", "backed"), [(0.0, True), (0.1, False)])
def test_a_question_for_one_paper_quotes_beside_the_top_only_papers_the_reader_backs(tiny, share, backed):
    engine = _one_paper_engine(tiny, ScriptedReader([0.9, 0.5, 0.05]), cite_share=share, cite_read_only=False)

    answer = engine.ask(ONE_PAPER, mode="extractive")

    read = [h.paper.paper_id for h in answer.hits[:3]]
    cited = {c.paper_id for c in answer.citations}
    assert read[0] in cited
    assert (read[2] in cited) is backed, "the third read paper is rated under a tenth of the best"


@pytest.mark.parametrize("read_only", [False, True])
def test_a_question_for_one_paper_quotes_beside_the_top_no_paper_the_reader_did_not_read(tiny, read_only):
    engine = _one_paper_engine(tiny, ScriptedReader([0.9]), candidates=1, cite_share=0.1, cite_read_only=read_only)

    answer = engine.ask(ONE_PAPER, mode="extractive")

    cited = {c.paper_id for c in answer.citations}
    assert answer.hits[0].paper.paper_id in cited
    assert (len(cited) == 1) is read_only


def test_a_question_for_several_papers_quotes_papers_the_reader_doubts(tiny):
    engine = _one_paper_engine(tiny, ScriptedReader([0.9, 0.05, 0.05]), cite_share=0.5, cite_read_only=True)

    answer = engine.ask("Which papers make image generation faster?", mode="extractive")

    assert len({c.paper_id for c in answer.citations}) > 1


@pytest.mark.parametrize("lead", [False, True])
def test_a_question_for_one_paper_cites_the_top_paper_first(tiny, lead):
    engine = _one_paper_engine(tiny, ScriptedReader([0.9, 0.8, 0.7]), cite_share=0.0, cite_read_only=False)
    engine.settings.extractive.lead_with_top = lead

    # Another paper's sentence scores highest here: it is quoted, after the top paper's.
    answer = engine.ask("Which study makes image generation faster with fewer steps?", mode="extractive")

    cited = [c.paper_id for c in answer.citations]
    assert len(cited) > 1
    assert (cited[0] == answer.hits[0].paper.paper_id) is lead
