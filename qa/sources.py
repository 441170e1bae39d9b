"""What an index is built from: the sources a version records (`Sources`), reading them into
documents (`read_documents`), and the undoable changes to the source folder the default index
follows (`SourceFolder`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import document
from .document import Document
from .errors import InputError

log = logging.getLogger("qa")


@dataclass
class Sources:
    """The sources an index version records in its manifest, so that staleness checks and
    restarts use them (and never `source/` when another index folder was named).

    `recorded`: absolute paths of the files and folders given to the build (folders are
    scanned, not recursed into). `excluded`: files inside recorded folders that were removed
    from the index. `files`: sha256 of the bytes of each indexed document's file. `skipped`:
    files found in recorded folders that could not be read -> {"sha256", "reason"}.
    """

    recorded: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def of(cls, manifest: dict | None) -> Sources:
        m = manifest or {}
        return cls(list(m.get("sources") or []), list(m.get("excluded") or []),
                   {d["source"]: d.get("file_sha256", "") for d in m.get("documents", []) if d.get("source")},
                   dict(m.get("skipped") or {}))

    def add_to(self, manifest: dict) -> dict:
        manifest["sources"] = list(dict.fromkeys(self.recorded))
        manifest["excluded"] = sorted(set(self.excluded))
        manifest["skipped"] = {k: self.skipped[k] for k in sorted(self.skipped)}
        for d in manifest["documents"]:
            d["file_sha256"] = self.files.get(d["source"], "") if d.get("source") else ""
        return manifest

    def follows(self, folder: Path) -> bool:
        """Is `folder` one of the recorded folders?"""
        return str(Path(folder).resolve()) in self.recorded

    def covers(self, path: Path) -> bool:
        """Would a rebuild from the recorded sources read `path`?"""
        return str(path) in self.recorded or (str(path.parent) in self.recorded and str(path) not in self.excluded)

    def record(self, path: Path) -> None:
        """Record a file or folder given to an `add` build (a file a recorded folder holds needs no entry)."""
        if str(path) in self.excluded:
            self.excluded.remove(str(path))
        if not self.covers(path):
            self.recorded.append(str(path))

    def forget(self, path: Path, moved_aside: bool = False) -> None:
        """A document read from `path` left the index: make sure a rebuild does not bring it back
        (a file still in a recorded folder is excluded; one moved aside needs no exclusion)."""
        self.files.pop(str(path), None)
        if str(path) in self.recorded:
            self.recorded.remove(str(path))
        if not moved_aside and str(path.parent) in self.recorded and str(path) not in self.excluded:
            self.excluded.append(str(path))

    def scan(self) -> dict[str, str]:
        """{file: sha256} of every file a rebuild would read now. InputError when a recorded source is gone."""
        from .store import sha256_file

        out = {}
        for r in self.recorded:
            p = Path(r)
            if not p.exists():
                raise InputError(f"the recorded source {r} no longer exists")
            for f in document.expand_sources([p]) if p.is_dir() else [p]:
                if str(f) not in self.excluded:
                    out[str(f)] = sha256_file(f)
        return out

    def expected(self) -> dict[str, str]:
        """{file: sha256} as of the build (indexed documents' files and skipped files)."""
        return {**self.files, **{k: v.get("sha256", "") for k, v in self.skipped.items()}}


def resolve(path: Path | str) -> Path:
    return Path(path).expanduser().resolve()


def read_documents(paths: list[Path], max_bytes: int, excluded: set[str] = frozenset(),
                   parsed: dict[str, tuple[Document, str]] | None = None
                   ) -> tuple[list[Document], dict[str, str], dict[str, dict]]:
    """Read files and folders (absolute paths) -> documents, {file: sha256}, skipped files.

    A file named explicitly must be a readable document (else InputError, naming it); a file
    found by scanning a folder that cannot be read is skipped, logged and reported instead, so
    one bad file in a folder does not stop the others from being indexed. When files were
    found but every one was skipped, InputError names each and why (e.g. over the size limit).
    `parsed`: {file: (document, sha256)} already read from these very bytes (uploads checked
    before they were saved), used instead of reading and parsing the file again.
    """
    from .store import sha256_file

    docs, shas, skipped = [], {}, {}
    for p in paths:
        if not p.exists():
            raise InputError(f"{p} does not exist. Check the path given to --source.")
        scanned = p.is_dir()
        for f in document.expand_sources([p]) if scanned else [p]:
            if scanned and str(f) in excluded:
                continue
            if parsed and str(f) in parsed:
                doc, sha = parsed[str(f)]
                docs.append(replace(doc, source=str(f)))
                shas[str(f)] = sha
                continue
            try:
                data = document.read_bytes(f, max_bytes)
                doc = document.load(data, f.name, max_bytes, source=str(f))
            except InputError as exc:
                if not scanned:
                    raise
                skipped[str(f)] = {"sha256": sha256_file(f), "reason": str(exc)}
                continue
            docs.append(doc)
            shas[str(f)] = hashlib.sha256(data).hexdigest()
    if skipped and not docs:  # say why, rather than just that there is nothing
        why = [v["reason"] if Path(k).name in v["reason"] else f"{Path(k).name}: {v['reason']}"
               for k, v in skipped.items()]
        raise InputError("Nothing to index: every document found was skipped. " + " ".join(why))
    for f, v in skipped.items():
        log.warning("skipping %s: %s", f, v["reason"])
    return docs, shas, skipped


class SourceFolder:
    """Undoable changes to `settings.source_dir`, the folder the default index is built from.

    Files are only ever created, replaced or moved aside (to `.removed/`) *inside* this folder,
    never deleted, and nothing outside it is touched. `undo()` puts everything back; the engine
    calls it when a build fails, so a failed build changes no file.
    """

    ASIDE = ".removed"

    def __init__(self, folder: Path):
        self.folder = resolve(folder)
        self._undo: list[Callable[[], None]] = []
        self.created: list[Path] = []
        self.moved: list[tuple[Path, Path]] = []

    def holds(self, path: Path) -> bool:
        return resolve(path).parent == self.folder

    def copy_in(self, path: Path) -> Path:
        """Copy a file into the folder under the same name. A different file of that name there
        is moved aside first (the new one replaces it); an identical one is reused."""
        data = path.read_bytes()
        name = path.name if document.is_candidate(path) else document.safe_filename(path.name, content=data)
        target = self.folder / name  # a name a scan of the folder picks up again
        if target.exists():
            if target.read_bytes() == data:
                return target
            self.move_aside(target)
        return self._write(target, data)

    def save(self, name: str, data: bytes) -> Path:
        """Save content under a sanitised, unique name (name.txt, name-2.txt, ...); an identical
        file already there under one of those names is reused instead of saved twice."""
        fname = document.safe_filename(name, content=data)
        stem, suffix = fname[: -len(Path(fname).suffix)], Path(fname).suffix
        n = 1
        target = self.folder / fname
        while target.exists():
            if target.is_file() and target.read_bytes() == data:
                return target
            n += 1
            target = self.folder / f"{stem}-{n}{suffix}"
        return self._write(target, data)

    def move_aside(self, path: Path) -> Path:
        """Move a file of this folder to `.removed/<name>.<time>` (undoable; never deletes)."""
        path = resolve(path)
        if path.parent != self.folder:
            raise RuntimeError(f"refusing to move {path}: it is not in {self.folder}")
        aside = self.folder / self.ASIDE
        aside.mkdir(exist_ok=True)
        dest = aside / f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}"
        n = 1
        while dest.exists():
            n += 1
            dest = aside / f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}-{n}"
        os.replace(path, dest)
        self._undo.append(lambda: os.replace(dest, path))
        self.moved.append((path, dest))
        return dest

    def undo(self) -> None:
        for step in reversed(self._undo):
            try:
                step()
            except OSError:
                log.exception("could not undo a change to %s", self.folder)
        self._undo.clear()

    def _write(self, target: Path, data: bytes) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{target.name}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        self._undo.append(lambda: target.unlink(missing_ok=True))
        self.created.append(target)
        return target
