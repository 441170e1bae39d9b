"""What the index says about one candidate answer, as a fixed vector of numbers (issue 12).

The learned abstainer (`qa.confidence`) reads these. Every feature is either an absolute
similarity (cosines of the model's vectors, which do not depend on what else is indexed) or a
value taken relative to the question's own scores over the index (a z-score, a margin, a
share of the question's words), so that adding unrelated documents moves them little.

`compute` is a pure function over plain values; `of_answer` is the one adapter the engine calls
(it reads the snapshot's and the ranking's fields by name).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from .lexical import STOPWORDS, tokenize, words
from .retrieval import _DATE as DATE
from .retrieval import _NUMBER as NUMBER
from .retrieval import Cues, question_type
from .tokens import Pieces

#: The features, in the order of the vector (and of the coefficients in qa/params/confidence.json).
NAMES: tuple[str, ...] = (
    "top",  # fused score of the chosen sentence (before any reranking)
    "margin",  # ...minus the best fused score in any other paragraph
    "dense_win",  # cosine of question and the window around the chosen sentence
    "tokens",  # word-piece match of the chosen sentence (qa.tokens.maxsim)
    "asked",  # best cosine of a question piece beyond its names in the quote (tokens.asked_match; 1 if none)
    "missing",  # share of the question's idf weight absent from the quote's document (not the index: stable)
    "cov_para",  # idf-weighted share of the question's words in the quote's paragraph
    "names_quote",  # share of the question's names (capitalised words) in the quote
    "names_doc",  # ...in its document
    "nums_doc",  # share of the question's numbers in the document (1 when it has none)
    "type_unmet",  # 1 for a when / how-many / who / where question whose quote lacks what it asks for
    "quote_question",  # 1 when the quote ends with a question mark (a FAQ line, not an answer)
    "has_history",  # 1 when the question leans on earlier ones of a conversation (a pronoun, "what else?")
    "hist_doc",  # share of the earlier turns' content words in the quote's document (0 unless it leans on them)
    "weak_quote",  # the question's least-met content word: min over its words of how well the quote meets it
    "weak_best",  # ...the best of that over the answer's candidate quotes (does any passage meet every word?)
    "asked_doc",  # share of the question's content words beyond its names (stemmed) that its document holds
    "asked_para",  # ...that the quote's paragraph holds
    "weak_name",  # the question's least-met name or number in the quote, matched as weak_quote (1 if it names none)
)
# Measured and left out (held out, tools/fit_confidence.py; docs/ranking.md): features that describe
# the question rather than the answer (its length, whether it names something) and near-copies of
# the ones above (sentence cosine, coverage of the quote, names in the paragraph, the least-met
# word in the paragraph or beyond the names, the hand rule's three threshold tests): with them the
# regression learned which set a question came from, and refused fewer unanswerable questions of
# documents it had not seen. z-scores of the top score against the question's scores over the
# whole index grow with the index's size (about 4 on one article, 10 on 50 web pages), so a
# threshold fitted on one size misjudges another; held out they lowered every set's AUROC.
# Measured for near-miss questions (issue 12; docs/ranking.md, "Near-miss questions"): beside
# weak_name, the least-met word in the paragraph, the mean of the two least-met, the share of
# words met below 0.6 (quote, paragraph), the least-met name in the paragraph or the best
# candidate, names and numbers literally in the quote or paragraph, a negation the quote lacks,
# a "how long / far / old / much" quote without a unit; and questions asked of their own document
# with the answer's paragraphs hidden as extra negatives: none raised the held-out refusals.
# Words that say what kind of answer is wanted rather than what it is about ("how long", "what
# year"): the quote holding them or not says little, so the least-met word ignores them.
FRAME_WORDS = frozenset(["long", "far", "old", "often", "year", "years", "name", "named", "kind", "type"])


@dataclass(frozen=True)
class Features:
    """One candidate's feature vector (`values` aligned with `NAMES`)."""

    values: tuple[float, ...]

    def as_dict(self) -> dict[str, float]:
        return dict(zip(NAMES, self.values))

    def __iter__(self):
        return iter(self.values)


def share(wanted: set[str], have: set[str]) -> float:
    return sum(w in have for w in wanted) / len(wanted) if wanted else 1.0


def _idf_share(qtokens: Sequence[str], have: set[str], idf: dict[str, float]) -> float:
    q = list(dict.fromkeys(qtokens))
    if not q:
        return 0.0
    top = getattr(idf, "top", None)  # `retrieval.IdfTable` keeps it: not a scan of the vocabulary per answer
    unseen = (max(idf.values(), default=1.0) if top is None else top) + 1.0
    w = {t: idf.get(t, unseen) for t in q}
    total = sum(w.values())
    return sum(v for t, v in w.items() if t in have) / total if total > 0 else 0.0


def _word_pieces(qpieces: Pieces) -> dict[str, list[int]]:
    """Each counted content word of the question -> the indices of its pieces (`FRAME_WORDS` and
    one-letter words left out)."""
    groups: dict[str, list[int]] = {}
    for j, w in enumerate(qpieces.words):
        if w not in FRAME_WORDS and len(w) > 1:
            groups.setdefault(w, []).append(j)
    return groups


def word_match(qpieces: Pieces, quote: np.ndarray, groups: dict[str, list[int]] | None = None) -> dict[str, float]:
    """How well a text (its piece vectors `quote`) meets each content word of the question: the
    mean over the word's pieces of each one's best cosine to a piece of the text (a word the
    text holds scores 1). `groups`: `_word_pieces(qpieces)`, when already made.

    >>> v = np.eye(3, dtype=np.float32)
    >>> word_match(Pieces(np.arange(3), v, words=("gu", "gu", "visit")), v[:1])
    {'gu': 0.5, 'visit': 0.0}
    """
    groups = _word_pieces(qpieces) if groups is None else groups
    q = np.asarray(qpieces.vectors, np.float32)
    # text x question pieces: OpenBLAS is 2-4x faster this way round than question x text
    best = (np.asarray(quote, np.float32) @ q.T).max(axis=0).tolist() if len(quote) else [0.0] * len(q)
    return {w: round(sum(best[j] for j in idx) / len(idx), 6) for w, idx in groups.items()}


_MONTH_DAY = re.compile(r"\b(?:January|February|March|April|May|June|July|August|September|October|November|December)"
                        r"\s+\d{1,2}\b|\b\d{1,2}\s+(?:January|February|March|April|May|June|July|August|September|October"
                        r"|November|December)\b", re.IGNORECASE)


def _new_answer(qtype: str, quote: str, qwords: set[str]) -> bool:
    """Does the quote hold a date ("when") or a number ("how many / how far") that the question
    does not already name? A date is no count: "How many were arrested in July 2021?" is not
    met by "On July 16, 2021, ...".

    >>> _new_answer("number", "On July 16, 2021, the ministry spoke.", {"july", "2021"})
    False
    >>> _new_answer("number", "It holds 26 million people.", set())
    True
    """
    if qtype == "number":
        quote = DATE.sub(" ", _MONTH_DAY.sub(" ", quote))
    pattern = {"when": DATE, "number": NUMBER}.get(qtype)
    if pattern is None:
        return False
    return any(not set(words(m.group(0))) <= qwords for m in pattern.finditer(quote)
               if qtype != "number" or not _referring(quote, m))


_REFERS_BEFORE = re.compile(r"\b(?:the|these|those|both)\s+$", re.IGNORECASE)


def _referring(text: str, m: re.Match) -> bool:
    """Is this number word a reference, not a count: "the two allies", "one of the few"? (Not
    "Their three children", "Two of the ships": counts.)

    >>> [_referring(t, NUMBER.search(t)) for t in ("the two allies", "one of the few", "two ships", "26 million",
    ...                                            "Two of the ships sank.", "Their three children")]
    [True, True, False, False, False, False]
    """
    word = m.group(0).lower()
    if word[:1].isdigit():
        return False
    return bool(_REFERS_BEFORE.search(text[max(0, m.start() - 8):m.start()])) or \
        (word == "one" and text[m.end():m.end() + 4] == " of ")


def compute(question: str, qtokens: Sequence[str], names: set[str], prior: np.ndarray, dense_win: np.ndarray,
            piece: np.ndarray | None, pool: np.ndarray | None, para_rows: np.ndarray,
            lead: int, lo: int, hi: int, sentence_tokens: Sequence[set[str]], sentence_text: Callable[[int], str],
            doc_words: frozenset[str], doc_tokens: frozenset[str], idf: dict[str, float], cues: Cues,
            asked: float | None,
            history: Sequence[str] = (), qpieces: Pieces | None = None, piece_vectors: np.ndarray | None = None,
            piece_offsets: np.ndarray | None = None, candidates: Sequence[tuple[int, int]] = ()) -> Features:
    """The features of quoting sentences lo..hi (chosen sentence `lead`) for `question`.

    `prior`, `dense_win`, `piece`: per-sentence scores; `pool`: the sentences
    scored exactly (None: all); `para_rows`: each sentence's paragraph row; `names`: the
    question's names and numbers (`tokens.name_words`); `history`: the conversation's earlier
    questions; `qpieces`: the question's own word pieces (with their words), `piece_vectors` /
    `piece_offsets`: the index's pieces per sentence (`tokens.pack`); `candidates`: the other
    quotes (first, last sentence) the answer cites."""
    top = float(prior[lead])
    if pool is None:  # every row: a mask, not a list of rows (the same maximum)
        other = para_rows != para_rows[lead]
        margin = top - float(np.max(prior, where=other, initial=-np.inf)) if other.any() else 1.0
    else:
        idx = np.asarray(pool)
        other = idx[para_rows[idx] != para_rows[lead]]
        margin = top - float(prior[other].max()) if len(other) else 1.0
    p_lo, p_hi = _paragraph_of(para_rows, lead)
    para_tokens = set().union(*sentence_tokens[p_lo:p_hi + 1])
    quote_text = " ".join(sentence_text(i) for i in range(lo, hi + 1))
    plain = {w for w in names if w.isalpha() and len(w) > 1}  # "ri", "yong" of "Ri Yong-ho"; not "guy's", "s"
    nums = {w for w in names if any(c.isdigit() for c in w)}
    qwords = set(words(question))
    quote_words = set(words(quote_text))
    met = _type_met(question_type(question), quote_text, qwords, cues, range(lo, hi + 1))
    weak_quote, weak_best, weak_name = _weakest(qpieces, piece_vectors, piece_offsets, (lo, hi), candidates,
                                                plain | nums)
    asked_tokens = set(qtokens) - {t for n in plain for t in tokenize(n)}
    hist = {w for h in history for w in words(h) if w not in STOPWORDS and len(w) > 1}
    value = {
        "top": top,
        "margin": margin,
        "dense_win": float(dense_win[lead]),
        "tokens": float(piece[lead]) if piece is not None else 0.0,
        "asked": 1.0 if asked is None else float(asked),
        "missing": 1.0 - _idf_share(qtokens, doc_tokens, idf),
        "cov_para": _idf_share(qtokens, para_tokens, idf),
        "names_quote": share(plain, quote_words),
        "names_doc": share(plain, doc_words),
        "nums_doc": share(nums, doc_words),
        "type_unmet": 0.0 if met else 1.0,
        "quote_question": 1.0 if quote_text.rstrip().endswith("?") else 0.0,
        "has_history": 1.0 if history else 0.0,
        "hist_doc": share(hist, doc_words) if hist else 0.0,
        "weak_quote": weak_quote,
        "weak_best": weak_best,
        "asked_doc": share(asked_tokens, doc_tokens),
        "asked_para": share(asked_tokens, para_tokens),
        "weak_name": weak_name,
    }
    values = tuple(value[n] for n in NAMES)
    return Features(tuple(float(v) for v in values))


def _paragraph_of(para_rows: np.ndarray, lead: int) -> tuple[int, int]:
    """The first and last sentence rows of the paragraph holding sentence `lead`."""
    p, lo, hi, n = para_rows[lead], lead, lead, len(para_rows)  # the run of `lead`'s paragraph around it
    while lo > 0 and para_rows[lo - 1] == p:  # a few rows each way, not a pass over every row
        lo -= 1
    while hi + 1 < n and para_rows[hi + 1] == p:
        hi += 1
    return lo, hi


def _type_met(qtype: str, quote_text: str, qwords: set[str], cues: Cues, span: range) -> bool:
    """Does the quote hold what the question type asks for, beyond what the question says?"""
    if qtype in ("when", "number"):
        return _new_answer(qtype, quote_text, qwords)
    if qtype in ("who", "where"):
        return any(bool(cues.names[i] - qwords) for i in span)
    return True


def _weakest(qpieces: Pieces | None, piece_vectors: np.ndarray | None, piece_offsets: np.ndarray | None,
             quote: tuple[int, int], candidates: Sequence[tuple[int, int]],
             names: Collection[str] = ()) -> tuple[float, float, float]:
    """The question's least-met word in the quote, the best such value over the quote and the
    other candidate quotes, and the least-met of its `names` (names and numbers) in the quote
    (1.0 each when the question has no word pieces; the last also when it names nothing).

    A near-miss question names the document's people and places but may pair them wrongly: on
    the shipped article "Where did Che Guevara die?" gets a quote about Fidel Castro's funeral
    ('guevara' met at 0.24), "When was Miguel Diaz-Canel born?" one that names Diaz-Canel but
    not Miguel (0.43). Alone it ranks a near-miss question below an answerable one 78% of the
    time over the eval sets (an answerable quote can lack a name too: "When did Fidel Castro
    visit Pyongyang?" quotes "In 1986, Fidel Castro visited his Korean comrades ...", 0.44)."""
    if qpieces is None or qpieces.words is None or not len(qpieces.ids) or piece_vectors is None:
        return 1.0, 1.0, 1.0

    groups = _word_pieces(qpieces)
    if not groups:
        return 1.0, 1.0, 1.0
    per_span = [word_match(qpieces, piece_vectors[int(piece_offsets[a]):int(piece_offsets[b + 1])], groups)
                for a, b in (quote, *candidates)]
    in_quote = per_span[0]
    weak = [min(m.values()) for m in per_span]
    weak_name = min((v for w, v in in_quote.items() if w in names), default=1.0)
    return weak[0], max(weak), weak_name


def of_answer(snap, ranked, q, lead: int, lo: int, hi: int, asked: float | None,
              history: Sequence[str] = (), candidates: Sequence[tuple[int, int]] = ()) -> Features:
    """`compute` for `answer.compose`: reads the snapshot's sentences, paragraphs, idf, cues and
    capitals, the parsed question (`ranking.Question`) and the ranking's scores (before
    reranking) by name."""
    data = snap.data
    question, names = q.text, q.names(snap.capitalised)
    prior = ranked.base
    sig = ranked.signals
    doc = data.sentences[lead].doc
    return compute(question, ranked.tokens, names, prior, sig.dense_win, sig.tokens, ranked.rows,
                   snap.sentence_para_rows, lead, lo, hi, snap.sentence_tokens,
                   lambda i: data.sentences[i].text, *snap.doc_words(doc), snap.doc_idf(snap.doc_order[doc]),
                   snap.cues, asked, history,
                   ranked.asked, snap.piece_vectors, data.piece_offsets, candidates)
