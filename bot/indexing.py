"""Chunk papers, embed the chunks and keep the Chroma index in step with the sources.

Consistency rule: a manifest record (the papers and the chunk ids that make up
the live index) is written in one Chroma upsert *after* every new chunk is
stored and *before* any old chunk is deleted. Readers only trust chunks named
in the manifest, so a build killed at any point leaves the previous index
whole and queryable, and the next run finishes the job.

Generations: each manifest written carries a generation number one above the
last, and every chunk is stored with the generation of the build that stored it
(metadata ``generation``). Readers query Chroma with ``generation <= manifest's``,
so chunks of an unfinished build never take a candidate slot. Every chunk a
manifest of generation >= 1 names carries a generation (the first such manifest
is written after the older chunks are tagged), so a re-index asks Chroma only
for chunks newer than the manifest instead of reading every chunk's tag.

The manifest is stored in parts (:meth:`Manifest.encode`): the head record names
its parts, each written before the head and never changed (a part's name is the
sha1 of its content), so a run that adds papers writes only the parts around them.

One writer per store: :func:`sync` holds :func:`writer_lock` (a file lock in the
store folder; for a Chroma server, one per host, port and collection on this
machine) while it reads the sources and writes; a second writer waits up to
``index_lock_timeout`` seconds, then fails with a message. Readers take no lock.

Chunk ids are unique: they hash the model, paper, title and chunk text, and an
abstract that repeats its own text gets a numbered id for each repeat.

The derived data queries load instead of recomputing (bot.derived: BM25 index,
piece IDF, chunk vectors, abstracts' sentences and their vectors) follow the
same rule: a generation named by the manifest's key is complete on disk before
the manifest is written, and the old one is removed only after.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from filelock import FileLock, Timeout

from bot import derived, latex
from bot.config import MANIFEST_SUFFIX, Settings
from bot.corpus import (
    SUPPORTED_SUFFIXES,
    CorpusReport,
    Problem,
    SourceCache,
    SourceError,
    load_corpus,
    source_counts,
)
from bot.embedding import MODEL_NAME, get_encoder
from bot.errors import UserError
from bot.schema import Chunk, Paper

if TYPE_CHECKING:  # llama-index takes seconds to import; `stats` and the manifest need none of it
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import TextNode

MANIFEST_ID = "manifest"
# A small record beside the manifest naming its key, written in the same upsert: Chroma reads a
# record's document with its metadata, and a 100,000-chunk manifest document took 26 s to get.
MANIFEST_KEY_ID = "manifest-key"
# The manifest's papers and chunks, in parts named by the sha1 of their content (MANIFEST_PART_PREFIX + sha1);
# the record MANIFEST_ID holds the small fields and the part names in order.
MANIFEST_PART_PREFIX = "manifest-part-"
FORMAT_VERSION = 2  # 2: manifests and chunks carry a generation
GENERATION_KEY = "generation"
LOCK_NAME = "paperbot-index.lock"
DELETE_BATCH = 500  # ids per Chroma get/update/delete call
PART_BATCH = 20  # manifest parts per Chroma call (a part is about a megabyte at 500 papers)
PART_FIELD = "part"  # the metadata field holding a part (zlib-compressed JSON, base64)


class IndexError_(UserError, RuntimeError):
    """The index is missing or unusable; the message says what to do."""


class NothingToIndex(UserError, ValueError):
    """The paths given to `paperbot index` held no readable entry; the index is unchanged."""


class NotRemembered(UserError, ValueError):
    """`--forget PATH` names a path the collection does not remember."""


class EmptyCollection(IndexError_):
    """A collection with no sources at all (a new one, before anything was indexed into it)."""


@dataclass
class Manifest:
    """The live index: its papers and chunks; ``key`` (not stored) is the sha1 of the stored document.

    Opened from a derived generation (:meth:`from_table`), ``papers`` and
    ``chunks`` are lazy sequences over its columns and ``table`` is set: code
    that reads every paper or chunk (a re-index) still can, code on the query
    path reads the columns.
    """

    papers: Sequence[Paper]
    chunks: Sequence[Chunk]
    report: dict[str, Any]
    extra_sources: list[str] = field(default_factory=list)
    model: str = MODEL_NAME
    chunking: dict[str, int] = field(default_factory=dict)
    version: int = FORMAT_VERSION
    generation: int = 0  # 0: an index from before generations; its chunks are not filtered by one
    key: str = field(default="", compare=False)
    table: derived.ManifestTable | None = field(default=None, compare=False, repr=False)
    paper_records: list[bytes] | None = field(default=None, compare=False, repr=False)  # see records()

    def to_json(self) -> str:
        data = {
            "version": self.version,
            "generation": self.generation,
            "model": self.model,
            "chunking": self.chunking,
            "extra_sources": self.extra_sources,
            "report": self.report,
            "papers": [p.to_dict() for p in self.papers],
            "chunks": [c.to_dict() for c in self.chunks],
        }
        return json.dumps(data, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, key: str | None = None) -> Manifest:
        """The manifest ``text`` holds (``key``: its sha1, when the caller already knows it)."""
        return cls.from_data(json.loads(text), key or derived.manifest_key(text))

    @classmethod
    def from_data(cls, data: dict[str, Any], key: str) -> Manifest:
        """The manifest of a parsed one-document manifest (the layout :meth:`to_json` writes)."""
        return cls(
            papers=[Paper.from_dict(p) for p in data["papers"]],
            chunks=[Chunk(**c) for c in data["chunks"]],
            report=data["report"],
            extra_sources=data.get("extra_sources", []),
            model=data["model"],
            chunking=data.get("chunking", {}),
            version=data.get("version", 0),
            generation=data.get("generation", 0),
            key=key,
        )

    def encode(self, part_papers: int) -> EncodedManifest:
        """The manifest as Chroma stores it: a head naming its parts, each part some papers and their chunks.

        Part boundaries depend on the papers alone (a paper whose id hashes to 0
        modulo ``part_papers`` ends a part), so papers added or removed change
        only the parts around them; unchanged parts keep their names and are
        not written again. Chunks are listed paper by paper, in paper order
        (:func:`chunk_papers` makes them so), so the parts keep the manifest's order.
        """
        chunks_of: dict[str, list[Chunk]] = {}
        for chunk in self.chunks:
            chunks_of.setdefault(chunk.paper_id, []).append(chunk)
        parts: dict[str, bytes] = {}
        names: list[str] = []
        papers: list[orjson.Fragment] = []
        chunks: list[dict[str, Any]] = []
        records = self.records()
        for i, paper in enumerate(self.papers):
            papers.append(orjson.Fragment(records[i]))  # serialized once, shared with the table
            chunks += [c.to_dict() for c in chunks_of.get(paper.paper_id, [])]
            if zlib.crc32(paper.paper_id.encode()) % part_papers == 0 or i == len(self.papers) - 1:
                # One call a part: one orjson call a chunk cost 0.5-1.4 s at 100,000 chunks, this 0.15 s.
                body = orjson.dumps({"papers": papers, "chunks": chunks}, option=orjson.OPT_SORT_KEYS)
                name = MANIFEST_PART_PREFIX + hashlib.sha1(body).hexdigest()
                parts[name] = body
                names.append(name)
                papers, chunks = [], []
        fields = asdict(self.head()) | {"parts": names}
        head = json.dumps(fields, sort_keys=True, ensure_ascii=False)
        return EncodedManifest(head, parts, derived.manifest_key(head))

    @classmethod
    def decode(cls, head: str, parts: dict[str, bytes], key: str) -> Manifest:
        """The manifest a head and its parts hold (:meth:`encode`'s inverse)."""
        data = json.loads(head)
        papers: list[Paper] = []
        chunks: list[Chunk] = []
        for name in data["parts"]:
            part = orjson.loads(parts[name])
            papers += [Paper.from_dict(p) for p in part["papers"]]
            chunks += [Chunk(**c) for c in part["chunks"]]
        return cls(
            papers=papers,
            chunks=chunks,
            report=data["report"],
            extra_sources=data["extra_sources"],
            model=data["model"],
            chunking=data["chunking"],
            version=data["version"],
            generation=data["generation"],
            key=key,
        )

    def records(self) -> list[bytes]:
        """The papers' stored records (:func:`bot.derived.paper_record`), made once: parts and table share them."""
        if self.paper_records is None:
            self.paper_records = [derived.paper_record(p) for p in self.papers]
        return self.paper_records

    def head(self) -> derived.TableHead:
        """The small fields, as the derived table stores them."""
        return derived.TableHead(
            self.report, self.extra_sources, self.model, self.chunking, self.version, self.generation
        )

    @classmethod
    def from_table(cls, table: derived.ManifestTable, key: str) -> Manifest:
        """The manifest generation ``key``'s table holds; papers and chunks are made when read."""
        head = table.head
        return cls(
            papers=derived.LazyRows(table.n_papers, table.paper),  # type: ignore[arg-type]
            chunks=derived.LazyRows(table.n_chunks, table.chunk),  # type: ignore[arg-type]
            report=head.report,
            extra_sources=head.extra_sources,
            model=head.model,
            chunking=head.chunking,
            version=head.version,
            generation=head.generation,
            key=key,
            table=table,
        )

    def chunk_ids(self) -> list[str]:
        return self.table.chunk_ids.all() if self.table is not None else [c.chunk_id for c in self.chunks]

    def same_text(self, papers: Sequence[Paper], records: Sequence[bytes]) -> set[str]:
        """The ids of ``papers`` (with their :meth:`records`) this manifest holds with the same title and abstract.

        From the table, a paper whose stored record is byte for byte the new one is
        the same without being decoded (decoding every record took 0.3 s at 45,000 papers).
        """
        if self.table is None:
            before = {p.paper_id: (p.title, p.abstract) for p in self.papers}
            return {p.paper_id for p in papers if before.get(p.paper_id) == (p.title, p.abstract)}
        stored = dict(zip(self.table.paper_ids.all(), self.table.paper_records(), strict=True))
        same = set()
        for paper, record in zip(papers, records, strict=True):
            old = stored.get(paper.paper_id)
            if old == record:
                same.add(paper.paper_id)
            elif old is not None:
                data = orjson.loads(old)
                if (data["title"], data["abstract"]) == (paper.title, paper.abstract):
                    same.add(paper.paper_id)
        return same

    def all_chunks(self) -> list[Chunk]:
        """Every chunk as an object (from the table's columns in one pass when it has one)."""
        return self.table.all_chunks() if self.table is not None else list(self.chunks)

    def stats(self) -> dict[str, Any]:
        return {
            "entries": self.report.get("entries", 0),
            "papers": len(self.papers),
            "chunks": len(self.chunks),
            "sources": self.table.source_counts() if self.table is not None else source_counts(list(self.papers)),
        }


@dataclass
class EncodedManifest:
    """A manifest as stored: the head document (its sha1 is the key) and its parts (name -> JSON)."""

    head: str
    parts: dict[str, bytes]
    key: str


@dataclass
class SyncResult:
    report: CorpusReport
    added: int = 0
    removed: int = 0
    unchanged: int = 0
    manifest_written: bool = False
    embed_seconds: float = 0.0  # the chunks' embedding
    sentence_seconds: float = 0.0  # the new papers' sentence and word-piece encoding (derived data)
    derived_seconds: float = 0.0  # the whole derived-data build, that encoding included
    total_seconds: float = 0.0
    manifest: Manifest | None = None


def chroma_client(settings: Settings):
    """Embedded persistent Chroma by default; a `chroma run` server when a host is set."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
    settings.store_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.store_dir), settings=chroma_settings)


def _client_and_names(settings: Settings) -> tuple[Any, set[str]]:
    try:
        client = chroma_client(settings)
        return client, {c.name for c in client.list_collections()}
    except Exception as exc:  # chromadb raises many types for a server that is down
        raise IndexError_(f"cannot open the {_where(settings)}: {exc}") from exc


def peek_manifest(settings: Settings) -> Manifest | None:
    """The collection's manifest, or None when it was never built; creates nothing."""
    if not settings.chroma_host and not settings.store_dir.is_dir():
        return None
    client, names = _client_and_names(settings)
    if settings.collection + MANIFEST_SUFFIX not in names:
        return None
    return Store(settings, client).load_manifest()


def _where(settings: Settings) -> str:
    if settings.chroma_host:
        return f"Chroma server at {settings.chroma_host}:{settings.chroma_port}"
    return f"Chroma store at {settings.store_dir}"


def hnsw_metadata(settings: Settings) -> dict[str, Any]:
    """The chunk collection's HNSW settings, as Chroma reads them when it creates the collection."""
    return {
        "hnsw:space": "cosine",
        "hnsw:construction_ef": settings.hnsw_ef_construction,
        "hnsw:search_ef": settings.hnsw_ef_search,
        "hnsw:M": settings.hnsw_max_neighbors,
    }


class Store:
    """The two Chroma collections: chunks (with embeddings) and the manifest."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self.settings = settings
        try:
            self.client = client or chroma_client(settings)
            self.chunks = self.client.get_or_create_collection(
                settings.collection, metadata=hnsw_metadata(settings), embedding_function=None
            )
            self._apply_ef_search()
            self.meta = self.client.get_or_create_collection(
                settings.collection + MANIFEST_SUFFIX, embedding_function=None
            )
        except Exception as exc:  # chromadb raises many types for a server that is down
            raise IndexError_(f"cannot open the {_where(settings)}: {exc}") from exc

    def _apply_ef_search(self) -> None:
        """An existing collection gets the configured ef_search (the only HNSW setting Chroma can change)."""
        hnsw = (self.chunks.configuration or {}).get("hnsw") or {}
        if hnsw.get("ef_search") not in (None, self.settings.hnsw_ef_search):
            self.chunks.modify(configuration={"hnsw": {"ef_search": self.settings.hnsw_ef_search}})

    def load_manifest(self, retries: int = 2) -> Manifest | None:
        """The live manifest: the record names its key; the derived data's table of it is read when present.

        Reading a large document out of Chroma is slow (0.3-1 s for a 10,000-chunk
        manifest, 26 s for 100,000 on a loaded machine), and parsing it into objects
        took 7.7 s at 100,000 chunks; the table maps in milliseconds. The table
        holds the manifest whose sha1 is the key, so it cannot disagree with the record.
        """
        key = self.manifest_key()
        root = derived.derived_root(self.settings)
        if key and derived.Derived.exists(root, key):
            return Manifest.from_table(derived.ManifestTable(derived.generation_dir(root, key) / "table"), key)
        got = self.meta.get(ids=[MANIFEST_ID], include=["documents"])
        if not got["ids"]:
            return None
        head = got["documents"][0]
        data = json.loads(head)
        if "parts" not in data:  # a manifest stored as one document (before parts)
            return Manifest.from_data(data, key or derived.manifest_key(head))
        parts: dict[str, bytes] = {}
        for start in range(0, len(data["parts"]), PART_BATCH):
            got = self.meta.get(ids=data["parts"][start : start + PART_BATCH], include=["metadatas"])
            for name, meta in zip(got["ids"], got["metadatas"], strict=True):
                parts[name] = zlib.decompress(base64.b64decode(meta[PART_FIELD]))
        if len(parts) < len(set(data["parts"])):
            # A writer replaced the head and removed its old parts while this read: read the new one.
            if retries:
                return self.load_manifest(retries - 1)
            raise IndexError_(f"the manifest in the {_where(self.settings)} names parts it does not hold")
        return Manifest.decode(head, parts, key or derived.manifest_key(head))

    def manifest_key(self) -> str | None:
        """The live manifest's key (the small record beside it), or None before the first build."""
        got = self.meta.get(ids=[MANIFEST_KEY_ID], include=["documents"])
        return got["documents"][0] if got["ids"] else None

    def write_manifest(self, encoded: EncodedManifest) -> None:
        """Store a manifest: its new parts, then the head and its key (with the last parts, in one upsert).

        Parts already stored are not written again: an index run that adds papers
        writes the parts around them. Parts go in a metadata field, compressed:
        Chroma indexes documents for full-text search, and a 140 MB manifest
        document took 150-230 s to upsert (a 0.66 MB compressed part in metadata
        0.14 s; evals/bench_scale_report.md). Parts the head does not name are
        removed after it is written (a reader that lost the race reads the new head).
        """
        names = list(encoded.parts)
        stored = set()
        for start in range(0, len(names), PART_BATCH):
            stored.update(self.meta.get(ids=names[start : start + PART_BATCH], include=[])["ids"])
        todo = [name for name in names if name not in stored]
        # The last batch of parts goes in the head's own upsert (one transaction: parts and head land
        # together). Every write to this collection costs time in proportion to what it holds (0.19 s
        # a call with 100 parts stored, 5 ms in the chunks' collection), so calls are few.
        batches = [todo[start : start + PART_BATCH] for start in range(0, len(todo), PART_BATCH)] or [[]]
        for i, batch in enumerate(batches):
            last = i == len(batches) - 1
            heads = [MANIFEST_ID, MANIFEST_KEY_ID] if last else []
            self.meta.upsert(
                ids=batch + heads,
                documents=[""] * len(batch) + ([encoded.head, encoded.key] if last else []),
                metadatas=[{PART_FIELD: base64.b64encode(zlib.compress(encoded.parts[n])).decode()} for n in batch]
                + [None] * len(heads),
                embeddings=[[0.0]] * (len(batch) + len(heads)),
            )
        keep = set(names)
        gone = [i for i in self.meta.get(include=[])["ids"] if i.startswith(MANIFEST_PART_PREFIX) and i not in keep]
        for start in range(0, len(gone), PART_BATCH):
            self.meta.delete(ids=gone[start : start + PART_BATCH])

    def chunk_ids(self) -> set[str]:
        return set(self.chunks.get(include=[])["ids"])

    def stored_ids(self, manifest: Manifest | None) -> set[str]:
        """The chunk ids Chroma holds, without listing them when the manifest's ids are all of them.

        Every chunk a manifest names is stored (the consistency rule), so when
        Chroma counts as many chunks as the manifest names, it holds exactly those;
        a killed build's leftovers or a store of an older format get a full listing
        (0.2-0.5 s for 100,000 ids).
        """
        if manifest is not None and manifest.generation > 0:
            named = set(manifest.chunk_ids())
            if self.chunks.count() == len(named):
                return named
        return self.chunk_ids()

    def put_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray, generation: int) -> None:
        """Store chunks with their vectors and the generation of the build storing them.

        Only ids, vectors and small metadata: queries read ids and distances, and a
        chunk's text and paper come from the manifest. Chroma indexes documents for
        full-text search and kept LlamaIndex's node layout as metadata; without
        them, 2,186 chunks went into a 100,000-chunk collection in 1.2 s instead of
        2.8-3.3 s (0.7 s for the vectors alone).
        """
        self.chunks.upsert(
            ids=[c.chunk_id for c in chunks],
            embeddings=vectors,
            metadatas=[{"paper_id": c.paper_id, "position": c.position, GENERATION_KEY: generation} for c in chunks],
        )

    def embeddings(self, ids: list[str]) -> np.ndarray:
        """Embeddings of ``ids`` in that order."""
        out = np.zeros((len(ids), 384), dtype=np.float32)
        pos = {cid: i for i, cid in enumerate(ids)}
        for start in range(0, len(ids), DELETE_BATCH):
            got = self.chunks.get(ids=ids[start : start + DELETE_BATCH], include=["embeddings"])
            for cid, emb in zip(got["ids"], got["embeddings"], strict=True):
                out[pos[cid]] = emb
        return out


def splitter(settings: Settings, texts: Sequence[str] = ()) -> SentenceSplitter:
    """LlamaIndex's SentenceSplitter, counting MiniLM word pieces.

    ``texts`` (the abstracts about to be split) get their sentences and word
    pieces worked out up front, the pieces in one batch: the splitter asks for
    them a text at a time (8,933 tokenizer calls for 1,000 abstracts, 0.9 s).
    The same functions answer, so the chunks are the same (tests/test_derived_fast.py).
    """
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.node_parser.text.utils import split_by_sentence_tokenizer

    encoder = get_encoder()
    sentences = split_by_sentence_tokenizer()  # the splitter's own default
    split_of = {text: sentences(text) for text in texts}
    known = list(dict.fromkeys(t for text, parts in split_of.items() for t in (text, *parts)))
    pieces = dict(zip(known, encoder.piece_ids(known), strict=True))
    return SentenceSplitter(
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        tokenizer=lambda text: pieces[text] if text in pieces else encoder.piece_ids([text])[0],
        chunking_tokenizer_fn=lambda text: split_of[text] if text in split_of else sentences(text),
        include_metadata=False,
    )


def _chunk_id(*parts: object) -> str:
    return hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:20]


def chunking_of(settings: Settings) -> dict[str, int]:
    """The chunking parameters a manifest records (chunks are reused only under the same ones)."""
    return {"chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap}


def chunk_id_for(paper: Paper, text: str, repeat: int = 0) -> str:
    """A chunk's id: its model, paper, title and text (and which repeat of that text in the abstract)."""
    return _chunk_id(MODEL_NAME, paper.paper_id, paper.title, text, *([repeat] if repeat else []))


def chunk_papers(
    papers: list[Paper], settings: Settings, old: Manifest | None = None, records: Sequence[bytes] | None = None
) -> list[Chunk]:
    """Each paper's chunks, with ids unique across the corpus (a repeated chunk gets a numbered id).

    ``records``: the papers' :func:`bot.derived.paper_record`, when the caller has them.

    A paper ``old`` holds with the same id, title and abstract, chunked with the
    same model and parameters, keeps its chunks (splitting is the slow part of a
    re-index of a large library).
    """
    reusable: dict[str, list[Chunk]] = {}
    same: set[str] = set()
    if old is not None and old.model == MODEL_NAME and old.chunking == chunking_of(settings):
        same = old.same_text(papers, records if records is not None else [derived.paper_record(p) for p in papers])
        for chunk in old.all_chunks():
            reusable.setdefault(chunk.paper_id, []).append(chunk)
    fresh = [p for p in papers if p.paper_id not in same]
    split = splitter(settings, [p.abstract for p in fresh]) if fresh else None
    chunks: list[Chunk] = []
    taken: set[str] = set()
    for paper in papers:
        if paper.paper_id in same:
            chunks.extend(reusable.get(paper.paper_id, []))
            continue
        assert split is not None
        for position, text in enumerate(split.split_text(paper.abstract)):
            chunk_id = chunk_id_for(paper, text)
            repeat = 1
            while chunk_id in taken:  # the abstract repeats its own text
                chunk_id = chunk_id_for(paper, text, repeat)
                repeat += 1
            taken.add(chunk_id)
            chunks.append(Chunk(chunk_id=chunk_id, paper_id=paper.paper_id, text=text, position=position))
    return chunks


# How a node shows its metadata and text (LlamaIndex's templates): the title line, then the chunk.
METADATA_TEMPLATE = "{value}"
TEXT_TEMPLATE = "{metadata_str}\n{content}"


def to_node(chunk: Chunk, paper: Paper, validate: bool = True) -> TextNode:
    """A LlamaIndex node whose embedding text carries the title.

    ``validate=False`` skips pydantic's validation (``model_construct``) for data
    that is already valid (read from the manifest): the query path makes dozens of
    candidate nodes per search, and validating them was 2.4 of 6.1 s over 15
    searches at 100,000 chunks (evals/bench_scale_report.md).
    """
    from llama_index.core.schema import TextNode

    fields = dict(
        id_=chunk.chunk_id,
        text=chunk.text,
        metadata={"title": paper.title, "paper_id": paper.paper_id, "position": chunk.position},
        excluded_embed_metadata_keys=["paper_id", "position"],
        excluded_llm_metadata_keys=["paper_id", "position"],
        metadata_template=METADATA_TEMPLATE,
        text_template=TEXT_TEMPLATE,
    )
    return TextNode(**fields) if validate else TextNode.model_construct(**fields)


def embed_text(chunk: Chunk, paper: Paper) -> str:
    """The text a chunk is embedded and BM25-indexed by: its node's content in EMBED mode (title, then text).

    Formatted as TextNode.get_content formats it (the title is the only metadata
    the embedding sees), without making a node: 2,186 nodes took 0.1 s of an
    index run, twice (embedding, BM25). tests/test_derived_fast.py checks both agree.
    """
    title = METADATA_TEMPLATE.format(key="title", value=paper.title).strip()
    return TEXT_TEMPLATE.format(metadata_str=title, content=chunk.text).strip() if title else chunk.text


def _report_dict(report: CorpusReport) -> dict[str, Any]:
    return {
        "files": report.files,
        "entries": report.entries,
        "papers": report.papers,
        "merged": report.merged,
        "skipped": [str(p) for p in report.problems],
    }


def _within(file: Path, root: Path) -> bool:
    return file == root or root in file.parents


def _nothing_read(given: list[Path], report: CorpusReport) -> str:
    names = {file.name for file in report.read if any(_within(file, path) for path in given)}
    reasons = [str(problem) for problem in report.problems if problem.source in names]
    if not names:
        reasons = [f"{path}: no {'/'.join(sorted(SUPPORTED_SUFFIXES))} files" for path in given]
    return "; ".join(reasons or [f"{name}: no entries" for name in sorted(names)]) + " (the index is unchanged)"


def lock_path(settings: Settings) -> Path:
    """The writer lock's file: in the store folder, or for a server one per host, port and collection."""
    if settings.chroma_host:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{settings.chroma_host}-{settings.chroma_port}-{settings.collection}")
        return Path(tempfile.gettempdir()) / f"paperbot-{name}.lock"
    return settings.store_dir / LOCK_NAME


@contextmanager
def writer_lock(settings: Settings) -> Iterator[None]:
    """Hold the store's writer lock; wait for another writer up to ``index_lock_timeout`` seconds."""
    path = lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        where = _store_name(settings)
        print(
            f"paperbot: another `paperbot index` is writing the {where}; waiting for it "
            f"(at most {settings.index_lock_timeout:g} s, PAPERBOT_INDEX_LOCK_TIMEOUT)",
            file=sys.stderr,
            flush=True,
        )
        try:
            lock.acquire(timeout=settings.index_lock_timeout)
        except Timeout:
            raise IndexError_(
                f"another `paperbot index` kept the {where} locked for {settings.index_lock_timeout:g} s "
                f"(lock file {path}); try again when it has finished"
            ) from None
    try:
        yield
    finally:
        lock.release()


def _store_name(settings: Settings) -> str:
    if settings.chroma_host:
        return f"Chroma server at {settings.chroma_host}:{settings.chroma_port}"
    return f"Chroma store at {settings.store_dir}"


def _generations(store: Store, ids: set[str]) -> dict[str, tuple[int | None, dict[str, Any]]]:
    """Each stored chunk's generation (None before generations existed) and metadata."""
    out: dict[str, tuple[int | None, dict[str, Any]]] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), DELETE_BATCH):
        got = store.chunks.get(ids=ordered[start : start + DELETE_BATCH], include=["metadatas"])
        for cid, meta in zip(got["ids"], got["metadatas"], strict=True):
            out[cid] = ((meta or {}).get(GENERATION_KEY), dict(meta or {}))
    return out


def _tag_untagged(store: Store, untagged: dict[str, dict[str, Any]], generation: int) -> None:
    """Give chunks stored before generations existed (id -> metadata) the generation ``generation``."""
    items = sorted(untagged.items())
    for start in range(0, len(items), DELETE_BATCH):
        part = items[start : start + DELETE_BATCH]
        store.chunks.update(
            ids=[cid for cid, _ in part], metadatas=[meta | {GENERATION_KEY: generation} for _, meta in part]
        )


def sync(
    settings: Settings,
    paths: list[Path] | None = None,
    rebuild: bool = False,
    progress: bool = True,
    store: Store | None = None,
    forget: list[Path] | None = None,
) -> SyncResult:
    """Bring the index in line with the sources; embed only what is new. Holds the writer lock.

    ``paths`` are added to the collection's remembered sources, ``forget`` removed from them;
    remembered paths that no longer exist are dropped (reported). Paths given that hold no
    readable entry raise :class:`NothingToIndex` before anything is written.
    """
    with writer_lock(settings), _no_cycle_collection():
        return _sync(settings, paths, rebuild, progress, store, forget)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector: an index run makes millions of short-lived objects and few cycles.

    Each full collection walks every live object (the 100,000 chunks' records
    among them); with it paused, adding 1,000 papers to a 100,000-chunk library
    took 13.9 s instead of 16.2 beyond the model (evals/bench_scale_report.md).
    Whatever cycles the run left are collected when it ends.
    """
    import gc

    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _sync(
    settings: Settings,
    paths: list[Path] | None,
    rebuild: bool,
    progress: bool,
    store: Store | None,
    forget: list[Path] | None,
) -> SyncResult:
    from tqdm import tqdm

    started = time.perf_counter()
    given = [path.resolve() for path in paths or []]
    for path in given:  # before the store is touched: a typo changes nothing
        if not path.exists():
            raise SourceError(f"{path}: no such file or folder")
    store = store or Store(settings)
    old = store.load_manifest()
    generation = (old.generation if old else 0) + 1  # the generation this run writes, if it writes
    base = settings.base_sources.resolve() if settings.base_sources else None
    remembered = [Path(p) for p in (old.extra_sources if old else [])]
    for path in forget or []:
        if path.resolve() not in remembered:
            listed = ", ".join(map(str, remembered)) or "none"
            raise NotRemembered(f"{path} is not a remembered source of collection {settings.collection!r} ({listed})")
        remembered.remove(path.resolve())
    # A remembered path that is gone (deleted, moved) loses its papers instead of blocking every run.
    gone = [path for path in remembered if not path.exists()]
    remembered = [path for path in remembered if path.exists()]
    remembered += [path for path in dict.fromkeys(given) if path != base and path not in remembered]
    source_paths = [*([base] if base else []), *remembered]
    if not source_paths:
        raise EmptyCollection(
            f"collection {settings.collection!r} holds no papers yet: add some with "
            f"`paperbot index --collection {settings.collection} FILE`"
        )
    extra = [str(path) for path in remembered]
    previous = derived.Derived.previous(derived.derived_root(settings), old.key) if old is not None else None
    if previous is not None:  # the last run's LaTeX conversions: unchanged sources are not parsed again
        latex.remember(previous.conversions(latex.conversion_version()))
    cache = SourceCache(derived.source_cache_dir(settings))
    papers, report = load_corpus(source_paths, settings.max_abstract_chars, cache)
    if given and not any(n for file, n in report.read.items() if any(_within(file, path) for path in given)):
        raise NothingToIndex(_nothing_read(given, report))
    report.problems[:0] = [
        Problem(str(path), None, "is gone: its papers were removed and the path forgotten") for path in gone
    ]
    by_id = {p.paper_id: p for p in papers}
    records = [derived.paper_record(p) for p in papers]  # serialized once: chunk reuse, parts and table
    chunks = chunk_papers(papers, settings, old=None if rebuild else old, records=records)
    existing = store.stored_ids(old)
    todo = chunks if rebuild else [c for c in chunks if c.chunk_id not in existing]
    result = SyncResult(report=report, unchanged=len(chunks) - len(todo))
    fresh: dict[str, np.ndarray] = {}  # this run's chunk vectors, for the derived data

    if todo:
        encoder = get_encoder()
        batch = max(settings.embed_batch_size, 1)
        embed_started = time.perf_counter()
        pending: list[Chunk] = []

        def store_pending() -> None:
            store.put_chunks(pending, np.stack([fresh[c.chunk_id] for c in pending]), generation)
            pending.clear()

        # Chroma takes the new chunks in large batches: one call per 32 chunks cost 2.4x the time of
        # one call for all (2,186 chunks into a 100,000-chunk collection: 6.3 s against 2.6 s).
        upsert_batch = min(max(settings.chroma_upsert_batch, 1), store.client.get_max_batch_size())
        with tqdm(total=len(todo), desc="Embedding chunks", unit="chunk", disable=not progress) as bar:
            for start in range(0, len(todo), batch):
                part = todo[start : start + batch]
                texts = [embed_text(c, by_id[c.paper_id]) for c in part]
                vectors = encoder.encode(texts, batch_size=batch)
                fresh.update(zip([c.chunk_id for c in part], vectors, strict=True))
                pending += part
                if len(pending) >= upsert_batch:
                    store_pending()
                bar.update(len(part))
            if pending:
                store_pending()
        result.embed_seconds = time.perf_counter() - embed_started
        result.added = len(todo)

    live = {c.chunk_id for c in chunks}
    manifest = Manifest(
        papers,
        chunks,
        _report_dict(report),
        extra,
        chunking=chunking_of(settings),
        generation=generation,
        paper_records=records,
    )
    kept = live & existing
    if old is None or old.generation == 0:  # chunks from before generations: read every tag
        tags = _generations(store, kept)
        newer = {cid for cid, (gen, _) in tags.items() if gen is not None and old is not None and gen > old.generation}
        untagged = {cid: meta for cid, (gen, meta) in tags.items() if gen is None}
    else:  # every chunk a manifest with a generation names carries one: ask Chroma for the newer ones only
        newer = set(store.chunks.get(where={GENERATION_KEY: {"$gt": old.generation}}, include=[])["ids"]) & kept
        untagged = {}
    # A kept chunk that a killed run re-stored carries a newer generation than the manifest: write anew.
    tags_fit = old is not None and not newer and not untagged
    if not todo and tags_fit and old.to_json() == replace(manifest, generation=old.generation).to_json():
        manifest = old
        stats = write_derived(settings, store, manifest, progress=progress)  # there already, unless removed
        if previous is not None:  # the next run reuses this one's LaTeX conversions (about 2 s for 250 texts)
            previous.keep_conversions(latex.conversion_version(), latex.conversions())
    else:
        encoded = manifest.encode(settings.manifest_part_papers)
        manifest.key = encoded.key
        # Before the manifest names it (the consistency rule): a killed build leaves the old generation.
        conversions = (latex.conversion_version(), latex.conversions())
        stats = write_derived(settings, store, manifest, old, by_id, fresh, progress, conversions)
        _tag_untagged(store, untagged, generation)
        store.write_manifest(encoded)
        result.manifest_written = True
    result.sentence_seconds, result.derived_seconds = stats.encode_seconds, stats.total_seconds
    # Another machine's writer (server mode) may have written since: never delete what the stored manifest names.
    if store.manifest_key() == manifest.key:
        keep = live
    else:
        current = store.load_manifest()
        keep = set(current.chunk_ids()) if current is not None else set()
    stale = sorted(existing - live - keep)
    for start in range(0, len(stale), DELETE_BATCH):
        store.chunks.delete(ids=stale[start : start + DELETE_BATCH])
    result.removed = len(stale)
    derived.collect_garbage(derived.derived_root(settings), manifest.key, settings.derived_tmp_grace_seconds)
    cache.prune()
    result.manifest = manifest
    result.total_seconds = time.perf_counter() - started
    return result


@dataclass
class CollectionInfo:
    name: str
    papers: int
    chunks: int
    sources: list[str]  # remembered paths (the base folder not included)


def list_collections(settings: Settings) -> list[CollectionInfo]:
    """The store's built collections (those with a manifest), by name; creates nothing."""
    if not settings.chroma_host and not settings.store_dir.is_dir():
        return []
    client, names = _client_and_names(settings)
    found = []
    for name in sorted(names):
        if name.endswith(MANIFEST_SUFFIX) or name + MANIFEST_SUFFIX not in names:
            continue
        manifest = Store(settings.model_copy(update={"collection": name}), client).load_manifest()
        if manifest is not None:
            found.append(CollectionInfo(name, len(manifest.papers), len(manifest.chunks), manifest.extra_sources))
    return found


def require_papers(manifest: Manifest, settings: Settings) -> None:
    """Raise a clear error when the index holds no papers (nothing can be searched or answered)."""
    if not manifest.chunks:
        raise IndexError_(
            f"the index is empty: collection {settings.collection!r} holds no papers; "
            "add papers with `paperbot index FILE` (JSONL, CSV, BibTeX or listing pages)"
        )


def write_derived(
    settings: Settings,
    store: Store,
    manifest: Manifest,
    old: Manifest | None = None,
    by_id: dict[str, Paper] | None = None,
    fresh: dict[str, np.ndarray] | None = None,
    progress: bool = False,
    conversions: tuple[str, dict[str, str]] | None = None,
) -> derived.BuildStats:
    """Write the derived data of ``manifest`` unless they exist, reusing ``old``'s generation.

    ``conversions``: the LaTeX conversions of the sources this run read (bot.latex), kept for the next run.
    """
    root = derived.derived_root(settings)
    if derived.Derived.exists(root, manifest.key):
        return derived.BuildStats()
    by_id = by_id or {p.paper_id: p for p in manifest.papers}
    fresh = fresh or {}
    # The old manifest's generation; opening a store whose generation is of an older format, the
    # same manifest's older generation (its segments and chunk vectors are reused, not recomputed).
    previous = derived.Derived.previous(root, (old or manifest).key)

    def vectors(ids: list[str]) -> np.ndarray:
        from_store = store.embeddings([i for i in ids if i not in fresh])
        rows = iter(from_store)
        return np.stack([fresh[i] if i in fresh else next(rows) for i in ids])

    return derived.build(
        root,
        manifest.key,
        manifest.head(),
        manifest.papers,
        manifest.chunks,
        chunk_text=lambda c: embed_text(c, by_id[c.paper_id]),
        chunk_vectors=vectors,
        encoder=get_encoder(),
        previous=previous,
        progress=progress,
        segment_papers=settings.derived_segment_papers,
        batch_size=settings.embed_batch_size,
        conversions=conversions,
        records=manifest.records(),
    )


def open_index(settings: Settings, progress: bool = True, store: Store | None = None) -> tuple[Store, Manifest]:
    """The store and its manifest, building the index first when there is none."""
    store = store or Store(settings)
    manifest = store.load_manifest()
    if manifest is None:
        manifest = sync(settings, progress=progress, store=store).manifest
    assert manifest is not None
    if manifest.model != MODEL_NAME:
        raise IndexError_(
            f"the index was built with {manifest.model}, this paperbot embeds with {MODEL_NAME}: "
            "run `paperbot index --rebuild`"
        )
    # A store written before the derived data existed (or elsewhere, for a Chroma server) gets them once.
    write_derived(settings, store, manifest, progress=progress)
    return store, manifest
