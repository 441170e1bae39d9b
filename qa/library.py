"""The use cases that change an index's document set: preview, build (replace or add), add
uploads, remove, and the start-up check that rebuilds a stale index -- each returning a frozen
`BuildReport`.

Every change runs as one transaction (`Library._transaction`): the index's build lock is held,
changes to the source folder are undone if anything fails, the new version is written beside
the served one and published atomically (`store.publish`), so the old version keeps serving
until the new one is complete. Each input is read and parsed once: an upload is parsed when it
is checked, and that parsed document is what gets indexed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from . import document, store
from .build import CHUNKING, Progress, build_index
from .config import Settings
from .document import Document
from .errors import BuildInProgress, IndexCorrupt, IndexMissing, InputError, QAError
from .records import BuildReport, IndexInfo, Preview, Upload
from .sources import SourceFolder, Sources, read_documents, resolve

log = logging.getLogger("qa")


class _Transaction:
    """One build step under the index's lock (see `Library._transaction`)."""

    def __init__(self, folder: SourceFolder, say: Progress):
        self.folder, self.say, self.t0 = folder, say, time.perf_counter()

    def finish(self, report: BuildReport) -> BuildReport:
        return replace(report, seconds=round(time.perf_counter() - self.t0, 2))


class Library:
    """Changes to the document set of one index folder. `encoder` and `serving` come from the
    engine: the model (loaded on first use) and the snapshot being served."""

    def __init__(self, settings: Settings, encoder: Callable[[], object], serving: Callable[[], object],
                 note: Callable[[], str | None] = lambda: None):
        self.settings = settings
        self._encoder = encoder
        self._serving = serving
        self._note = note

    # -- reading what is there ---------------------------------------------------------------
    def info(self) -> IndexInfo:
        """The served version's documents and sources (IndexMissing / IndexCorrupt otherwise),
        with a note when it is not the published one (CURRENT unreadable)."""
        snap = self._serving()
        return replace(IndexInfo.of(snap.data.manifest), note=self._note())

    def preview(self, uploads: Sequence[Upload]) -> list[Preview]:
        """Parse each upload as a build would (size limit, encoding, format), writing nothing."""
        out = []
        for u in uploads:
            try:
                out.append(Preview(u, document.load(u.data, u.name, self.settings.max_file_bytes)))
            except InputError as exc:
                out.append(Preview(u, error=str(exc)))
        return out

    # -- changing it ---------------------------------------------------------------------------
    def build(self, sources: list[Path] | None = None, add: bool = False, progress: Progress | None = None,
              documents: list[Document] | None = None) -> BuildReport:
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
        unreadable files found by scanning a folder are skipped and listed in `skipped`.
        The old version keeps serving until the new one is published atomically; on any error
        or interruption nothing is published and file changes in source_dir are undone.
        Raises BuildInProgress when another build holds the index's lock.
        """
        with self._transaction(progress) as t:
            report = self._build(sources or [], add, documents or [], t)
        return t.finish(report)

    def add_text(self, name: str, content: str | bytes, add: bool = True,
                 progress: Progress | None = None) -> BuildReport:
        """Save pasted or uploaded content as a file in `settings.source_dir`, then build with it
        (the one-file case of `add_files`). `name`'s suffix picks the format (.txt, .md, .html;
        none -> .txt)."""
        return self.add_files([(name, content)], add, progress)

    def add_files(self, items: Sequence[Upload | tuple[str, str | bytes]], add: bool = True,
                  progress: Progress | None = None) -> BuildReport:
        """Check every item (size limit, encoding, binary, empty, format: InputError naming each
        that fails, before anything is written), save each under a sanitised, unique name in
        `settings.source_dir` (notes.txt, notes-2.txt, ...; an identical file already there is
        reused), and publish one version with them: `add=True` adds them to the indexed
        documents as `build(add=True)` does, `add=False` makes them the only documents. If the
        build fails every saved file is removed again and the old version keeps serving.
        `saved` lists the files' paths, in item order."""
        uploads = [u if isinstance(u, Upload) else Upload.of(*u) for u in items]
        if not uploads:
            raise InputError("Nothing to add: give at least one document.")
        previews = self.preview(uploads)
        bad = [p for p in previews if p.error]
        if bad:  # nothing is written unless every item can be indexed
            raise InputError(" ".join(p.error if p.upload.name in p.error else f"{p.upload.name}: {p.error}"
                                      for p in bad))
        with self._transaction(progress) as t:
            paths = [t.folder.save(p.upload.name, p.upload.data) for p in previews]
            parsed = {str(resolve(path)): (p.document, hashlib.sha256(p.upload.data).hexdigest())
                      for path, p in zip(paths, previews) if path.name == p.upload.name}  # else its title may differ
            report = self._build(list(dict.fromkeys(paths)), add, [], t, parsed)
            report = replace(report, saved=tuple(str(p) for p in paths))
        return t.finish(report)

    def remove(self, doc_id: str, progress: Progress | None = None) -> BuildReport:
        """Rebuild without document `doc_id`, with the same safety as `build`.

        So that a restart does not bring it back, its file is moved to `source_dir/.removed/`
        when it lives in `settings.source_dir` (never deleted; a file outside source_dir is
        never touched), dropped from the recorded sources when it was named explicitly, and
        recorded as excluded when it lies in another recorded folder. InputError for an unknown
        id or the only document; the file move is undone if the build fails.
        """
        with self._transaction(progress) as t:
            report = self._remove(doc_id, t)
        return t.finish(report)

    @contextlib.contextmanager
    def _transaction(self, progress: Progress | None) -> Iterator[_Transaction]:
        """Hold the index's lock; undo source-folder changes if the block fails; afterwards load
        the published version, so the next question is answered from it."""
        say = progress or (lambda f, m: None)
        with store.build_lock(self.settings.index_dir):
            t = _Transaction(SourceFolder(self.settings.source_dir), say)
            try:
                yield t
            except BaseException:
                t.folder.undo()
                raise
        self._serving()
        say(1.0, "done")

    def _build(self, sources: list[Path], add: bool, documents: list[Document], t: _Transaction,
               parsed: dict[str, tuple[Document, str]] | None = None) -> BuildReport:
        previous = self._previous(required=add)
        add = add and previous is not None
        paths = [resolve(p) for p in sources]
        srcs = Sources.of(previous.manifest) if add else Sources([str(p) for p in paths])
        docs, shas, skipped = read_documents(paths, self.settings.max_file_bytes,
                                             set(srcs.excluded) if add else set(), parsed)
        follows = add and srcs.follows(t.folder.folder)
        copied = []
        if follows:  # keep the default index's documents in source_dir
            for i, d in enumerate(docs):
                if not t.folder.holds(Path(d.source)):
                    target = t.folder.copy_in(Path(d.source))
                    shas[str(target)] = shas.pop(d.source)
                    docs[i] = replace(d, source=str(target))
                    copied.append(str(target))
            skipped = {k: v for k, v in skipped.items() if t.folder.holds(Path(k))}
        if add:
            docs = _merge_added(previous.documents, docs, documents, paths, srcs, shas, follows)
        srcs.files.update(shas)
        srcs.skipped.update(skipped)
        return replace(self._publish(docs + list(documents), srcs, previous, t.say), copied=tuple(copied))

    def _remove(self, doc_id: str, t: _Transaction) -> BuildReport:
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
            if t.folder.holds(path) and path.is_file():
                moved = t.folder.move_aside(path)
            srcs.forget(path, moved_aside=moved is not None)
        docs = [d for d in previous.documents if d.id != doc_id]
        return replace(self._publish(docs, srcs, previous, t.say), removed=doc_id,
                       moved_aside=str(moved) if moved else None)

    def _rebuild(self, manifest: dict, t: _Transaction) -> BuildReport:
        """Rebuild from the sources a manifest records (documents without a file are kept)."""
        previous = self._previous()
        srcs = Sources.of(manifest)
        docs, shas, skipped = read_documents([Path(r) for r in srcs.recorded], self.settings.max_file_bytes,
                                             set(srcs.excluded))
        carried = [d for d in previous.documents if not d.source] if previous else []
        return self._publish(docs + carried, Sources(srcs.recorded, srcs.excluded, shas, skipped), previous, t.say)

    def _publish(self, docs: list[Document], srcs: Sources, previous: store.IndexData | None,
                 say: Progress) -> BuildReport:
        """Index `docs`, write the version beside the served one, publish it via CURRENT, prune."""
        s = self.settings
        if not docs:
            raise InputError("Nothing to index: no .txt, .md, .html, .pdf or .docx documents were given.")
        docs = unique_ids(docs)
        data, manifest = build_index(docs, self._encoder(), s.model, srcs.recorded, previous, s.ann_threshold, say)
        srcs.add_to(manifest)
        say(0.95, "writing the index")
        try:
            store.commit(s.index_dir, data, manifest)  # writes and publishes, or leaves nothing behind
        except OSError as exc:  # a write error other than a full disk (store.DiskFull says it all itself)
            served = f"version {previous.version} is still being served" if previous else "nothing was published"
            raise QAError(f"Could not write the new index version to {s.index_dir} ({exc.strerror or exc}); "
                          f"{served}. Free some disk space and rebuild.") from exc
        store.prune(s.index_dir, keep=[previous.version] if previous is not None else [])
        c = manifest["counts"]
        return BuildReport(data.version, c["documents"], c["paragraphs"], c["sentences"], c["chunks"], c["encoded"],
                           c["reused"], tuple(d["title"] for d in manifest["documents"]), dict(srcs.skipped))

    def _previous(self, required: bool = False) -> store.IndexData | None:
        """The version being served (its vectors seed the embedding cache), or None.

        With `required` (adding to or removing from the index) an unreadable index is an error
        rather than None, so its documents are never silently dropped."""
        try:
            return self._serving().data
        except IndexMissing:
            return None
        except IndexCorrupt as exc:
            if required:
                raise IndexCorrupt(f"{exc} Nothing can be added to or removed from it; replace it "
                                   "with `qa build --source ...`.") from exc
            return None

    # -- keeping it fresh ----------------------------------------------------------------------
    def staleness(self) -> str | None:
        """Why the index must be (re)built, or None when it is fresh.

        Judged against the sources the served version's manifest records -- never against
        source_dir unless it is one of them: a recorded file changed or vanished, a file
        appeared in or left a recorded folder, the model or chunking changed, or the index is
        missing or unreadable.
        """
        s = self.settings
        try:
            snap = self._serving()
        except IndexMissing:
            return f"there was no index in {s.index_dir}/ yet"
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
        if manifest.get("format") != store.FORMAT_VERSION:  # an older format still loads: rebuilt, its vectors reused
            return f"the index format changed ({manifest.get('format')} -> {store.FORMAT_VERSION})"
        srcs = Sources.of(manifest)
        try:
            have = srcs.scan()
        except (InputError, OSError) as exc:
            return str(exc)
        return _difference(have, srcs.expected())

    def ensure_index(self, default_sources: list[Path] | None = None, build_missing: bool = True,
                     progress: Progress | None = None) -> str | None:
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
            serving = self._serving().data.manifest
        except QAError:
            serving = None
        try:
            manifest = store.read_manifest(s.index_dir)
        except QAError:
            manifest = serving
        try:
            if manifest is not None and (manifest.get("sources") or serving is not None):
                with self._transaction(progress) as t:
                    self._rebuild(manifest, t)
            elif build_missing:  # the default index, missing or with nothing readable left: from the source folder
                self.build(default_sources or [s.source_dir], progress=progress)
            elif store.current_version(s.index_dir) is not None or store.has_versions(s.index_dir):
                raise IndexCorrupt(f"The index in {s.index_dir} is unreadable and records no sources to rebuild "
                                   f"it from; rebuild it with `qa build --index {s.index_dir} --source FILE_OR_FOLDER`.")
            else:
                raise IndexMissing(f"No index in {s.index_dir}: build it with `qa build --index {s.index_dir} "
                                   "--source FILE_OR_FOLDER`.")
        except QAError as exc:
            if serving is None:
                raise
            log.warning("the index is stale (%s) but was not rebuilt: %s; still serving version %s",
                        reason, exc, self._serving().version)
            return None
        log.info("rebuilt the index: %s", reason)  # callers tell the user (CLI line, app status)
        return reason


def _difference(have: dict[str, str], want: dict[str, str]) -> str | None:
    """Why the files a rebuild would read now differ from those the version was built from."""
    if have == want:
        return None
    changed = {k for k in have.keys() & want.keys() if have[k] != want[k]}
    parts = [f"{label}: {', '.join(sorted(Path(p).name for p in group)[:3])}" for label, group in (
        ("new", have.keys() - want.keys()), ("changed", changed), ("gone", want.keys() - have.keys())) if group]
    return "the source documents changed (" + "; ".join(parts) + ")"


def _merge_added(previous: Sequence[Document], docs: list[Document], documents: list[Document], paths: list[Path],
                 srcs: Sources, shas: dict[str, str], follows: bool) -> list[Document]:
    """An `add` build's documents: the indexed ones kept, a file named like an indexed
    document's file replacing it in place (same id), the others appended."""
    for p in [Path(d.source) for d in docs] if follows else paths:
        srcs.record(p)
    for k in shas:
        srcs.skipped.pop(k, None)
    by_name = {Path(d.source).name: i for i, d in enumerate(docs)}
    new_ids = {d.id for d in documents}
    kept, used = [], set()
    for d in previous:
        i = by_name.get(Path(d.source).name) if d.source else None
        if i is not None:  # same file name: the new file replaces it, in place, and keeps its id
            if d.source != docs[i].source:
                srcs.forget(Path(d.source))
            if i not in used:
                kept.append(replace(docs[i], id=d.id))
                used.add(i)
        elif d.source or d.id not in new_ids:
            kept.append(d)
    return kept + [d for i, d in enumerate(docs) if i not in used]


def unique_ids(docs: list[Document]) -> list[Document]:
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


__all__ = ["BuildInProgress", "BuildReport", "IndexInfo", "Library", "Preview", "Upload"]
