"""The facade: settings, one encoder, the served snapshot; `ask()`, `chat()`, `documents()` and
`.library` (changes to the document set).

Before each question the engine looks at `index/CURRENT` (one small read) and, when another
process or thread has published a new version, loads and verifies it; a question is always
answered from one snapshot, never a mix of two versions.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property

import numpy as np

from . import limits, store, tokens
from .answer import Answer, compose
from .config import Settings
from .errors import IndexCorrupt, IndexMissing, InputError, ModelError
from .library import Library
from .ranking import Conversation, Policy, Question, Ranked, clean_question, rank, replay
from .records import IndexInfo
from .snapshot import Snapshot

log = logging.getLogger("qa")

#: index/CURRENT written less than this long ago (ns) is read again at the next question rather
#: than trusted by its stat (file times tick every few ms)
RECHECK_NS = 200_000_000


class Engine:
    def __init__(self, settings: Settings | None = None, encoder=None, policy: Policy = Policy()):
        self.settings = settings or Settings.from_env()
        self._encoder = encoder
        self.policy = policy
        self._snap: Snapshot | None = None
        self._snap_lock = threading.Lock()
        self._current_seen: tuple | None = None  # (stat of index/CURRENT, what it named)
        self._current_path: str | None = None
        self._broken: str | None = None  # a published version that failed to load (not retried)
        self.note: str | None = None  # why an older version is served, when it is
        self._reranker = None

    @property
    def encoder(self):
        if self._encoder is None:
            from .embedding import shared_encoder

            self._encoder = shared_encoder(self.settings.model, self.settings.batch_wait_ms, self.settings.encoder)
        return self._encoder

    @cached_property
    def library(self) -> Library:
        """Preview, build, add, remove, keep fresh (qa/library.py)."""
        return Library(self.settings, lambda: self.encoder, self.snapshot, lambda: self.note)

    def documents(self) -> IndexInfo:
        """What the served index holds."""
        return self.library.info()

    def snapshot(self) -> Snapshot:
        """The published version, reloaded when CURRENT changed. Raises IndexMissing/IndexCorrupt.

        When CURRENT is missing, garbage, or names a broken or vanished version, the newest intact
        version is served instead, and `note` says so (the log, `qa documents`, the app's status)."""
        index_dir = self.settings.index_dir
        current = self._current()
        snap = self._snap
        if snap is not None and (current is None or current == snap.version or current == self._broken):
            return snap  # keep serving what we have if CURRENT vanished, is unchanged or names a broken version
        with self._snap_lock:
            if self._snap is None or self._snap.version != current:
                try:
                    if current is None:
                        raise IndexMissing(f"No index in {index_dir}: run `qa build` (or start the app, which builds it).")
                    self._snap = Snapshot(store.load(index_dir, current)).warm()
                    self.note = None
                    log.info("serving index version %s", current)
                except (IndexCorrupt, IndexMissing) as exc:
                    if self._snap is not None:
                        self._broken = current
                        log.exception("new index version %s is broken; still serving %s", current, self._snap.version)
                        return self._snap
                    self._fall_back(current, exc)
            return self._snap

    def _current(self) -> str | None:
        """What index/CURRENT names, read again only when the file changed: a publish renames a
        new file into place (a new inode, and a new mtime), so one stat per question answers
        "same as before?" (~0.05-0.1 ms less than reading the file each time)."""
        path = self._current_path or os.path.join(self.settings.index_dir, "CURRENT")
        self._current_path = path
        try:
            st = os.stat(path)
            sig = (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        except OSError:
            sig = None
        seen = self._current_seen
        if sig is not None and seen is not None and seen[0] == sig:
            return seen[1]
        current = store.current_version(self.settings.index_dir)
        # a file written in the last moments is read again next time: file times are coarse (a
        # few ms), so a second write within the same tick, same size, could look unchanged
        fresh = sig is not None and time.time_ns() - max(sig[3], sig[4]) > RECHECK_NS
        self._current_seen = (sig, current) if fresh else None
        return current

    def _fall_back(self, current: str | None, exc: Exception) -> None:
        """Serve the newest intact version when the published one cannot be loaded (else re-raise)."""
        data = store.newest_intact(self.settings.index_dir, skip=(current,) if current else ())
        if data is None:
            raise exc
        self._snap, self._broken = Snapshot(data).warm(), current
        why = f"{self.settings.index_dir}/CURRENT is missing" if current is None else str(exc).split(";")[0]
        self.note = f"{why}; serving the newest intact version, {data.version}."
        log.warning("%s", self.note)

    # -- asking --------------------------------------------------------------------------
    def ask(self, question: str, history: Sequence[str] = (), k: int | None = None,
            documents: Sequence[str] | None = None) -> Answer:
        """Answer one question; `history` holds the conversation's earlier questions (oldest
        first), replayed to give the same state a chat carries (`chat`); `documents` (ids), when
        given, restricts the answer to those documents (InputError if none of them is indexed)."""
        q = Question.parse(question, self.settings.max_question_chars)
        snap = self.snapshot()
        history = limits.check_history(history, self.settings.max_question_chars)  # sizes first, before cleaning
        earlier = [Question.of(t) for h in history if (t := self._clean(h))]
        if earlier and (q.leans or self.policy.followup_document or self.policy.context_weight):  # as `chat` carries
            conv = replay(snap, earlier, self._encode, self.policy)
        else:  # nothing to lean on; the confidence model still reads the recent questions
            conv = Conversation(recent=tuple(e.text for e in earlier[-self.policy.recent_turns:]))
        if documents is not None and not set(documents) & set(snap.docs):
            raise InputError("None of the chosen documents is indexed any more: choose again, or ask all of them.")
        return self._answer(snap, q, conv, k, documents)[0]

    def chat(self, question: str, conversation: Conversation = Conversation(), k: int | None = None
             ) -> tuple[Answer, Conversation]:
        """Answer one question of a conversation; returns the answer and the state to pass with
        the next question (the same answers as `ask` with the earlier questions as history)."""
        q = Question.parse(question, self.settings.max_question_chars)
        snap = self.snapshot()
        if conversation.last is not None and conversation.last.version != snap.version:
            conversation = replace(replay(snap, [conversation.last.question], self._encode, self.policy),
                                   recent=conversation.recent)  # its rows belong to the previous version
        return self._answer(snap, q, conversation, k)

    def _answer(self, snap: Snapshot, q: Question, conv: Conversation, k: int | None,
                documents: Sequence[str] | None = None) -> tuple[Answer, Conversation]:
        p = self.policy
        k = max(1, min(k or self.settings.top_k, p.max_citations))
        ranked = rank(snap, q, conv, self._encode, p, documents)
        after = conv.after(q, ranked, snap, p.recent_turns) if snap.data.sentences else conv
        answer = compose(snap, q, ranked, k, p, conv.recent)
        if self.settings.reranker:  # it reorders the quotes; "not in this document" stays decided without it
            prev = conv.last.question.text + " " if q.leans and conv.last is not None else ""
            reranked = compose(snap, q, self._rerank(snap, prev + q.text, ranked), k, p, conv.recent)
            answer = replace(reranked, found=answer.found, confidence=answer.confidence,
                             answer=reranked.citations[0].quote if answer.found else None)
        return answer, after

    def _clean(self, text: str) -> str:
        return clean_question(text, self.settings.max_question_chars, strict=False)

    def _encode(self, texts: list[str]) -> tuple[np.ndarray, list]:
        """Question vectors and word pieces (an encoder must give both: the calibrated scores
        count on the word-piece match)."""
        enc = self.encoder
        if not hasattr(enc, "encode_pieces"):
            raise ModelError(f"The encoder {getattr(enc, 'name', enc)!r} gives no word pieces (encode_pieces); "
                             "answers would be refused wrongly. Use a sentence-transformers model.")
        vectors, parts = enc.encode_pieces(texts)
        return vectors, [tokens.content(p) for p in parts]  # which pieces count is the ranking's rule

    def _rerank(self, snap: Snapshot, question: str, r: Ranked) -> Ranked:
        """QA_RERANKER: the cross-encoder reorders the `rerank_top` best sentences (qa/rerank.py)."""
        if self._reranker is None:
            from .rerank import Reranker

            with self._snap_lock:  # one Reranker (and one model load) however many first questions
                if self._reranker is None:
                    self._reranker = Reranker(self.settings.reranker)
        p = self.policy
        pool = np.arange(len(r.fused)) if r.rows is None else r.rows
        if not len(pool):
            return r
        base = r.base  # the fused scores: it takes the learned reranker's place
        top = pool[np.argsort(-base[pool], kind="stable")[:p.rerank_top]]
        fused = base.copy()
        fused[top] += p.rerank_weight * self._reranker.scores(question, [snap.data.sentences[i].text for i in top])
        return replace(r, fused=fused, prior=base)
