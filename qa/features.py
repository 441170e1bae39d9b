"""What the index says about one candidate answer, as a fixed vector of numbers (issue 12).

The learned abstainer (`qa.confidence`) reads these. Every feature is either an absolute
similarity (cosines of the model's vectors, which do not depend on what else is indexed) or a
value taken relative to the question's own scores over the index (a z-score, a margin, a
share of the question's words), so that adding unrelated documents moves them little.

`compute` is a pure function over plain values; `of_answer` is the one adapter the engine calls
(it reads the snapshot's and the ranking's fields by name).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .lexical import STOPWORDS, words
from .retrieval import Cues, question_type

#: The features, in the order of the vector (and of the coefficients in qa/params/confidence.json).
NAMES: tuple[str, ...] = (
    "top",  # fused score of the chosen sentence (before any reranking)
    "margin",  # ...minus the best fused score in any other paragraph
    "dense_sent",  # cosine of question and chosen sentence
    "dense_win",  # cosine of question and the window around it
    "tokens",  # word-piece match of the chosen sentence (qa.tokens.maxsim)
    "asked",  # best cosine of a question piece beyond its names in the quote (tokens.asked_match)
    "asked_none",  # 1 when the question has no piece beyond its names
    "missing",  # share of the question's idf weight absent from the index
    "cov_quote",  # idf-weighted share of the question's words in the quote
    "cov_para",  # ...in the quote's paragraph
    "names_quote",  # share of the question's names (capitalised words) in the quote
    "names_para",  # ...in its paragraph
    "names_doc",  # ...in its document
    "has_names",  # 1 when the question names something
    "nums_doc",  # share of the question's numbers in the document (1 when it has none)
    "type_asked",  # 1 for a when / how-many / who / where question
    "type_met",  # 1 when the quote holds what that type asks for (a date, a number, a new name)
    "quote_question",  # 1 when the quote ends with a question mark (a FAQ line, not an answer)
    "qlen",  # log(1 + number of the question's content words)
    "has_history",  # 1 when the question comes after others in a conversation
    "hist_para",  # share of the earlier turns' content words in the quote's paragraph (0 without history)
    "hist_doc",  # ...in its document
    "asked_low",  # 1 when `asked` is under ASKED_LOW  } the hand-set refusal rule's three tests
    "missing_high",  # 1 when `missing` is at least MISSING_HIGH  } (engine.Policy), as inputs the
    "top_low",  # 1 when `top` is under TOP_LOW  } regression weighs
)
# The hand-set rule's thresholds (engine.Policy: abstain_unasked, abstain_missing, abstain_below),
# tuned on the article and SQuAD before issue 12. As binary features they let the linear model
# use their steps; held out they raised the share of unanswerable questions refused at the same
# share of answerable ones refused (docs/ranking.md).
ASKED_LOW, MISSING_HIGH, TOP_LOW = 0.25, 0.7, 1.175
# Not features, measured: z-scores of the top score against the question's scores over the
# whole index grow with the index's size (about 4 on one article, 10 on 50 web pages), so a
# threshold fitted on one size misjudges another; held out they lowered every set's AUROC.


@dataclass(frozen=True)
class Features:
    """One candidate's feature vector (`values` aligned with `NAMES`)."""

    values: tuple[float, ...]

    def as_dict(self) -> dict[str, float]:
        return dict(zip(NAMES, self.values))

    def __iter__(self):
        return iter(self.values)


def _share(wanted: set[str], have: set[str]) -> float:
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


@lru_cache(maxsize=256)
def _doc_words(text: str) -> frozenset[str]:
    """A document's words (lower-case, accents off), read once per document text."""
    return frozenset(words(text))


def compute(question: str, qtokens: Sequence[str], names: set[str], prior: np.ndarray, dense_sent: np.ndarray,
            dense_win: np.ndarray, piece: np.ndarray | None, pool: np.ndarray | None, para_rows: np.ndarray,
            lead: int, lo: int, hi: int, sentence_tokens: Sequence[set[str]], sentence_text: Callable[[int], str],
            doc_text: str, idf: dict[str, float], cues: Cues, asked: float | None, missing: float,
            history: Sequence[str] = ()) -> Features:
    """The features of quoting sentences lo..hi (chosen sentence `lead`) for `question`.

    `prior`, `dense_sent`, `dense_win`, `piece`: per-sentence scores; `pool`: the sentences
    scored exactly (None: all); `para_rows`: each sentence's paragraph row; `names`: the
    question's names and numbers (`tokens.name_words`); `history`: the conversation's earlier
    questions."""
    idx = np.arange(len(prior)) if pool is None else np.asarray(pool)
    top = float(prior[lead])
    other = idx[para_rows[idx] != para_rows[lead]]
    margin = top - float(prior[other].max()) if len(other) else 1.0
    n = len(para_rows)
    p_lo, p_hi = lead, lead
    while p_lo > 0 and para_rows[p_lo - 1] == para_rows[lead]:
        p_lo -= 1
    while p_hi + 1 < n and para_rows[p_hi + 1] == para_rows[lead]:
        p_hi += 1
    quote_tokens = set().union(*sentence_tokens[lo:hi + 1])
    para_tokens = set().union(*sentence_tokens[p_lo:p_hi + 1])
    quote_text = " ".join(sentence_text(i) for i in range(lo, hi + 1))
    para_text = " ".join(sentence_text(i) for i in range(p_lo, p_hi + 1))
    plain = {w for w in names if "-" not in w and not any(c.isdigit() for c in w)}
    nums = {w for w in names if any(c.isdigit() for c in w)}
    qwords = set(words(question))
    quote_words, para_words, doc_words = set(words(quote_text)), set(words(para_text)), _doc_words(doc_text)
    qtype = question_type(question)
    span = range(lo, hi + 1)
    if qtype == "when":
        met = any(bool(cues.dates[i]) for i in span)
    elif qtype == "number":
        met = any(bool(cues.numbers[i]) for i in span)
    elif qtype in ("who", "where"):
        met = any(bool(cues.names[i] - qwords) for i in span)
    else:
        met = False
    hist = {w for h in history for w in words(h) if w not in STOPWORDS and len(w) > 1}
    values = (
        top,
        margin,
        float(dense_sent[lead]),
        float(dense_win[lead]),
        float(piece[lead]) if piece is not None else 0.0,
        1.0 if asked is None else float(asked),
        1.0 if asked is None else 0.0,
        float(missing),
        _idf_share(qtokens, quote_tokens, idf),
        _idf_share(qtokens, para_tokens, idf),
        _share(plain, quote_words),
        _share(plain, para_words),
        _share(plain, doc_words),
        1.0 if plain else 0.0,
        _share(nums, doc_words),
        1.0 if qtype else 0.0,
        1.0 if met else 0.0,
        1.0 if quote_text.rstrip().endswith("?") else 0.0,
        float(np.log1p(len(set(qtokens)))),
        1.0 if history else 0.0,
        _share(hist, para_words) if hist else 0.0,
        _share(hist, doc_words) if hist else 0.0,
        1.0 if asked is not None and asked < ASKED_LOW else 0.0,
        1.0 if missing >= MISSING_HIGH else 0.0,
        1.0 if top < TOP_LOW else 0.0,
    )
    return Features(tuple(float(v) for v in values))


def of_answer(snap, ranked, q, lead: int, lo: int, hi: int, asked: float | None,
              missing: float, history: Sequence[str] = ()) -> Features:
    """`compute` for `answer.compose`: reads the snapshot's sentences, paragraphs, idf, cues and
    capitals, the parsed question (`ranking.Question`) and the ranking's scores (before
    reranking) by name."""
    data = snap.data
    question, names = q.text, q.names(snap.capitalised)
    prior = ranked.fused if ranked.prior is None else ranked.prior
    sig = ranked.signals
    doc = snap.docs[data.sentences[lead].doc]
    return compute(question, ranked.tokens, names, prior, sig.dense_sent, sig.dense_win, sig.tokens, ranked.rows,
                   snap.sentence_para_rows, lead, lo, hi, snap.sentence_tokens,
                   lambda i: data.sentences[i].text, doc.text, snap.idf, snap.cues, asked, missing, history)
