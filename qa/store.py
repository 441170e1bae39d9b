"""The on-disk index: versioned folders, manifest with checksums, atomic publish, verified load.

    index/
      CURRENT                  one line: the id of the version being served
      .lock                    held while a build runs (two builds never overlap)
      versions/<id>/           manifest.json, documents.jsonl, sentences.jsonl, chunks.jsonl,
                               *_vectors.npy (float16), bm25_sentences/, bm25_paragraphs/,
                               pieces.npz (each sentence's word-piece ids, row scales, offsets) and
                               piece_codes.npy (their vectors, int8: qa.tokens.quantize),
                               vectors.faiss (only for an HNSW index: a flat one is rebuilt at load)

Format 3 (issue 13, book-sized documents) stores compactly what format 2 stored in full: vector
arrays as float16 (loaded back as float32), an array identical to another (one-sentence
windows or paragraphs) once, windows without their text (the document holds it), word-piece
vectors as int8 with one scale per row, and no copy of the window vectors in a flat FAISS file.
Format 2 versions still load (so the next build reuses their vectors).

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import diskspace, tokens
from .chunking import Chunk, Sentence
from .document import Document, Paragraph
from .errors import BuildInProgress, IndexCorrupt, IndexMissing
from .lexical import BM25

log = logging.getLogger("qa.store")

FORMAT_VERSION = 3
READABLE_FORMATS = (2, 3)  # 2: float32 vectors, float16 pieces, window texts, always a vectors.faiss
_VERSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True, eq=False)
class IndexData:
    """Everything one index version holds, in memory. Rows of the vector arrays align with
    `sentences` (sentence_vectors), `chunks` (chunk_vectors) and `paragraph_keys`."""

    version: str
    manifest: dict
    documents: tuple[Document, ...]
    sentences: tuple[Sentence, ...]
    chunks: tuple[Chunk, ...]
    paragraph_keys: tuple[tuple[str, int], ...]
    sentence_vectors: np.ndarray
    chunk_vectors: np.ndarray
    paragraph_vectors: np.ndarray
    faiss_index: object  # None in a build's own data when it is flat (store.load builds it from chunk_vectors)
    bm25_sentences: BM25
    bm25_paragraphs: BM25
    piece_ids: np.ndarray  # int32: the sentences' content word pieces, packed (qa.tokens.pack)
    piece_vectors: np.ndarray  # float16, one row per piece
    piece_offsets: np.ndarray  # int64, len(sentences) + 1: sentence i owns rows [offsets[i], offsets[i+1])

    def document(self, doc_id: str) -> Document:
        for d in self.documents:
            if d.id == doc_id:
                return d
        raise KeyError(doc_id)


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
    import faiss

    root = versions_dir(index_dir)
    tmp = root / (data.version + ".partial")
    final = root / data.version
    try:
        root.mkdir(parents=True, exist_ok=True)
        sweep(index_dir)  # a killed build's leftovers would only make this one fail too
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        _write_jsonl(tmp / "documents.jsonl", (_doc_record(d) for d in data.documents))
        _write_jsonl(tmp / "sentences.jsonl", ([s.doc, s.para, s.index, s.start, s.end] for s in data.sentences))
        _write_jsonl(tmp / "chunks.jsonl", ([c.id, c.doc, c.para, c.center, c.start, c.end] for c in data.chunks))
        arrays = {}  # which file holds each vector array: an array shared with another is written once
        for name, arr in (("sentence", data.sentence_vectors), ("chunk", data.chunk_vectors),
                          ("paragraph", data.paragraph_vectors)):
            same = next((arrays[k] for k, a in (("sentence", data.sentence_vectors), ("chunk", data.chunk_vectors))
                         if k in arrays and a is arr), None)
            arrays[name] = same or f"{name}_vectors.npy"
            if same is None:
                np.save(tmp / arrays[name], np.asarray(arr, dtype=np.float16))
        if manifest.get("ann") == "hnsw":  # a flat index is only the window vectors again: rebuilt at load
            faiss.write_index(data.faiss_index, str(tmp / "vectors.faiss"))
        data.bm25_sentences.save(tmp / "bm25_sentences")
        data.bm25_paragraphs.save(tmp / "bm25_paragraphs")
        np.savez(tmp / "pieces.npz", ids=data.piece_ids, scales=_save_codes(tmp / "piece_codes.npy", data.piece_vectors),
                 offsets=data.piece_offsets)
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
    import faiss

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
        documents = tuple(_doc_from(r) for r in _read_jsonl(folder / "documents.jsonl"))
        with np.load(folder / "pieces.npz") as pieces:
            piece_ids, piece_offsets = pieces["ids"], pieces["offsets"]
            piece_vectors = pieces["vectors"] if form == 2 else \
                tokens.dequantize(np.load(folder / "piece_codes.npy", mmap_mode="r"), pieces["scales"])
        texts = {d.id: d.text for d in documents}
        sentences = tuple(Sentence(doc, para, i, s, e, texts[doc][s:e])
                          for doc, para, i, s, e in _read_jsonl(folder / "sentences.jsonl"))
        if form == 2:
            chunks = tuple(Chunk(r["id"], r["doc"], r["para"], r["center"], r["start"], r["end"], r["text"])
                           for r in _read_jsonl(folder / "chunks.jsonl"))
        else:
            chunks = tuple(Chunk(i, doc, para, c, s, e, texts[doc][s:e])
                           for i, doc, para, c, s, e in _read_jsonl(folder / "chunks.jsonl"))
        files = manifest.get("arrays") or {k: f"{k}_vectors.npy" for k in ("sentence", "chunk", "paragraph")}
        arrays: dict[str, np.ndarray] = {}  # by checksum: identical files (one-sentence paragraphs) held once

        def vectors(kind: str) -> np.ndarray:
            key = manifest["files"][files[kind]]
            if key not in arrays:
                arrays[key] = np.ascontiguousarray(np.load(folder / files[kind]), dtype=np.float32)
            return arrays[key]

        chunk_vectors = vectors("chunk")
        if (folder / "vectors.faiss").exists():
            faiss_index = faiss.read_index(str(folder / "vectors.faiss"))
        else:  # exact search over the window vectors: as fast to rebuild as to read
            faiss_index = faiss.IndexFlatIP(chunk_vectors.shape[1] if chunk_vectors.ndim == 2 and chunk_vectors.shape[1] else 1)
            if len(chunk_vectors):
                faiss_index.add(chunk_vectors)
        data = IndexData(
            version=version, manifest=manifest, documents=documents, sentences=sentences, chunks=chunks,
            paragraph_keys=tuple((d.id, p.number) for d in documents for p in d.paragraphs),
            sentence_vectors=vectors("sentence"),
            chunk_vectors=chunk_vectors,
            paragraph_vectors=vectors("paragraph"),
            faiss_index=faiss_index,
            bm25_sentences=BM25.load(folder / "bm25_sentences"),
            bm25_paragraphs=BM25.load(folder / "bm25_paragraphs"),
            piece_ids=piece_ids, piece_vectors=piece_vectors, piece_offsets=piece_offsets,
        )
    except (KeyError, ValueError, TypeError, IndexError, OSError, RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        raise IndexCorrupt(f"Index version {version} could not be read ({exc}); rebuild with `qa build`.") from exc
    if not (len(sentences) == len(data.sentence_vectors) == len(chunks) == data.faiss_index.ntotal
            and len(data.paragraph_keys) == len(data.paragraph_vectors) and _pieces_fit(data)):
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


def _pieces_fit(data: IndexData) -> bool:
    """Do the word-piece arrays have the shapes `qa.tokens` relies on? (1-D ids and offsets
    starting at 0, at least one row per sentence, ending at the piece count; vectors as wide as the others.)"""
    ids, vecs, off = data.piece_ids, data.piece_vectors, data.piece_offsets
    if ids.ndim != 1 or off.ndim != 1 or vecs.ndim != 2 or len(off) != len(data.sentences) + 1:
        return False
    dim = data.sentence_vectors.shape[1] if data.sentence_vectors.ndim == 2 else -1
    return (len(off) > 0 and int(off[0]) == 0 and bool(np.all(np.diff(off) >= 1)) and int(off[-1]) == len(ids) == len(vecs)
            and (vecs.shape[1] == dim or len(vecs) == 0))


# --- helpers -----------------------------------------------------------------------------

def _save_codes(path: Path, vectors: np.ndarray) -> np.ndarray:
    """Write the piece vectors' int8 codes (`tokens.quantize`) to an .npy file block by block
    (no second copy of the array in memory); returns the per-row scales."""
    codes = np.lib.format.open_memmap(path, mode="w+", dtype=np.int8, shape=vectors.shape)
    scales = np.zeros(len(vectors), np.float32)
    step = 65536
    for lo in range(0, len(vectors), step):
        codes[lo:lo + step], scales[lo:lo + step] = tokens.quantize(vectors[lo:lo + step])
    codes.flush()
    del codes
    return scales


def _doc_record(d: Document) -> dict:
    return {"id": d.id, "title": d.title, "source": d.source, "warnings": list(d.warnings), "text": d.text,
            "format": d.format, "pages": d.pages,
            "paragraphs": [[p.number, p.section, p.start, p.end, *([p.page] if p.page is not None else [])]
                           for p in d.paragraphs]}


def _doc_from(r: dict) -> Document:
    text = r["text"]
    paras = tuple(Paragraph(n, sec, s, e, text[s:e], *page) for n, sec, s, e, *page in r["paragraphs"])
    return Document(r["id"], r["title"], text, paras, r.get("source", ""), tuple(r.get("warnings", ())),
                    r.get("format", "text"), r.get("pages"))


def _write_jsonl(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _read_jsonl(path: Path) -> list:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


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
