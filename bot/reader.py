"""The reader: a small local model read as a yes/no judge of "does this passage answer the question?".

Nothing here knows about retrieval or answers: the engine hands the reader a
question and a few passages (a paper's title and the abstract sentences closest
to the question) and gets one yes-probability per passage back
(bot.answer.Engine). The model is injected like the LLM (``Engine(settings,
reader=...)``) or built from settings on first use (:func:`build_reader`).

:class:`CrossEncoderReader` (the default backend, ``minilm``) is all-MiniLM-L6-v2
fine-tuned on this corpus as a cross-encoder: it reads the question and a
passage together and gives P(the passage answers the question). It ships as an
int8 ONNX graph in ``bot/data`` (pinned sha256) and runs with the same
onnxruntime and tokenizer as the embeddings, in tens of milliseconds a question.
It was trained from the example questions (answerable), helper-written near
misses (on the paper's topic, not answered by it) and the questions of the earlier
eval sets (not styles16 and later, which measure it) by ``evals/train_reader.py``.

:class:`LlamaReader` (backend ``gguf``) runs a GGUF chat model through llama-cpp-python: one
forward pass per passage, no generation; the answer is read from the
next-token probabilities of "yes" and "no". The instruction and the question
are evaluated once per question and kept in llama.cpp's KV cache while the
passages of that question are read after them.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bot.config import ReaderSettings
from bot.errors import UserError

CROSS_ENCODER_PATH = Path(__file__).parent / "data" / "reader-minilm-int8.onnx"
CROSS_ENCODER_SHA256 = "f641c4215a93d8c3c24a80ae3deb3686e1785689817e25bdbb7100992e66e6b1"

if TYPE_CHECKING:
    from llama_cpp import Llama

# Qwen2.5's chat template (ChatML); the prefix ends where the passage begins, so it is shared.
_PREFIX = (
    "<|im_start|>system\nYou check whether a research paper's abstract answers a user's question. "
    "Reply with yes or no.<|im_end|>\n<|im_start|>user\nQuestion: {question}\n\n"
)
_SUFFIX = (
    "Paper: {title}\n{text}\n\nDoes this text give the answer to the question? Reply yes or no."
    "<|im_end|>\n<|im_start|>assistant\n"
)
_YES = ("yes", "Yes")
_NO = ("no", "No")


class ReaderUnavailable(UserError):
    """The reader is switched on but cannot run (no model file, no llama-cpp-python)."""


@dataclass(frozen=True)
class Passage:
    """What the reader reads of one paper: its title and a few of its abstract sentences."""

    title: str
    text: str


class Reader(Protocol):
    """Judges whether passages answer a question."""

    def judge(self, question: str, passages: list[Passage]) -> list[float]:
        """P(yes) for each passage, in order."""
        ...


def _flat(text: str) -> str:
    # Corpus text cannot open or close a chat turn.
    return " ".join(text.replace("<|", "< |").replace("|>", "| >").split())


class LlamaReader:
    """A GGUF chat model (llama-cpp-python) read as a yes/no judge; one forward pass per passage."""

    def __init__(self, settings: ReaderSettings) -> None:
        self.settings = settings
        self._llm: Llama | None = None
        self._lock = threading.Lock()  # one llama.cpp context: one question at a time
        self._yes: list[int] = []
        self._no: list[int] = []

    def _model(self) -> Llama:
        if self._llm is None:
            check_reader(self.settings)
            from llama_cpp import Llama

            cfg = self.settings
            self._llm = Llama(
                model_path=str(cfg.model_path),
                n_ctx=cfg.n_ctx,
                n_batch=cfg.n_batch,
                n_threads=cfg.n_threads,
                n_threads_batch=cfg.n_threads,
                verbose=False,
            )
            self._yes = [self._token(w) for w in _YES]
            self._no = [self._token(w) for w in _NO]
        return self._llm

    def _token(self, word: str) -> int:
        assert self._llm is not None
        return self._llm.tokenize(word.encode(), add_bos=False, special=False)[0]

    def judge(self, question: str, passages: list[Passage]) -> list[float]:
        import llama_cpp
        import numpy as np

        if not passages:
            return []
        with self._lock:
            llm = self._model()
            prefix = llm.tokenize(_PREFIX.format(question=_flat(question)).encode(), add_bos=False, special=True)
            llm.reset()
            llm.eval(prefix)
            shared = llm.n_tokens
            budget = self.settings.n_ctx - shared
            out = []
            for p in passages:
                suffix = _SUFFIX.format(title=_flat(p.title), text=_flat(p.text))
                tokens = llm.tokenize(suffix.encode(), add_bos=False, special=True)
                if len(tokens) > budget:  # the passage's head is kept; the answer cue at the end must stay
                    tail = llm.tokenize(_SUFFIX.split("{text}")[1].encode(), add_bos=False, special=True)
                    tokens = tokens[: budget - len(tail)] + tail
                llm.n_tokens = shared  # the next eval drops the previous passage from the KV cache
                llm.eval(tokens)
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))
                yes = float(np.logaddexp.reduce(logits[self._yes]))
                no = float(np.logaddexp.reduce(logits[self._no]))
                out.append(1.0 / (1.0 + math.exp(no - yes)))
            return out


class CrossEncoderReader:
    """The shipped cross-encoder: question and passage read together, one logit per passage."""

    def __init__(self, settings: ReaderSettings, threads: int, spinning: bool) -> None:
        from tokenizers import Tokenizer

        from bot.embedding import TOKENIZER_PATH, check_sha256, onnx_session

        check_sha256(CROSS_ENCODER_PATH, CROSS_ENCODER_SHA256)
        self.tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        self.tokenizer.enable_truncation(max_length=settings.max_tokens, strategy="only_second")
        self.tokenizer.enable_padding()
        self.session = onnx_session(CROSS_ENCODER_PATH, threads, spinning)
        self._lock = threading.Lock()  # the session is shared by the UI's worker threads

    def judge(self, question: str, passages: list[Passage]) -> list[float]:
        import numpy as np

        if not passages:
            return []
        pairs = [(question, f"{p.title}. {p.text}") for p in passages]
        encodings = self.tokenizer.encode_batch(pairs)
        feed = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        with self._lock:
            logits = self.session.run(["logit"], feed)[0]
        return [float(p) for p in 1.0 / (1.0 + np.exp(-logits))]


def check_reader(settings: ReaderSettings) -> None:
    """Raise :class:`ReaderUnavailable` with a one-line reason unless the reader can be built."""
    if settings.backend == "minilm":
        return  # ships with the package; its checksum is checked when it loads
    path = settings.model_path
    if path is None:
        raise ReaderUnavailable("the reader is on but PAPERBOT_READER__MODEL_PATH is not set (a GGUF chat model)")
    if not Path(path).is_file():
        raise ReaderUnavailable(f"reader model {path} not found (PAPERBOT_READER__MODEL_PATH)")
    if importlib.util.find_spec("llama_cpp") is None:
        raise ReaderUnavailable("the reader needs llama-cpp-python: pip install 'paperbot[local-llm]'")


def build_reader(settings: ReaderSettings, threads: int = 2, spinning: bool = False) -> Reader:
    """The configured reader: the cross-encoder loads now, a GGUF model on its first judgement.

    ``threads`` / ``spinning``: the cross-encoder's onnxruntime session, as ``Settings.onnx_threads`` /
    ``onnx_spinning`` set the embeddings'.
    """
    check_reader(settings)
    if settings.backend == "minilm":
        return CrossEncoderReader(settings, threads, spinning)
    return LlamaReader(settings)
