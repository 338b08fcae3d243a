"""The answer engine: one pipeline from question to checked answer, and its LlamaIndex query engine.

``Engine.stream`` is the only place the pipeline is written:
check the question -> condense a follow-up -> correct its spelling (bot.spelling)
-> retrieve -> refuse when the top
papers do not cover the question -> ``answerer.stream()`` -> the checked
:class:`~bot.schema.Answer`. The answerer is extractive or LLM
(bot.answerers); the model is injected (``Engine(settings, llm=...)``) or built
from settings on first use. When the model fails from outside (network,
server, malformed reply; ``bot.llm.model_errors``) the same retrieval is
answered extractively with a note; any other exception is a bug and surfaces.

Every front end (CLI, chat app, eval harness) answers through
:class:`PaperQueryEngine`, a LlamaIndex ``CustomQueryEngine``: its
``source_nodes`` are the cited papers in [n] order and ``metadata["answer"]``
is the checked Answer.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from llama_index.core.base.response.schema import Response, StreamingResponse
from llama_index.core.query_engine import CustomQueryEngine
from llama_index.core.schema import NodeWithScore, TextNode

from bot.answer_types import answer_type, asks_for_papers, detail_type, states
from bot.answerers import Answerer, Draft, ExtractiveAnswerer, LLMAnswerer
from bot.config import ReaderSettings, Settings, check_mode, get_settings
from bot.indexing import Manifest, Store, open_index, require_papers
from bot.llm import build_llm, describe_failure, model_errors
from bot.reader import Passage, Reader, build_reader, check_reader
from bot.retrieval import Filters, HybridRetriever
from bot.schema import REFUSAL, Answer, Hit, Paper, Retrieval, Turn
from bot.spelling import Correction, SpellingCorrector, library_words, spelling_note
from bot.text import check_question

if TYPE_CHECKING:
    import numpy as np
    from llama_index.core.llms import LLM

log = logging.getLogger(__name__)

# P(yes) is clipped to [1e-4, 1 - 1e-4] before the log-odds, as in the fit of the weights (a sure "no" is -9.2).
LOGIT_FLOOR = 1e-4


def judged_score(coverage: float, yes: float, cfg: ReaderSettings) -> float:
    """The answer/refuse score with the reader: coverage plus ``reader_weight`` times the log-odds of ``yes``."""
    p = min(max(yes, LOGIT_FLOOR), 1.0 - LOGIT_FLOOR)
    return coverage + cfg.reader_weight * math.log(p / (1.0 - p))


def refused_answer(question: str, standalone: str, retrieval: Retrieval, mode: str) -> Answer:
    """The refusal, listing the closest papers; the pipeline fills it in when it can answer."""
    return Answer(
        question=question,
        answer=REFUSAL,
        refused=True,
        mode=mode,
        hits=retrieval.hits,
        standalone_question=standalone if standalone != question else None,
        coverage=retrieval.coverage,
    )


class Engine:
    """Everything the front ends need: search, ask (blocking or streamed), stats, the query engine."""

    def __init__(
        self,
        settings: Settings | None = None,
        store: Store | None = None,
        progress: bool = False,
        llm: LLM | None = None,
        reader: Reader | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.store, self.manifest = open_index(self.settings, progress=progress, store=store)
        require_papers(self.manifest, self.settings)
        self.retriever = HybridRetriever(self.settings, self.store, self.manifest)
        self.extractive = ExtractiveAnswerer(self.settings, self.retriever)
        self._llm = llm
        self._llm_lock = threading.Lock()
        self._reader = reader
        self._speller: SpellingCorrector | None = None
        if self.settings.reader.enabled and reader is None:
            check_reader(self.settings.reader)  # a missing model file fails now, in one line

    # -- information -----------------------------------------------------
    def stats(self) -> dict:
        return self.manifest.stats()

    @property
    def manifest_data(self) -> Manifest:
        return self.manifest

    def resolve_mode(self, mode: str | None = None) -> str:
        mode = check_mode(mode or self.settings.mode)
        if mode == "auto":
            return "llm" if self.settings.llm_configured or self._llm is not None else "extractive"
        return mode

    def mode_label(self, mode: str | None = None) -> str:
        resolved = self.resolve_mode(mode)
        return f"llm ({self.settings.llm_model})" if resolved == "llm" else "extractive"

    # -- the model -------------------------------------------------------
    def llm(self) -> LLM:
        """The injected model, or the one the settings describe (built once, on first use)."""
        with self._llm_lock:
            if self._llm is None:
                self._llm = build_llm(self.settings)
            return self._llm

    def reader(self) -> Reader:
        """The injected reader, or the one the settings describe (built once, on first use)."""
        with self._llm_lock:
            if self._reader is None:
                cfg = self.settings
                self._reader = build_reader(cfg.reader, cfg.onnx_threads, cfg.onnx_spinning)
            return self._reader

    def correct_spelling(self, text: str) -> Correction:
        """``text`` with its misspelled words corrected against the library's words (bot.spelling), when on."""
        cfg = self.settings.spelling
        if not cfg.enabled:
            return Correction(text)
        with self._llm_lock:
            if self._speller is None:  # 0.3 s per engine, and 1.5 s once a process for the English lists
                texts = (text for p in self.manifest.papers for text in (p.title, p.abstract, *p.questions))
                self._speller = SpellingCorrector(library_words(texts), cfg)
        return self._speller.correct(text)

    def passage(self, paper: Paper, query_vector: np.ndarray) -> Passage:
        """What the reader reads of a paper: its title and its abstract sentences closest to the question."""
        sentences = self.retriever.closest_sentences(paper, query_vector, self.settings.reader.sentences)
        return Passage(paper.title, " ".join(sentences))

    def passages(self, standalone: str, retrieval: Retrieval, n: int) -> list[Passage]:
        """What the reader reads of the top ``n`` papers (:meth:`passage`)."""
        return [self.passage(h.paper, retrieval.query_vector) for h in retrieval.hits[:n]]

    def answerer(self, mode: str) -> Answerer:
        """The answerer for a resolved mode ("llm" may raise a model error: no endpoint)."""
        if mode == "llm":
            return LLMAnswerer(self.settings, self.retriever, self.llm())
        return self.extractive

    # -- retrieval -------------------------------------------------------
    def search(
        self, query: str, k: int | None = None, kind: str = "hybrid", filters: Filters | None = None
    ) -> list[Hit]:
        return self.retriever.search(check_question(query), k=k, kind=kind, filters=filters)

    def retrieve_for(self, standalone: str, k: int | None = None, filters: Filters | None = None) -> Retrieval:
        """Hits, the query vector, the coverage score, and whether the abstracts are likely to answer it.

        The abstracts are taken to answer it when the top papers cover the
        question's words (:meth:`HybridRetriever.coverage`) to the refusal
        threshold; see evals/README.md.
        """
        qvec, pieces = self.retriever.embed_question(standalone)
        hits = self.retriever.search(standalone, k=k, filters=filters, query_vector=qvec)
        covered = self.retriever.coverage(pieces, [h.paper for h in hits[: self.settings.top_k]])
        return Retrieval(hits, qvec, covered, bool(hits) and covered >= self.settings.refusal_threshold)

    def sources_for(
        self, standalone: str, k: int | None = None, filters: Filters | None = None, judge: bool = True
    ) -> Retrieval:
        """What the answer step gets: :meth:`retrieve_for`, then the reader's verdict and order (:meth:`judge`)."""
        retrieval = self.retrieve_for(standalone, k=k, filters=filters)
        return self.judge(standalone, retrieval) if judge else retrieval

    def judge(self, standalone: str, retrieval: Retrieval) -> Retrieval:
        """The retrieval with the reader's verdict, when the reader is on (``settings.reader``).

        The reader reads the top ``candidates`` papers (title and closest sentences) and the
        question is answered when :func:`judged_score` (coverage plus the best paper's log-odds,
        weighted) reaches ``answer_threshold``. With ``rerank`` the read papers are put in order
        of P(yes), unless the reader's favourite barely beats the retrievers' first (``rerank_margin``) or
        the retrievers' first leads it clearly in fused score (``rerank_keep_lead``). See evals/README.md,
        "The cross-encoder reader".
        """
        cfg = self.settings.reader
        if not cfg.enabled or not retrieval.hits:
            return retrieval
        yes = self.reader().judge(standalone, self.passages(standalone, retrieval, cfg.candidates))
        answered = judged_score(retrieval.coverage, max(yes), cfg) >= cfg.answer_threshold
        if not answered and retrieval.answered:
            answered = self._coverage_stands(standalone, retrieval)
        hits = retrieval.hits
        if cfg.rerank:
            order = sorted(range(len(yes)), key=lambda i: -yes[i])
            # A near tie, or the retrievers' first far ahead of the reader's pick: the retrievers' first stays first.
            near_tie = yes[order[0]] - yes[0] <= cfg.rerank_margin
            if near_tie or hits[0].score >= cfg.rerank_keep_lead * hits[order[0]].score:
                order = [0, *(i for i in order if i != 0)]
            hits = [hits[i] for i in order] + hits[len(yes) :]
            yes = [yes[i] for i in order]
        qvec = retrieval.query_vector
        best = self.best_sentences(standalone, hits[0].paper, qvec) if answered else []
        return Retrieval(hits, qvec, retrieval.coverage, answered, reader=yes, read_sentences=best)

    def _coverage_stands(self, standalone: str, retrieval: Retrieval) -> bool:
        """Whether a question the coverage rule answers stays answered though the reader says no.

        - ``trust_stated_answer``: the question asks for a kind of answer (a figure, a data set, ...)
          that the top paper's read sentences state; the reader says no to many such answerable questions.
        - ``trust_several``: the question asks for papers in the plural and for no kind of answer; the
          reader reads one paper at a time, and each paper answers a part of "a, b or c?".
        """
        cfg = self.settings.reader
        kind = answer_type(standalone)
        if kind is None:
            return cfg.trust_several and asks_for_papers(standalone)
        if not cfg.trust_stated_answer:
            return False
        read = self.retriever.closest_sentences(retrieval.hits[0].paper, retrieval.query_vector, cfg.sentences)
        return any(states(kind, sentence) for sentence in read)

    def best_sentences(self, standalone: str, paper: Paper, query_vector: np.ndarray) -> list[str]:
        """Of the paper's ``quote_candidates`` sentences closest to the question, the ``quote_sentences`` the
        reader rates highest, best first; ``detail_quote_sentences`` for a question asking for a kind of answer
        or a name (:func:`bot.answer_types.detail_type`)."""
        cfg = self.settings.reader
        quoted = cfg.detail_quote_sentences if detail_type(standalone) is not None else cfg.quote_sentences
        sentences = self.retriever.closest_sentences(paper, query_vector, cfg.quote_candidates) if quoted else []
        if not sentences:
            return []
        yes = self.reader().judge(standalone, [Passage(paper.title, sentence) for sentence in sentences])
        order = sorted(range(len(sentences)), key=lambda i: -yes[i])
        return [sentences[i] for i in order[:quoted]]

    # -- answers ---------------------------------------------------------
    def ask(
        self,
        question: str,
        history: list[Turn] | None = None,
        mode: str | None = None,
        k: int | None = None,
        filters: Filters | None = None,
        judge: bool = True,
    ) -> Answer:
        return _final(self.stream(question, history, mode, k, filters, judge))

    def stream(
        self,
        question: str,
        history: list[Turn] | None = None,
        mode: str | None = None,
        k: int | None = None,
        filters: Filters | None = None,
        judge: bool = True,
    ) -> Iterator[str | Answer]:
        """Yield pieces of answer text as they are ready, then the final :class:`Answer`.

        When the model fails, the final Answer is the extractive one with a note,
        also after some model text went out (front ends replace the streamed text).
        ``judge=False`` leaves the reader out even when it is on (summaries: a topic is not a question).
        """
        question = check_question(question)
        history = history or []
        notes: list[str] = []
        failures = model_errors() if self.resolve_mode(mode) == "llm" else ()
        try:
            answerer = self.answerer(self.resolve_mode(mode))
            standalone = answerer.condense(question, history)
        except failures as exc:
            answerer, standalone = self.extractive, self.extractive.condense(question, history)
            notes.append(self._fell_back(exc))
        correction = self.correct_spelling(standalone)
        if correction.changes:
            standalone = correction.text
            notes.append(spelling_note(correction))

        retrieval = self.sources_for(standalone, k=k, filters=filters, judge=judge)
        answer = refused_answer(question, standalone, retrieval, answerer.mode)
        answer.notes = notes
        if not retrieval.answered:
            yield REFUSAL
            yield answer
            return

        draft = None
        try:
            for event in answerer.stream(standalone, retrieval):
                if isinstance(event, Draft):
                    draft = event
                else:
                    yield event
        except failures as exc:
            notes.append(self._fell_back(exc))
            answer.mode = self.extractive.mode
            draft = _last_draft(self.extractive.stream(standalone, retrieval))
        assert draft is not None, "an answerer's stream ends with a Draft"
        answer.notes += draft.notes
        if draft.checked is None:
            if answer.mode == self.extractive.mode:
                yield REFUSAL
            yield answer
            return
        checked = draft.checked
        answer.answer, answer.refused = checked.text, draft.not_stated
        answer.sentences, answer.citations = checked.sentences, checked.citations
        answer.dangling_removed = checked.dangling
        if not answer.refused:
            # An answer the reader rescued from the coverage rule's refusal is shown as low confidence; so is one
            # whose read papers the reader all doubts (``reader.confident_yes``).
            sure = max(self.settings.confident_coverage, self.settings.refusal_threshold)
            doubted = bool(retrieval.reader) and max(retrieval.reader) < self.settings.reader.confident_yes
            answer.confidence = "high" if retrieval.coverage >= sure and not doubted else "low"
        yield answer

    def _fell_back(self, exc: BaseException) -> str:
        reason = describe_failure(exc, self.settings)
        log.warning("LLM unavailable, answering extractively: %s", reason)
        return f"LLM unavailable: {reason}"

    def as_query_engine(
        self,
        mode: str | None = None,
        k: int | None = None,
        filters: Filters | None = None,
        history: list[Turn] | None = None,
        streaming: bool = False,
        judge: bool = True,
    ) -> PaperQueryEngine:
        """This engine as a LlamaIndex query engine (``.query(str) -> Response``); ``judge`` as in :meth:`stream`."""
        return PaperQueryEngine(
            engine=self,
            mode=mode,
            k=k,
            filters=filters,
            history=list(history or []),
            streaming=streaming,
            judge=judge,
        )


def _last_draft(events: Iterator[str | Draft]) -> Draft | None:
    draft = None
    for event in events:
        if isinstance(event, Draft):
            draft = event
    return draft


def cited_nodes(answer: Answer) -> list[NodeWithScore]:
    """The cited papers as LlamaIndex nodes, in [n] order (the quote is the node's text)."""
    nodes = []
    for c in answer.citations:
        metadata = {"n": c.n, "paper_id": c.paper_id, "title": c.title, "arxiv_id": c.arxiv_id, "url": c.url}
        nodes.append(NodeWithScore(node=TextNode(id_=c.paper_id, text=c.quote, metadata=metadata), score=c.score))
    return nodes


class PaperQueryEngine(CustomQueryEngine):
    """The engine as a LlamaIndex query engine: ``query(question)`` gives a (streaming) ``Response``.

    ``Response.source_nodes`` are the cited papers in [n] order; ``Response.metadata["answer"]``
    is the checked :class:`~bot.schema.Answer` (set once a streaming response is exhausted).
    """

    engine: Any  # an Engine (pydantic cannot validate the class itself)
    mode: str | None = None
    k: int | None = None
    filters: Any = None  # a bot.retrieval.Filters
    history: list[Turn] = []
    streaming: bool = False
    judge: bool = True  # let the reader judge the papers when it is on (Engine.stream)

    def custom_query(self, query_str: str) -> Response | StreamingResponse:
        events = self.engine.stream(query_str, self.history, self.mode, self.k, self.filters, self.judge)
        if not self.streaming:
            answer = _final(events)
            return Response(response=answer.answer, source_nodes=cited_nodes(answer), metadata={"answer": answer})
        response = StreamingResponse(response_gen=iter(()), source_nodes=[], metadata={})

        def pieces() -> Iterator[str]:
            for event in events:
                if isinstance(event, Answer):
                    response.source_nodes = cited_nodes(event)
                    response.metadata = {"answer": event}
                    response.response_txt = event.answer
                else:
                    yield event

        response.response_gen = pieces()
        return response


def _final(events: Iterator[str | Answer]) -> Answer:
    answer = None
    for event in events:
        if isinstance(event, Answer):
            answer = event
    assert answer is not None, "Engine.stream ends with an Answer"
    return answer
