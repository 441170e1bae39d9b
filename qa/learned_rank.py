"""A learned reranker over the fused ranking's best candidates (issue 12, item 3).

The fused score (`retrieval.fuse`) orders every sentence; this module reorders only its
`top` best with a linear model over what each candidate already has: its signals, the same
signals taken relative to the candidate pool (gap to the pool's best, z-score), its
neighbours, its place in its paragraph, whether it is a page's question line or restates the
question, and how many of the question's names and words it holds. The model is a listwise
(softmax over the pool) logistic regression, fitted by `tools/fit_rank.py` on some documents and
reported on others; its coefficients ship as `qa/params/rank.json`, read here with numpy only.

    features(snap, q, ranked, top) -> (len(top), len(NAMES)) array
    rerank(snap, q, ranked, model, n) -> Ranked whose `fused` orders the top n by the model
                                         (`prior` keeps the fused scores: quotes, citations'
                                         scores and the confidence features read those)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from .lexical import words

PARAMS = Path(__file__).resolve().parent / "params" / "rank.json"

NAMES = (
    "fused_gap",  # fused score minus the pool's best
    "fused_z",  # fused score as a z-score within the pool
    "rank_log",  # log(1 + place in the fused order), 0 for the best
    "sent",  # cosine of the question to the sentence...
    "sent_gap",  # ...minus the pool's best
    "win",  # cosine to the sentence's 3-sentence window...
    "win_gap",  # ...minus the pool's best
    "bm25_sent",  # the document's BM25 share of the sentence...
    "bm25_sent_gap",  # ...minus the pool's best
    "bm25_para",  # ...and of its paragraph
    "pieces",  # word-piece match (0 where it was not computed)
    "pieces_gap",  # ...minus the pool's best
    "type",  # the sentence holds what the question type asks for
    "type_near",  # ...or a neighbour in its paragraph does
    "near_gap",  # best fused score of a neighbour (same paragraph) minus the pool's best (-1: none)
    "question_line",  # a page's own question line ("What can cause a lapse?")
    "restates",  # nearly all its words are the question's
    "continues",  # leans on the sentence before it ("It ...", "But ...")
    "first",  # first sentence of its paragraph
    "alone",  # the paragraph's only sentence (a heading, a title)
    "words_log",  # log of its number of words
    "names_sent",  # share of the question's names and numbers in the sentence
    "names_para",  # ...in its paragraph
    "tokens_sent",  # share of the question's content words (stemmed) in the sentence
    "tokens_para",  # ...in its paragraph
    "leans",  # the question leans on the conversation
)


@dataclass(frozen=True)
class Model:
    """A linear scorer over standardised `NAMES` features (qa/params/rank.json)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    top: int  # how many of the fused ranking's best it reorders

    def scores(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.coef

    def to_json(self, **extra) -> dict:
        return {"features": list(NAMES), "top": self.top, "mean": _r(self.mean), "scale": _r(self.scale),
                "coef": _r(self.coef), **extra}

    @classmethod
    def from_json(cls, obj: dict) -> Model:
        if list(obj["features"]) != list(NAMES):
            raise ValueError(f"{PARAMS.name} was fitted on other features than qa/learned_rank.py computes; "
                             "refit it with tools/fit_rank.py --write")
        mean, scale, coef = (np.asarray(obj[k], dtype=np.float64) for k in ("mean", "scale", "coef"))
        return cls(mean, scale, coef, int(obj["top"]))


def _r(a: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in a]


@lru_cache(maxsize=1)
def load(path: Path = PARAMS) -> Model | None:
    """The shipped model, or None when no parameter file ships (the fused order is kept)."""
    if not path.exists():
        return None
    return Model.from_json(json.loads(path.read_text(encoding="utf-8")))


def top_rows(ranked, n: int) -> np.ndarray:
    """The `n` best sentences by fused score (among the scored ones), best first."""
    f = ranked.fused
    pool = np.arange(len(f)) if ranked.rows is None else np.asarray(ranked.rows, dtype=np.int64)
    pool = pool[np.isfinite(f[pool])]
    if len(pool) > n:
        pool = pool[np.argpartition(-f[pool], n - 1)[:n]]
    return pool[np.argsort(-f[pool], kind="stable")]


def features(snap, q, ranked, top: np.ndarray) -> np.ndarray:
    """Each candidate's feature row (`NAMES`), vectorised over `top` (best first)."""
    from .answer import asks, continues, restates

    sig, data = ranked.signals, snap.data
    fused = ranked.fused if ranked.prior is None else ranked.prior
    n, m = len(fused), len(top)
    sents = data.sentences
    para = snap.sentence_para_rows

    def col(a: np.ndarray | None) -> np.ndarray:
        return np.zeros(m) if a is None else np.asarray(a[top], dtype=np.float64)

    f, s, w, b, p = col(fused), col(sig.dense_sent), col(sig.dense_win), col(sig.bm25_sent), col(sig.tokens)
    at = sig.answer_type
    typ = col(at)
    near_gap = np.full(m, -1.0)
    type_near = typ.copy()
    for d in (-1, 1):
        c = top + d
        ok = (c >= 0) & (c < n)
        ok[ok] &= para[c[ok]] == para[top[ok]]
        near_gap[ok] = np.maximum(near_gap[ok], fused[c[ok]] - f.max())
        if at is not None:
            type_near[ok] = np.maximum(type_near[ok], at[c[ok]])
    std = float(f.std()) if m > 1 else 0.0
    asked = set(q.tokens)
    names = {x for x in q.names(snap.capitalised) if len(x) > 1}
    rows, para_words, para_tokens, plen = [], {}, {}, {}
    for i in top.tolist():
        st = sents[i]
        key = para[i]
        if key not in para_words:
            lo, hi = i, i
            while lo > 0 and para[lo - 1] == key:
                lo -= 1
            while hi + 1 < n and para[hi + 1] == key:
                hi += 1
            plen[key] = hi - lo + 1
            para_tokens[key] = set().union(*snap.sentence_tokens[lo:hi + 1])
            para_words[key] = set(words(snap.docs[st.doc].text[sents[lo].start:sents[hi].end])) if names else set()
        sw = set(words(st.text)) if names else set()
        toks = snap.sentence_tokens[i]
        rows.append((
            asks(st.text), restates(asked, toks), continues(st.text), st.index == 0, plen[key] == 1,
            math.log(1 + len(st.text.split())),
            _share(names, sw), _share(names, para_words[key]),
            _share(asked, toks), _share(asked, para_tokens[key]),
        ))
    per = np.asarray(rows, dtype=np.float64).reshape(m, 10)
    out = np.column_stack([
        f - f.max(), (f - f.mean()) / max(std, 1e-3), np.log1p(np.arange(m)),
        s, s - s.max(), w, w - w.max(), b, b - b.max(), col(sig.bm25_para), p, p - p.max(),
        typ, type_near, near_gap, per, np.full(m, float(q.leans)),
    ])
    return out


def _share(needles: set, hay: set) -> float:
    return sum(1 for x in needles if x in hay) / len(needles) if needles else 1.0


def rerank(snap, q, ranked, model: Model | None, n: int | None = None):
    """`ranked` with its `n` best candidates (default: the model's `top`) reordered by the
    model; every other sentence keeps its fused score below them. `prior` holds the fused scores."""
    if model is None or not len(ranked.fused):
        return ranked
    top = top_rows(ranked, n or model.top)
    if len(top) < 2:
        return ranked
    s = model.scores(features(snap, q, ranked, top))
    base = ranked.fused if ranked.prior is None else ranked.prior
    fused = np.array(ranked.fused, dtype=np.float32, copy=True)
    fused[top] = float(fused[top].max()) + 1.0 + (s - s.min()).astype(np.float32)  # above the rest, model's order
    return replace(ranked, fused=fused, prior=base)
