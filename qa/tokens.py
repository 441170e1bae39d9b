"""Word-piece level matching ("late interaction"): how well each question word is met in a sentence.

The embedding model reads a sentence and gives every word piece a vector in context. A
sentence answers a question well when each of the question's rarer words finds a close
counterpart among the sentence's pieces ("monarch" meets "king", "guage" meets "measure"),
even when the sentence as a whole is about something broader. For each sentence:

    tokens = sum over question pieces q of idf(q) * max over sentence pieces s of cos(q, s)
             / sum of idf(q)

Only content pieces count (no [CLS]/[SEP], punctuation or stop words). Measured on the eval
sets this signal alone ranks the answering sentence first more often than the sentence
vector does (README, "How ranking was tuned").

Everything here takes plain arrays: piece ids, unit vectors, and `offsets` where sentence i
owns rows offsets[i]:offsets[i+1] of the index's piece arrays (every sentence owns >= 1 row).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .lexical import COMPOUND, JOINERS, STOPWORDS, Columns, fold
from .lexical import idf as lexical_idf


@dataclass(frozen=True)
class Pieces:
    """The content word pieces of one text: vocabulary ids and unit vectors (one row each);
    `scale` (optional) multiplies each piece's idf weight (a follow-up's borrowed words);
    `words` (optional) is the whole word each piece belongs to, lower-cased, accents off."""

    ids: np.ndarray  # int32, shape (m,)
    vectors: np.ndarray  # float32, shape (m, dim), rows L2-normalised (about: int8 codes x scale when read back from an index)
    scale: np.ndarray | None = None
    words: tuple[str, ...] | None = None  # e.g. 'guevara' for each of 'gu', '##eva', '##ra'

    @staticmethod
    def empty(dim: int) -> Pieces:
        return Pieces(np.zeros(0, dtype=np.int32), np.zeros((0, dim), dtype=np.float32))


_SPECIAL = frozenset(("[CLS]", "[SEP]", "[PAD]", "[UNK]", "<s>", "</s>", "<pad>", "<unk>"))


@lru_cache(maxsize=1 << 16)  # a vocabulary's worth: every question's pieces are looked up
def is_content(piece: str) -> bool:
    """'##eva' and 'visited' count; '[CLS]', ',' and 'the' do not; a word's continuation never
    counts as a stop word ('##it' of 'Politburo'). Word-start marks of other tokenizers ('▁the'
    in SentencePiece, 'Ġthe' in byte-level BPE) are read the same way."""
    if piece in _SPECIAL:
        return False
    if piece.startswith("##"):
        return piece[2:].isalnum()
    core = piece.removeprefix("▁").removeprefix("Ġ").lower()
    return bool(core) and core.isalnum() and core not in STOPWORDS


def select(pieces: list[str], ids, vectors: np.ndarray) -> Pieces:
    """Keep the content pieces of one encoded text (vectors re-normalised), each with the word
    it belongs to. A text of stop words only has none: it matches nothing, rather than
    matching other stop words."""
    keep = [i for i, p in enumerate(pieces) if is_content(p) and i < len(vectors)]
    vectors = np.asarray(vectors, dtype=np.float32)
    vecs = vectors[keep] if keep else np.zeros((0, vectors.shape[-1]), dtype=np.float32)
    vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    written = _words_of(pieces)
    return Pieces(np.asarray([int(ids[i]) for i in keep], dtype=np.int32), vecs,
                  words=tuple(written[i] for i in keep))


def content(part) -> Pieces:
    """An encoder's word pieces of one text (`qa.embedding.TokenVectors`: every piece's string,
    id and vector) -> its content `Pieces` (`select`); `Pieces` given directly pass through."""
    if isinstance(part, Pieces):
        return part
    return select(list(part.tokens), part.ids, part.vectors)


def name_words(text: str, known: Collection[str] = ()) -> set[str]:
    """The words of a question that are names or numbers (lower-cased, accents off): written
    with a capital after the first word, or holding a digit; the parts of a hyphenated or
    possessive name count too ("Ri Yong-ho", "Kim's"). When the question's casing says nothing
    (all lower case, all capitals, every word capitalised), the words the documents write
    with a capital (`known`) are its names instead.

    >>> sorted(name_words("Who founded the Workers' Party of Korea in 1946?"))
    ['1946', 'korea', 'party', 'workers']
    >>> sorted(name_words("who poisoned ri yong-ho?", known={"ri", "yong-ho"}))
    ['ho', 'ri', 'yong', 'yong-ho']
    """
    return set(_name_words(text, known if isinstance(known, frozenset) else frozenset(known)))


@lru_cache(maxsize=1024)
def _name_words(text: str, known: frozenset[str]) -> frozenset[str]:
    """`name_words`, kept per question: ranking and the confidence features both ask."""
    ws = COMPOUND.findall(fold(text))
    informative = _cased(ws)
    out: set[str] = set()
    for j, w in enumerate(ws):
        low = w.lower()
        if any(c.isdigit() for c in w) or (informative and j > 0 and w[:1].isupper()) or \
                (not informative and low in known):
            _add_with_parts(out, low)
    return frozenset(out)


def _add_with_parts(out: set[str], word: str) -> None:
    """A name and its hyphenated or possessive parts: 'yong-ho' -> yong-ho, yong, ho."""
    out.add(word)
    out.update(p for p in JOINERS.split(word) if p)


def cased(text: str) -> bool:
    """Does the casing of a question tell its names apart: after the first word, some words
    start with a capital and some do not ("who is ri?", "WHO IS RI?", "Who Is Ri?": no)."""
    return _cased(COMPOUND.findall(fold(text)))


def _cased(ws: list[str]) -> bool:
    rest = [w for w in ws[1:] if w[:1].isalpha()]
    return any(w[:1].isupper() for w in rest) and any(w[:1].islower() for w in rest)


def capitalised_words(texts: Iterable[str]) -> frozenset[str]:
    """Words written with a capital after a text's first word more often than without
    (lower-cased, accents off; a hyphenated name's parts too).

    >>> sorted(capitalised_words(["Kim met Ri Yong-ho.", "The party met.", "A Party of Korea."]))
    ['ho', 'korea', 'ri', 'yong', 'yong-ho']
    """
    upper: Counter[str] = Counter()
    lower: Counter[str] = Counter()
    for text in texts:
        for w in COMPOUND.findall(fold(text))[1:]:
            (upper if w[:1].isupper() else lower)[w.lower()] += 1
    out: set[str] = set()
    for w, n in upper.items():
        if n > lower[w]:
            _add_with_parts(out, w)
    return frozenset(out)


def name_mask(query: Pieces, names: Collection[str]) -> np.ndarray | None:
    """Which of the question's pieces belong to its names (None when its words are unknown)."""
    if query.words is None:
        return None
    return np.array([w in names for w in query.words], dtype=bool)


def _words_of(pieces: list[str]) -> list[str]:
    """For each piece, the whole word it is part of, lower-cased, accents off: ['ch', '##ong',
    'ri'] -> ['chong', 'chong', 'ri']. WordPiece marks continuations ('##'); SentencePiece and
    byte-level BPE mark word starts ('▁', 'Ġ'). Punctuation and special tokens are words of
    their own, so 'Korea?' gives 'korea' and '?'."""
    marked = any(p[:1] in ("▁", "Ġ") for p in pieces)
    words, spans, prev = [], [], ""
    for p in pieces:
        core = p.removeprefix("##").removeprefix("▁").removeprefix("Ġ")
        joins = (not p[:1] in ("▁", "Ġ")) if marked else p.startswith("##")
        if not (joins and words and core.isalnum() and prev.isalnum()) or p in _SPECIAL:
            words.append("")
        words[-1] += fold(core).lower()
        spans.append(len(words) - 1)
        prev = "" if p in _SPECIAL else core
    return [words[c] for c in spans]


def asked_match(query: Pieces, names: np.ndarray | None, vectors: np.ndarray, offsets: np.ndarray,
                lo: int, hi: int) -> float | None:
    """How well a quote (sentences lo..hi) meets what the question asks beyond its `names`
    (`name_mask`): the best cosine of any of the question's other content pieces to any piece
    of the quote. Low when the quote shares only the names ("Who founded the Workers' Party of
    Korea?" against a sentence about the party's meetings: 'founded' meets nothing). None when
    the question has no such piece, or its names are unknown."""
    if names is None or not len(query.ids) or names.all():
        return None
    asked = np.asarray(query.vectors[~names], dtype=np.float32)
    quote = np.asarray(vectors[int(offsets[lo]):int(offsets[hi + 1])], dtype=np.float32)
    return float((quote @ asked.T).max()) if len(quote) else 0.0  # quote x question: faster (as in maxsim)


def merge(own: Pieces, borrowed: Pieces, weight: float) -> Pieces:
    """A follow-up's pieces: its own, then the previous question's that it lacks, at `weight`."""
    extra = ~np.isin(borrowed.ids, own.ids)
    scale = np.concatenate([np.ones(len(own.ids), np.float32) if own.scale is None else own.scale,
                            np.full(int(extra.sum()), weight, np.float32)])
    return Pieces(np.concatenate([own.ids, borrowed.ids[extra]]),
                  np.concatenate([own.vectors, borrowed.vectors[extra].astype(own.vectors.dtype)]), scale)


def pack(items: list[Pieces], dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-sentence pieces -> (ids, float16 vectors, offsets) arrays for the index folder.
    A sentence without pieces gets one zero row (id 0), so segments are never empty."""
    items = [p if len(p.ids) else Pieces(np.zeros(1, np.int32), np.zeros((1, dim), np.float16)) for p in items]
    offsets = np.zeros(len(items) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p.ids) for p in items])
    if not items:
        return np.zeros(0, np.int32), np.zeros((0, dim), np.float16), offsets
    return (np.concatenate([p.ids for p in items]).astype(np.int32),
            np.concatenate([np.asarray(p.vectors, dtype=np.float16) for p in items]), offsets)


def unpack(ids: np.ndarray, vectors, offsets: np.ndarray, i: int) -> Pieces:
    """Sentence i's pieces back out of the packed arrays (`vectors`: an array, or `PieceCodes`,
    read as float32; a zero row stands for "no pieces")."""
    lo, hi = int(offsets[i]), int(offsets[i + 1])
    vecs = vectors[lo:hi]
    keep = np.any(vecs != 0, axis=1)
    return Pieces(np.asarray(ids[lo:hi][keep], dtype=np.int32), vecs[keep])


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Piece vectors -> (int8 codes, float32 scale per row) for the index folder: row r is
    about codes[r] * scales[r], each value within scales[r] / 2 (0.4% of the row's largest).
    Quantizing what `dequantize` gave back yields the same codes, so a piece reused by the next
    build (the embedding cache) is not degraded again.

    >>> codes, scales = quantize(np.array([[0.5, -0.25, 0.0]], np.float16))
    >>> codes.tolist(), dequantize(codes, scales).tolist()
    ([[127, -64, 0]], [[0.5, -0.251953125, 0.0]])
    """
    codes = np.zeros(vectors.shape, np.int8)
    scales = np.zeros(len(vectors), np.float32)
    for lo in range(0, len(vectors), _BLOCK):  # in blocks: no float32 copy of the whole array
        v = np.asarray(vectors[lo:lo + _BLOCK], dtype=np.float32)
        scales[lo:lo + len(v)] = np.abs(v).max(axis=1) / 127.0 if v.shape[1] else 0.0
        codes[lo:lo + len(v)] = np.clip(np.rint(v / np.maximum(scales[lo:lo + len(v)], 1e-30)[:, None]), -127, 127)
    return codes, scales


def dequantize(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """`quantize`'s codes and scales -> float16 piece vectors (format 2 stored these)."""
    out = np.zeros(codes.shape, np.float16)
    for lo in range(0, len(codes), _BLOCK):
        out[lo:lo + _BLOCK] = codes[lo:lo + _BLOCK].astype(np.float32) * scales[lo:lo + _BLOCK, None].astype(np.float32)
    return out


_BLOCK = 8192  # rows converted at a time (12 MB of float32 at 384 dimensions)


class PieceCodes:
    """Packed piece vectors held as the index stores them: int8 codes and one float32 scale per
    row (`quantize`), a quarter of float32's memory. Indexing it (a row range, or an array of
    rows) gives those rows as float32, codes x scale, so matching converts only the rows it
    scores (600 rows: ~0.2 ms; a float16 round trip as `dequantize` does would cost ~4 ms).

    >>> c = PieceCodes(*quantize(np.array([[0.5, -0.25], [0.0, 1.0]], np.float32)))
    >>> len(c), c.shape, c[1:].tolist(), c[np.array([1, 0])].dtype
    (2, (2, 2), [[0.0, 1.0]], dtype('float32'))
    """

    dtype = np.dtype(np.float32)  # what reading rows gives
    ndim = 2

    def __init__(self, codes: np.ndarray, scales: np.ndarray):
        self.codes, self.scales = codes, np.asarray(scales, dtype=np.float32)

    @property
    def shape(self) -> tuple[int, int]:
        return self.codes.shape

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.scales.nbytes)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, rows) -> np.ndarray:
        if isinstance(rows, (int, np.integer)):
            return self[int(rows):int(rows) + 1][0]
        out = self.codes[rows].astype(np.float32)
        out *= self.scales[rows][:, None]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def idf(ids: np.ndarray, offsets: np.ndarray) -> dict[int, float]:
    """Inverse sentence frequency of each piece id over the index's sentences.

    >>> idf(np.array([7, 8, 7]), np.array([0, 2, 3]))  # sentence 0: {7, 8}; sentence 1: {7}
    {7: 0.1823215567939546, 8: 0.6931471805599453}
    """
    n = len(offsets) - 1
    if n <= 0:
        return {}
    owner = np.repeat(np.arange(n), np.diff(offsets))
    pairs = np.unique(np.stack([owner, ids.astype(np.int64)], 1), axis=0) if len(ids) else np.zeros((0, 2), np.int64)
    uniq, df = np.unique(pairs[:, 1], return_counts=True)
    return {int(t): lexical_idf(int(c), n) for t, c in zip(uniq, df)}


def maxsim(query: Pieces, vectors: np.ndarray, offsets: np.ndarray, weights: dict[int, float] | np.ndarray,
           rows: np.ndarray | None = None) -> np.ndarray:
    """The idf-weighted late-interaction score of every sentence (or of `rows` only: then the
    result is aligned with `rows`). `weights` is an idf table over the whole index (piece id ->
    idf: a piece the index never saw weighs as a piece in no sentence would, log((n+1)/0.5))
    or an array of each scored sentence's own idf for each question piece (shape: sentences
    scored x question pieces; `DocPieceIdf.weights` taken at each sentence's document)."""
    n = len(offsets) - 1
    size = n if rows is None else len(rows)
    if size == 0 or len(query.ids) == 0 or len(vectors) == 0:
        return np.zeros(size, dtype=np.float32)
    if isinstance(weights, np.ndarray):
        w = np.asarray(weights, dtype=np.float32).reshape(size, len(query.ids))
    else:
        unseen = lexical_idf(0, n)
        w = np.array([[weights.get(int(t), unseen) for t in query.ids]], dtype=np.float32)
    if query.scale is not None:
        w = w * query.scale
    w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    q = query.vectors.astype(np.float32)
    # pieces x question pieces, not the transpose: the same products (bit for bit), but OpenBLAS
    # multiplies a few rows by many 2-4x slower than many rows by a few (measured, docs/scaling.md)
    if rows is None:
        sims = np.asarray(vectors, dtype=np.float32) @ q.T  # (pieces, m)
        best = np.maximum.reduceat(sims, offsets[:-1], axis=0)  # (n, m): each segment is non-empty
    else:
        rows = np.asarray(rows, dtype=np.int64)
        lo, lens = offsets[rows], offsets[rows + 1] - offsets[rows]
        starts = np.zeros(len(lens), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        take = np.repeat(lo - starts, lens) + np.arange(int(lens.sum()))  # the rows' pieces, in order
        sims = np.asarray(vectors[take], dtype=np.float32) @ q.T
        best = np.maximum.reduceat(sims, starts, axis=0)
    best = np.ascontiguousarray(best.T)  # (m, scored): the layout the weighted sum below was written for
    return (w * best.T).sum(axis=1).astype(np.float32)  # each scored sentence's weighted mean


class DocPieceIdf:
    """Each word piece's idf within each document (over that document's sentences), so that a
    sentence's word-piece match depends on its own document only (issue 12, item 7).

    `docs[i]` is sentence i's document (an index); `offsets` as in `maxsim`.

    >>> t = DocPieceIdf(np.array([7, 8, 7, 9]), np.array([0, 2, 3, 4]), np.array([0, 0, 1]))
    >>> [[round(float(x), 3) for x in row] for row in t.weights(np.array([7, 9]))]  # doc 0: 7 in both, 9 in none
    [[0.182, 1.792], [1.386, 0.288]]
    """

    def __init__(self, ids: np.ndarray, offsets: np.ndarray, docs: np.ndarray):
        n = len(offsets) - 1
        self.docs = np.asarray(docs, dtype=np.int64)
        ndocs = int(self.docs.max()) + 1 if n else 0
        owner = np.repeat(np.arange(n), np.diff(offsets))
        pairs = np.unique(np.stack([owner, ids.astype(np.int64)], 1), axis=0) if len(ids) else np.zeros((0, 2), np.int64)
        self.width = int(pairs[:, 1].max()) + 1 if len(pairs) else 1
        # sentences of each document holding each piece
        self.df = Columns.of(self.docs[pairs[:, 0]], pairs[:, 1], self.width)
        self.sentences = np.bincount(self.docs, minlength=ndocs).astype(np.float64)

    def weights(self, query_ids: np.ndarray) -> np.ndarray:
        """(documents, pieces): the idf of each query piece in each document (`lexical.idf`)."""
        ids = np.asarray(query_ids, dtype=np.int64)
        known = ids < self.width
        df = np.zeros((len(self.sentences), len(ids)), dtype=np.float64)
        for k in np.flatnonzero(known):
            docs, counts = self.df.column(ids[k])
            df[docs, k] = counts
        return np.log((self.sentences[:, None] + 1) / (df + 0.5)).astype(np.float32)
