"""Scoring sentences for a question: dense (sentence, window, paragraph) + BM25 (sentence, paragraph).

Everything here takes plain arrays and returns plain values, so tests can feed tiny vectors.
Each sentence gets a fused score, a weighted sum of signals on comparable scales:

    fused = w_sent*cos(q, sentence) + w_win*cos(q, window) + w_para*cos(q, paragraph)
          + w_bm25_sent*bm25(sentence)/max + w_bm25_para*bm25(paragraph)/max
          + w_answer_type*answer_type + w_tokens*tokens

`tokens` is the word-piece match of qa.tokens (each rare question word's best counterpart in
the sentence); `answer_type` marks sentences holding the kind of thing asked for (a date for
"when", a number for "how many", a name for "who").

The weights were chosen by measurement (README, "How ranking was tuned").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from . import definition
from .lexical import idf


@dataclass(frozen=True)
class Weights:
    """Fusion weights, fitted with tools/tune.py on all five development sets (held-out figures
    by set in docs/ranking.md), then all multiplied by 1.5 so that fused scores keep the scale
    the refusal thresholds and the confidence model were fitted on (argmax is unchanged)."""

    sent: float = 0.3
    win: float = 0.45
    para: float = 0.0
    bm25_sent: float = 0.225
    bm25_para: float = 0.225
    coverage: float = 0.0
    answer_type: float = 0.15
    tokens: float = 1.05
    form: float = 0.45  # the sentence is what the question's form asks for: the definition of a "What is X?"
    # question's term (qa/definition.py), the byline or author's note of "Who wrote this?" (qa/byline.py); orders
    # only, the quote and refusal read the scores without it (`Ranked.prior`). Held out by set: tools/fit_defines.py


@dataclass(frozen=True)
class Signals:
    """Per-sentence raw signals for one question (arrays aligned with the index's sentences)."""

    dense_sent: np.ndarray
    dense_win: np.ndarray
    dense_para: np.ndarray  # already mapped to sentences
    bm25_sent: np.ndarray  # on a 0..~1 scale (`lexical.DocBM25.share`)
    bm25_para: np.ndarray  # already mapped to sentences
    coverage: np.ndarray | None = None  # idf-weighted share of question words in the window
    answer_type: np.ndarray | None = None  # 1 where the sentence holds the kind of thing asked for
    tokens: np.ndarray | None = None  # word-piece late interaction (qa.tokens.maxsim)
    form: np.ndarray | None = None  # 1 where the sentence is what the question's form asks for (`Weights.form`)


def dense_scores(query: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity of one L2-normalised query with every row (rows L2-normalised)."""
    if len(vectors) == 0:
        return np.zeros(0, dtype=np.float32)
    return vectors @ np.asarray(query, dtype=np.float32).reshape(-1)


def fuse(sig: Signals, w: Weights = Weights()) -> np.ndarray:
    out = (w.sent * sig.dense_sent + w.win * sig.dense_win + w.para * sig.dense_para
           + w.bm25_sent * sig.bm25_sent + w.bm25_para * sig.bm25_para)
    if sig.coverage is not None and w.coverage:
        out = out + w.coverage * sig.coverage
    if sig.answer_type is not None and w.answer_type:
        out = out + w.answer_type * sig.answer_type
    if sig.tokens is not None and w.tokens:
        out = out + w.tokens * sig.tokens
    if sig.form is not None and w.form:
        out = out + w.form * sig.form
    return out


# --- lexical coverage and answer type ----------------------------------------------------

class IdfTable(dict):
    """token -> idf, and `top`, the largest idf (1.0 when empty): what a word the index never
    saw weighs in the confidence features, read per answer, so computed once here."""

    __slots__ = ("top",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.top = max(self.values(), default=1.0)


def idf_table(token_sets: list[set[str]]) -> IdfTable:
    """Inverse document frequency of each token over a list of token sets."""
    df = Counter(t for ts in token_sets for t in ts)
    n = len(token_sets)
    return IdfTable({t: idf(c, n) for t, c in df.items()})


def coverage(qtokens: list[str], token_sets: list[set[str]], idf: dict[str, float]) -> np.ndarray:
    """Share of the question's idf weight found in each token set.

    >>> coverage(["che", "visit"], [{"che"}, {"che", "visit"}, set()], {"che": 2.0, "visit": 1.0}).tolist()
    [0.6666666865348816, 1.0, 0.0]
    """
    q = {t: idf.get(t, 0.0) for t in dict.fromkeys(qtokens)}
    total = sum(q.values())
    if total <= 0:
        return np.zeros(len(token_sets), dtype=np.float32)
    return np.array([sum(v for t, v in q.items() if t in ts) / total for ts in token_sets], dtype=np.float32)


_TYPES = [
    ("when", re.compile(r"^(when\b|(in |during |by )?(what|which) (year|decade|century|date|month|day|time|period)\b"
                        r"|how long ago\b)", re.IGNORECASE)),
    ("number", re.compile(r"^(how (many|much|long|large|big|old|far|tall|high|often|fast)\b"
                          r"|(what|which) (percentage|percent|number|amount|size|proportion)\b)", re.IGNORECASE)),
    ("who", re.compile(r"^(who|whom|whose)\b|^(what|which) (person|man|woman|king|leader|group|people|organization)\b", re.IGNORECASE)),
    ("where", re.compile(r"^(where\b|(in |to |from )?(what|which) (country|city|region|place|area|town|island|continent|state)\b)", re.IGNORECASE)),
]
_DATE = re.compile(r"\b(1\d{3}|20\d{2}|\d{1,2}(st|nd|rd|th) century|\d{2,4}s)\b|\b(January|February|March|April|May|June|July|"
                   r"August|September|October|November|December)\b|\bcentur(y|ies)\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
                     r"hundred|hundreds|thousand|thousands|million|millions|billion|dozen|half|several)\b", re.IGNORECASE)
_PROPER = re.compile(r"(?<=[a-z,;:()] )[A-Z][\w’'-]+")


@lru_cache(maxsize=1024)
def question_type(question: str) -> str:
    """'When did Che visit?' -> 'when'; 'How many rifles?' -> 'number'; otherwise ''. Kept per
    question: parsing it and the confidence features both ask."""
    q = re.sub(r"^(and|so|but|then)\s+", "", question.strip(), flags=re.IGNORECASE)
    for name, pattern in _TYPES:
        if pattern.search(q):
            return name
    return ""


@dataclass(frozen=True)
class Cues:
    """What each sentence holds that a question type may ask for; computed once per index."""

    dates: np.ndarray  # bool per sentence
    numbers: np.ndarray  # bool per sentence
    names: tuple[frozenset[str], ...]  # capitalised words inside the sentence, lower-cased

    @classmethod
    def of(cls, sentences: list[str]) -> Cues:
        cues = cls(np.array([bool(_DATE.search(t)) for t in sentences], dtype=bool),
                   np.array([bool(_NUMBER.search(t)) for t in sentences], dtype=bool),
                   tuple(frozenset(m.group(0).lower().strip("’'") for m in _PROPER.finditer(t)) for t in sentences))
        cues._name_index  # noqa: B018 -- built with the rest at load, not at the first "who" question
        return cues

    @cached_property
    def _name_index(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """How many names each sentence holds, and each name's sentences (built once per index)."""
        count = np.fromiter((len(s) for s in self.names), dtype=np.int64, count=len(self.names))
        rows: dict[str, list[int]] = {}
        for i, names in enumerate(self.names):
            for w in names:
                rows.setdefault(w, []).append(i)
        return count, {w: np.array(r, dtype=np.int64) for w, r in rows.items()}

    def new_names(self, words: Collection[str]) -> np.ndarray:
        """Does each sentence hold a name not among `words` (`bool(names[i] - set(words))` for
        every i, without a set difference per sentence)?

        >>> Cues.of(["He met Raul Castro.", "He met Castro.", "He met him."]).new_names({"castro"}).tolist()
        [True, False, False]
        """
        count, where = self._name_index
        met = np.zeros(len(count), dtype=np.int64)
        for w in set(words):
            r = where.get(w)
            if r is not None:
                met[r] += 1  # a sentence's names are a set: each row at most once per word
        return count > met


def answer_type_scores(qtype: str, cues: Cues, question_words: set[str], rows: np.ndarray | None = None) -> np.ndarray:
    """1.0 where a sentence contains what the question type asks for (a date, a number, a name
    not already in the question), else 0.0; all zeros for other questions. With `rows`, for
    those sentences only (aligned with `rows`).

    >>> answer_type_scores("who", Cues.of(["He met Raul Castro.", "He met him."]), {"met"}).tolist()
    [1.0, 0.0]
    """
    if qtype == "when":
        marks = cues.dates
    elif qtype == "number":
        marks = cues.numbers
    elif qtype in ("who", "where"):
        marks = cues.new_names(question_words)  # every sentence at once: a name index, no loop
    else:
        return np.zeros(len(cues.dates) if rows is None else len(rows), dtype=np.float32)
    return (marks if rows is None else marks[np.asarray(rows, dtype=np.int64)]).astype(np.float32)


def definition_scores(t: definition.Term, sentences: list[str], token_sets: list[set[str]]) -> np.ndarray:
    """1.0 where a sentence defines the term `t` of a definition question (`definition.defines`),
    else 0.0; `token_sets` are the sentences' content words: only those holding all the term's words
    are read.

    >>> t = definition.term("What is a system user?")
    >>> texts = ["Add the system user to the group.", "A system user is an account for a daemon."]
    >>> definition_scores(t, texts, [{"system", "user", "group"}, {"system", "user", "account"}]).tolist()
    [0.0, 1.0]
    """
    return np.array([t.stems <= ts and definition.defines(s, t) for s, ts in zip(sentences, token_sets)],
                    dtype=np.float32)


def ranks_of(scores: np.ndarray, idx) -> list[int]:
    """1-based ranks of several entries, best (highest) first, ties to the earlier, in one pass
    over `scores` (no sort, so it stays cheap on a very large index).

    >>> ranks_of(np.array([.1, .9, .5, .9]), [2, 3, 1])
    [3, 2, 1]
    """
    idx = np.asarray(idx, dtype=np.int64).reshape(-1)
    if not len(idx):
        return []
    s = scores[idx][:, None]
    ranks = (scores > s).sum(axis=1) + 1
    equal = scores == s
    for j in np.flatnonzero(equal.sum(axis=1) > 1):  # ties (besides the entry itself): the earlier go first
        ranks[j] += equal[j, :idx[j]].sum()
    return ranks.tolist()


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, best first, ties to the earlier index: exactly
    `np.argsort(-scores, kind="stable")[:k]`, without sorting every score. Every entry scoring
    at least the k-th best (ties included) is kept by a partition, and only those are sorted.

    >>> top_k(np.array([.2, .9, .5, .9, .5]), 3).tolist()
    [1, 3, 2]
    """
    scores = np.asarray(scores)
    n = len(scores)
    if k <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    neg = -scores
    if k >= n or n < TOP_K_SORT or k * 8 > n:  # a partition saves nothing on few entries
        return np.argsort(neg, kind="stable")[:k]
    kth = np.partition(neg, k - 1)[k - 1]
    if kth != kth:  # NaN among the k best: the full sort's order, as it is
        return np.argsort(neg, kind="stable")[:k]
    keep = np.flatnonzero(neg <= kth)  # ascending index: the stable sort below breaks ties by it
    return keep[np.argsort(neg[keep], kind="stable")][:k]


#: below this many entries `top_k` sorts them all: a partition is no faster (measured here: k = 8,
#: 504 entries 6.3 against 7.2 us, 256 entries 5.5 against 4.4 us, 2000 entries 15 against 27 us)
TOP_K_SORT = 512
#: entries per wanted group that `best_per_group` looks at before falling back to a full sort
GROUP_PREFIX = 8


def best_per_group(scores: np.ndarray, groups: list, k: int, among: np.ndarray | None = None) -> list[int]:
    """Indices of the best-scoring entry of each group, best first, at most k groups (only
    entries in `among`, when given: the candidates of a very large index).

    >>> best_per_group(np.array([.2, .9, .5, .4]), ["a", "a", "b", "c"], 2)
    [1, 2]
    """
    if among is not None:
        among = np.sort(np.asarray(among, dtype=np.int64))
        sub = scores[among]
    else:
        sub = scores
    m = len(sub)
    want = k * GROUP_PREFIX
    if 0 < want < m:  # the best `want` entries usually hold k groups; if not, everything in order
        out = _walk_groups(top_k(sub, want), among, groups, k)
        if len(out) == k:
            return out
    return _walk_groups(np.argsort(-sub, kind="stable"), among, groups, k)


def _walk_groups(order: np.ndarray, among: np.ndarray | None, groups: list, k: int) -> list[int]:
    """The first entry of each group along `order` (positions in `among`, if given), at most k."""
    seen, out = set(), []
    for i in (order if among is None else among[order]).tolist():
        g = groups[i]
        if g in seen:
            continue
        seen.add(g)
        out.append(i)
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


# --- at scale: candidates from the FAISS index, exact scores for those only ------------------

def candidate_rows(query: np.ndarray, index, bm25_sent: np.ndarray, k: int = 256, lexical_k: int = 128) -> np.ndarray:
    """The sentences worth scoring exactly on an index too big to score every one: the FAISS
    top-`k` windows for the query (HNSW above `Settings.ann_threshold`, so the cost grows with
    log n, not n) plus the `lexical_k` sentences BM25 likes best. Window i is centred on
    sentence i, so a FAISS id is a sentence row. Sorted, unique.

    >>> import faiss; v = np.eye(3, dtype=np.float32); ix = faiss.IndexFlatIP(3); ix.add(v)
    >>> candidate_rows(v[1], ix, np.array([0., 0., 2.]), k=1, lexical_k=1).tolist()
    [1, 2]
    """
    n = len(bm25_sent)
    _, ids = search_faiss(index, query, k)
    parts = [ids.astype(np.int64)]
    if lexical_k > 0 and n:
        top = np.argpartition(-bm25_sent, min(lexical_k, n) - 1)[:lexical_k]
        parts.append(top[bm25_sent[top] > 0].astype(np.int64))
    return np.unique(np.concatenate(parts))


def spread(values: np.ndarray, rows: np.ndarray, n: int, fill: float) -> np.ndarray:
    """Candidate values -> a full-length array: spread([5, 7], [0, 2], 3, -1) -> [5, -1, 7]."""
    out = np.full(n, fill, dtype=np.float32)
    out[rows] = values
    return out
