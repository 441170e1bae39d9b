"""Scoring sentences for a question: dense (sentence, window, paragraph) + BM25 (sentence, paragraph).

Everything here takes plain arrays and returns plain values, so tests can feed tiny vectors.
Each sentence gets a fused score, a weighted sum of five signals on comparable scales:

    fused = w_sent*cos(q, sentence) + w_win*cos(q, window) + w_para*cos(q, paragraph)
          + w_bm25_sent*bm25(sentence)/max + w_bm25_para*bm25(paragraph)/max

The weights were chosen by measurement (README, "How ranking was tuned").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Weights:
    sent: float = 0.35
    win: float = 0.25
    para: float = 0.15
    bm25_sent: float = 0.15
    bm25_para: float = 0.10


@dataclass(frozen=True)
class Signals:
    """Per-sentence raw signals for one question (arrays aligned with the index's sentences)."""

    dense_sent: np.ndarray
    dense_win: np.ndarray
    dense_para: np.ndarray  # already mapped to sentences
    bm25_sent: np.ndarray
    bm25_para: np.ndarray  # already mapped to sentences


def dense_scores(query: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity of one L2-normalised query with every row (rows L2-normalised)."""
    if len(vectors) == 0:
        return np.zeros(0, dtype=np.float32)
    return vectors @ np.asarray(query, dtype=np.float32).reshape(-1)


def max_normalise(scores: np.ndarray) -> np.ndarray:
    """[2, 1, 0] -> [1, .5, 0]; all zeros stay zeros."""
    top = float(scores.max()) if len(scores) else 0.0
    return scores / top if top > 0 else np.zeros_like(scores)


def fuse(sig: Signals, w: Weights = Weights()) -> np.ndarray:
    return (w.sent * sig.dense_sent + w.win * sig.dense_win + w.para * sig.dense_para
            + w.bm25_sent * max_normalise(sig.bm25_sent) + w.bm25_para * max_normalise(sig.bm25_para))


def ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each entry, best (highest) first: [0.1, 0.9, 0.5] -> [3, 1, 2]."""
    order = np.argsort(-scores, kind="stable")
    out = np.empty(len(scores), dtype=np.int64)
    out[order] = np.arange(1, len(scores) + 1)
    return out


def best_per_group(scores: np.ndarray, groups: list, k: int) -> list[int]:
    """Indices of the best-scoring entry of each group, best first, at most k groups.

    >>> best_per_group(np.array([.2, .9, .5, .4]), ["a", "a", "b", "c"], 2)
    [1, 2]
    """
    seen, out = set(), []
    for i in np.argsort(-scores, kind="stable"):
        g = groups[i]
        if g in seen:
            continue
        seen.add(g)
        out.append(int(i))
        if len(out) == k:
            break
    return out


def search_faiss(index, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """FAISS search that is safe on small or empty indexes (k clamped, -1 padding dropped)."""
    n = index.ntotal
    if n == 0 or k <= 0:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
    q = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, -1))
    scores, ids = index.search(q, min(k, n))
    keep = ids[0] >= 0
    return scores[0][keep], ids[0][keep]
