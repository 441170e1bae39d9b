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
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from . import answer as ans
from . import document, limits, store, tokens
from .build import CHUNKING, Progress, SourceFolder, Sources, build_index, read_documents, resolve
from .config import Settings
from .errors import IndexCorrupt, IndexMissing, InputError, ModelError, QAError
from .lexical import tokenize, words
from .retrieval import (
    Cues,
    Signals,
    Weights,
    answer_type_scores,
    best_per_group,
    candidate_rows,
    coverage,
    dense_scores,
    fuse,
    idf_table,
    question_type,
    rank_of,
    spread,
)

log = logging.getLogger("qa")

_PRONOUNS = frozenset("he him his she her hers it its they them their theirs this that these those there "  # noqa: SIM905
                      "then such the same".split())
_FOLLOWUP_START = re.compile(r"^(and|but|also|what about|how about|and what|why|so)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Policy:
    """Ranking and answering knobs, chosen by measurement (README, "How ranking was tuned")."""

    weights: Weights = Weights()
    quote_margin: float = 0.3  # neighbours within this fused-score margin join the quote
    abstain_below: float = 1.175  # top fused score under this -> "not in this document"
    abstain_missing: float = 0.7  # ...or this share of the question's word weight is absent from
    abstain_missing_below: float = 1.4  # the documents and the top score is under this
    abstain_unasked: float = 0.25  # ...or no question word beyond its names meets the quote this well
    followup_weight: float = 0.6  # weight of the previous question's vector in a follow-up
    followup_boost: float = 0.05  # bonus for sentences in the paragraph the last answer cited
    followup_repeat: float = 0.3  # penalty for the very sentence the last answer quoted
    diverse: bool = True  # citations 2 and 3 include the best purely semantic matches
    rerank_top: int = 8  # with QA_RERANKER: the best sentences the cross-encoder reorders
    rerank_weight: float = 1.0  # ...adding this times its (0, 1) score to their fused score


@dataclass(frozen=True)
class Ranked:
    """One question's sentence scores on one snapshot (internal)."""

    fused: np.ndarray
    signals: Signals
    qtokens: tuple[str, ...]
    qwords: tuple[str, ...]
    rows: np.ndarray | None = None  # on a very large index: the only sentences scored exactly
    prior: np.ndarray | None = None  # fused scores before reranking ("not in this document" is decided on them)
    asked: tokens.Pieces | None = None  # the question's own word pieces (`tokens.asked_match`)...
    names: np.ndarray | None = None  # ...and which of them belong to its names


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

    @cached_property
    def window_tokens(self) -> list[set[str]]:
        return [set(tokenize(c.text)) for c in self.data.chunks]

    @cached_property
    def idf(self) -> dict[str, float]:
        return idf_table(self.sentence_tokens)

    @cached_property
    def piece_idf(self) -> dict[int, float]:
        return tokens.idf(self.data.piece_ids, self.data.piece_offsets)

    @cached_property
    def capitalised(self) -> frozenset[str]:
        """Words the documents write with a capital inside a sentence more often than without
        (lower-cased, accents off): the names a question typed all in lower case may use."""
        return tokens.capitalised_words(s.text for s in self.data.sentences)

    @cached_property
    def cues(self) -> Cues:
        return Cues.of([s.text for s in self.data.sentences])

    def warm(self) -> Snapshot:
        """Build the per-version tables every question needs now, at load (after a rebuild that
        is the build's thread), rather than on the first question."""
        for table in ("idf", "piece_idf", "piece_rarest", "cues", "piece_vectors"):
            getattr(self, table)
        return self

    @property
    def approximate(self) -> bool:
        """Is this index big enough that only candidates are scored (manifest "ann": "hnsw")?"""
        return self.data.manifest.get("ann") == "hnsw"

    @cached_property
    def piece_vectors(self) -> np.ndarray:
        """The word-piece vectors for matching: a float32 copy while that is small (converting
        the gathered float16 rows costs ~1 ms per question), else the float16 array itself."""
        v = self.data.piece_vectors
        return np.ascontiguousarray(v, dtype=np.float32) if v.size * 4 <= PIECES_F32_BYTES else v

    @cached_property
    def piece_rarest(self) -> float:
        return max(self.piece_idf.values(), default=0.0)

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
        self._broken: str | None = None  # a published version that failed to load (not retried)
        self._reranker = None

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
        if snap is not None and (current is None or current == snap.version or current == self._broken):
            return snap  # keep serving what we have if CURRENT vanished, is unchanged or names a broken version
        if current is None:
            raise IndexMissing(f"No index in {index_dir}: run `qa build` (or start the app, which builds it).")
        with self._snap_lock:
            if self._snap is None or self._snap.version != current:
                try:
                    self._snap = Snapshot(store.load(index_dir, current)).warm()
                    log.info("serving index version %s", current)
                except IndexCorrupt:
                    if self._snap is None:
                        raise
                    self._broken = current
                    log.exception("new index version %s is broken; still serving %s", current, self._snap.version)
            return self._snap

    # -- asking --------------------------------------------------------------------------
    def ask(self, question: str, history: list[str] | tuple[str, ...] = (), k: int | None = None) -> ans.Answer:
        """Answer one question, using earlier questions of the conversation for follow-ups."""
        question = clean_question(question, self.settings.max_question_chars)
        snap = self.snapshot()
        k = max(1, min(k or self.settings.top_k, 10))
        history = limits.check_history(history, self.settings.max_question_chars)  # sizes first (issue 16)
        history = [clean_question(h, self.settings.max_question_chars, strict=False) for h in history][-3:]
        history = [h for h in history if h]
        ranked = self._rank(snap, question, history)
        if self.settings.reranker:
            ranked = self._rerank(snap, " ".join(history[-1:] + [question]) if is_followup(question) else question,
                                  ranked)
        return self._answer(snap, question, ranked, k)

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
        top = pool[np.argsort(-r.fused[pool], kind="stable")[:p.rerank_top]]
        fused = r.fused.copy()
        fused[top] += p.rerank_weight * self._reranker.scores(question, [snap.data.sentences[i].text for i in top])
        return replace(r, fused=fused, prior=r.fused)

    def _rank(self, snap: Snapshot, question: str, history: list[str]) -> Ranked:
        p = self.policy
        texts = [question]
        followup = bool(history) and is_followup(question)
        if followup:
            texts.append(history[-1])
        vecs, pieces = self._encode(texts)
        qvec, qpieces = vecs[0], pieces[0]
        qtokens = tokenize(question)
        borrowed: list[str] = []
        boost_rows: list[int] = []
        if followup:
            qvec = vecs[0] + p.followup_weight * vecs[1]
            qvec = qvec / max(float(np.linalg.norm(qvec)), 1e-12)
            borrowed = [t for t in dict.fromkeys(tokenize(history[-1])) if t not in qtokens]
            qpieces = tokens.merge(qpieces, pieces[1], p.followup_weight)
            prev = self._rank(snap, history[-1], history[:-1])
            shown = int(np.argmax(prev.fused))  # the sentence the previous answer quoted
            boost_rows = [int(snap.sentence_para_rows[shown])]
        ranked = score(snap, qvec, qtokens, p.weights, question, qpieces, borrowed, p.followup_weight)
        if boost_rows:  # stay near the last answer, but a follow-up asks for something not yet quoted
            fused = ranked.fused + p.followup_boost * np.isin(snap.sentence_para_rows, boost_rows)
            fused[shown] -= p.followup_repeat
            ranked = replace(ranked, fused=fused)
        known = () if tokens.cased(question) else snap.capitalised  # the documents' capitals, only when needed
        names = tokens.name_mask(pieces[0], tokens.name_words(question, known))
        return replace(ranked, qwords=tuple(w for w in words(question) if tokenize(w)), asked=pieces[0], names=names)

    def _encode(self, texts: list[str]) -> tuple[np.ndarray, list]:
        """Question vectors and word pieces (an encoder must give both: the calibrated scores
        count on the word-piece match)."""
        enc = self.encoder
        if not hasattr(enc, "encode_pieces"):
            raise ModelError(f"The encoder {getattr(enc, 'name', enc)!r} gives no word pieces (encode_pieces); "
                             "answers would be refused wrongly. Use a sentence-transformers model.")
        return enc.encode_pieces(texts)

    def _answer(self, snap: Snapshot, question: str, r: Ranked, k: int) -> ans.Answer:
        data, p = snap.data, self.policy
        if not data.sentences:
            return ans.Answer(question, False, None, (), data.version, len(data.documents))
        best = pick_citations(r, snap.groups, max(k, 5), self.policy.diverse)
        spans: dict[int, tuple[int, int]] = {}
        met: dict[int, float | None] = {}

        def span(i: int) -> tuple[int, int]:
            if i not in spans:
                spans[i] = ans.quote_span(data.sentences, r.fused, i, p.quote_margin)
            return spans[i]

        def meets(i: int) -> bool:
            met[i] = None if r.asked is None else tokens.asked_match(r.asked, r.names, snap.piece_vectors,
                                                                     data.piece_offsets, *span(i))
            return met[i] is None or met[i] >= p.abstain_unasked

        # The first quote must meet what the question asks beyond its names: one that shares only
        # the names ("Fidel Castro ... Pyongyang" in a sentence about his funeral) gives way to the
        # best-scoring quote that does ("In 1986, Fidel Castro visited ..."). Usually the best does.
        lead = next((i for i in sorted(best, key=lambda i: -r.fused[i]) if meets(i)), best[0])
        promoted = lead != best[0]
        best = ([lead] + [i for i in best if i != lead])[:k]
        qstems = [(w, set(tokenize(w))) for w in r.qwords]  # once per question, not per citation
        dense = r.signals.dense_sent + r.signals.dense_win
        lexical = r.signals.bm25_sent + r.signals.bm25_para
        citations = []
        for i in best:
            lo, hi = span(i)
            first, last = data.sentences[lo], data.sentences[hi]
            qt = set().union(*snap.sentence_tokens[lo:hi + 1])  # the quote's words, tokenized at load
            matched = tuple(dict.fromkeys(w for w, stems in qstems if stems & qt))
            has_bm25 = r.signals.bm25_sent[i] + r.signals.bm25_para[i] > 0
            ev = ans.Evidence(rank_of(dense, i), rank_of(lexical, i) if has_bm25 else None,
                              round(float(r.fused[i]), 4), matched)
            citations.append(ans.make_citation(snap.docs[first.doc], first, last, float(r.fused[i]), ev))
        prior = r.fused if r.prior is None else r.prior  # the calibrated scores, from before any reranking
        top = float(prior[lead]) if promoted else float(prior.max() if r.rows is None else prior[r.rows].max())
        found = decide_found(top, missing_share(list(r.qtokens), snap.idf), p, met.get(lead))
        return ans.Answer(question, found, citations[0].quote if found else None, tuple(citations),
                          data.version, len(data.documents))

    # -- building ------------------------------------------------------------------------
    def build(self, sources: list[Path] | None = None, add: bool = False, progress: Progress | None = None,
              documents: list[document.Document] | None = None) -> dict:
        """Build a new index version from files and folders (and/or parsed `documents`); publish it.

        Replace (default): the new version holds exactly these documents, and `sources` are
        recorded in its manifest as what the index is built from (`staleness`, restarts).

        Add (`add=True`): the documents already indexed are kept. A document is identified by
        its file name: a file named like an indexed document's file replaces that document and
        keeps its id (a parsed document replaces one with the same id); any other is added.
        When the index follows `settings.source_dir` (that folder is one of its recorded
        sources, as for the default index `qa build` makes), a file given from elsewhere is
        first copied into source_dir -- a different file of that name there is moved to
        `source_dir/.removed/` -- so a restart serves the same set.

        Files named explicitly must be readable documents (else InputError, nothing changes);
        unreadable files found by scanning a folder are skipped and listed under "skipped".
        The old version keeps serving until the new one is published atomically; on any error
        or interruption nothing is published and file changes in source_dir are undone.
        Raises BuildInProgress when another build holds the index's lock. Returns a report:
        version, seconds, counts, documents_list, skipped, copied.
        """
        return self._locked(lambda folder, say: self._build(sources or [], add, documents or [], folder, say),
                            progress)

    def add_text(self, name: str, content: str | bytes, add: bool = True, progress: Progress | None = None) -> dict:
        """Save pasted or uploaded content as a file in `settings.source_dir`, then build with it.

        `name` is the name the user gave (an upload's file name, or a title for pasted text);
        its suffix picks the format (.txt, .md, .html; none -> .txt). `content` is the text (str)
        or the file's bytes. The content is checked first with the same rules as files (size
        limit, encoding, binary, empty, format) and refused with InputError before anything is
        written. It is saved under a sanitised, unique name (`document.safe_filename`; never
        overwriting: notes.txt, notes-2.txt, ...; an identical file already there is reused), so
        a restart serves it again. `add=True` adds it to the indexed documents as
        `build(add=True)` does; `add=False` makes it the only document. If the build fails the
        saved file is removed again and the old version keeps serving. Returns the build report
        plus "saved" (the file's path). The one-file case of `add_files`.
        """
        report = self.add_files([(name, content)], add, progress)
        return {**report, "saved": report["saved"][0]}

    def add_files(self, items: list[tuple[str, str | bytes]], add: bool = True,
                  progress: Progress | None = None) -> dict:
        """`add_text` for several (name, content) items at once: every item is checked before
        anything is written, all are saved, and one build publishes one version with them
        (`add=False`: they become the only documents). If the build fails every saved file is
        removed again. Returns the build report plus "saved" (the files' paths, in item order).
        """
        if not items:
            raise InputError("Nothing to add: give at least one document.")
        checked = []
        for name, content in items:
            data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
            fname = document.safe_filename(name or "pasted", content=data)
            document.load(content, fname, self.settings.max_file_bytes)  # refuse bad input before writing
            checked.append((fname, data))

        def run(folder: SourceFolder, say: Progress) -> dict:
            paths = [folder.save(fname, data) for fname, data in checked]
            report = self._build(list(dict.fromkeys(paths)), add, [], folder, say)
            return {**report, "saved": [str(p) for p in paths]}

        return self._locked(run, progress)

    def remove_document(self, doc_id: str, progress: Progress | None = None) -> dict:
        """Rebuild without document `doc_id`, with the same safety as `build`.

        So that a restart does not bring it back, its file is moved to `source_dir/.removed/`
        when it lives in `settings.source_dir` (never deleted; a file outside source_dir is
        never touched), dropped from the recorded sources when it was named explicitly, and
        recorded as excluded when it lies in another recorded folder. InputError for an unknown
        id or the only document; the file move is undone if the build fails.
        """
        return self._locked(lambda folder, say: self._remove(doc_id, folder, say), progress)

    def _locked(self, run, progress: Progress | None) -> dict:
        """Run one build step under the index's lock; undo source_dir changes if it fails."""
        t0 = time.perf_counter()
        say = progress or (lambda f, m: None)
        with store.build_lock(self.settings.index_dir):
            folder = SourceFolder(self.settings.source_dir)
            try:
                report = run(folder, say)
            except BaseException:
                folder.undo()
                raise
        self.snapshot()
        say(1.0, "done")
        return {**report, "seconds": round(time.perf_counter() - t0, 2)}

    def _build(self, sources: list[Path], add: bool, documents: list[document.Document], folder: SourceFolder,
               say: Progress) -> dict:
        previous = self._previous(required=add)
        add = add and previous is not None
        paths = [resolve(p) for p in sources]
        srcs = Sources.of(previous.manifest) if add else Sources([str(p) for p in paths])
        docs, shas, skipped = read_documents(paths, self.settings.max_file_bytes, set(srcs.excluded) if add else set())
        follows = add and srcs.follows(folder.folder)
        copied = []
        if follows:  # keep the default index's documents in source_dir
            for i, d in enumerate(docs):
                if not folder.holds(Path(d.source)):
                    target = folder.copy_in(Path(d.source))
                    shas[str(target)] = shas.pop(d.source)
                    docs[i] = replace(d, source=str(target))
                    copied.append(str(target))
            skipped = {k: v for k, v in skipped.items() if folder.holds(Path(k))}
        if add:
            for p in [Path(d.source) for d in docs] if follows else paths:
                srcs.record(p)
            for k in shas:
                srcs.skipped.pop(k, None)
            by_name = {Path(d.source).name: i for i, d in enumerate(docs)}
            new_ids = {d.id for d in documents}
            kept, used = [], set()
            for d in previous.documents:
                i = by_name.get(Path(d.source).name) if d.source else None
                if i is not None:  # same file name: the new file replaces it, in place, and keeps its id
                    if d.source != docs[i].source:
                        srcs.forget(Path(d.source))
                    if i not in used:
                        kept.append(replace(docs[i], id=d.id))
                        used.add(i)
                elif d.source or d.id not in new_ids:
                    kept.append(d)
            docs = kept + [d for i, d in enumerate(docs) if i not in used]
        srcs.files.update(shas)
        srcs.skipped.update(skipped)
        return {**self._publish(docs + list(documents), srcs, previous, say), "copied": copied}

    def _remove(self, doc_id: str, folder: SourceFolder, say: Progress) -> dict:
        previous = self._previous(required=True)
        if previous is None:
            raise IndexMissing(f"No index in {self.settings.index_dir}: there is nothing to remove.")
        try:
            doc = previous.document(doc_id)
        except KeyError:
            raise InputError(f"No document {doc_id!r} in the index; `qa documents` lists the ids.") from None
        if len(previous.documents) == 1:
            raise InputError(f"{doc_id!r} is the only document; build from another document instead of removing it.")
        srcs = Sources.of(previous.manifest)
        moved = None
        if doc.source:
            path = Path(doc.source)
            if folder.holds(path) and path.is_file():
                moved = folder.move_aside(path)
            srcs.forget(path, moved_aside=moved is not None)
        docs = [d for d in previous.documents if d.id != doc_id]
        return {**self._publish(docs, srcs, previous, say), "removed": doc_id,
                "moved_aside": str(moved) if moved else None}

    def _rebuild(self, manifest: dict, say: Progress) -> dict:
        """Rebuild from the sources a manifest records (documents without a file are kept)."""
        previous = self._previous()
        srcs = Sources.of(manifest)
        docs, shas, skipped = read_documents([Path(r) for r in srcs.recorded], self.settings.max_file_bytes,
                                             set(srcs.excluded))
        carried = [d for d in previous.documents if not d.source] if previous else []
        return self._publish(docs + carried, Sources(srcs.recorded, srcs.excluded, shas, skipped), previous, say)

    def _publish(self, docs: list[document.Document], srcs: Sources, previous: store.IndexData | None,
                 say: Progress) -> dict:
        """Index `docs`, write the version beside the served one, publish it via CURRENT, prune."""
        s = self.settings
        if not docs:
            raise InputError("Nothing to index: no .txt, .md or .html documents were given.")
        docs = _unique_ids(docs)
        data, manifest = build_index(docs, self.encoder, s.model, srcs.recorded, previous, s.ann_threshold, say)
        srcs.add_to(manifest)
        say(0.95, "writing the index")
        try:
            store.commit(s.index_dir, data, manifest)  # writes and publishes, or leaves nothing behind
        except OSError as exc:  # a write error other than a full disk (store.DiskFull says it all itself)
            served = f"version {previous.version} is still being served" if previous else "nothing was published"
            raise QAError(f"Could not write the new index version to {s.index_dir} ({exc.strerror or exc}); "
                          f"{served}. Free some disk space and rebuild.") from exc
        store.prune(s.index_dir, keep=[previous.version] if previous is not None else [])
        return {"version": data.version, **manifest["counts"],
                "documents_list": [d["title"] for d in manifest["documents"]], "skipped": srcs.skipped}

    def _previous(self, required: bool = False) -> store.IndexData | None:
        """The version being served (its vectors seed the embedding cache), or None.

        With `required` (adding to or removing from the index) an unreadable index is an error
        rather than None, so its documents are never silently dropped."""
        try:
            return self.snapshot().data
        except IndexMissing:
            return None
        except IndexCorrupt as exc:
            if required:
                raise IndexCorrupt(f"{exc} Nothing can be added to or removed from it; replace it "
                                   "with `qa build --source ...`.") from exc
            return None

    def staleness(self) -> str | None:
        """Why the index must be (re)built, or None when it is fresh.

        Judged against the sources the served version's manifest records -- never against
        source_dir unless it is one of them: a recorded file changed or vanished, a file
        appeared in or left a recorded folder, the model or chunking changed, or the index is
        missing or unreadable.
        """
        s = self.settings
        try:
            snap = self.snapshot()
        except IndexMissing:
            return f"no index in {s.index_dir}"
        except IndexCorrupt as exc:
            return f"the index is unreadable ({exc})"
        current = store.current_version(s.index_dir)
        if current is not None and current != snap.version:
            return f"the published version {current[:40]!r} is unreadable (still serving {snap.version})"
        manifest = snap.data.manifest
        if manifest.get("model") != s.model:
            return f"the model changed ({manifest.get('model')} -> {s.model})"
        if manifest.get("chunking") != CHUNKING:
            return "the chunking parameters changed"
        srcs = Sources.of(manifest)
        try:
            have = srcs.scan()
        except (InputError, OSError) as exc:
            return str(exc)
        want = srcs.expected()
        if have != want:
            parts = [f"{label}: {', '.join(sorted(Path(p).name for p in group)[:3])}" for label, group in (
                ("new", have.keys() - want.keys()), ("changed", {k for k in have.keys() & want.keys() if have[k] != want[k]}),
                ("gone", want.keys() - have.keys())) if group]
            return "the source documents changed (" + "; ".join(parts) + ")"
        return None

    def ensure_index(self, default_sources: list[Path] | None = None, build_missing: bool = True) -> str | None:
        """Rebuild when the index is missing, unreadable or stale; returns why (None if nothing was done).

        A stale or unreadable index is rebuilt from the sources its manifest records (excluded
        files stay out; documents without a file are kept); a missing one from `default_sources`
        (default: source_dir), unless `build_missing` is False (an index folder named
        explicitly) -- then IndexMissing. When a version is being served but cannot be rebuilt
        (a recorded source vanished or became unreadable, another build holds the lock), a
        warning is logged and the served version stays.
        """
        reason = self.staleness()
        if reason is None:
            return None
        s = self.settings
        try:
            serving = self.snapshot().data.manifest
        except QAError:
            serving = None
        try:
            manifest = store.read_manifest(s.index_dir)
        except QAError:
            manifest = serving
        try:
            if manifest is not None and (manifest.get("sources") or serving is not None):
                self._locked(lambda folder, say: self._rebuild(manifest, say), None)
            elif build_missing or store.current_version(s.index_dir) is not None:
                self.build(default_sources or [s.source_dir])
            else:
                raise IndexMissing(f"No index in {s.index_dir}: build it with `qa build --index {s.index_dir} "
                                   "--source FILE_OR_FOLDER`.")
        except QAError as exc:
            if serving is None:
                raise
            log.warning("the index is stale (%s) but was not rebuilt: %s; still serving version %s",
                        reason, exc, self.snapshot().version)
            return None
        log.info("rebuilt the index: %s", reason)  # callers tell the user (CLI line, app status)
        return reason


def score(snap: Snapshot, qvec: np.ndarray, qtokens: list[str], weights: Weights, question: str = "",
          qpieces: tokens.Pieces | None = None, borrowed: tuple[str, ...] | list[str] = (),
          borrowed_weight: float = 0.0) -> Ranked:
    """Every sentence's signals and fused score for one question. `borrowed` are a follow-up's
    words taken from the previous question: they count in BM25 at `borrowed_weight`.

    On a very large index (`snap.approximate`) only candidates are scored exactly: the
    approximate FAISS neighbours plus BM25's best (`retrieval.candidate_rows`); every other
    sentence gets sentence and window scores of -1 and no paragraph, word-piece or
    answer-type credit."""
    data = snap.data
    n, npara = len(data.sentences), len(data.paragraph_keys)
    qtype = question_type(question)
    bm25_sent = data.bm25_sentences.scores(qtokens, n)
    bm25_para = data.bm25_paragraphs.scores(qtokens, npara)
    if borrowed:
        bm25_sent = bm25_sent + borrowed_weight * data.bm25_sentences.scores(list(borrowed), n)
        bm25_para = bm25_para + borrowed_weight * data.bm25_paragraphs.scores(list(borrowed), npara)
    all_tokens = list(qtokens) + list(borrowed)
    rows = candidate_rows(qvec, data.faiss_index, bm25_sent) if snap.approximate else None
    para_rows = snap.sentence_para_rows if rows is None else snap.sentence_para_rows[rows]
    q = np.asarray(qvec, dtype=np.float32).reshape(-1)

    def dense(vectors: np.ndarray) -> np.ndarray:
        return dense_scores(q, vectors) if rows is None else spread(vectors[rows] @ q, rows, n, -1.0)

    def some(values: np.ndarray) -> np.ndarray:  # candidate values -> full length
        return values if rows is None else spread(values, rows, n, 0.0)

    sig = Signals(
        dense_sent=dense(data.sentence_vectors),
        dense_win=dense(data.chunk_vectors),
        dense_para=some(dense_scores(q, data.paragraph_vectors)[para_rows]) if weights.para
        else np.zeros(n, dtype=np.float32),
        bm25_sent=bm25_sent,
        bm25_para=bm25_para[snap.sentence_para_rows],
        coverage=coverage(all_tokens, snap.window_tokens, snap.idf) if weights.coverage else None,
        answer_type=some(answer_type_scores(qtype, snap.cues, set(words(question)), rows))
        if weights.answer_type and qtype else None,
    )
    fused = fuse(sig, weights)
    if weights.tokens and qpieces is not None:  # the costliest signal: only where it can matter
        piece = np.zeros(n, dtype=np.float32)
        done = np.zeros(0, dtype=np.int64)
        for near in _piece_rows(snap, fused, rows, sig):
            near = np.setdiff1d(near, done)
            piece[near] = tokens.maxsim(qpieces, snap.piece_vectors, data.piece_offsets, snap.piece_idf, near,
                                        snap.piece_rarest)
            fused[near] += weights.tokens * piece[near]
            done = np.union1d(done, near)
        sig = replace(sig, tokens=piece)
    return Ranked(fused, sig, tuple(all_tokens), (), rows)


PIECES_F32_BYTES = 256 * 2**20  # above this the piece vectors stay float16 in memory (a very large index)
PIECE_ROWS = 32  # sentences given the word-piece match first: the best by the other signals (README)


def _piece_rows(snap: Snapshot, fused: np.ndarray, rows: np.ndarray | None, sig: Signals):
    """Which sentences get the word-piece match, in two rounds (matching every sentence would
    read the whole piece matrix per question): first the `PIECE_ROWS` best by the other
    signals and the best by meaning alone (cited when diverse); then, with those scores in
    `fused`, the neighbours up to 2 away, same paragraph, of the 8 best (a quote grows into
    them). On the eval sets even 16 first-round rows give the same Hit@1 and Hit@3."""
    n = len(fused)
    pool = np.arange(n) if rows is None else rows
    if not len(pool):
        return
    top = pool[np.argpartition(-fused[pool], PIECE_ROWS - 1)[:PIECE_ROWS]] if len(pool) > PIECE_ROWS else pool
    yield np.unique(np.concatenate([top, [int(np.argmax(sig.dense_sent)), int(np.argmax(sig.dense_win))]]))
    best = pool[np.argsort(-fused[pool], kind="stable")[:8]]
    para, out = snap.sentence_para_rows, []
    for d in (-2, -1, 1, 2):
        c = best + d
        ok = (c >= 0) & (c < n)
        out.append(c[ok][para[c[ok]] == para[best[ok]]])
    near = np.unique(np.concatenate(out).astype(np.int64))
    yield near if rows is None else np.intersect1d(near, rows)


def missing_share(qtokens: list[str], idf: dict[str, float]) -> float:
    """Share of the question's idf weight carried by words that occur nowhere in the index
    (an unseen word weighs as much as the rarest seen one): "capital of Australia" -> high."""
    q = list(dict.fromkeys(qtokens))
    if not q:
        return 1.0
    unseen = max(idf.values(), default=1.0) + 1.0
    weights = {t: idf.get(t, unseen) for t in q}
    return sum(v for t, v in weights.items() if t not in idf) / sum(weights.values())


def decide_found(top_score: float, missing: float, p: Policy, asked: float | None = None) -> bool:
    """The calibrated "is this answered here?" rule (README, "When it says not in this document").
    `asked`: how well the quote meets the question beyond its names (`tokens.asked_match`)."""
    if top_score < p.abstain_below:
        return False
    if asked is not None and asked < p.abstain_unasked:
        return False
    return not (missing >= p.abstain_missing and top_score < p.abstain_missing_below)


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


def is_followup(question: str) -> bool:
    """Does the question lean on the conversation? ("Who received him?" yes; "Who is Ri?" no)."""
    ws = words(question)
    return bool(_FOLLOWUP_START.match(question.strip())) or any(w in _PRONOUNS for w in ws[1:] + ws[:1]) \
        and not (len(tokenize(question)) >= 4 and not any(w in _PRONOUNS - {"the", "this", "that"} for w in ws))


def clean_question(text: str, max_chars: int, strict: bool = True) -> str:
    """Strip control characters and broken surrogates; refuse empty or overlong questions."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if len(text) > limits.edge(max_chars):  # refused (or cut, if only shown) before it is looked at
        if strict:
            raise limits.too_long(len(text), max_chars)
        text = text[: limits.edge(max_chars)]
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
    """Make document ids unique, first come first served: a later 'x' becomes 'x-2' (or 'x-3', ...)."""
    taken = {d.id for d in docs}
    seen: set[str] = set()
    out = []
    for d in docs:
        doc_id, n = d.id, 1
        while doc_id in seen or (n > 1 and doc_id in taken):
            n += 1
            doc_id = f"{d.id}-{n}"
        seen.add(doc_id)
        out.append(d if doc_id == d.id else replace(d, id=doc_id))
    return out
