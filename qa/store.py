"""The on-disk index: versioned folders, manifest with checksums, atomic publish, verified load.

    index/
      CURRENT                  one line: the id of the version being served
      .lock                    held while a build runs (two builds never overlap)
      versions/<id>/           manifest.json, documents.jsonl, sentences.jsonl, chunks.jsonl,
                               *_vectors.npy (float16),
                               pieces.npz (each sentence's word-piece ids, row scales, offsets) and
                               piece_codes.npy (their vectors, int8: qa.tokens.quantize),
                               vectors.faiss (only for an HNSW index; an exact one searches the window vectors in place, versionfiles.FlatIP)

Format 3 (issue 13, book-sized documents) stores compactly what format 2 stored in full: vector
arrays as float16 (loaded back as float32), an array identical to another (one-sentence
windows or paragraphs) once, windows without their text (the document holds it), word-piece
vectors as int8 with one scale per row, and no copy of the window vectors in a flat FAISS file.
Format 4 (issue 13) drops format 3's index-wide BM25 folders (bm25_sentences/, bm25_paragraphs/):
no question read them (answering scores BM25 per document, `lexical.DocBM25`, built at load).
Format 2 and 3 versions still load (3's BM25 folders are ignored), so the next build reuses
their vectors; a format this program cannot read is refused (`IndexCorrupt`), and the library
rebuilds such an index from the sources its manifest records (`Library.ensure_index`).

A build writes `versions/<id>.partial/`, fsyncs it, renames it to `versions/<id>/` and then
atomically replaces CURRENT (os.replace). A reader loads what CURRENT names and checks every
file against the manifest's sha256, so a half-written or tampered version is never served.

A full disk (or any write error) at any step of `commit` leaves the index as it was: the
half-written folder, the renamed-but-unpublished version and the CURRENT temp file are removed,
CURRENT still names the old version, and the error (`DiskFull` for ENOSPC/EDQUOT) says about how
much space the version needed and how much was free. Leftovers of a build that was killed
(`*.partial`, `CURRENT.*.tmp`) are swept by the next build before it writes, so they never
make the next build fail too.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
import zipfile
from pathlib import Path

from . import diskspace, versionfiles
from .errors import BuildInProgress, IndexCorrupt, IndexMissing
from .versionfiles import FORMAT_VERSION, READABLE_FORMATS, IndexData  # noqa: F401 (re-exported)

log = logging.getLogger("qa.store")

_VERSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


# --- paths and locking -------------------------------------------------------------------

def versions_dir(index_dir: Path) -> Path:
    return Path(index_dir) / "versions"


def current_version(index_dir: Path) -> str | None:
    """What CURRENT names (None when there is no CURRENT or it is empty). Not validated here:
    `read_manifest`/`load` refuse a name that is not a version id with `IndexCorrupt`."""
    try:
        raw = (Path(index_dir) / "CURRENT").read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    return raw.decode("utf-8", "replace").strip() or None


def _check_version_id(index_dir: Path, version: str) -> None:
    if not _VERSION_ID.fullmatch(version) or version.endswith(".partial"):
        raise IndexCorrupt(f"{index_dir}/CURRENT does not name a valid index version ({version[:40]!r}); "
                           "rebuild with `qa build`.")


@contextlib.contextmanager
def build_lock(index_dir: Path):
    """Exclusive, non-blocking: a second build is told one is in progress instead of waiting."""
    Path(index_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(index_dir) / ".lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildInProgress("A rebuild is already in progress; try again when it has finished.") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def new_version_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


# --- writing -----------------------------------------------------------------------------

def commit(index_dir: Path, data: IndexData, manifest: dict) -> Path:
    """`write_version` then `publish`; if publishing fails, the written version is removed again
    (nothing points at it) and the served version stays. Call while holding the build lock."""
    final = write_version(index_dir, data, manifest)
    try:
        publish(index_dir, data.version)
    except BaseException as exc:
        if current_version(index_dir) != data.version:  # not published: an orphan, remove it
            shutil.rmtree(final, ignore_errors=True)
        if diskspace.is_full(index_dir, data, exc):
            raise diskspace.disk_full(index_dir, data, exc, current_version(index_dir)) from exc
        raise
    return final


def sweep(index_dir: Path) -> list[str]:
    """Remove what a killed or failed build left behind: `versions/*.partial` and `CURRENT.*.tmp`
    (never a complete version). Call only while holding the build lock. Returns the names removed."""
    removed = []
    for tmp in Path(index_dir).glob("CURRENT.*.tmp"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp.name)
    root = versions_dir(index_dir)
    for p in root.glob("*.partial") if root.is_dir() else ():
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        removed.append(p.name)
    return removed


def write_version(index_dir: Path, data: IndexData, manifest: dict) -> Path:
    """Write all files to versions/<id>.partial, fsync, rename to versions/<id>. Returns the path.
    On any error nothing of this version is left behind (DiskFull for a full disk)."""
    root = versions_dir(index_dir)
    tmp = root / (data.version + ".partial")
    final = root / data.version
    try:
        root.mkdir(parents=True, exist_ok=True)
        sweep(index_dir)  # a killed build's leftovers would only make this one fail too
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        arrays = versionfiles.write_files(tmp, data, hnsw=manifest.get("ann") == "hnsw")
        manifest = dict(manifest, format=FORMAT_VERSION, version=data.version, arrays=arrays, files=_checksums(tmp))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), "utf-8")
        _fsync_tree(tmp)
        os.replace(tmp, final)
        _fsync_dir(root)
        return final
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if current_version(index_dir) != data.version:
            shutil.rmtree(final, ignore_errors=True)
        if diskspace.is_full(index_dir, data, exc):
            raise diskspace.disk_full(index_dir, data, exc, current_version(index_dir)) from exc
        raise


def publish(index_dir: Path, version: str) -> None:
    """Atomically point CURRENT at `version`. If it fails, CURRENT is unchanged and no temp file is left."""
    tmp = Path(index_dir) / f"CURRENT.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(version + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, Path(index_dir) / "CURRENT")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # CURRENT already names `version` for every reader; only its durability is at stake
        _fsync_dir(Path(index_dir))
    except OSError as exc:
        log.warning("published %s, but syncing %s failed (%s)", version, index_dir, exc)


def prune(index_dir: Path, keep: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Delete everything in versions/ except the published version and `keep` (the last good one,
    i.e. the version served before this build): old versions, `*.partial` leftovers of failed or
    killed builds, versions written but never published, stray CURRENT tmp files. Call only
    while holding the build lock (so no other build's `.partial` is in flight). Returns the names removed."""
    root = versions_dir(index_dir)
    for tmp in Path(index_dir).glob("CURRENT.*.tmp"):
        tmp.unlink(missing_ok=True)
    if not root.exists():
        return []
    keepers = {v for v in (current_version(index_dir), *keep) if v}
    removed = []
    for p in sorted(root.iterdir()):
        if p.name not in keepers:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            removed.append(p.name)
    return removed


# --- reading -----------------------------------------------------------------------------

def read_manifest(index_dir: Path, version: str | None = None) -> dict:
    version = version or current_version(index_dir)
    if not version:
        raise IndexMissing(f"No index in {index_dir}: run `qa build` first.")
    _check_version_id(index_dir, version)
    path = versions_dir(index_dir) / version / "manifest.json"
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise IndexCorrupt(f"Index version {version} named by {index_dir}/CURRENT has no manifest; rebuild with `qa build`.") from None
    except (json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError, NotADirectoryError):
        raise IndexCorrupt(f"Index version {version} has an unreadable manifest; rebuild with `qa build`.") from None
    except OSError as exc:
        raise IndexCorrupt(f"Index version {version} could not be read ({exc}); rebuild with `qa build`.") from exc
    if not isinstance(manifest, dict):
        raise IndexCorrupt(f"Index version {version} has an unreadable manifest; rebuild with `qa build`.")
    return manifest


def load(index_dir: Path, version: str | None = None) -> IndexData:
    """Load and verify the version CURRENT names (or `version`)."""
    version = version or current_version(index_dir)
    manifest = read_manifest(index_dir, version)
    folder = versions_dir(index_dir) / version
    form = manifest.get("format")
    if form not in READABLE_FORMATS:
        raise IndexCorrupt(f"Index version {version} has format {form}, this program reads "
                           f"{' and '.join(map(str, READABLE_FORMATS))}; rebuild with `qa build`.")
    try:
        actual = _checksums(folder, exclude={"manifest.json"})
    except OSError as exc:
        raise IndexCorrupt(f"Index version {version} could not be read ({exc}); rebuild with `qa build`.") from exc
    if actual != manifest.get("files"):
        want = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
        bad = sorted(set(actual.items()) ^ set(want.items()))
        names = sorted({name for name, _ in bad})
        raise IndexCorrupt(f"Index version {version} fails its checksum check ({', '.join(names[:5])}); "
                           "it will not be served. Rebuild with `qa build`.")
    try:
        data = versionfiles.read_files(folder, version, manifest)
    except (KeyError, ValueError, TypeError, IndexError, OSError, RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        raise IndexCorrupt(f"Index version {version} could not be read ({exc}); rebuild with `qa build`.") from exc
    if not versionfiles.consistent(data):
        raise IndexCorrupt(f"Index version {version} has inconsistent row counts; rebuild with `qa build`.")
    return data


def newest_intact(index_dir: Path, skip: tuple[str, ...] = ()) -> IndexData | None:
    """The newest version in versions/ that loads and passes its checksums (None when none does):
    what to serve when CURRENT is missing, garbage, or names a broken or vanished version.
    Newest by the time its folder was last written (ids start with the second they were built,
    which two quick builds can share), then by id."""
    root = versions_dir(index_dir)
    try:
        found = [(p.stat().st_mtime_ns, p.name) for p in root.iterdir() if p.is_dir()]
    except OSError:
        return None
    names = [name for _, name in sorted(found, reverse=True)]
    for name in names:
        if name in skip or name.endswith(".partial") or not _VERSION_ID.fullmatch(name):
            continue
        try:
            return load(index_dir, name)
        except IndexCorrupt:
            continue
    return None


def has_versions(index_dir: Path) -> bool:
    """Does versions/ hold a finished version (an index that exists, readable or not)? The
    `.partial` leftover of a build killed before its first publish does not count."""
    root = versions_dir(index_dir)
    return root.is_dir() and any(p.is_dir() and not p.name.endswith(".partial") for p in root.iterdir())


# --- helpers -----------------------------------------------------------------------------

def _checksums(folder: Path, exclude: set[str] = frozenset()) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and rel not in exclude and rel != "manifest.json":
            out[rel] = sha256_file(p)
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
    for d in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        _fsync_dir(d)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
