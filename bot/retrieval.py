"""Hybrid retrieval: dense (Chroma) plus BM25, fused by LlamaIndex, grouped to papers.

Start-up loads, it does not compute: the manifest's columns, the BM25 index, the
piece IDF, the chunk vectors and every abstract's sentences, sentence vectors and
word-piece vectors come from the manifest generation's derived data
(bot.derived), memory-mapped. A ``Paper`` is made when a query reads it; the
per-paper and per-chunk lookups are arrays over the table's rows.

The query path makes LlamaIndex nodes only from manifest data, without
validation (:func:`bot.indexing.to_node` with ``validate=False``): both
retrievers make a candidate's node the same way, so fusion sums a chunk's two
scores as before.

The dense search ranks chunks by the question's vector mapped through the query adapter
(:mod:`bot.adapter`); everything else reads the encoder's own question vector.

A paper whose name (its title before a colon: "EpiCoder", "Align Your Steps") the query spells out is ranked
first among the fused candidates (``name_first``, :func:`names_paper`); only the candidates' titles are read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from llama_index.core.bridge.pydantic import Field
from llama_index.core.llms import MockLLM
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.retrievers import BaseRetriever, QueryFusionRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from bot.adapter import load as load_adapter
from bot.config import Settings
from bot.derived import NO_YEAR, Derived, ManifestTable, bm25_tokenize, derived_root, english_stemmer
from bot.embedding import DIMENSION, TokenVectors, get_encoder
from bot.indexing import GENERATION_KEY, Manifest, Store, to_node
from bot.latex import search_text
from bot.schema import Chunk, Hit, Paper
from bot.text import stopwords

RETRIEVER_KINDS = ("hybrid", "dense", "bm25")

# A paper's name: what its title says before a colon ("EpiCoder: Encompassing Diversity ..."), one to four words.
_TITLE_NAME = re.compile(r"^\s*(?P<name>[^:]{2,60}?)\s*:\s*\S")
_NAME_WORDS = 4


def title_name(title: str) -> str | None:
    """The name a paper's title gives it before a colon, or None (no colon, or more than a few words before it)."""
    match = _TITLE_NAME.match(title)
    if match is None or len(match["name"].split()) > _NAME_WORDS:
        return None
    return match["name"]


def names_paper(query: str, title: str) -> bool:
    """Whether ``query`` spells out the paper's name (:func:`title_name`) as it is written, a whole word or phrase
    ("DPM-Solver" is not "DPM-Solver++"). In its own case only: "simplex" and "freedom" are words, SimpleX and
    FreeDoM names (all 3,387 questions of evals/: read in any case, 8 lost their answering paper's first place)."""
    name = title_name(title)
    return name is not None and re.search(rf"(?<![\w+-]){re.escape(name)}(?![\w+-])", query) is not None


@dataclass
class PaperScores:
    """Every paper's best-chunk match for one query, by dense cosine and by BM25 (same order as ``paper_ids``)."""

    paper_ids: list[str]
    dense: np.ndarray
    sparse: np.ndarray
    questions: np.ndarray  # the best example question's cosine; NaN for a paper without questions


@dataclass
class Filters:
    """Limits a user can put on the papers retrieved."""

    source: str | None = None  # a source file name
    year_from: int | None = None
    year_to: int | None = None

    def mask(self, table: ManifestTable, source_papers: np.ndarray) -> np.ndarray:
        """Which of the table's papers the filters allow (``source_papers``: the paper row of each source entry)."""
        allowed = np.ones(table.n_papers, dtype=bool)
        if self.source:
            allowed[:] = False
            if self.source in table.source_names:
                allowed[source_papers[table.source_index == table.source_names.index(self.source)]] = True
        known = table.year != NO_YEAR
        if self.year_from:
            allowed &= known & (table.year >= self.year_from)
        if self.year_to:
            allowed &= known & (table.year <= self.year_to)
        return allowed

    @property
    def active(self) -> bool:
        return bool(self.source or self.year_from or self.year_to)


class PaperMap(Mapping):
    """paper id -> :class:`Paper` over the manifest table, in manifest order; a Paper is made when read."""

    def __init__(self, table: ManifestTable, row_of: dict[str, int]) -> None:
        self._table = table
        self._row_of = row_of
        self._made: dict[str, Paper] = {}

    def __getitem__(self, paper_id: str) -> Paper:
        paper = self._made.get(paper_id)
        if paper is None:
            paper = self._made[paper_id] = self._table.paper(self._row_of[paper_id])
        return paper

    def __iter__(self) -> Iterator[str]:
        return iter(self._row_of)

    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, paper_id: object) -> bool:
        return paper_id in self._row_of


def _bundle_vector(query_bundle: QueryBundle, embed) -> np.ndarray:
    """The query's own (unadapted) vector: the bundle's, or embedded from its text."""
    return np.asarray(query_bundle.embedding) if query_bundle.embedding else embed(query_bundle.query_str)


class ChromaChunksRetriever(BaseRetriever):
    """Dense retrieval: Chroma's HNSW query for the query vector, keeping only chunks the manifest names.

    Scores are ``exp(-distance)``, as LlamaIndex's ChromaVectorStore gives them
    (fusion min-max scales them, so the transform matters); Chroma returns ids and
    distances only, and the node of a hit is made from the manifest.
    """

    def __init__(
        self, collection, where: dict | None, top_k: int, row_of: dict[str, int], node_at, embed, adapt
    ) -> None:
        super().__init__()
        self._collection = collection
        self._where = where
        self._top_k = top_k
        self._row_of = row_of
        self._node_at = node_at
        self._embed = embed
        self._adapt = adapt

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        raw = _bundle_vector(query_bundle, self._embed)
        query = self._adapt(raw).tolist()
        # Unfiltered first: Chroma's metadata filter costs a scan (one query at 100,000 chunks took
        # 395 ms median with `where`, 2.8 ms without, `evals/bench_scale_report.md`). Only when chunks
        # the manifest does not name (an unfinished build's) took candidate slots is the query repeated
        # with the generation filter, so that they take none.
        out, dropped = self._query(query, None)
        if dropped and self._where is not None:
            out, _ = self._query(query, self._where)
        return out

    def _query(self, query: list[float], where: dict | None) -> tuple[list[NodeWithScore], int]:
        """The live candidates of one Chroma query, and how many it returned that the manifest does not name."""
        got = self._collection.query(
            query_embeddings=[query], n_results=self._top_k, where=where, include=["distances"]
        )
        out = []
        for chunk_id, distance in zip(got["ids"][0], got["distances"][0], strict=True):
            row = self._row_of.get(chunk_id)
            if row is not None:  # a chunk of an unfinished or abandoned build is not trusted
                out.append(NodeWithScore.model_construct(node=self._node_at(row), score=math.exp(-distance)))
        return out, len(got["ids"][0]) - len(out)


class ChunkBM25Retriever(BaseRetriever):
    """BM25 over the manifest's chunks from the persisted bm25s index; nodes are made for the hits only.

    Tokenizes and scores as llama-index's BM25Retriever does (bot.derived's
    tokenization), so fused rankings are the same as building it from nodes.
    """

    def __init__(self, bm25, stemmer, top_k: int, node_of) -> None:
        super().__init__()
        self.bm25 = bm25
        self._stemmer = stemmer
        self._top_k = top_k
        self._node_of = node_of

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        tokens = bm25_tokenize(query_bundle.query_str, self._stemmer)
        indexes, scores = self.bm25.retrieve(tokens, k=self._top_k, show_progress=False)
        return [
            NodeWithScore.model_construct(node=self._node_of(int(i)), score=float(score))
            for i, score in zip(indexes[0], scores[0], strict=True)
        ]


class QuestionRetriever(BaseRetriever):
    """Dense search over the papers' example questions (doc2query): each paper by its closest question.

    A hit is the paper's chunk the dense search would rank first for it, so that fusion adds the
    question's score to that chunk's dense and BM25 scores.
    """

    def __init__(self, vectors: np.ndarray, papers: np.ndarray, n_papers: int, top_k: int, embed, chunk_of) -> None:
        super().__init__()
        self._vectors = vectors
        self._papers = papers
        self._n_papers = n_papers
        self._top_k = top_k
        self._embed = embed
        self._chunk_of = chunk_of

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        raw = _bundle_vector(query_bundle, self._embed)
        best = np.full(self._n_papers, -np.inf, dtype=np.float32)
        np.maximum.at(best, self._papers, self._vectors @ raw)
        top = np.argsort(-best, kind="stable")[: self._top_k]
        return [
            NodeWithScore.model_construct(node=self._chunk_of(int(paper), raw), score=float(best[paper]))
            for paper in top
            if np.isfinite(best[paper])
        ]


class PaperGrouper(BaseNodePostprocessor):
    """Keep each paper's best chunk, in fused order, applying the user's filters."""

    paper_of: dict[str, int] = Field(default_factory=dict)  # chunk id -> paper row
    allowed: np.ndarray | None = None  # bool per paper row
    top_k: int = 5

    model_config = {"arbitrary_types_allowed": True}

    @classmethod
    def class_name(cls) -> str:
        return "PaperGrouper"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        seen: set[int] = set()
        kept: list[NodeWithScore] = []
        for node in nodes:
            row = self.paper_of.get(node.node.node_id)
            if row is None or row in seen:
                continue
            if self.allowed is not None and not self.allowed[row]:
                continue
            seen.add(row)
            kept.append(node)
            if len(kept) >= self.top_k:
                break
        return kept


class HybridRetriever:
    """Builds the LlamaIndex retrievers over one index snapshot and ranks papers."""

    def __init__(self, settings: Settings, store: Store, manifest: Manifest) -> None:
        self.settings = settings
        self.manifest = manifest
        self._derived = Derived(derived_root(settings), manifest.key)
        table = self._derived.table
        assert table is not None, "a current-format generation has its table"
        self.table = table
        paper_ids = table.paper_ids.all()
        self._paper_ids = paper_ids
        self._paper_row = {pid: i for i, pid in enumerate(paper_ids)}
        self.papers = PaperMap(table, self._paper_row)
        self._chunk_ids = table.chunk_ids.all()
        self._chunk_row = {cid: i for i, cid in enumerate(self._chunk_ids)}
        self._chunk_paper = table.chunk_paper
        # Each paper's chunk rows: chunk_order[chunk_start[p]:chunk_start[p + 1]].
        self._chunk_order = np.argsort(table.chunk_paper, kind="stable")
        self._chunk_start = np.zeros(table.n_papers + 1, dtype=np.int64)
        np.cumsum(np.bincount(table.chunk_paper, minlength=table.n_papers), out=self._chunk_start[1:])
        self._source_papers = np.repeat(np.arange(table.n_papers), np.diff(table.source_offsets))
        self._encoder = get_encoder()
        self._adapter = load_adapter(settings.adapter, DIMENSION)
        self.piece_idf = self._derived.piece_idf()
        # Memory-mapped: rows are read when a paper's chunks are scored.
        self._matrix = self._derived.chunk_vectors
        self._question_vectors = self._derived.question_vectors
        self._question_papers = self._derived.question_papers
        k = settings.candidate_k
        # Chunks stored by a later, unfinished build carry a higher generation: Chroma leaves them out.
        live = {GENERATION_KEY: {"$lte": manifest.generation}} if manifest.generation else None
        self._dense = ChromaChunksRetriever(
            store.chunks, live, k, self._chunk_row, self._node_at, self.embed_query, self.dense_query
        )
        self._stemmer = english_stemmer()
        self._bm25 = ChunkBM25Retriever(self._derived.bm25(), self._stemmer, min(k, table.n_chunks), self._node_at)
        legs, weights = [self._dense, self._bm25], [settings.dense_weight, settings.sparse_weight]
        # Only when every paper has example questions: a leg that only some papers can score would favour them.
        asked = np.unique(self._question_papers)
        if settings.question_weight > 0 and len(asked) == table.n_papers:
            legs.append(
                QuestionRetriever(
                    self._question_vectors,
                    self._question_papers,
                    table.n_papers,
                    k,
                    self.embed_query,
                    lambda paper, raw: self._node_at(self._best_chunk_row(paper, self.dense_query(raw))[0]),
                )
            )
            weights.append(settings.question_weight)
        self._fused = QueryFusionRetriever(
            legs,
            llm=MockLLM(),  # only one query: the LLM that would rewrite it is never called
            # Min-max scaled score fusion beat reciprocal rank on both eval sets.
            mode="relative_score",
            num_queries=1,
            use_async=False,
            similarity_top_k=2 * k,
            retriever_weights=weights,
        )

    def _rows_of(self, paper_row: int) -> np.ndarray:
        return self._chunk_order[self._chunk_start[paper_row] : self._chunk_start[paper_row + 1]]

    def _node_at(self, row: int) -> TextNode:
        """Chunk ``row``'s node, from manifest data (not validated again)."""
        paper_row = int(self._chunk_paper[row])
        chunk = Chunk(
            self._chunk_ids[row],
            self._paper_ids[paper_row],
            self.table.chunk_text(row),
            int(self.table.chunk_position[row]),
        )
        return to_node(chunk, self.papers[chunk.paper_id], validate=False)

    def retriever(self, kind: str = "hybrid") -> BaseRetriever:
        return {"hybrid": self._fused, "dense": self._dense, "bm25": self._bm25}[kind]

    def years(self) -> list[int]:
        """The distinct publication years of the library's papers."""
        return sorted(int(y) for y in np.unique(self.table.year) if y != NO_YEAR)

    def _paper_pieces(self, paper: Paper) -> tuple[list[str], np.ndarray, np.ndarray]:
        """A paper's abstract sentences, their embeddings and its word-piece vectors, as stored at index time."""
        pieces = self._derived.pieces(self._paper_row[paper.paper_id])
        return pieces.sentences, pieces.sentence_vectors, pieces.piece_vectors

    def sentence_vectors(self, paper: Paper) -> tuple[list[str], np.ndarray]:
        """A paper's abstract sentences and their embeddings (computed at index time)."""
        sentences, vectors, _ = self._paper_pieces(paper)
        return sentences, vectors

    def closest_sentences(self, paper: Paper, query_vector: np.ndarray, n: int) -> list[str]:
        """The ``n`` abstract sentences of ``paper`` closest to the query (cosine), in the abstract's order."""
        sentences, vectors = self.sentence_vectors(paper)
        if not sentences:
            return []
        best = np.argsort(-(vectors @ query_vector))[:n]
        return [sentences[i] for i in sorted(int(i) for i in best)]

    def coverage(self, question: str | TokenVectors, papers: list[Paper]) -> float:
        """How fully the best of ``papers`` covers the question, word piece by word piece.

        Each content word piece of the question, read in context, is matched to its
        closest word piece anywhere in a paper's title or abstract sentences (late
        interaction, as in ColBERT, with the same MiniLM); the matches are averaged with
        IDF weights. A question about something the abstracts never discuss ("optical
        flow", "KV-cache compression") keeps a few pieces with no close match, however
        near its whole-sentence embedding sits; see evals/README.md ("The refusal rule").
        A paper's example questions count as its text too, less ``question_coverage_offset``.
        ``question`` may come as the pieces of the query's own embedding pass.
        """
        if isinstance(question, str):
            question = self._encoder.encode_with_tokens([search_text(question)])[1][0]
        keep = [i for i, word in enumerate(question.words) if word not in stopwords()]
        if not keep or not papers:
            return 0.0
        unseen = float(np.log(len(self.papers) + 1) + np.log(2))  # a piece no abstract uses
        weights = np.array([self.piece_idf.get(question.ids[i], unseen) for i in keep])
        query = question.vectors[keep].astype(np.float32)
        best = 0.0
        for paper in papers:
            matches = (query @ self._paper_pieces(paper)[2].astype(np.float32).T).max(axis=1)
            offset = self.settings.question_coverage_offset if paper.questions else 0.0
            best = max(best, float(weights @ matches / weights.sum()) - offset)
        return best

    def embed_query(self, text: str) -> np.ndarray:
        return self._encoder.encode([search_text(text)])[0]

    def dense_query(self, qvec: np.ndarray) -> np.ndarray:
        """The vector the dense search ranks chunks by: ``qvec`` through the query adapter, when it is on."""
        return qvec if self._adapter is None else self._adapter(qvec)

    def search(
        self,
        query: str,
        k: int | None = None,
        kind: str = "hybrid",
        filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """Ranked papers for ``query``; each with its best chunk and dense similarity."""
        k = k or self.settings.top_k
        query = search_text(query)  # the index holds display text; "KD^{3}" finds "KD^3"
        qvec = self.embed_query(query) if query_vector is None else query_vector
        bundle = QueryBundle(query_str=query, embedding=qvec.tolist())
        nodes = self.retriever(kind).retrieve(bundle)
        if self.settings.name_first:
            nodes = self._named_first(query, nodes)
        allowed = None
        if filters and filters.active:
            allowed = filters.mask(self.table, self._source_papers)
        grouper = PaperGrouper(paper_of=self._chunk_row_paper(nodes), allowed=allowed, top_k=k)
        grouped = grouper.postprocess_nodes(nodes, bundle)
        rows = [int(self._chunk_paper[self._chunk_row[n.node.node_id]]) for n in grouped]
        scores = [float(n.score or 0.0) for n in grouped]
        if allowed is not None and len(grouped) < k:
            for row, score in self._filtered_fallback(self.dense_query(qvec), allowed, k - len(rows), set(rows)):
                rows.append(row)
                scores.append(score)
        hits: list[Hit] = []
        for row, score in zip(rows, scores, strict=True):
            best_chunk, similarity = self._best_chunk_row(row, qvec)
            hits.append(Hit(self.papers[self._paper_ids[row]], score, similarity, self.table.chunk_text(best_chunk)))
        return hits

    def _named_first(self, query: str, nodes: list[NodeWithScore]) -> list[NodeWithScore]:
        """The candidates with the chunks of papers the query names by their title's name (:func:`names_paper`) first,
        in fused order otherwise: "EpiCoder HumanEval pass@1" asks about EpiCoder, whatever else scores higher."""
        rows = {n.node.node_id: self._chunk_row.get(n.node.node_id) for n in nodes}
        papers = {int(self._chunk_paper[r]) for r in rows.values() if r is not None}
        named = {p for p in papers if names_paper(query, self.table.paper(p).title)}
        if not named:
            return nodes

        def first(n: NodeWithScore) -> bool:
            row = rows[n.node.node_id]
            return row is not None and int(self._chunk_paper[row]) in named

        return [n for n in nodes if first(n)] + [n for n in nodes if not first(n)]

    def _chunk_row_paper(self, nodes: list[NodeWithScore]) -> dict[str, int]:
        """The candidates' chunk id -> paper row (what the grouper needs of the manifest)."""
        out = {}
        for n in nodes:
            row = self._chunk_row.get(n.node.node_id)
            if row is not None:
                out[n.node.node_id] = int(self._chunk_paper[row])
        return out

    def _filtered_fallback(
        self, qvec: np.ndarray, allowed: np.ndarray, k: int, have: set[int]
    ) -> list[tuple[int, float]]:
        """Up to ``k`` more allowed papers (rows, scores), by their best chunk's exact dense cosine.

        A narrow filter can leave the fused candidates short of k papers. Exact
        search over the allowed papers' chunks: the rows are gathered in storage
        order (the memory map reads each page once) and scored in float32.
        """
        allowed = allowed.copy()
        allowed[list(have)] = False
        rows = np.flatnonzero(allowed[self._chunk_paper])
        if not len(rows):
            return []
        sims = self._matrix[rows] @ qvec
        papers = self._chunk_paper[rows]
        best = np.full(self.table.n_papers, -np.inf, dtype=np.float32)
        np.maximum.at(best, papers, sims)
        top = np.flatnonzero(allowed)
        top = top[np.argsort(-best[top], kind="stable")[:k]]
        # Below every fused score (those are at most 1 and the fallback only fills up).
        return [(int(p), float(best[p]) / 100) for p in top]

    def _best_chunk_row(self, paper_row: int, qvec: np.ndarray) -> tuple[int, float]:
        rows = self._rows_of(paper_row)
        sims = self._matrix[rows] @ qvec
        best = int(np.argmax(sims))
        return int(rows[best]), float(sims[best])

    def best_chunk(self, paper_id: str, qvec: np.ndarray) -> tuple[str, float]:
        row, similarity = self._best_chunk_row(self._paper_row[paper_id], qvec)
        return self._chunk_ids[row], similarity

    def exact_dense(self, qvec: np.ndarray, k: int) -> list[str]:
        """The ``k`` chunk ids closest to ``qvec`` by exact search over every chunk vector (for recall checks)."""
        return [self._chunk_ids[i] for i in np.argsort(-(self._matrix @ qvec))[:k]]

    # -- the public API for answers, summaries and evals ---------------------------
    def paper(self, paper_id: str) -> Paper:
        return self.papers[paper_id]

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit MiniLM vectors of ``texts`` (the model that embedded the chunks)."""
        return self._encoder.encode(texts)

    def embed_question(self, text: str) -> tuple[np.ndarray, TokenVectors]:
        """The question's vector and, from the same model pass, its word-piece vectors."""
        vectors, pieces = self._encoder.encode_with_tokens([search_text(text)])
        return vectors[0], pieces[0]

    def hit_for(self, paper_id: str, qvec: np.ndarray, score: float = 0.0) -> Hit:
        """``paper_id`` as a hit for the query vector: its best chunk and that chunk's cosine."""
        row, similarity = self._best_chunk_row(self._paper_row[paper_id], qvec)
        return Hit(self.papers[paper_id], score, similarity, self.table.chunk_text(row))

    def score_papers(self, query: str, qvec: np.ndarray) -> PaperScores:
        """Every paper's best-chunk dense cosine and BM25 score, and its best example question's cosine, for ``query``.

        The chunks are scored with ``qvec`` through the query adapter (as the dense search ranks
        them), the example questions, written as a reader asks, with ``qvec`` itself.
        """
        has_chunks = np.flatnonzero(np.diff(self._chunk_start))
        paper_ids = [self._paper_ids[p] for p in has_chunks]
        query = search_text(query)
        dense_rows = self._matrix @ self.dense_query(qvec)
        words = bm25_tokenize([query], self._stemmer, return_ids=False)[0]
        # The BM25 index holds the manifest's chunks in order, the same rows as the matrix.
        sparse_rows = self._bm25.bm25.get_scores(words) if words else np.zeros(len(self._chunk_ids))
        starts = self._chunk_start[has_chunks]
        dense = np.maximum.reduceat(dense_rows[self._chunk_order], starts).astype(np.float64)
        sparse = np.maximum.reduceat(np.asarray(sparse_rows)[self._chunk_order], starts).astype(np.float64)
        best_question = np.full(self.table.n_papers, -np.inf)
        if len(self._question_papers):
            np.maximum.at(best_question, self._question_papers, self._question_vectors @ qvec)
        best_question[np.isneginf(best_question)] = np.nan
        return PaperScores(paper_ids, dense, sparse, best_question[has_chunks])

    def paper_vectors(self, paper_ids: list[str]) -> np.ndarray:
        """Each paper as the normalized mean of its chunk embeddings."""
        vectors = np.stack([self._matrix[self._rows_of(self._paper_row[p])].mean(axis=0) for p in paper_ids])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
