"""The answer engine: retrieve papers, then answer with [n] citations or refuse.

One engine serves the CLI, the chat UI, summaries and the evals. Without an
LLM it answers extractively: the retrieved abstracts' own sentences that best
match the question, each cited. With an LLM (see ``bot.llm``) it writes the
answer and the citations are verified afterwards.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from llama_index.core.base.response.schema import Response
from llama_index.core.query_engine import CustomQueryEngine
from llama_index.core.schema import NodeWithScore, TextNode

from bot.config import Settings, get_settings
from bot.indexing import Manifest, Store, open_index
from bot.retrieval import Filters, HybridRetriever
from bot.schema import Answer, Citation, Hit, Sentence
from bot.text import BadQuestion, check_question, with_marker

REFUSAL = "The indexed abstracts do not answer this question."
# Follow-ups that lean on the previous turn ("what about their limitations?").
_FOLLOW_UP = re.compile(
    r"\b(they|them|their|theirs|it|its|this|that|these|those|such|the same|above|former|latter|"
    r"the paper|the papers|the method|the approach|the authors)\b|^(and|what about|how about|why|also)\b",
    re.I,
)
# Housekeeping sentences answer nothing ("Code is available at https://...").
_BOILERPLATE = re.compile(
    r"https?://|github\.com|\bcode (is|are|will be) (publicly )?(made )?available|\bwe release\b", re.I
)


@dataclass
class Turn:
    """One message of a conversation, as the UI keeps it."""

    role: str  # "user" or "assistant"
    content: str


class Retrieval(NamedTuple):
    """The papers retrieved for a question and whether they are likely to answer it."""

    hits: list[Hit]
    query_vector: np.ndarray
    coverage: float  # HybridRetriever.coverage of the question by the top papers
    answered: bool  # coverage reaches the refusal threshold


def refused_answer(question: str, standalone: str, retrieval: Retrieval, mode: str) -> Answer:
    """The refusal, listing the closest papers; answer paths fill it in when they can answer."""
    return Answer(
        question=question,
        answer=REFUSAL,
        refused=True,
        mode=mode,
        hits=retrieval.hits,
        standalone_question=standalone if standalone != question else None,
        coverage=retrieval.coverage,
    )


def condense_heuristic(question: str, history: list[Turn]) -> str:
    """Extractive mode's follow-up rewrite: lean on the last user question when needed."""
    previous = [t.content for t in history if t.role == "user"]
    if not previous or not _FOLLOW_UP.search(question) or len(question.split()) > 20:
        return question
    return f"{previous[-1]} {question}"


class ExtractiveAnswerer:
    """Picks the retrieved abstracts' sentences that answer the question best."""

    def __init__(self, settings: Settings, retriever: HybridRetriever) -> None:
        self.settings = settings
        self.retriever = retriever

    def answer(self, question: str, hits: list[Hit], qvec: np.ndarray) -> tuple[list[Sentence], list[Citation]]:
        candidates: list[tuple[int, str]] = []  # (hit index, sentence)
        rows: list[np.ndarray] = []
        for h, hit in enumerate(hits):
            sentences, vectors = self.retriever.sentence_vectors(hit.paper)
            for sentence, vector in zip(sentences, vectors, strict=True):
                if 40 <= len(sentence) <= 600 and not _BOILERPLATE.search(sentence):
                    candidates.append((h, sentence))
                    rows.append(vector)
        if not candidates:
            return [], []
        vectors = np.vstack(rows)
        relevance = vectors @ qvec
        # A sentence from a paper that matches as a whole is a safer answer.
        paper_sim = np.array([hits[h].similarity for h, _ in candidates])
        score = 0.7 * relevance + 0.3 * paper_sim
        floor = max(self.settings.answer_min_ratio * float(score.max()), self.settings.sentence_floor)
        chosen: list[int] = []
        per_paper: dict[int, int] = {}
        while len(chosen) < self.settings.answer_sentences:
            best, best_value = -1, -1e9
            for i in np.argsort(-score):
                h = candidates[i][0]
                if i in chosen or per_paper.get(h, 0) >= 2 or score[i] < floor:
                    continue
                redundancy = max((float(vectors[i] @ vectors[j]) for j in chosen), default=0.0)
                if redundancy > 0.85:
                    continue
                # Maximal marginal relevance, nudged towards papers not yet cited.
                value = float(score[i]) - 0.3 * redundancy - (0.05 * per_paper.get(h, 0))
                if value > best_value:
                    best, best_value = int(i), value
            if best < 0:
                break
            chosen.append(best)
            per_paper[candidates[best][0]] = per_paper.get(candidates[best][0], 0) + 1

        numbers: dict[int, int] = {}
        sentences: list[Sentence] = []
        citations: list[Citation] = []
        for i in chosen:
            h, text = candidates[i]
            if h not in numbers:
                numbers[h] = len(numbers) + 1
                paper = hits[h].paper
                citations.append(
                    Citation(
                        n=numbers[h],
                        paper_id=paper.paper_id,
                        title=paper.title,
                        arxiv_id=paper.arxiv_id,
                        url=paper.url,
                        quote=text,
                        score=round(float(hits[h].similarity), 4),
                    )
                )
            sentences.append(Sentence(text=with_marker(text, numbers[h]), citations=[numbers[h]]))
        return sentences, citations


class Engine:
    """Everything the front ends need: search, ask (blocking or streamed), stats."""

    def __init__(
        self,
        settings: Settings | None = None,
        store: Store | None = None,
        progress: bool = False,
    ) -> None:
        self.settings = settings or get_settings()
        self.store, self.manifest = open_index(self.settings, progress=progress, store=store)
        self.retriever = HybridRetriever(self.settings, self.store, self.manifest)
        self.extractive = ExtractiveAnswerer(self.settings, self.retriever)
        self._llm_lock = threading.Lock()
        self._llm = None

    # -- information -----------------------------------------------------
    def stats(self) -> dict:
        return self.manifest.stats()

    @property
    def manifest_data(self) -> Manifest:
        return self.manifest

    def resolve_mode(self, mode: str | None = None) -> str:
        mode = mode or self.settings.mode
        if mode == "auto":
            return "llm" if self.settings.llm_configured else "extractive"
        if mode not in ("llm", "extractive"):
            raise BadQuestion(f"unknown mode {mode!r}; use auto, llm or extractive")
        return mode

    def mode_label(self, mode: str | None = None) -> str:
        resolved = self.resolve_mode(mode)
        return f"llm ({self.settings.llm_model})" if resolved == "llm" else "extractive"

    # -- retrieval -------------------------------------------------------
    def search(
        self, query: str, k: int | None = None, kind: str = "hybrid", filters: Filters | None = None
    ) -> list[Hit]:
        return self.retriever.search(check_question(query), k=k, kind=kind, filters=filters)

    # -- answers ---------------------------------------------------------
    def ask(
        self,
        question: str,
        history: list[Turn] | None = None,
        mode: str | None = None,
        k: int | None = None,
        filters: Filters | None = None,
    ) -> Answer:
        answer = None
        for event in self.stream(question, history, mode, k, filters):
            if isinstance(event, Answer):
                answer = event
        assert answer is not None
        return answer

    def stream(
        self,
        question: str,
        history: list[Turn] | None = None,
        mode: str | None = None,
        k: int | None = None,
        filters: Filters | None = None,
    ) -> Iterator[str | Answer]:
        """Yield pieces of answer text as they are ready, then the final :class:`Answer`."""
        question = check_question(question)
        resolved = self.resolve_mode(mode)
        history = history or []
        if resolved == "llm":
            from bot.llm import stream_llm_answer

            yield from stream_llm_answer(self, question, history, k=k, filters=filters)
            return
        standalone = condense_heuristic(question, history)
        answer = self.extractive_answer(question, standalone, k=k, filters=filters)
        for i, sentence in enumerate(answer.sentences):
            yield ("" if i == 0 else " ") + sentence.text
        if answer.refused:
            yield answer.answer
        yield answer

    def retrieve_for(self, standalone: str, k: int | None = None, filters: Filters | None = None) -> Retrieval:
        """Hits, the query vector, the coverage score, and whether the abstracts are likely to answer it.

        The abstracts are taken to answer it when the top papers cover the
        question's words (:meth:`HybridRetriever.coverage`) to the refusal
        threshold; see evals/README.md.
        """
        vectors, pieces = self.retriever.encoder.encode_with_tokens([standalone])
        qvec = vectors[0]
        hits = self.retriever.search(standalone, k=k, filters=filters, query_vector=qvec)
        covered = self.retriever.coverage(pieces[0], [h.paper for h in hits[: self.settings.top_k]])
        return Retrieval(hits, qvec, covered, bool(hits) and covered >= self.settings.refusal_threshold)

    def extractive_answer(
        self, question: str, standalone: str, k: int | None = None, filters: Filters | None = None
    ) -> Answer:
        retrieval = self.retrieve_for(standalone, k=k, filters=filters)
        answer = refused_answer(question, standalone, retrieval, "extractive")
        if not retrieval.answered:
            return answer
        sentences, citations = self.extractive.answer(standalone, retrieval.hits, retrieval.query_vector)
        if not sentences:
            return answer
        answer.sentences, answer.citations, answer.refused = sentences, citations, False
        answer.answer = " ".join(s.text for s in sentences)
        return answer

    def as_query_engine(self, mode: str | None = None) -> PaperQueryEngine:
        return PaperQueryEngine(engine=self, mode=mode)


class PaperQueryEngine(CustomQueryEngine):
    """The engine as a LlamaIndex query engine (``.query(str) -> Response``)."""

    engine: Engine
    mode: str | None = None

    def custom_query(self, query_str: str) -> Response:
        started = time.perf_counter()
        answer = self.engine.ask(query_str, mode=self.mode)
        nodes = [
            NodeWithScore(node=TextNode(text=h.chunk_text, metadata={"title": h.paper.title}), score=h.similarity)
            for h in answer.hits
        ]
        meta = answer.to_dict() | {"seconds": time.perf_counter() - started}
        return Response(response=answer.answer, source_nodes=nodes, metadata=meta)
