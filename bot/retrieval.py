"""Hybrid retrieval: dense (Chroma) plus BM25, fused by LlamaIndex, grouped to papers.

Start-up loads, it does not compute: the BM25 index, the piece IDF, the chunk
vectors and every abstract's sentences, sentence vectors and word-piece vectors
come from the manifest generation's derived data (bot.derived), memory-mapped.
Nothing here scales with the library at start but the manifest's own lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llama_index.core import VectorStoreIndex
from llama_index.core.bridge.pydantic import Field
from llama_index.core.llms import MockLLM
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.retrievers import BaseRetriever, QueryFusionRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores import FilterOperator, MetadataFilter, MetadataFilters
from llama_index.vector_stores.chroma import ChromaVectorStore

from bot.config import Settings
from bot.derived import Derived, bm25_tokenize, derived_root, english_stemmer
from bot.embedding import MiniLMEmbedding, TokenVectors, get_encoder
from bot.indexing import GENERATION_KEY, Manifest, Store, to_node
from bot.latex import search_text
from bot.schema import Hit, Paper
from bot.text import stopwords

RETRIEVER_KINDS = ("hybrid", "dense", "bm25")


@dataclass
class PaperScores:
    """Every paper's best-chunk match for one query, by dense cosine and by BM25 (same order as ``paper_ids``)."""

    paper_ids: list[str]
    dense: np.ndarray
    sparse: np.ndarray


@dataclass
class Filters:
    """Limits a user can put on the papers retrieved."""

    source: str | None = None  # a source file name
    year_from: int | None = None
    year_to: int | None = None

    def allows(self, paper: Paper) -> bool:
        if self.source and self.source not in paper.sources:
            return False
        if self.year_from and (paper.year is None or paper.year < self.year_from):
            return False
        if self.year_to and (paper.year is None or paper.year > self.year_to):
            return False
        return True

    @property
    def active(self) -> bool:
        return bool(self.source or self.year_from or self.year_to)


class LiveChunksRetriever(BaseRetriever):
    """Dense retrieval from Chroma that only trusts chunks named in the manifest."""

    def __init__(self, inner: BaseRetriever, live: set[str]) -> None:
        super().__init__()
        self._inner = inner
        self._live = live

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [n for n in self._inner.retrieve(query_bundle) if n.node.node_id in self._live]


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
            NodeWithScore(node=self._node_of(int(i)), score=float(score))
            for i, score in zip(indexes[0], scores[0], strict=True)
        ]


class PaperGrouper(BaseNodePostprocessor):
    """Keep each paper's best chunk, in fused order, applying the user's filters."""

    paper_of: dict[str, str] = Field(default_factory=dict)
    allowed: set[str] | None = None
    top_k: int = 5

    @classmethod
    def class_name(cls) -> str:
        return "PaperGrouper"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        seen: set[str] = set()
        kept: list[NodeWithScore] = []
        for node in nodes:
            paper_id = self.paper_of.get(node.node.node_id)
            if paper_id is None or paper_id in seen:
                continue
            if self.allowed is not None and paper_id not in self.allowed:
                continue
            seen.add(paper_id)
            kept.append(node)
            if len(kept) >= self.top_k:
                break
        return kept


class HybridRetriever:
    """Builds the LlamaIndex retrievers over one index snapshot and ranks papers."""

    def __init__(self, settings: Settings, store: Store, manifest: Manifest) -> None:
        self.settings = settings
        self.manifest = manifest
        self.papers = {p.paper_id: p for p in manifest.papers}
        self._chunk_ids = [c.chunk_id for c in manifest.chunks]
        self._paper_of = {c.chunk_id: c.paper_id for c in manifest.chunks}
        self._chunk_text = {c.chunk_id: c.text for c in manifest.chunks}
        self._chunks = {c.chunk_id: c for c in manifest.chunks}
        self._rows_of: dict[str, list[int]] = {}
        for i, c in enumerate(manifest.chunks):
            self._rows_of.setdefault(c.paper_id, []).append(i)
        self._encoder = get_encoder()
        self._derived = Derived(derived_root(settings), manifest.key)
        self._paper_row = {p.paper_id: i for i, p in enumerate(manifest.papers)}
        # Filters look papers up by year and source instead of testing every paper.
        self._by_year: dict[int, list[str]] = {}
        self._by_source: dict[str, list[str]] = {}
        for p in manifest.papers:
            if p.year is not None:
                self._by_year.setdefault(p.year, []).append(p.paper_id)
            for source in p.sources:
                self._by_source.setdefault(source, []).append(p.paper_id)
        self.piece_idf = self._derived.piece_idf()
        # Memory-mapped: rows are read when a paper's chunks are scored.
        self._matrix = self._derived.chunk_vectors
        self.embed_model = MiniLMEmbedding(batch_size=settings.embed_batch_size)
        k = settings.candidate_k
        vector_index = VectorStoreIndex.from_vector_store(
            ChromaVectorStore(chroma_collection=store.chunks),
            embed_model=self.embed_model,
            # Nothing is ingested through this index; naming its one transformation keeps LlamaIndex
            # from building its default splitter (and loading tiktoken, about a second).
            transformations=[self.embed_model],
        )
        # Chunks stored by a later, unfinished build carry a higher generation: Chroma leaves them out.
        live = (
            MetadataFilters(
                filters=[MetadataFilter(key=GENERATION_KEY, value=manifest.generation, operator=FilterOperator.LTE)]
            )
            if manifest.generation
            else None
        )
        dense = vector_index.as_retriever(similarity_top_k=k, filters=live)
        self._dense = LiveChunksRetriever(dense, set(self._chunk_ids))
        self._stemmer = english_stemmer()
        self._bm25 = ChunkBM25Retriever(
            self._derived.bm25(), self._stemmer, min(k, len(self._chunk_ids)), self._node_at
        )
        self._fused = QueryFusionRetriever(
            [self._dense, self._bm25],
            llm=MockLLM(),  # only one query: the LLM that would rewrite it is never called
            # Min-max scaled score fusion beat reciprocal rank on both eval sets.
            mode="relative_score",
            num_queries=1,
            use_async=False,
            similarity_top_k=2 * k,
            retriever_weights=[settings.dense_weight, settings.sparse_weight],
        )

    def _allowed(self, filters: Filters) -> set[str]:
        """The papers ``filters`` allow: :meth:`Filters.allows` decides, the year and source lists narrow what it sees."""
        candidates: set[str] | None = None
        if filters.source:
            candidates = set(self._by_source.get(filters.source, ()))
        if filters.year_from or filters.year_to:
            lo, hi = (
                filters.year_from or min(self._by_year, default=0),
                filters.year_to or max(self._by_year, default=0),
            )
            in_years = {pid for year in range(lo, hi + 1) for pid in self._by_year.get(year, ())}
            candidates = in_years if candidates is None else candidates & in_years
        pool = self.papers.keys() if candidates is None else candidates
        return {pid for pid in pool if filters.allows(self.papers[pid])}

    def _node_at(self, row: int) -> TextNode:
        chunk = self.manifest.chunks[row]
        return to_node(chunk, self.papers[chunk.paper_id])

    def retriever(self, kind: str = "hybrid") -> BaseRetriever:
        return {"hybrid": self._fused, "dense": self._dense, "bm25": self._bm25}[kind]

    def _paper_pieces(self, paper: Paper) -> tuple[list[str], np.ndarray, np.ndarray]:
        """A paper's abstract sentences, their embeddings and its word-piece vectors, as stored at index time."""
        pieces = self._derived.pieces(self._paper_row[paper.paper_id])
        return pieces.sentences, pieces.sentence_vectors, pieces.piece_vectors

    def sentence_vectors(self, paper: Paper) -> tuple[list[str], np.ndarray]:
        """A paper's abstract sentences and their embeddings (computed at index time)."""
        sentences, vectors, _ = self._paper_pieces(paper)
        return sentences, vectors

    def coverage(self, question: str | TokenVectors, papers: list[Paper]) -> float:
        """How fully the best of ``papers`` covers the question, word piece by word piece.

        Each content word piece of the question, read in context, is matched to its
        closest word piece anywhere in a paper's title or abstract sentences (late
        interaction, as in ColBERT, with the same MiniLM); the matches are averaged with
        IDF weights. A question about something the abstracts never discuss ("optical
        flow", "KV-cache compression") keeps a few pieces with no close match, however
        near its whole-sentence embedding sits; see evals/README.md ("The refusal rule").
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
            best = max(best, float(weights @ matches / weights.sum()))
        return best

    def embed_query(self, text: str) -> np.ndarray:
        return self._encoder.encode([search_text(text)])[0]

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
        allowed = None
        if filters and filters.active:
            allowed = self._allowed(filters)
        grouper = PaperGrouper(paper_of=self._paper_of, allowed=allowed, top_k=k)
        grouped = grouper.postprocess_nodes(nodes, bundle)
        if allowed is not None and len(grouped) < k:
            grouped += self._filtered_fallback(qvec, allowed, k, {self._paper_of[n.node.node_id] for n in grouped})
            grouped = grouped[:k]
        hits: list[Hit] = []
        for node in grouped:
            paper_id = self._paper_of[node.node.node_id]
            best_chunk, similarity = self.best_chunk(paper_id, qvec)
            hits.append(Hit(self.papers[paper_id], float(node.score or 0.0), similarity, self._chunk_text[best_chunk]))
        return hits

    def _filtered_fallback(self, qvec: np.ndarray, allowed: set[str], k: int, have: set[str]) -> list[NodeWithScore]:
        # A narrow filter can leave the fused candidates short of k papers;
        # rank the allowed papers' chunks densely to fill up.
        rows = sorted(row for pid in allowed - have for row in self._rows_of[pid])
        if not rows:
            return []
        sims = self._matrix[rows] @ qvec
        out: list[NodeWithScore] = []
        seen = set(have)
        for idx in np.argsort(-sims):
            cid = self._chunk_ids[rows[idx]]
            if self._paper_of[cid] in seen:
                continue
            seen.add(self._paper_of[cid])
            chunk = self._chunks[cid]
            out.append(NodeWithScore(node=to_node(chunk, self.papers[chunk.paper_id]), score=float(sims[idx]) / 100))
            if len(out) >= k:
                break
        return out

    def best_chunk(self, paper_id: str, qvec: np.ndarray) -> tuple[str, float]:
        rows = self._rows_of[paper_id]
        sims = self._matrix[rows] @ qvec
        best = int(np.argmax(sims))
        return self._chunk_ids[rows[best]], float(sims[best])

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
        chunk_id, similarity = self.best_chunk(paper_id, qvec)
        return Hit(self.papers[paper_id], score, similarity, self._chunk_text[chunk_id])

    def score_papers(self, query: str, qvec: np.ndarray) -> PaperScores:
        """Every paper's best-chunk dense cosine and best-chunk BM25 score for ``query``."""
        paper_ids = list(self._rows_of)
        query = search_text(query)
        dense_rows = self._matrix @ qvec
        words = bm25_tokenize([query], self._stemmer, return_ids=False)[0]
        # The BM25 index holds the manifest's chunks in order, the same rows as the matrix.
        sparse_rows = self._bm25.bm25.get_scores(words) if words else np.zeros(len(self._chunk_ids))
        dense = np.array([float(dense_rows[self._rows_of[p]].max()) for p in paper_ids])
        sparse = np.array([float(sparse_rows[self._rows_of[p]].max()) for p in paper_ids])
        return PaperScores(paper_ids, dense, sparse)

    def paper_vectors(self, paper_ids: list[str]) -> np.ndarray:
        """Each paper as the normalized mean of its chunk embeddings."""
        vectors = np.stack([self._matrix[self._rows_of[p]].mean(axis=0) for p in paper_ids])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
