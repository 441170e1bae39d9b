"""Word-level text handling shared by indexing and querying: tokens, stems, per-document BM25.

>>> tokenize("When did Che Guevara visit Pyongyang?")
['che', 'guevara', 'visit', 'pyongyang']
"""

from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache

import numpy as np

STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing done down during each else ever few for from
further had has have having he her here hers herself him himself his how i if in into is it its
itself just me more most my myself no nor not now of off on once only or other our ours ourselves
out over own same she should so some such than that the their theirs them themselves then there
these they this those through to too under until up upon us very was we were what whatever when
where whether which while who whom whose why will with would you your yours yourself yourselves
tell according article document say said says one ones many much
""".split())  # noqa: SIM905 -- a readable word list


def idf(df: int, n: int) -> float:
    """Inverse document frequency of a word (or word piece) in `df` of `n` sentences: the one
    formula every idf table uses, log((n + 1) / (df + 0.5)). A word the index has never seen
    (df = 0) weighs log((n + 1) / 0.5), log 3 above a word seen once: the one rule for unseen words.

    >>> round(idf(1, 2), 3), round(idf(0, 2), 3)
    (0.693, 1.792)
    """
    return math.log((n + 1) / (df + 0.5))


_POSSESSIVE_ENDS = ("'s", "’s")  # a word's possessive ending, dropped
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
COMPOUND = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")  # a word, hyphenated parts joined ("Yong-ho")
JOINERS = re.compile(r"[-'’]")  # what joins a COMPOUND's parts


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def fold(text: str) -> str:
    """Accents off, as the model's uncased tokenizer does: 'Neufmarché' -> 'Neufmarche'."""
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """Lower-cased words, accents off, possessive 's dropped.

    >>> words("Kim's régime met Neufmarché")
    ['kim', 'regime', 'met', 'neufmarche']
    """
    return list(_words(text))


@lru_cache(maxsize=4096)
def _words(text: str) -> tuple[str, ...]:
    """`words`, kept for the texts met again and again: a question's quote and paragraph (the
    confidence features read them per answer), each sentence tokenized at load."""
    return tuple((w[:-2] if w.endswith(_POSSESSIVE_ENDS) else w).replace("’", "'")
                 for w in _WORD.findall(fold(text).lower()))


def tokenize(text: str) -> list[str]:
    """Content words, stemmed; what BM25 and term matching see."""
    return [_stem(w) for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


@lru_cache(maxsize=100_000)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


class Columns:
    """A sparse count table read column by column (the part of a CSC matrix the ranking needs,
    in numpy: answering imports no scipy). Column `j` holds rows `rows[indptr[j]:indptr[j + 1]]`
    (sorted, distinct), each with how often the pair (row, j) was given in `counts`.

    >>> c = Columns.of(np.array([2, 0, 2, 1]), np.array([1, 1, 1, 0]), 3)
    >>> c.column(1)
    (array([0, 2]), array([1., 2.], dtype=float32))
    >>> c.column(2)[0].size
    0
    """

    def __init__(self, indptr: np.ndarray, rows: np.ndarray, counts: np.ndarray):
        self.indptr, self.rows, self.counts = indptr, rows, counts

    @classmethod
    def of(cls, rows: np.ndarray, cols: np.ndarray, n_cols: int) -> Columns:
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        height = int(rows.max()) + 1 if rows.size else 1
        keys, counts = np.unique(cols * height + rows, return_counts=True)  # sorted by column, then row
        col = keys // height
        return cls(np.searchsorted(col, np.arange(n_cols + 1)), keys % height, counts.astype(np.float32))

    def column(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.indptr[j], self.indptr[j + 1]
        return self.rows[lo:hi], self.counts[lo:hi]


class DocBM25:
    """BM25 in which every row (a sentence, or a paragraph) is scored with its own document's
    statistics: idf over that document's rows, length relative to that document's mean. A
    document's scores therefore do not move when other documents are added (issue 12, item 7).

    `share` divides each row's score by what a row of average length holding every question
    word once would get in that document, so the result reads as the idf-weighted share of the
    question met (about 1 for a full match; more for repeated words in a short row), with no
    maximum taken over the index. A question word a document lacks weighs as a word in none of
    its rows, so that document's shares are lower.

    >>> bm = DocBM25([["che", "visit"], ["che"], ["sugar"]], np.array([0, 0, 1]))
    >>> [round(x, 2) for x in bm.share(["che", "visit"]).tolist()]
    [0.87, 0.25, 0.0]
    """

    K1, B = 1.5, 0.75  # the usual defaults (Lucene's, bm25s')

    def __init__(self, token_lists: list[list[str]], docs: np.ndarray):
        self.docs = np.asarray(docs, dtype=np.int64)
        n = len(token_lists)
        ndocs = int(self.docs.max()) + 1 if n else 0
        self.vocab: dict[str, int] = {}
        rows = np.repeat(np.arange(n, dtype=np.int64), [len(t) for t in token_lists])
        cols = np.array([self.vocab.setdefault(t, len(self.vocab)) for toks in token_lists for t in toks],
                        dtype=np.int64)
        self.tf = Columns.of(rows, cols, len(self.vocab))  # each (row, word) once, with its count
        self.length = np.array([len(t) for t in token_lists], dtype=np.float32)
        self.rows_per_doc = np.bincount(self.docs, minlength=ndocs).astype(np.float32)
        mean = np.bincount(self.docs, weights=self.length, minlength=ndocs) / np.maximum(self.rows_per_doc, 1)
        self.norm_len = (1 - self.B + self.B * self.length / np.maximum(mean[self.docs], 1e-9)).astype(np.float32)
        word = np.repeat(np.arange(len(self.vocab)), np.diff(self.tf.indptr))
        self.df = Columns.of(self.docs[self.tf.rows], word, len(self.vocab))  # rows of each document holding each word

    def rows_with_all(self, tokens) -> np.ndarray:
        """The rows holding every one of `tokens` (sorted; none for an empty set or an unknown word).

        >>> DocBM25([["cuba", "sugar"], ["cuba"], ["sugar", "cuba"]], np.zeros(3)).rows_with_all({"cuba", "sugar"}).tolist()
        [0, 2]
        """
        ids = [self.vocab.get(t) for t in tokens]
        if not ids or None in ids:
            return np.zeros(0, dtype=np.int64)
        out = self.tf.column(ids[0])[0]
        for j in ids[1:]:
            out = np.intersect1d(out, self.tf.column(j)[0], assume_unique=True)
        return out

    def idf(self, token: str) -> np.ndarray:
        """The word's idf in each document (Lucene's form, always > 0)."""
        j = self.vocab.get(token)
        df = np.zeros(len(self.rows_per_doc), np.float32)
        if j is not None:
            docs, counts = self.df.column(j)
            df[docs] = counts
        return np.log1p((self.rows_per_doc - df + 0.5) / (df + 0.5)).astype(np.float32)

    def share(self, tokens: list[str], weights: list[float] | None = None) -> np.ndarray:
        """Every row's score for the question words `tokens` (each once, at `weights`, default 1)."""
        n = len(self.length)
        out = np.zeros(n, dtype=np.float32)
        ceiling = np.zeros(len(self.rows_per_doc), dtype=np.float32)
        weights = [1.0] * len(tokens) if weights is None else weights
        for t, w in dict(zip(tokens, weights)).items():
            idf, rows, tf, part = self._term(t)
            if w != 1.0:  # a follow-up's borrowed word: computed afresh (at weight 1 it is kept)
                idf = w * idf
                part = None if rows is None else self._part(idf, rows, tf)
            ceiling += idf
            if rows is not None:
                out[rows] += part
        return out / np.maximum(ceiling[self.docs], 1e-12) if n else out

    def _part(self, idf: np.ndarray, rows: np.ndarray, tf: np.ndarray) -> np.ndarray:
        return idf[self.docs[rows]] * tf * (self.K1 + 1) / (tf + self.K1 * self.norm_len[rows])

    def _term(self, token: str) -> tuple:
        """(idf per document, the rows holding the word, its counts there, their scores at weight
        1): the same for every question, so kept per word of the vocabulary once computed."""
        terms = self.__dict__.setdefault("_terms", {})
        hit = terms.get(token)
        if hit is None:
            idf, j = self.idf(token), self.vocab.get(token)
            if j is None:  # not in the vocabulary: not kept (questions may bring any number of these)
                return idf, None, None, None
            rows, tf = self.tf.column(j)
            hit = terms[token] = (idf, rows, tf, self._part(idf, rows, tf))
        return hit
