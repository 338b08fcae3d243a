"""Plain data classes that cross module lines: papers, chunks, hits, answers, turns.

Everything here is data: no module of paperbot is imported, so every layer can
use these types (config/schema -> corpus -> indexing -> retrieval -> answering
-> summaries and evals -> app and cli).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# The one refusal sentence: extractive answers, LLM prompts and the UI all use it.
REFUSAL = "The indexed abstracts do not answer this question."
# When the abstracts are on topic but none states the kind of answer asked for (a figure, a date...).
NOT_STATED = "The indexed abstracts do not state {what}."
CONFIDENCE_LEVELS = ("high", "low", "refused")
LOW_CONFIDENCE = "This is the closest evidence in the abstracts; it may not answer the question."


@dataclass
class Turn:
    """One message of a conversation, as the UI keeps it."""

    role: str  # "user" or "assistant"
    content: str


@dataclass
class Paper:
    paper_id: str
    title: str
    abstract: str
    arxiv_id: str | None = None
    url: str | None = None
    year: int | None = None
    authors: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # source file names
    title_inferred: bool = False  # arXiv list entries carry no title
    doi: str | None = None
    # Example questions the paper answers, in a reader's words (doc2query; a `*.questions.jsonl`
    # file, bot.corpus). They widen the refusal rule's word-piece coverage and are never quoted.
    questions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        # asdict's recursive deep copy was 4 of the 18 s an index run spent adding 1,000 papers
        # to a 100,000-chunk library (its manifest parts and table hold every paper).
        out = {name: list(value) if isinstance(value, list) else value for name, value in vars(self).items()}
        if not self.questions:  # a paper without questions keeps the record (and manifest bytes) it had
            del out["questions"]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Paper:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in fields})


@dataclass
class Chunk:
    chunk_id: str
    paper_id: str
    text: str
    position: int  # index of the chunk within its paper

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class Hit:
    """A retrieved paper with its best-matching chunk."""

    paper: Paper
    score: float  # fused retrieval score (rank-based)
    similarity: float  # best dense cosine between the query and the paper's chunks
    chunk_text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "paper_id": self.paper.paper_id,
            "title": self.paper.title,
            "arxiv_id": self.paper.arxiv_id,
            "url": self.paper.url,
            "score": round(self.score, 4),
            "similarity": round(self.similarity, 4),
        }


@dataclass
class Retrieval:
    """The papers retrieved for a question and whether they are likely to answer it."""

    hits: list[Hit]
    query_vector: np.ndarray
    coverage: float  # how fully the top papers cover the question's words (the refusal rule's score)
    answered: bool  # coverage reaches the refusal threshold (or the reader's rule says so)
    reader: list[float] | None = None  # the reader's P(yes) for the top hits, when it read them
    # The top paper's sentences the reader rates highest, best first, when it read them.
    read_sentences: list[str] = field(default_factory=list)


@dataclass
class Citation:
    n: int
    paper_id: str
    title: str
    arxiv_id: str | None
    url: str | None
    quote: str
    score: float = 0.0
    verified: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Sentence:
    text: str
    citations: list[int]
    verified: bool = True


@dataclass
class Answer:
    question: str
    answer: str
    refused: bool
    mode: str
    citations: list[Citation] = field(default_factory=list)
    sentences: list[Sentence] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)  # closest papers, also when refused
    standalone_question: str | None = None
    notes: list[str] = field(default_factory=list)
    dangling_removed: int = 0
    # How fully the best retrieved paper covers the question (the refusal rule's score).
    coverage: float | None = None
    # "high", "low" (answered, but the evidence may not answer it: shown as such) or "refused".
    confidence: str = "refused"

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "refused": self.refused,
            "mode": self.mode,
            "citations": [c.to_dict() for c in self.citations],
            "sentences": [asdict(s) for s in self.sentences],
            "closest": [h.to_dict() for h in self.hits],
            "standalone_question": self.standalone_question,
            "notes": self.notes,
            "dangling_removed": self.dangling_removed,
            "coverage": None if self.coverage is None else round(self.coverage, 4),
            "confidence": self.confidence,
        }
