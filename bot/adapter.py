"""The query adapter: a linear map fitted on CPU that moves a question's MiniLM vector toward its papers.

MiniLM carries a paraphrase only so far: a question in everyday words ("picture-making programs
that build an image bit by bit") sits far from the abstract that answers it. The adapter is one
384 x 384 matrix ``M``; a question's vector ``q`` is searched as ``qM / |qM|``. It is fitted
(:func:`fit`) like a one-layer fine-tune of the query side of the encoder, with in-corpus softmax
cross-entropy: each training question should be closer to its paper's vector than to every other
paper's, with an L2 pull toward the identity so that it stays a small correction.

Invariants:
- Only the dense search's query vector goes through the adapter. Chunk vectors, the word-piece
  coverage of the refusal rule, sentence scoring and the cosines reported with each hit use the
  encoder's own vectors, so every calibrated threshold keeps its meaning.
- The shipped matrix (``bot/data/query_adapter.npy``) is produced by ``evals/train_adapter.py``
  from the shipped papers' example questions (``index/sources/examples.questions.jsonl``);
  ``PAPERBOT_ADAPTER__ENABLED=false`` searches with the raw vector.
- Plain NumPy: the fit is a few hundred full-batch steps over a few thousand questions (about
  30 s on 2 cores); torch would add gigabytes to the install for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.config import AdapterSettings
from bot.errors import UserError

SHIPPED_PATH = Path(__file__).parent / "data" / "query_adapter.npy"


class AdapterError(UserError, ValueError):
    """The adapter file is missing or is not a square matrix of the encoder's dimension."""


@dataclass(frozen=True)
class QueryAdapter:
    matrix: np.ndarray

    def __call__(self, vector: np.ndarray) -> np.ndarray:
        """``vector`` (or rows of vectors) mapped and brought back to unit length."""
        mapped = vector @ self.matrix
        return mapped / np.linalg.norm(mapped, axis=-1, keepdims=True)


def load(settings: AdapterSettings, dimension: int) -> QueryAdapter | None:
    """The configured adapter, or None when it is switched off."""
    if not settings.enabled:
        return None
    path = settings.path or SHIPPED_PATH
    try:
        matrix = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise AdapterError(f"query adapter {path}: cannot be read ({exc})") from exc
    if matrix.shape != (dimension, dimension):
        raise AdapterError(
            f"query adapter {path}: shape {matrix.shape}, but the encoder's vectors have {dimension} dimensions"
        )
    return QueryAdapter(matrix.astype(np.float32))


def fit(queries: np.ndarray, targets: np.ndarray, papers: np.ndarray, settings: AdapterSettings) -> np.ndarray:
    """The matrix that maps unit ``queries`` (n x d) toward ``papers[targets]`` (papers: unit rows, m x d).

    Minimizes the mean cross-entropy of ``softmax(scale * cos(qM, papers))`` against the target
    paper, plus ``l2 * |M - I|^2``, by full-batch Adam from the identity.
    """
    n, d = queries.shape
    eye = np.eye(d)
    matrix = eye.copy()
    first, second = np.zeros_like(matrix), np.zeros_like(matrix)
    q = queries.astype(np.float64)
    p = papers.astype(np.float64)
    rows = np.arange(n)
    beta1, beta2, eps = 0.9, 0.999, 1e-8  # Adam's published defaults
    for step in range(1, settings.steps + 1):
        mapped = q @ matrix
        norm = np.linalg.norm(mapped, axis=1, keepdims=True)
        unit = mapped / norm
        logits = settings.scale * unit @ p.T
        logits -= logits.max(axis=1, keepdims=True)
        prob = np.exp(logits)
        prob /= prob.sum(axis=1, keepdims=True)
        prob[rows, targets] -= 1.0
        d_unit = (settings.scale / n) * prob @ p
        d_mapped = (d_unit - unit * (d_unit * unit).sum(axis=1, keepdims=True)) / norm
        grad = q.T @ d_mapped + 2 * settings.l2 * (matrix - eye)
        first = beta1 * first + (1 - beta1) * grad
        second = beta2 * second + (1 - beta2) * grad * grad
        step_size = settings.learning_rate * np.sqrt(1 - beta2**step) / (1 - beta1**step)
        matrix -= step_size * first / (np.sqrt(second) + eps)
    return matrix.astype(np.float32)


def loss(queries: np.ndarray, targets: np.ndarray, papers: np.ndarray, matrix: np.ndarray, scale: float) -> float:
    """The mean cross-entropy :func:`fit` minimizes (without the L2 term), for checks and reports."""
    unit = QueryAdapter(matrix)(queries.astype(np.float64))
    logits = scale * unit @ papers.astype(np.float64).T
    top = logits.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return float(np.mean(log_norm - logits[np.arange(len(targets)), targets]))
