"""`Answer` / `Citation`, quote selection, and `compose()`: one ranked question -> the answer
(the first quote, up to k citations one per paragraph, found or "not in this document").

Every quote is `document.text[start:end]`; each citation carries its whole paragraph, so that
rendering (qa/render.py) checks the quote once more and shows it in context without reading
the index again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from . import confidence, features, tokens
from .chunking import MAX_WINDOW_CHARS, Sentence
from .document import Document
from .ranking import Policy, Question, Ranked, pick_citations
from .retrieval import ranks_of
from .snapshot import Snapshot


@dataclass(frozen=True)
class Evidence:
    """Why this passage: ranks among all sentences (1 = best) and the question words it contains."""

    dense_rank: int
    bm25_rank: int | None  # None when no question word occurs in the sentence's paragraph
    fused_score: float
    matched_terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Citation:
    document: str
    paragraph: int
    section: str
    quote: str
    start: int
    end: int
    score: float
    title: str = ""
    evidence: Evidence | None = None
    context: str = ""  # the whole paragraph the quote is taken from (what the sources panel shows)
    context_start: int = 0  # where that paragraph starts in the document's text
    page: int | None = None  # page the paragraph starts on (PDF), else None

    @property
    def verified(self) -> bool:
        """Is the quote still exactly the text of its paragraph at [start, end)?"""
        lo = self.start - self.context_start
        return lo >= 0 and self.context[lo: lo + len(self.quote)] == self.quote and self.end - self.start == len(self.quote)

    def to_json(self) -> dict:
        out = {"document": self.document, "title": self.title, "paragraph": self.paragraph, "section": self.section,
               "page": self.page, "quote": self.quote, "start": self.start, "end": self.end, "score": round(self.score, 4)}
        if self.evidence:
            out["evidence"] = asdict(self.evidence) | {"matched_terms": list(self.evidence.matched_terms)}
        return out


@dataclass(frozen=True)
class Answer:
    question: str
    found: bool
    answer: str | None
    citations: tuple[Citation, ...]
    index_version: str
    documents: int = 1  # how many documents the index holds (citations name them when > 1)
    notes: tuple[str, ...] = field(default=())
    confidence: float | None = None  # probability that the first citation answers (qa.confidence)
    features: tuple[float, ...] | None = field(default=None, compare=False, repr=False)  # what it was computed from

    def to_json(self) -> dict:
        out = {"question": self.question, "found": self.found, "answer": self.answer,
               "citations": [c.to_json() for c in self.citations], "index_version": self.index_version}
        if self.confidence is not None:
            out["confidence"] = round(self.confidence, 4)
        return out


# --- quote selection ---------------------------------------------------------------------

# A sentence that leans on the one before it: it opens with a pronoun or a demonstrative ("It
# in turn evolved ...", "Such problems are called ..."), possibly after a connective ("Indeed,
# this ..."), or with a connective alone ("But a storm dispersed the fleet.").
_CONTINUES = re.compile(
    r"^[\"'“‘(]?(?:(?:but|and|indeed|however|thus|hence|so|again|similarly|therefore|yet|also|in turn|in fact"
    r"|for instance|for example|as a result|consequently)\b,?\s*)?"
    r"(?:he|she|it|they|his|her|its|their|this|these|that|those|there|such|him|them)\b"
    r"|^[\"'“‘(]?(?:but|indeed|however|thus|hence|again|similarly|therefore|yet|in turn|in fact|consequently)\b",
    re.IGNORECASE)


def continues(text: str) -> bool:
    """Does this sentence lean on the one before it?

    >>> [continues(t) for t in ("Such problems are called NP-intermediate.", "Indeed, this works.",
    ...                         "But a storm dispersed the fleet.", "Thesis statements differ.")]
    [True, True, True, False]
    """
    return bool(_CONTINUES.match(text))


# A time the sentence names only by pointing back ("On July 11 of that year, ...", "Later the
# same year ..."): the sentence before says which year.
_TIME_BACK = re.compile(r"\b(?:that|the same|the following|the next|the previous|the preceding)\s+"
                        r"(?:year|month|week|day|decade|century|spring|summer|autumn|fall|winter)\b", re.IGNORECASE)


def dated_by_previous(text: str) -> bool:
    """Does this sentence name its time only by pointing back to the sentence before it?

    >>> [dated_by_previous(t) for t in ("On July 11 of that year, protests broke out.",
    ...                                 "In 1961, the invasion took place.", "That is a year.")]
    [True, False, False]
    """
    return bool(_TIME_BACK.search(text))


def quote_span(sentences: Sequence[Sentence], scores: np.ndarray, best: int, margin: float,
               max_sentences: int = 3, self_contained: bool = True, wants: np.ndarray | None = None,
               restates: bool = False) -> tuple[int, int]:
    """Grow the quote from sentence `best` to contiguous neighbours (same paragraph) that score
    within `margin` of it, up to `max_sentences`. With `self_contained` the quote neither starts
    nor stops in the middle of a thought (`continues`): one that would open with "He appointed
    ..." or "But ..." also takes the sentence before it, which says whom or what it means (so does
    one that names its time as "that year", `dated_by_previous`); and
    the sentence right after the quote joins it when it continues it ("... efficient algorithm.
    This hypothesis is called the Cobham-Edmonds thesis."), room permitting. A neighbour joins
    only while the quote stays within chunking.MAX_WINDOW_CHARS (no quote is longer).

    A question is not an answer: when `best` is a page's own question line ("What can cause
    an insurance lapse?", `asks`) followed by more of its paragraph, the quote is what follows
    it, up to `max_sentences`, stopping before the next question line. So is it when `best` only
    `restates` the question (an FAQ title, "I received a letter that states my insurance lapsed.").

    `wants` (bool per sentence) marks sentences holding what the question asks for (a date for
    "when", a number for "how many / how far": `retrieval.Cues`): a quote holding none takes
    the neighbour after it, else before it, that does, room permitting ("... Pyongyang and
    Havana are not close. The distance ... is a whopping 12,500 kilometers.").
    Returns (first, last) sentence indices."""
    def same(i: int, lo: int | None = None, hi: int | None = None) -> bool:
        lo, hi = min(i, best if lo is None else lo), max(i, best if hi is None else hi)
        return 0 <= i < len(sentences) and sentences[i].para == sentences[best].para \
            and sentences[i].doc == sentences[best].doc \
            and sentences[hi].end - sentences[lo].start <= MAX_WINDOW_CHARS

    line = asks(sentences[best].text)  # a question line; a restating one only within its paragraph
    if self_contained and ((restates or line) and same(best + 1) or line and _title_before(sentences, best)):
        lo = hi = best = best + 1
        while hi - lo + 1 < max_sentences and same(hi + 1, lo, hi + 1) and not asks(sentences[hi + 1].text):
            hi += 1
        return lo, hi
    lo = hi = best
    floor = scores[best] - margin
    while hi - lo + 1 < max_sentences:
        cands = [i for i in (lo - 1, hi + 1) if same(i, lo, hi) and scores[i] >= floor]
        if not cands:
            break
        pick = max(cands, key=lambda i: scores[i])
        lo, hi = min(lo, pick), max(hi, pick)
    if not self_contained:
        return lo, hi
    if same(lo - 1, lo, best) and (continues(sentences[lo].text) or dated_by_previous(sentences[lo].text)):
        if hi - lo + 1 >= max_sentences or not same(lo - 1, lo, hi):
            hi -= 1 if hi > best else 0  # make room, never dropping the best sentence itself
        if hi - lo + 1 < max_sentences and same(lo - 1, lo, hi):
            lo -= 1
    if hi - lo + 1 < max_sentences and same(hi + 1, lo, hi) and continues(sentences[hi + 1].text):
        hi += 1
    if wants is not None and not wants[lo:hi + 1].any():
        for i in (hi + 1, lo - 1):
            if hi - lo + 1 < max_sentences and same(i, min(lo, i), max(hi, i)) and wants[i]:
                lo, hi = min(lo, i), max(hi, i)
                break
    return lo, hi


def _title_before(sentences: Sequence[Sentence], i: int) -> bool:
    """Is sentence `i` a paragraph of its own followed by the next paragraph of its document?
    A question line standing so ("What if my plates are stolen?") is answered by that paragraph;
    a statement standing so is not a title (a news paragraph of one sentence)."""
    s = sentences[i]
    alone = (i == 0 or sentences[i - 1].para != s.para or sentences[i - 1].doc != s.doc) and \
        i + 1 < len(sentences) and sentences[i + 1].para != s.para
    return alone and sentences[i + 1].doc == s.doc and sentences[i + 1].para == s.para + 1


_OPENS_QUESTION = re.compile(r"^[\"'“‘(]?(what|how|why|when|where|who|whom|whose|which|can|could|do|does|did|is|are|was"
                             r"|were|will|would|should|shall|may|must|have|has|am|if)\b", re.IGNORECASE)


def asks(text: str) -> bool:
    """Is this sentence a question line (an FAQ's "What can cause an insurance lapse?")? A quote
    never is one: the sentences after it are what answers it. A question inside prose ("...,
    consider this instance: Is there a route of at most 2000 km ...?") is not one.

    >>> [asks(t) for t in ("What can cause a lapse?", "If I move, can I keep my plates?",
    ...                    "Consider this: is there a route?", "It is.")]
    [True, True, False, False]
    """
    text = text.strip()
    return text.rstrip("\"'”’)").endswith("?") and bool(_OPENS_QUESTION.match(text))


def restates(question_tokens: set[str], sentence_tokens: set[str]) -> bool:
    """Does the sentence say nothing the question does not (nearly all its words are the
    question's)? An FAQ title ("I received a letter that states my insurance lapsed.") asked
    back as a question: what follows it is the answer.

    >>> restates({"receiv", "letter", "state", "insur", "expir"}, {"receiv", "letter", "state", "insur", "laps"})
    True
    >>> restates({"che", "visit", "pyongyang"}, {"che", "guevara", "visit", "pyongyang", "declar"})
    False
    """
    return len(sentence_tokens) >= 2 and len(sentence_tokens & question_tokens) >= RESTATES * len(sentence_tokens)


RESTATES = 0.75  # share of a sentence's words found in the question above which it only restates it


def make_citation(doc: Document, first: Sentence, last: Sentence, score: float, evidence: Evidence | None) -> Citation:
    para = doc.paragraph(first.para)
    return Citation(doc.id, para.number, para.section, doc.text[first.start:last.end], first.start, last.end,
                    float(score), doc.title, evidence, doc.text[para.start:para.end], para.start, para.page)


def verify(citation: Citation, doc: Document) -> bool:
    return doc.text[citation.start:citation.end] == citation.quote


# --- composing the answer ------------------------------------------------------------------

def compose(snap: Snapshot, q: Question, r: Ranked, k: int, p: Policy, history: Sequence[str] = ()) -> Answer:
    """The answer to one ranked question: the lead quote, up to k citations, found or not, and
    the confidence that the lead answers (`qa/confidence.py`; `history`: the conversation's
    earlier questions, which the confidence model reads)."""
    data = snap.data
    if not data.sentences:
        return Answer(q.text, False, None, (), data.version, len(data.documents))
    pool = pick_citations(r, snap.groups, max(k, p.lead_candidates), p.diverse)
    spans: dict[int, tuple[int, int]] = {}
    wants = snap.cues.dates if q.kind == "when" else snap.cues.numbers if q.kind == "number" else None
    asked = set(q.tokens)
    met: dict[int, float | None] = {}
    base = r.base

    def restating(i: int) -> bool:  # ...and the sentence after it says more (not a second title or a button)
        toks, sents = snap.sentence_tokens, data.sentences
        after = i + 1 < len(sents) and (sents[i + 1].doc, sents[i + 1].para) == (sents[i].doc, sents[i].para)
        return restates(asked, toks[i]) and not (after and restates(asked, toks[i + 1]))

    def span(i: int) -> tuple[int, int]:
        if i not in spans:
            spans[i] = quote_span(data.sentences, base, i, p.quote_margin, wants=wants, restates=restating(i))
        return spans[i]

    def meets(i: int) -> bool:
        met[i] = None if r.asked is None else tokens.asked_match(r.asked, r.names, snap.piece_vectors,
                                                                 data.piece_offsets, *span(i))
        return met[i] is None or met[i] >= p.abstain_unasked

    # The first quote must meet what the question asks beyond its names: one that shares only
    # the names ("Fidel Castro ... Pyongyang" in a sentence about his funeral) gives way to the
    # best-scoring quote that does ("In 1986, Fidel Castro visited ..."). Usually the best does.
    lead = next((i for i in sorted(pool, key=lambda i: -r.fused[i]) if meets(i)), pool[0])
    best = _one_per_paragraph([lead] + [i for i in pool if i != lead], span, data.sentences, k)
    if len(best) < k and len(pool) >= k:  # a question line's quote took the next paragraph: fill up
        more = pick_citations(r, snap.groups, 2 * k + p.lead_candidates, p.diverse)
        best = _one_per_paragraph(best + [i for i in more if i not in best], span, data.sentences, k)
    dense = r.signals.dense_sent + r.signals.dense_win  # the evidence ranks, once per question
    lexical = r.signals.bm25_sent + r.signals.bm25_para
    dense_ranks, lexical_ranks = ranks_of(dense, best), ranks_of(lexical, best)
    citations = tuple(_citation(snap, q, r, i, span(i), dr, lr)
                      for i, dr, lr in zip(best, dense_ranks, lexical_ranks))
    others = [span(i) for i in pool if i != lead]  # the same however many citations are asked for
    # the conversation counts only for a question that leans on it: a self-contained question is
    # judged on its own, however the conversation went before it
    leaned_on = history if q.leans else ()
    feats = features.of_answer(snap, r, q, lead, *span(lead), met.get(lead), leaned_on, others)
    # "not in this document": a threshold on the learned P(answerable), one for a question asked
    # first or alone, one for a question asked after others
    found, conf = confidence.decide(feats, later=bool(history))
    found = found and bool(q.tokens or leaned_on)  # no content word, nothing leaned on: nothing was asked
    return Answer(q.text, found, citations[0].quote if found else None, citations, data.version,
                  len(data.documents), confidence=conf, features=tuple(feats))


def _one_per_paragraph(candidates: Sequence[int], span, sentences: Sequence[Sentence], k: int) -> list[int]:
    """The first `k` candidates whose quotes (`span(i)`: first, last sentence) lie in different
    paragraphs: a question line's quote is the paragraph after it (`quote_span`), which another
    candidate may hold too."""
    out, seen = [], set()
    for i in candidates:
        s = sentences[span(i)[0]]
        if (s.doc, s.para) not in seen and len(out) < k:
            seen.add((s.doc, s.para))
            out.append(i)
    return out


def _citation(snap: Snapshot, q: Question, r: Ranked, i: int, span: tuple[int, int], dense_rank: int,
              lexical_rank: int) -> Citation:
    """Sentence i's citation: the quote `span` (first, last sentence) and why it was chosen
    (its ranks by meaning and by words, `retrieval.ranks_of`)."""
    data, (lo, hi) = snap.data, span
    first, last = data.sentences[lo], data.sentences[hi]
    qt = set().union(*snap.sentence_tokens[lo:hi + 1])  # the quote's words, tokenized at load
    matched = tuple(dict.fromkeys(w for w, stems in q.stems if stems & qt))
    has_bm25 = r.signals.bm25_sent[i] + r.signals.bm25_para[i] > 0
    score = float(r.base[i])  # the fused score, not a reranker's order
    ev = Evidence(dense_rank, lexical_rank if has_bm25 else None, round(score, 4), matched)
    return make_citation(snap.docs[first.doc], first, last, score, ev)
