"""Ranking: a question parsed once, the conversation it belongs to, the `Policy` holding every
tuned number, and the scores of every sentence of one snapshot for one question.

    Question.parse(text)  ->  rank(snapshot, question, conversation, encode, policy)  ->  Ranked

The conversation is explicit state (`Conversation`: the last answered `Turn`, with its question,
the sentence and paragraph its answer put first and the index version, plus the recent
questions' texts). A follow-up that leans on it ("What did he declare?") has its vector mixed
with the previous question's and borrows the previous question's words and word pieces at
reduced weight (`Policy.followup_weight`); any other later turn does the same at a small weight
(`Policy.context_weight`), so that "How did Pyongyang react?" after "When did Fidel Castro
die?" keeps a little of that context. Every later turn also keeps to the last answer's document: other
documents' sentences give way by `Policy.followup_document` (nothing changes with one
document). Callers that only have the earlier questions as text (the HTTP API) replay them
with `replay`, which gives the same state a chat carries.
"""

from __future__ import annotations

import re
import threading
import unicodedata
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from . import byline, definition, learned_rank, limits, tokens
from .errors import InputError
from .lexical import tokenize, words
from .retrieval import (
    Signals,
    Weights,
    answer_type_scores,
    best_per_group,
    candidate_rows,
    coverage,
    definition_scores,
    dense_scores,
    fuse,
    question_type,
    spread,
    top_k,
)
from .snapshot import Snapshot

Encode = Callable[[list[str]], tuple[np.ndarray, list]]  # texts -> (unit vectors, word pieces)


@dataclass(frozen=True)
class Policy:
    """Every tuned number of ranking and answering, in one place (docs/ranking.md, "How ranking
    was tuned", gives the measurements behind each; `tools/tune.py` re-runs the weight search)."""

    weights: Weights = Weights()  # fusion weights of the signals (grid search on the dev sets)
    quote_margin: float = 0.45  # neighbours within this fused-score margin join the quote (0.3 before the weights x1.5)
    abstain_unasked: float = 0.25  # a first quote must meet a question word beyond its names this well, else a
    # lower candidate that does goes first ("not in this document" itself is learned: qa/confidence.py)
    followup_weight: float = 0.6  # weight of the previous question's vector and words in a follow-up (dev_chat)
    context_weight: float = 0.15  # ...in any other later turn: a light pull to the conversation's topic (fit on
    # one doc2dial domain, held out on the other and the article: tools/fit_context.py; docs/ranking.md)
    followup_document: float = 0.3  # any later turn: penalty for other documents than the last answer's (tune.py)
    diverse: bool = True  # citations 2 and 3 include the best purely semantic matches (Hit@3 +0.02)
    rerank_top: int = 8  # with QA_RERANKER: the best sentences the cross-encoder reorders
    rerank_weight: float = 1.0  # ...adding this times its (0, 1) score to their fused score
    max_citations: int = 10  # the most citations one answer lists (-k and the API are clamped to it)
    lead_candidates: int = 5  # citations considered for the first quote however few are asked for
    replay_turns: int = 10  # earlier questions of a conversation replayed from text (API, web chat)
    recent_turns: int = 3  # earlier questions the confidence model reads (as it was fitted: tools/fit_confidence.py)
    piece_rows: int = 32  # sentences given the word-piece match first (same Hit@1/Hit@3 down to 16)
    piece_neighbourhood: int = 8  # ...then the neighbours (2 each side, same paragraph) of this many best
    learned_top: int = 0  # the learned reranker (qa/learned_rank.py) reorders this many best (16 as fitted);
    # off: held out it loses to this fusion on the article and SQuAD (tools/fit_rank.py; docs/ranking.md)


# --- the question --------------------------------------------------------------------------

_PRONOUNS = frozenset("he him his she her hers it its they them their theirs this that these those there "  # noqa: SIM905
                      "then such the same".split())
ELLIPTIC_WORDS = 1  # a question with at most this many content words leans on the conversation (doc2dial)
#: a definition question's signal is read for at most this many of the sentences holding its term,
#: the best by the other signals: bounds its cost on a book (8,120 holders of "state" in 95k
#: sentences: 166 ms read whole), and changes no row of the suite (docs/ranking.md)
DEFINE_ROWS = 128
_FOLLOWUP_START = re.compile(r"^(and|but|also|what about|how about|and what|why|so)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Question:
    """A question as every step reads it, parsed once.

    >>> q = Question.of("Who received him in Havana?")
    >>> q.tokens, q.kind, q.leans, q.cased
    (('receiv', 'havana'), 'who', True, True)
    """

    text: str  # cleaned: control characters dropped, whitespace collapsed
    words: tuple[str, ...]  # lower-cased, accents off (`lexical.words`)
    tokens: tuple[str, ...]  # content words, stemmed (`lexical.tokenize`): what BM25 sees
    stems: tuple[tuple[str, frozenset[str]], ...]  # each content word with its stems (matched terms)
    kind: str  # answer type asked for: 'when', 'number', 'who', 'where' or ''
    cased: bool  # does its casing say which words are names?
    leans: bool  # does it lean on the conversation (pronoun, "and what about ...")?
    term: definition.Term | None = None  # a definition question's term ("What is X?"; qa/definition.py)
    author: bool = False  # does it ask who wrote the document ("Who wrote this article?"; qa/byline.py)?

    @classmethod
    def parse(cls, text: object, max_chars: int) -> Question:
        """Clean and check a question typed by a person (InputError when empty or too long)."""
        return cls.of(clean_question(text, max_chars))

    @classmethod
    def of(cls, text: str) -> Question:
        ws = tuple(words(text))
        toks = tuple(tokenize(text))
        stems = tuple((w, s) for w in ws if (s := _stems(w)))
        return cls(text, ws, toks, stems, question_type(text), tokens.cased(text), _leans(text, ws, toks),
                   definition.term(text), byline.asks_author(text))

    def names(self, capitalised: frozenset[str]) -> set[str]:
        """The question's names; a question whose casing says nothing takes them from the words
        the documents capitalise (`Snapshot.capitalised`)."""
        return tokens.name_words(self.text, () if self.cased else capitalised)


@lru_cache(maxsize=4096)
def _stems(word: str) -> frozenset[str]:
    """A question word's stems (`tokenize`), kept: questions repeat their words."""
    return frozenset(tokenize(word))


def _leans(text: str, ws: tuple[str, ...], toks: tuple[str, ...]) -> bool:
    """Does the question lean on the conversation? ("Who received him?", "When?", "Through
    whom?" yes; "Who is Ri Yong-ho?" no). A question of at most `ELLIPTIC_WORDS` content words
    says too little to stand alone (on doc2dial's follow-ups: Hit@1 0.453 -> 0.455 dmv, 0.463 ->
    0.470 studentaid; docs/ranking.md)."""
    ws = list(ws)
    if len(toks) <= ELLIPTIC_WORDS:
        return True
    return bool(_FOLLOWUP_START.match(text.strip())) or any(w in _PRONOUNS for w in ws[1:] + ws[:1]) \
        and not (len(toks) >= 4 and not any(w in _PRONOUNS - {"the", "this", "that"} for w in ws))


def is_followup(question: str) -> bool:
    """Does the question lean on the conversation? ("Who received him?" yes; "Who is Ri Yong-ho?" no).

    >>> is_followup("Who received him?"), is_followup("Who is Ri Yong-ho?")
    (True, False)
    """
    return Question.of(question).leans


def clean_question(text: object, max_chars: int, strict: bool = True) -> str:
    """Strip control characters and broken surrogates; refuse empty or overlong questions.
    An oversized input is refused (or, not `strict`, cut) before it is read character by
    character, so a huge paste costs no more than a short one."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if len(text) > limits.edge(max_chars):  # refused (or cut, if only shown) before it is looked at
        if strict:
            raise limits.too_long(len(text), max_chars)
        text = text[: limits.edge(max_chars)]
    if not text.isprintable():  # printable: no control, format or surrogate character to replace
        text = text.encode("utf-8", "replace").decode("utf-8")
        text = "".join(ch if unicodedata.category(ch)[0] != "C" or ch in "\t\n" else " " for ch in text)
    text = " ".join(text.split())
    if not strict:
        return text[:max_chars]
    if not text:
        raise InputError("Please type a question.")
    if len(text) > max_chars:
        raise InputError(f"That question is {len(text)} characters long; the limit is {max_chars}. Ask something shorter.")
    return text


# --- the conversation ----------------------------------------------------------------------

@dataclass(frozen=True)
class Turn:
    """One answered question: what it asked and the sentence its answer put first."""

    question: Question
    shown: int  # sentence row (in `version`) of the best-scoring sentence before any reranking
    paragraph: int  # that sentence's paragraph row
    version: str  # the index version the rows belong to


@dataclass(frozen=True)
class Conversation:
    """What a new question may lean on: the last answered turn (None at the start), and the
    texts of the last few questions (`Policy.recent_turns`; the confidence model reads them)."""

    last: Turn | None = None
    recent: tuple[str, ...] = ()

    def after(self, question: Question, ranked: Ranked, snap: Snapshot, keep: int = 3) -> Conversation:
        shown = int(np.argmax(ranked.base))
        return Conversation(Turn(question, shown, int(snap.sentence_para_rows[shown]), snap.version),
                            (self.recent + (question.text,))[-keep:])


@dataclass(frozen=True)
class Ranked:
    """One question's sentence scores on one snapshot."""

    fused: np.ndarray
    signals: Signals
    tokens: tuple[str, ...]  # the question's tokens plus any borrowed from the previous question
    rows: np.ndarray | None = None  # on a very large index: the only sentences scored exactly
    prior: np.ndarray | None = None  # fused scores before reranking ("not in this document" is decided on them)
    asked: tokens.Pieces | None = None  # the question's own word pieces (`tokens.asked_match`)...
    names: np.ndarray | None = None  # ...and which of them belong to its names

    @property
    def base(self) -> np.ndarray:
        """The fused scores before any reranking: quotes grow on them, citations show them and
        "not in this document" is decided on them (a reranker only changes the order)."""
        return self.fused if self.prior is None else self.prior


def rank(snap: Snapshot, q: Question, conv: Conversation, encode: Encode, policy: Policy,
         documents: Sequence[str] | None = None) -> Ranked:
    """Score every sentence of `snap` for `q`, leaning on `conv` when `q` is a follow-up;
    `documents` (ids) restricts the answer to those documents' sentences (`score`). The result
    is kept a while for `replay` (`_Recent`)."""
    ranked = _rank(snap, q, conv, encode, policy, documents)
    _recent.keep(snap, (q, conv, encode, policy, documents), ranked)
    return ranked


def _rank(snap: Snapshot, q: Question, conv: Conversation, encode: Encode, policy: Policy,
          documents: Sequence[str] | None = None) -> Ranked:
    prev = conv.last
    if prev is not None and prev.version != snap.version:
        prev = None  # its rows belong to another index version (callers replay from text instead)
    weight = (policy.followup_weight if q.leans else policy.context_weight) if prev is not None else 0.0
    if not weight:
        prev = None
    vecs, pieces = encode([q.text] + ([prev.question.text] if prev else []))
    qvec, qpieces, borrowed = vecs[0], pieces[0], ()
    if prev is not None:
        qvec = vecs[0] + weight * vecs[1]
        qvec = qvec / max(float(np.linalg.norm(qvec)), 1e-12)
        borrowed = tuple(t for t in dict.fromkeys(prev.question.tokens) if t not in q.tokens)
        qpieces = tokens.merge(qpieces, pieces[1], weight)
    ranked = score(snap, q, qvec, qpieces, policy, borrowed, within(snap, documents), weight)
    last = conv.last
    if policy.followup_document and last is not None and last.version == snap.version:
        # any later turn: the conversation is most likely still about the document it was answered
        # from, so other documents' sentences give way a little (with one document: no change at all)
        other = snap.sentence_docs != snap.sentence_docs[last.shown]
        ranked = replace(ranked, fused=ranked.fused - policy.followup_document * other,
                         prior=None if ranked.prior is None else ranked.prior - policy.followup_document * other)
    ranked = replace(ranked, asked=pieces[0], names=tokens.name_mask(pieces[0], q.names(snap.capitalised)))
    if policy.learned_top:
        ranked = learned_rank.rerank(snap, q, ranked, learned_rank.load(), policy.learned_top)
    return ranked


def replay(snap: Snapshot, history: Sequence[Question], encode: Encode, policy: Policy) -> Conversation:
    """The conversation state after `history` (earlier questions, oldest first), as if each had
    been asked in turn: the same state a chat that carried it would hold."""
    conv = Conversation()
    for q in history[-policy.replay_turns:]:
        ranked = _recent.get(snap, (q, conv, encode, policy, None)) or rank(snap, q, conv, encode, policy)
        conv = conv.after(q, ranked, snap, policy.recent_turns)
    return conv


#: questions ranked lately that `replay` may take again rather than rank anew (more than
#: `Policy.replay_turns`: a conversation's whole replayed history, and its last question)...
RECENT_RANKED = 16
#: ...fewer on a large index: at most this many sentence scores kept in all (8 float32 arrays
#: each: 64 MB)
RECENT_ROWS = 2_000_000


class _Recent:
    """The last few `rank` results on one snapshot. A caller that has a conversation only as
    text (the HTTP API, `Engine.ask` with history) sends every earlier question again with
    each new one, and `replay` ranks them all again to rebuild the state; each of them was
    ranked, the same way, when it was asked (or replayed) last time. Only `replay` reads this:
    a question asked anew is always ranked anew. Same snapshot (by identity, held weakly: an
    old version is not kept alive), same question, conversation, encoder and policy: the same
    result, so answers do not change."""

    def __init__(self):
        self._lock = threading.Lock()
        self._snap = None  # weak reference to the snapshot the entries belong to
        self._items: OrderedDict = OrderedDict()

    def get(self, snap: Snapshot, key: tuple) -> Ranked | None:
        try:
            with self._lock:
                if self._snap is None or self._snap() is not snap:
                    return None
                hit = self._items.get(key)
                if hit is not None:
                    self._items.move_to_end(key)
                return hit
        except TypeError:  # an unhashable encoder: nothing kept
            return None

    def keep(self, snap: Snapshot, key: tuple, ranked: Ranked) -> None:
        if key[-1] is not None:
            return  # restricted to some documents: never replayed
        room = min(RECENT_RANKED, RECENT_ROWS // max(len(ranked.fused), 1))
        try:
            with self._lock:
                if self._snap is None or self._snap() is not snap:
                    self._items.clear()
                    self._snap = weakref.ref(snap)
                self._items[key] = ranked
                self._items.move_to_end(key)
                while len(self._items) > room:
                    self._items.popitem(last=False)
        except TypeError:
            pass


_recent = _Recent()


def within(snap: Snapshot, documents: Sequence[str] | None) -> np.ndarray | None:
    """The sentence rows of `documents` (ids; unknown ones ignored), or None for no restriction."""
    if documents is None:
        return None
    ids = np.array([s.doc for s in snap.data.sentences], dtype=object)
    return np.flatnonzero(np.isin(ids, list(documents))).astype(np.int64)


def score(snap: Snapshot, q: Question, qvec: np.ndarray, qpieces: tokens.Pieces | None, policy: Policy,
          borrowed: Sequence[str] = (), only: np.ndarray | None = None, borrowed_weight: float = 0.0) -> Ranked:
    """Every sentence's signals and fused score for one question. `borrowed` are a later turn's
    words taken from the previous question: they count in BM25 at `borrowed_weight`
    (`Policy.followup_weight` or `context_weight`, as `rank` chose).

    On a very large index (`snap.approximate`) only candidates are scored exactly: the
    approximate FAISS neighbours plus BM25's best (`retrieval.candidate_rows`); every other
    sentence gets sentence and window scores of -1 and no paragraph, word-piece or
    answer-type credit.

    `only` (sentence rows, `within`) restricts the question to some documents: exactly those
    rows are scored, as candidates are, and every other sentence's fused score is -inf, so no
    citation, quote or follow-up state can come from outside them."""
    data, weights = snap.data, policy.weights
    n = len(data.sentences)
    qtokens = list(q.tokens)
    # each document scored with its own statistics: adding documents leaves its scores alone
    all_tokens = qtokens + list(borrowed)
    lw = [1.0] * len(qtokens) + [borrowed_weight] * len(borrowed)
    bm25_sent = snap.sentence_bm25.share(all_tokens, lw)
    bm25_para = snap.paragraph_bm25.share(all_tokens, lw)
    rows = candidate_rows(qvec, data.faiss_index, bm25_sent) if snap.approximate else None
    if only is not None:
        rows = only
    para_rows = snap.sentence_para_rows if rows is None else snap.sentence_para_rows[rows]
    qv = np.asarray(qvec, dtype=np.float32).reshape(-1)

    def dense(vectors: np.ndarray) -> np.ndarray:
        return dense_scores(qv, vectors) if rows is None else spread(vectors[rows] @ qv, rows, n, -1.0)

    def some(values: np.ndarray) -> np.ndarray:  # candidate values -> full length
        return values if rows is None else spread(values, rows, n, 0.0)

    sig = Signals(
        dense_sent=dense(data.sentence_vectors),
        dense_win=dense(data.chunk_vectors),
        dense_para=some(dense_scores(qv, data.paragraph_vectors)[para_rows]) if weights.para
        else np.zeros(n, dtype=np.float32),
        bm25_sent=bm25_sent,
        bm25_para=bm25_para[snap.sentence_para_rows],
        coverage=coverage(all_tokens, snap.window_tokens, snap.idf) if weights.coverage else None,
        answer_type=some(answer_type_scores(q.kind, snap.cues, set(q.words), rows))
        if weights.answer_type and q.kind else None,
    )
    fused = fuse(sig, weights)
    if weights.form and (q.term or q.author):  # last in `fuse`'s sum, so adding it here gives the same bits
        found = _author_notes(snap, rows) if q.author else _defines(snap, q.term, bm25_sent, rows, fused)
        sig = replace(sig, form=found)
        fused = fused + weights.form * sig.form
    if weights.tokens and qpieces is not None:  # the costliest signal: only where it can matter
        sig = _add_piece_match(snap, fused, rows, sig, policy, qpieces)
    if only is not None:
        outside = np.ones(n, dtype=bool)
        outside[only] = False
        fused[outside] = -np.inf
    # a sentence defining the asked term goes first, but quotes grow and "not in this document"
    # is decided on the scores without the boost (as after a reranker: docs/ranking.md)
    prior = fused - weights.form * sig.form if sig.form is not None else None
    return Ranked(fused, sig, tuple(all_tokens), rows, prior)


def _defines(snap: Snapshot, t: definition.Term, bm25_sent: np.ndarray, rows: np.ndarray | None,
             fused: np.ndarray) -> np.ndarray:
    """The definition signal, read only for the sentences holding every word of the term, and
    of those only the `DEFINE_ROWS` best by the other signals (`fused`): on a book a common term
    ("What is the state?") is held by thousands of sentences, ~20 us each to read."""
    n = len(bm25_sent)
    near = snap.sentence_bm25.rows_with_all(t.stems)  # from the word postings: no loop over sentences
    near = near[bm25_sent[near] > 0]
    if rows is not None:
        near = np.intersect1d(near, rows)
    toks = snap.sentence_tokens
    if len(near) > DEFINE_ROWS:
        near = np.sort(near[top_k(fused[near], DEFINE_ROWS)])
    sents = snap.data.sentences
    return spread(definition_scores(t, [sents[i].text for i in near], [toks[i] for i in near]), near, n, 0.0)


def _author_notes(snap: Snapshot, rows: np.ndarray | None) -> np.ndarray:
    """1.0 for each byline or author's note (`Snapshot.author_notes`): what a question about who
    wrote the document asks for."""
    notes = snap.author_notes if rows is None else np.intersect1d(snap.author_notes, rows)
    return spread(np.ones(len(notes), dtype=np.float32), notes, len(snap.data.sentences), 0.0)


def _add_piece_match(snap: Snapshot, fused: np.ndarray, rows: np.ndarray | None, sig: Signals, policy: Policy,
                     qpieces: tokens.Pieces) -> Signals:
    """Add the word-piece match (each document's own piece idf) to `fused`, in place, for the
    sentences `_piece_rows` picks; returns the signals with it."""
    n = len(fused)
    piece = np.zeros(n, dtype=np.float32)
    done = np.zeros(n, dtype=bool)
    per_doc = snap.doc_piece_idf.weights(qpieces.ids)  # (documents, question pieces)
    for near in _piece_rows(snap, fused, rows, sig, policy):  # each sorted and unique
        near = near[~done[near]]
        idf = per_doc[snap.sentence_docs[near]]
        matched = tokens.maxsim(qpieces, snap.piece_vectors, snap.data.piece_offsets, idf, near)
        piece[near] = matched
        fused[near] += policy.weights.tokens * matched
        done[near] = True
    return replace(sig, tokens=piece)


def _piece_rows(snap: Snapshot, fused: np.ndarray, rows: np.ndarray | None, sig: Signals, policy: Policy):
    """Which sentences get the word-piece match, in two rounds (matching every sentence would
    read the whole piece matrix per question): first the `piece_rows` best by the other
    signals and the best by meaning alone (cited when diverse); then, with those scores in
    `fused`, the neighbours up to 2 away, same paragraph, of the `piece_neighbourhood` best (a
    quote grows into them)."""
    n = len(fused)
    pool = rows  # None: every row (the pool is the identity, never built)
    size = n if pool is None else len(pool)
    if not size:
        return
    k = policy.piece_rows
    if size <= k:
        top = np.arange(n) if pool is None else pool
    else:
        pick = np.argpartition(-fused if pool is None else -fused[pool], k - 1)[:k]
        top = pick if pool is None else pool[pick]
    meaning = np.array([np.argmax(sig.dense_sent), np.argmax(sig.dense_win)], dtype=np.int64)
    yield np.unique(np.concatenate([top.astype(np.int64, copy=False), meaning]))
    # again: the first round's matches are in `fused` now
    order = top_k(fused if rows is None else fused[pool], policy.piece_neighbourhood)
    best = order if rows is None else pool[order]
    para = snap.sentence_para_rows
    c = (best[:, None] + _NEIGHBOURS).ravel()  # every neighbour at once, then those in range and paragraph
    of = np.repeat(best, len(_NEIGHBOURS))
    ok = (c >= 0) & (c < n)
    c, of = c[ok], of[ok]
    near = np.unique(c[para[c] == para[of]].astype(np.int64))
    yield near if rows is None else np.intersect1d(near, rows)


_NEIGHBOURS = np.array([-2, -1, 1, 2], dtype=np.int64)  # the sentences a quote can grow into around the best


def pick_citations(r: Ranked, groups: list, k: int, diverse: bool) -> list[int]:
    """Sentence indices to cite, one per paragraph: the fused best first; with `diverse`, the best
    sentence and the best window by meaning alone come next (a paraphrase the words miss), then
    the fused order."""
    order = best_per_group(r.fused, groups, max(k, 3) + 2, r.rows)
    if diverse and len(order) > 1:
        extra = [int(np.argmax(r.signals.dense_sent)), int(np.argmax(r.signals.dense_win))]
        order = order[:1] + extra + order[1:]
    out, seen = [], set()
    for i in order:
        if groups[i] not in seen:
            seen.add(groups[i])
            out.append(i)
    return out[:k]

