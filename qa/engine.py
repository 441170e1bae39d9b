"""Use cases: `build(...)` an index, `ask(question, history)` on one loaded index snapshot.

An `Engine` holds the settings, the (lazily loaded) encoder and the index version it serves.
Before each question it looks at `index/CURRENT` (one small read) and, when another process or
thread has published a new version, loads and verifies it; a question is always answered from
one snapshot, never a mix of two versions.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from . import answer as ans
from . import document, store
from .build import CHUNKING, Progress, build_index
from .config import Settings
from .errors import IndexCorrupt, IndexMissing, InputError, QAError
from .lexical import tokenize, words
from .retrieval import Signals, Weights, best_per_group, dense_scores, fuse, ranks

log = logging.getLogger("qa")

_PRONOUNS = frozenset("he him his she her hers it its they them their theirs this that these those there "
                      "then such the same".split())
_FOLLOWUP_START = re.compile(r"^(and|but|also|what about|how about|and what|why|so)\b", re.I)


@dataclass(frozen=True)
class Policy:
    """Ranking and answering knobs, chosen by measurement (README, "How ranking was tuned")."""

    weights: Weights = Weights()
    quote_margin: float = 0.04  # neighbours within this fused-score margin join the quote
    abstain_below: float = 0.42  # top fused score under this -> "not in this document"
    followup_weight: float = 0.6  # weight of the previous question's vector in a follow-up
    followup_boost: float = 0.05  # bonus for sentences in the paragraph the last answer cited


@dataclass(frozen=True)
class Ranked:
    """One question's sentence scores on one snapshot (internal)."""

    fused: np.ndarray
    signals: Signals
    qtokens: tuple[str, ...]
    qwords: tuple[str, ...]


class Snapshot:
    """An `IndexData` plus lookups derived from it once at load."""

    def __init__(self, data: store.IndexData):
        self.data = data
        self.docs = {d.id: d for d in data.documents}
        rows = {key: i for i, key in enumerate(data.paragraph_keys)}
        self.sentence_para_rows = np.array([rows[(s.doc, s.para)] for s in data.sentences], dtype=np.int64)
        self.groups = [(s.doc, s.para) for s in data.sentences]

    @cached_property
    def sentence_tokens(self) -> list[set[str]]:
        return [set(tokenize(s.text)) for s in self.data.sentences]

    @property
    def version(self) -> str:
        return self.data.version


class Engine:
    def __init__(self, settings: Settings | None = None, encoder=None, policy: Policy = Policy()):
        self.settings = settings or Settings.from_env()
        self._encoder = encoder
        self.policy = policy
        self._snap: Snapshot | None = None
        self._snap_lock = threading.Lock()

    # -- encoder and snapshot ------------------------------------------------------------
    @property
    def encoder(self):
        if self._encoder is None:
            from .embedding import shared_encoder

            self._encoder = shared_encoder(self.settings.model, self.settings.batch_wait_ms)
        return self._encoder

    def snapshot(self) -> Snapshot:
        """The published version, reloaded when CURRENT changed. Raises IndexMissing/IndexCorrupt."""
        index_dir = self.settings.index_dir
        current = store.current_version(index_dir)
        snap = self._snap
        if snap is not None and (current is None or current == snap.version):
            return snap  # keep serving what we have if CURRENT vanished or is unchanged
        if current is None:
            raise IndexMissing(f"No index in {index_dir}: run `qa build` (or start the app, which builds it).")
        with self._snap_lock:
            if self._snap is None or self._snap.version != current:
                try:
                    self._snap = Snapshot(store.load(index_dir, current))
                    log.info("serving index version %s", current)
                except IndexCorrupt:
                    if self._snap is None:
                        raise
                    log.exception("new index version %s is broken; still serving %s", current, self._snap.version)
            return self._snap

    # -- asking --------------------------------------------------------------------------
    def ask(self, question: str, history: list[str] | tuple[str, ...] = (), k: int | None = None) -> ans.Answer:
        """Answer one question, using earlier questions of the conversation for follow-ups."""
        question = clean_question(question, self.settings.max_question_chars)
        snap = self.snapshot()
        k = max(1, min(k or self.settings.top_k, 10))
        history = [clean_question(h, self.settings.max_question_chars, strict=False) for h in history][-3:]
        history = [h for h in history if h]
        ranked = self._rank(snap, question, history)
        return self._answer(snap, question, ranked, k)

    def _rank(self, snap: Snapshot, question: str, history: list[str]) -> Ranked:
        p = self.policy
        texts = [question]
        followup = bool(history) and is_followup(question)
        if followup:
            texts.append(history[-1])
        vecs = self.encoder.encode(texts)
        qvec = vecs[0]
        qtokens = tokenize(question)
        boost_rows: list[int] = []
        if followup:
            qvec = vecs[0] + p.followup_weight * vecs[1]
            qvec = qvec / max(float(np.linalg.norm(qvec)), 1e-12)
            qtokens = qtokens + [t for t in tokenize(history[-1]) if t not in qtokens]
            prev = self._rank(snap, history[-1], history[:-1])
            boost_rows = [int(snap.sentence_para_rows[int(np.argmax(prev.fused))])]
        ranked = score(snap, qvec, qtokens, p.weights)
        if boost_rows:
            mask = np.isin(snap.sentence_para_rows, boost_rows)
            ranked = Ranked(ranked.fused + p.followup_boost * mask, ranked.signals, ranked.qtokens, ranked.qwords)
        return Ranked(ranked.fused, ranked.signals, ranked.qtokens,
                      tuple(w for w in words(question) if tokenize(w)))

    def _answer(self, snap: Snapshot, question: str, r: Ranked, k: int) -> ans.Answer:
        data, p = snap.data, self.policy
        if not data.sentences:
            return ans.Answer(question, False, None, (), data.version, len(data.documents))
        best = best_per_group(r.fused, snap.groups, k)
        dense_rank = ranks(r.signals.dense_sent + r.signals.dense_win)
        bm25_rank = ranks(r.signals.bm25_sent + r.signals.bm25_para)
        citations = []
        for i in best:
            lo, hi = ans.quote_span(list(data.sentences), r.fused, i, p.quote_margin)
            first, last = data.sentences[lo], data.sentences[hi]
            quote = snap.docs[first.doc].text[first.start:last.end]
            qt = set(tokenize(quote))
            matched = tuple(dict.fromkeys(w for w in r.qwords if set(tokenize(w)) & qt))
            has_bm25 = r.signals.bm25_sent[i] + r.signals.bm25_para[i] > 0
            ev = ans.Evidence(int(dense_rank[i]), int(bm25_rank[i]) if has_bm25 else None,
                              round(float(r.fused[i]), 4), matched)
            citations.append(ans.make_citation(snap.docs[first.doc], first, last, float(r.fused[i]), ev))
        found = float(r.fused[best[0]]) >= p.abstain_below
        return ans.Answer(question, found, citations[0].quote if found else None, tuple(citations),
                          data.version, len(data.documents))

    # -- building ------------------------------------------------------------------------
    def build(self, sources: list[Path] | None = None, add: bool = False, progress: Progress | None = None,
              documents: list[document.Document] | None = None) -> dict:
        """Build a new version from files (and/or parsed documents) and publish it atomically.

        With `add`, the documents already indexed are kept (a document with the same id is
        replaced). Returns a report: version, counts, seconds. The old version keeps serving
        until the new one is published; on any error nothing is published.
        """
        t0 = time.perf_counter()
        s = self.settings
        say = progress or (lambda f, m: None)
        with store.build_lock(s.index_dir):
            previous = self._previous()
            files = document.expand_sources([Path(x) for x in (sources or [])])
            docs = [document.load_file(f, s.max_file_bytes) for f in files] + list(documents or [])
            recorded = [str(Path(x).resolve()) for x in (sources or [])]
            if add and previous is not None:
                recorded = list(dict.fromkeys(previous.manifest.get("sources", []) + recorded))
                new_ids = {d.id for d in docs}
                docs = [d for d in previous.documents if d.id not in new_ids] + docs
            if not docs:
                raise InputError("Nothing to index: no .txt, .md or .html documents were given.")
            docs = _unique_ids(docs)
            data, manifest = build_index(docs, self.encoder, s.model, recorded, previous, s.ann_threshold, say)
            say(0.95, "writing the index")
            store.write_version(s.index_dir, data, manifest)
            store.publish(s.index_dir, data.version)
            store.prune(s.index_dir)
        self.snapshot()
        seconds = time.perf_counter() - t0
        say(1.0, "done")
        return {"version": data.version, "seconds": round(seconds, 2), **manifest["counts"],
                "documents_list": [d["title"] for d in manifest["documents"]]}

    def _previous(self) -> store.IndexData | None:
        try:
            return self.snapshot().data
        except QAError:
            return None

    def staleness(self) -> str | None:
        """Why the index must be (re)built, or None when it is fresh."""
        s = self.settings
        try:
            manifest = store.read_manifest(s.index_dir)
            self.snapshot()
        except IndexMissing:
            return f"no index in {s.index_dir}"
        except IndexCorrupt as exc:
            return f"the index is unreadable ({exc})"
        if manifest.get("model") != s.model:
            return f"the model changed ({manifest.get('model')} -> {s.model})"
        if manifest.get("chunking") != CHUNKING:
            return "the chunking parameters changed"
        recorded = manifest.get("sources") or []
        try:
            files = document.expand_sources([Path(x) for x in recorded])
        except QAError:
            return "a recorded source is missing"
        want = {d["source"]: d["sha256"] for d in manifest.get("documents", []) if d.get("source")}
        have = {}
        for f in files:
            try:
                have[str(f)] = document.load_file(f, s.max_file_bytes).sha256
            except QAError:
                have[str(f)] = "unreadable"
        if have != want:
            return "the source documents changed"
        return None

    def ensure_index(self, default_sources: list[Path] | None = None) -> str | None:
        """Rebuild when missing, stale or corrupt; returns the reason (None if nothing was done)."""
        reason = self.staleness()
        if reason is None:
            return None
        try:
            recorded = store.read_manifest(self.settings.index_dir).get("sources")
        except QAError:
            recorded = None
        sources = [Path(x) for x in recorded] if recorded else (default_sources or [self.settings.source_dir])
        log.warning("rebuilding the index: %s", reason)
        self.build(sources)
        return reason


def score(snap: Snapshot, qvec: np.ndarray, qtokens: list[str], weights: Weights) -> Ranked:
    data = snap.data
    rows = snap.sentence_para_rows
    n = len(data.sentences)
    sig = Signals(
        dense_sent=dense_scores(qvec, data.sentence_vectors),
        dense_win=dense_scores(qvec, data.chunk_vectors),
        dense_para=dense_scores(qvec, data.paragraph_vectors)[rows],
        bm25_sent=data.bm25_sentences.scores(qtokens, n),
        bm25_para=data.bm25_paragraphs.scores(qtokens, len(data.paragraph_keys))[rows],
    )
    return Ranked(fuse(sig, weights), sig, tuple(qtokens), ())


def is_followup(question: str) -> bool:
    """Does the question lean on the conversation? ("Who received him?" yes; "Who is Ri?" no)."""
    ws = words(question)
    return bool(_FOLLOWUP_START.match(question.strip())) or any(w in _PRONOUNS for w in ws[1:] + ws[:1]) \
        and not (len(tokenize(question)) >= 4 and not any(w in _PRONOUNS - {"the", "this", "that"} for w in ws))


def clean_question(text: str, max_chars: int, strict: bool = True) -> str:
    """Strip control characters and broken surrogates; refuse empty or overlong questions."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
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


def _unique_ids(docs: list[document.Document]) -> list[document.Document]:
    from dataclasses import replace

    seen: dict[str, int] = {}
    out = []
    for d in docs:
        n = seen.get(d.id, 0)
        seen[d.id] = n + 1
        out.append(d if n == 0 else replace(d, id=f"{d.id}-{n + 1}"))
    return out
