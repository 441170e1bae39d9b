"""A learned reranker over the fused ranking's best candidates (issue 12, item 3).

The fused score (`retrieval.fuse`) orders every sentence; this module reorders only its
`top` best with a learned model over what each candidate already has: its signals, the same
signals taken relative to the candidate pool (gap to the pool's best, z-score), its
neighbours, its place in its paragraph, whether it is a page's question line or restates the
question, and how many of the question's names and words it holds. The model is boosted
regression trees (scikit-learn's HistGradientBoostingClassifier, pointwise: does the quote
grown from this candidate hit?), fitted by `tools/fit_rank.py` on some documents and reported on
others; the trees ship as `qa/params/rank.json` and are walked here with numpy only.

    features(snap, q, ranked, top) -> (len(top), len(NAMES)) array
    rerank(snap, q, ranked, model, n) -> Ranked whose `fused` orders the top n by the model
                                         (`prior` keeps the fused scores: quotes, citations'
                                         scores and the confidence features read those)
"""

from __future__ import annotations

import json
import math
import threading
import weakref
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from .features import share
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
    """Boosted regression trees over the `NAMES` features (qa/params/rank.json), each stored as
    a complete binary tree of `depth` levels in heap order (node i's children: 2i+1, 2i+2; a
    row goes right when its feature exceeds the node's threshold), so every tree is walked at
    once for every candidate: `depth` vectorised steps. score = base + sum of the leaves reached."""

    base: float
    feature: np.ndarray  # (trees, 2**depth - 1) int: the feature each inner node tests
    threshold: np.ndarray  # (trees, 2**depth - 1) float: go right when feature > threshold
    leaf: np.ndarray  # (trees, 2**depth) float: the value each leaf adds
    top: int  # how many of the fused ranking's best it reorders

    @property
    def depth(self) -> int:
        return int(np.log2(self.leaf.shape[1]))

    def scores(self, x: np.ndarray) -> np.ndarray:
        """One score per row of `x` (candidates x `NAMES`)."""
        x = np.asarray(x, dtype=np.float64)
        trees = np.arange(len(self.feature))[None, :]
        node = np.zeros((len(x), len(self.feature)), dtype=np.int64)
        rows = np.arange(len(x))[:, None]
        for _ in range(self.depth):
            right = x[rows, self.feature[trees, node]] > self.threshold[trees, node]
            node = 2 * node + 1 + right
        return self.base + self.leaf[trees, node - len(self.feature[0])].sum(axis=1)

    def to_json(self, **extra) -> dict:
        return {"features": list(NAMES), "top": self.top, "base": float(self.base),
                "feature": self.feature.tolist(), "threshold": self.threshold.tolist(),
                "leaf": np.round(self.leaf, 7).tolist(), **extra}

    @classmethod
    def from_json(cls, obj: dict) -> Model:
        if list(obj["features"]) != list(NAMES):
            raise ValueError(f"{PARAMS.name} was fitted on other features than qa/learned_rank.py computes; "
                             "refit it with tools/fit_rank.py --write")
        return cls(float(obj["base"]), np.asarray(obj["feature"], dtype=np.int64),
                   np.asarray(obj["threshold"], dtype=np.float64), np.asarray(obj["leaf"], dtype=np.float64),
                   int(obj["top"]))


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


@dataclass(frozen=True)
class _Static:
    """What the features read of each sentence that no question changes, built once per snapshot."""

    flags: np.ndarray  # (sentences, 6): question_line, continues, first, alone, words_log, paragraph row
    para_tokens: list[set[str]]  # per paragraph row: its content words (stemmed)
    para_words: dict[int, set[str]]  # per paragraph row, filled on first use: its words (names are looked up)
    sentence_words: dict[int, set[str]]  # per sentence, filled on first use


_STATIC: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_STATIC_LOCK = threading.Lock()


def _static(snap) -> _Static:
    st = _STATIC.get(snap)
    if st is None:
        with _STATIC_LOCK:
            st = _STATIC.get(snap)
            if st is None:
                st = _STATIC[snap] = _build_static(snap)
    return st


def _build_static(snap) -> _Static:
    from .answer import asks, continues

    sents, para = snap.data.sentences, snap.sentence_para_rows
    sizes = np.bincount(para, minlength=len(snap.data.paragraph_keys)) if len(para) else np.zeros(0, np.int64)
    flags = np.array([(asks(s.text), continues(s.text), s.index == 0, sizes[para[i]] == 1,
                       math.log(1 + len(s.text.split())), para[i]) for i, s in enumerate(sents)],
                     dtype=np.float64).reshape(len(sents), 6)
    para_tokens: list[set[str]] = [set() for _ in range(len(sizes))]
    for i, toks in enumerate(snap.sentence_tokens):
        para_tokens[para[i]] |= toks
    return _Static(flags, para_tokens, {}, {})


def features(snap, q, ranked, top: np.ndarray) -> np.ndarray:
    """Each candidate's feature row (`NAMES`), vectorised over `top` (best first)."""
    from .answer import restates

    sig, st = ranked.signals, _static(snap)
    fused = ranked.base
    n, m = len(fused), len(top)
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
    flags = st.flags[top]
    asked = set(q.tokens)
    names = {x for x in q.names(snap.capitalised) if len(x) > 1}
    per = np.empty((m, 5))
    for j, i in enumerate(top.tolist()):
        toks, key = snap.sentence_tokens[i], int(para[i])
        per[j, 0] = restates(asked, toks)
        per[j, 3] = share(asked, toks)
        per[j, 4] = share(asked, st.para_tokens[key])
        if names:
            per[j, 1] = share(names, _words_of(st.sentence_words, i, lambda i=i: snap.data.sentences[i].text))
            per[j, 2] = share(names, _words_of(st.para_words, key, lambda i=i: _paragraph_text(snap, i)))
        else:
            per[j, 1] = per[j, 2] = 1.0
    return np.column_stack([
        f - f.max(), (f - f.mean()) / max(std, 1e-3), np.log1p(np.arange(m)),
        s, s - s.max(), w, w - w.max(), b, b - b.max(), col(sig.bm25_para), p, p - p.max(),
        typ, type_near, near_gap,
        flags[:, 0], per[:, 0], flags[:, 1], flags[:, 2], flags[:, 3], flags[:, 4],
        per[:, 1], per[:, 2], per[:, 3], per[:, 4], np.full(m, float(q.leans)),
    ])


def _words_of(cache: dict, key: int, text) -> set[str]:
    if key not in cache:
        cache[key] = set(words(text()))
    return cache[key]


def _paragraph_text(snap, i: int) -> str:
    s = snap.data.sentences[i]
    return snap.docs[s.doc].paragraph(s.para).text


def rerank(snap, q, ranked, model: Model | None, n: int | None = None):
    """`ranked` with its `n` best candidates (default: the model's `top`) reordered by the
    model; every other sentence keeps its fused score below them. `prior` holds the fused scores."""
    if model is None or not len(ranked.fused):
        return ranked
    top = top_rows(ranked, n or model.top)
    if len(top) < 2:
        return ranked
    s = model.scores(features(snap, q, ranked, top))
    order = np.lexsort((np.arange(len(top)), -s))  # the model's order, ties to the fused order
    base = ranked.base
    fused = np.array(ranked.fused, dtype=np.float32, copy=True)
    fused[top[order]] = float(fused[top].max()) + np.arange(len(top), 0, -1, dtype=np.float32)  # above the rest
    return replace(ranked, fused=fused, prior=base)
