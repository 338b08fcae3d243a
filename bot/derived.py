"""What queries need, computed once at index time and memory-mapped at start ("derived data").

Per manifest generation (named by the sha1 of the manifest document, its *key*),
``<store_dir>/derived/<collection>/gen-<key>/`` holds (with a Chroma server: a
local cache folder, see :func:`derived_root`; a machine without it builds it
once, from the manifest and the stored vectors, when it opens the index):

- ``chunk_vectors.npy``: the chunk embeddings (float32) in manifest chunk order;
- ``bm25/``: the bm25s index of the chunks' embedding texts, in the same order;
- ``piece_df.npz``: in how many papers each word piece occurs (the coverage IDF);
- ``manifest.json``: a copy of the manifest document (faster to read than Chroma's);
- ``papers.npy``: for each manifest paper, the segment and row holding its
  abstract sentences, their vectors and its word-piece vectors.

Those per-paper data live in immutable *segments* (``seg-<id>/``) shared by
generations, so adding papers writes only a segment for the new ones.

Invariants:

- A generation and its segments are complete before the manifest names them:
  each is written to a temporary name and renamed into place, and
  :func:`bot.indexing.sync` writes them before it writes the manifest. A build
  killed at any point leaves the old generation, which the old manifest names.
- What is not referenced by the live generation is removed only after the
  manifest moved on (:func:`collect_garbage`); a process still reading an old
  generation keeps its memory maps (POSIX unlink semantics).
- The per-paper data are exactly what the query path computed before they were
  stored: :func:`paper_pieces` is the one place that encodes them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.config import Settings
from bot.embedding import DIMENSION, MiniLMEncoder
from bot.schema import Chunk, Paper
from bot.text import split_sentences

FORMAT_VERSION = 1
# The tokenization BM25 uses at index and at query time (llama-index's BM25Retriever defaults).
BM25_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
BM25_STOPWORDS = "english"
BM25_LANGUAGE = "english"


@dataclass
class PaperPieces:
    """A paper's abstract sentences, their unit vectors and the word-piece vectors of the sentences and title."""

    sentences: list[str]
    sentence_vectors: np.ndarray  # float32, one row per sentence
    piece_vectors: np.ndarray  # float16, unit rows
    piece_set: np.ndarray  # int32: the distinct word pieces of title and abstract (for the IDF)


def paper_key(paper: Paper) -> str:
    """What the per-paper data depend on: the title and the abstract."""
    return hashlib.sha1(json.dumps([paper.title, paper.abstract]).encode()).hexdigest()


def paper_pieces(encoder: MiniLMEncoder, papers: list[Paper], batch_size: int) -> list[PaperPieces]:
    """Encode the papers' sentences and titles, each text alone (a paper's vectors do not depend on the batch).

    Sentence by sentence, as the chunks are read: long abstracts exceed the
    model's window. All the papers' texts go through the model together, in
    length-sorted batches, which wastes the least on padding.
    """
    sentences = [split_sentences(p.abstract) for p in papers]
    texts = [text for paper, own in zip(papers, sentences, strict=True) for text in (*own, paper.title)]
    vectors, pieces = encoder.encode_with_tokens(texts, batch_size=batch_size)
    piece_ids = encoder.piece_ids([piece_text(p) for p in papers])
    out: list[PaperPieces] = []
    start = 0
    for own, ids in zip(sentences, piece_ids, strict=True):
        end = start + len(own) + 1  # the sentences, then the title
        out.append(
            PaperPieces(
                own,
                vectors[start : start + len(own)],
                np.vstack([p.vectors for p in pieces[start:end]]),
                np.unique(np.array(ids, dtype=np.int32)),
            )
        )
        start = end
    return out


def piece_text(paper: Paper) -> str:
    """The text whose word pieces the coverage IDF counts."""
    return f"{paper.title} {paper.abstract}"


def manifest_key(document: str) -> str:
    return hashlib.sha1(document.encode()).hexdigest()


def derived_root(settings: Settings) -> Path:
    """Where a collection's derived data live: beside the embedded store, or in a local cache for a server."""
    if settings.derived_dir is not None:
        base = settings.derived_dir
    elif settings.chroma_host:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        base = cache / "paperbot" / "derived" / f"{settings.chroma_host}-{settings.chroma_port}"
    else:
        base = settings.store_dir / "derived"
    return base / settings.collection


def bm25_tokenize(texts: str | list[str], stemmer, return_ids: bool = True):
    """BM25's tokenization, the same for the chunks and the queries."""
    import bm25s

    return bm25s.tokenize(
        texts,
        stopwords=BM25_STOPWORDS,
        stemmer=stemmer,
        token_pattern=BM25_TOKEN_PATTERN,
        return_ids=return_ids,
        show_progress=False,
    )


def english_stemmer():
    import Stemmer

    return Stemmer.Stemmer(BM25_LANGUAGE)


TMP_PREFIX = ".tmp-"


def _publish(tmp: Path, final: Path) -> None:
    """Rename a finished temporary directory into place (atomic on one file system)."""
    try:
        os.replace(tmp, final)
    except OSError:  # another process published the same content first
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class BuildStats:
    """Where a derived-data build spent its time (the encoding is the model's; the rest is overhead)."""

    papers_encoded: int = 0
    encode_seconds: float = 0.0
    total_seconds: float = 0.0


class Segment:
    """Immutable per-paper data of some papers, memory-mapped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys: list[str] = json.loads((path / "keys.json").read_text())
        self.row_of = {k: i for i, k in enumerate(self.keys)}
        self._offsets = np.load(path / "offsets.npy")  # (papers + 1, 4): sentence, piece, byte, set starts
        self._piece_sets = np.load(path / "piece_sets.npy", mmap_mode="r")
        self._sentence_vectors = np.load(path / "sentence_vectors.npy", mmap_mode="r")
        self._piece_vectors = np.load(path / "piece_vectors.npy", mmap_mode="r")
        self._sentences = path / "sentences.jsonl"

    def pieces(self, row: int) -> PaperPieces:
        (s0, p0, b0, t0), (s1, p1, b1, t1) = self._offsets[row], self._offsets[row + 1]
        with self._sentences.open("rb") as f:
            f.seek(int(b0))
            sentences = json.loads(f.read(int(b1 - b0)))
        return PaperPieces(
            sentences,
            np.array(self._sentence_vectors[s0:s1]),
            np.array(self._piece_vectors[p0:p1]),
            np.array(self._piece_sets[t0:t1]),
        )

    def piece_set(self, row: int) -> np.ndarray:
        return np.asarray(self._piece_sets[self._offsets[row, 3] : self._offsets[row + 1, 3]])

    @staticmethod
    def write(root: Path, keys: list[str], items: Sequence[PaperPieces]) -> str:
        """Write a new segment of ``items`` (one per key); returns its name."""
        name = f"seg-{uuid.uuid4().hex[:16]}"
        tmp = root / f"{TMP_PREFIX}{name}"
        tmp.mkdir(parents=True)
        offsets = np.zeros((len(items) + 1, 4), dtype=np.int64)
        lines = []
        for i, item in enumerate(items):
            line = (json.dumps(item.sentences, ensure_ascii=False) + "\n").encode()
            lines.append(line)
            sizes = (len(item.sentences), len(item.piece_vectors), len(line), len(item.piece_set))
            offsets[i + 1] = offsets[i] + sizes
        (tmp / "sentences.jsonl").write_bytes(b"".join(lines))
        np.save(tmp / "offsets.npy", offsets)
        sets = [i.piece_set for i in items]
        np.save(tmp / "piece_sets.npy", np.concatenate(sets).astype(np.int32) if sets else np.zeros(0, np.int32))
        sentence_vectors = [i.sentence_vectors for i in items if len(i.sentence_vectors)]
        np.save(
            tmp / "sentence_vectors.npy",
            np.vstack(sentence_vectors).astype(np.float32)
            if sentence_vectors
            else np.zeros((0, DIMENSION), np.float32),
        )
        piece_vectors = [i.piece_vectors for i in items if len(i.piece_vectors)]
        np.save(
            tmp / "piece_vectors.npy",
            np.vstack(piece_vectors).astype(np.float16) if piece_vectors else np.zeros((0, DIMENSION), np.float16),
        )
        (tmp / "keys.json").write_text(json.dumps(keys))
        _publish(tmp, root / name)
        return name


class Derived:
    """One generation's derived data, opened for queries (arrays are memory-mapped)."""

    def __init__(self, root: Path, key: str) -> None:
        self.path = root / f"gen-{key}"
        meta = json.loads((self.path / "meta.json").read_text())
        if meta.get("version") != FORMAT_VERSION or meta.get("key") != key:
            raise FileNotFoundError(f"{self.path}: not a version {FORMAT_VERSION} generation of {key}")
        self.segment_names: list[str] = meta["segments"]
        self.chunk_ids: list[str] = meta["chunk_ids"]
        self._segments: dict[int, Segment] = {}
        self._root = root
        self.paper_rows = np.load(self.path / "papers.npy")  # (papers, 2): segment, row
        self.chunk_vectors = np.load(self.path / "chunk_vectors.npy", mmap_mode="r")
        df = np.load(self.path / "piece_df.npz")
        self.piece_df = dict(zip(df["ids"].tolist(), df["counts"].tolist(), strict=True))
        self.papers_counted = int(df["papers"])

    @staticmethod
    def exists(root: Path, key: str) -> bool:
        return (root / f"gen-{key}" / "meta.json").is_file()

    def segment(self, index: int) -> Segment:
        if index not in self._segments:
            self._segments[index] = Segment(self._root / self.segment_names[index])
        return self._segments[index]

    def pieces(self, paper_row: int) -> PaperPieces:
        """The per-paper data of the manifest's ``paper_row``-th paper."""
        seg, row = self.paper_rows[paper_row]
        return self.segment(int(seg)).pieces(int(row))

    def bm25(self):
        import bm25s

        return bm25s.BM25.load(str(self.path / "bm25"), mmap=True)

    def piece_idf(self) -> dict[int, float]:
        n = self.papers_counted
        return {piece: float(np.log((n + 1) / (count + 0.5))) for piece, count in self.piece_df.items()}

    def paper_keys(self) -> dict[str, tuple[int, int]]:
        """Every paper key this generation stores, with its segment and row."""
        out: dict[str, tuple[int, int]] = {}
        for seg, row in self.paper_rows.tolist():
            out[self.segment(seg).keys[row]] = (seg, row)
        return out


def manifest_copy(root: Path, key: str) -> str | None:
    """The manifest text generation ``key`` keeps (None when it does not exist)."""
    try:
        return (root / f"gen-{key}" / "manifest.json").read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def build(
    root: Path,
    key: str,
    document: str,
    papers: list[Paper],
    chunks: list[Chunk],
    chunk_text: Callable[[Chunk], str],
    chunk_vectors: Callable[[list[str]], np.ndarray],
    encoder: MiniLMEncoder,
    previous: Derived | None = None,
    progress: bool = False,
    pieces_of: Callable[[list[Paper]], list[PaperPieces]] | None = None,
    segment_papers: int = 2000,
    batch_size: int = 32,
) -> BuildStats:
    """Write generation ``key`` (of manifest text ``document``) for ``papers`` and ``chunks``, reusing ``previous``.

    ``chunk_vectors(ids)`` gives the embeddings of chunks ``previous`` does not
    hold; ``chunk_text`` the text BM25 indexes (the embedding text);
    ``pieces_of`` new papers' per-paper data (default: :func:`paper_pieces`;
    the scale benchmark derives them from real papers instead); at most
    ``segment_papers`` papers go into one segment.
    """
    from tqdm import tqdm

    stats = BuildStats()
    if Derived.exists(root, key):
        return stats
    started = time.perf_counter()
    pieces_of = pieces_of or (lambda some: paper_pieces(encoder, some, batch_size))
    root.mkdir(parents=True, exist_ok=True)
    old_keys = previous.paper_keys() if previous else {}
    old_names = previous.segment_names if previous else []
    keys = [paper_key(p) for p in papers]

    # Per-paper data: reuse the old segments' rows, encode the rest into one new segment.
    new = [(k, p) for k, p in zip(keys, papers, strict=True) if k not in old_keys]
    new_unique = list({k: p for k, p in new}.items())
    segment_names = list(old_names)
    new_rows: dict[str, tuple[int, int]] = {}
    piece_sets: dict[str, np.ndarray] = {}
    # In segments of a bounded size: a large library's word-piece vectors do not fit in memory at once.
    with tqdm(total=len(new_unique), desc="Encoding sentences", unit="paper", disable=not progress) as bar:
        for start in range(0, len(new_unique), segment_papers):
            part = new_unique[start : start + segment_papers]
            encode_started = time.perf_counter()
            items = pieces_of([p for _, p in part])
            stats.encode_seconds += time.perf_counter() - encode_started
            bar.update(len(part))
            segment_names.append(Segment.write(root, [k for k, _ in part], items))
            for i, ((k, _), item) in enumerate(zip(part, items, strict=True)):
                new_rows[k] = (len(segment_names) - 1, i)
                piece_sets[k] = item.piece_set
            del items
    stats.papers_encoded = len(new_unique)
    rows = np.array([old_keys.get(k) or new_rows[k] for k in keys], dtype=np.int64).reshape(-1, 2)
    # Keep only the segments this generation uses, renumbered.
    used = sorted({int(s) for s in rows[:, 0]})
    renumber = {old: i for i, old in enumerate(used)}
    rows[:, 0] = [renumber[int(s)] for s in rows[:, 0]]
    segment_names = [segment_names[i] for i in used]

    # Piece document frequencies: the previous counts, plus the new papers', minus the gone ones'.
    df = dict(previous.piece_df) if previous is not None else {}
    kept = set(keys)
    changes = [(piece_sets[k], 1) for k, _ in new_unique]
    changes += [(previous.segment(s).piece_set(r), -1) for k, (s, r) in old_keys.items() if k not in kept]  # type: ignore[union-attr]
    for piece_set, sign in changes:
        for piece in piece_set.tolist():
            df[piece] = df.get(piece, 0) + sign
    df = {piece: n for piece, n in df.items() if n > 0}

    # Chunk vectors: the previous generation's rows, the store's for new chunks.
    ids = [c.chunk_id for c in chunks]
    vectors = np.zeros((len(ids), DIMENSION), dtype=np.float32)
    old_row = {cid: i for i, cid in enumerate(previous.chunk_ids)} if previous else {}
    have = [i for i, cid in enumerate(ids) if cid in old_row]
    if have:
        vectors[have] = previous.chunk_vectors[[old_row[ids[i]] for i in have]]  # type: ignore[union-attr]
    missing = [i for i, cid in enumerate(ids) if cid not in old_row]
    if missing:
        vectors[missing] = chunk_vectors([ids[i] for i in missing])

    tmp = root / f"{TMP_PREFIX}gen-{key}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    np.save(tmp / "chunk_vectors.npy", vectors)
    np.save(tmp / "papers.npy", rows)
    piece_ids = np.array(sorted(df), dtype=np.int64)
    np.savez(
        tmp / "piece_df.npz",
        ids=piece_ids,
        counts=np.array([df[i] for i in piece_ids.tolist()], dtype=np.int64),
        papers=np.array(len(papers)),
    )
    _build_bm25(tmp / "bm25", [chunk_text(c) for c in chunks])
    meta = {"version": FORMAT_VERSION, "key": key, "segments": segment_names, "chunk_ids": ids}
    (tmp / "manifest.json").write_text(document, encoding="utf-8")
    (tmp / "meta.json").write_text(json.dumps(meta))
    _publish(tmp, root / f"gen-{key}")
    stats.total_seconds = time.perf_counter() - started
    return stats


def _build_bm25(path: Path, texts: list[str]) -> None:
    """The bm25s index of ``texts``; none for an empty collection (nothing queries it: Engine refuses to start)."""
    import bm25s

    if not texts:
        return
    index = bm25s.BM25()
    index.index(bm25_tokenize(texts, english_stemmer()), show_progress=False)
    index.save(str(path))


def collect_garbage(root: Path, live_key: str, tmp_grace_seconds: float) -> None:
    """Remove every generation and segment the live generation does not use (after the manifest moved on).

    Temporary directories younger than ``tmp_grace_seconds`` may belong to a
    build still running in another process and are left alone.
    """
    if not root.is_dir():
        return
    keep = {f"gen-{live_key}"}
    if Derived.exists(root, live_key):
        keep.update(json.loads((root / f"gen-{live_key}" / "meta.json").read_text())["segments"])
    now = time.time()
    for entry in root.iterdir():
        if entry.name in keep:
            continue
        if entry.name.startswith(TMP_PREFIX) and now - entry.stat().st_mtime < tmp_grace_seconds:
            continue
        shutil.rmtree(entry, ignore_errors=True)
