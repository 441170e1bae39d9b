"""Documents -> an in-memory `IndexData` (sentences, windows, vectors, BM25) plus its manifest;
reading the sources a build is given and keeping the default index's files in `source_dir`.

Embeddings are cached by content: texts whose vectors the previous version already holds
(same model) are not encoded again, so re-adding a document with one edited paragraph only
encodes that paragraph, its sentences and the windows around them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import chunking, document, tokens
from .document import Document
from .embedding import Encoder
from .errors import InputError
from .lexical import BM25
from .store import IndexData, new_version_id

log = logging.getLogger("qa")

CHUNKING = {"unit": "sentence", "window_radius": 1, "splitter": 2, "pieces": 1, "words": 2}  # words 2: accents folded; splitter 2: caps (chunking.MAX_*)
Progress = Callable[[float, str], None]


def build_index(documents: list[Document], encoder: Encoder, model_name: str, sources: list[str],
                previous: IndexData | None = None, ann_threshold: int = 200_000,
                progress: Progress | None = None) -> tuple[IndexData, dict]:
    """Build everything a version holds. `progress(fraction, message)` is called along the way."""
    say = progress or (lambda f, m: None)
    t0 = time.perf_counter()
    sentences, chunks = [], []
    for doc in documents:
        sents = chunking.sentences(doc)
        chunks += chunking.windows(doc, sents, CHUNKING["window_radius"], first_id=len(sentences))
        sentences += sents
    paragraphs = [(d.id, p) for d in documents for p in d.paragraphs]
    say(0.05, f"{len(documents)} document(s), {len(paragraphs)} paragraphs, {len(sentences)} sentences")

    s_texts, c_texts, p_texts = [s.text for s in sentences], [c.text for c in chunks], [p.text for _, p in paragraphs]
    # one-sentence windows or paragraphs (issue 16: 100,000 one-line paragraphs) share the sentences' array
    same_c, same_p = c_texts == s_texts, p_texts == s_texts
    texts = s_texts + ([] if same_c else c_texts) + ([] if same_p else p_texts)
    n_texts = len(s_texts) + len(c_texts) + len(p_texts)
    cache, piece_cache = _vector_cache(previous, model_name)
    ns, nc = len(sentences), len(chunks)
    vectors, encoded = _encode_with_cache(texts, encoder, cache, say, piece_cache, ns)
    dim = int(vectors.shape[1]) if len(vectors) else int(getattr(encoder, "dim", 0))
    del cache  # memory stays proportional: each array is held once (issue 16)
    piece_ids, piece_vectors, piece_offsets = pack_pieces([text_key(s.text) for s in sentences], piece_cache, dim)
    sentence_vectors, rest = vectors[:ns], vectors[ns:]
    chunk_vectors, rest = (sentence_vectors, rest) if same_c else (rest[:nc], rest[nc:])
    paragraph_vectors = sentence_vectors if same_p else rest

    say(0.92, "building the lexical index")
    bm25_s = BM25.build([s.text for s in sentences])
    bm25_p = BM25.build([p.text for _, p in paragraphs])
    faiss_index = make_faiss_index(chunk_vectors, ann_threshold)
    version = new_version_id()
    data = IndexData(version, {}, tuple(documents), tuple(sentences), tuple(chunks),
                     tuple((d, p.number) for d, p in paragraphs), sentence_vectors, chunk_vectors,
                     paragraph_vectors, faiss_index, bm25_s, bm25_p, piece_ids, piece_vectors, piece_offsets)
    manifest = {
        "model": model_name, "dim": int(vectors.shape[1]), "chunking": CHUNKING, "sources": sources,
        "documents": [{"id": d.id, "title": d.title, "source": d.source, "sha256": d.sha256,
                       "paragraphs": len(d.paragraphs), "sections": len(d.sections),
                       "warnings": list(d.warnings)} for d in documents],
        "counts": {"documents": len(documents), "paragraphs": len(paragraphs), "sentences": ns, "chunks": nc,
                   "encoded": encoded, "reused": n_texts - encoded},
        "ann": "hnsw" if nc > ann_threshold else "flat",
        "libraries": _library_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": round(time.perf_counter() - t0, 3),
    }
    return data, manifest


def pack_pieces(keys: list[str], pieces: dict, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`tokens.pack` of `pieces[key]` for each key, filling preallocated arrays and dropping each
    entry of `pieces` once copied for its last key, so the pieces are held once, not twice."""
    left = Counter(keys)
    sizes = [max(1, len(pieces[k].ids)) if k in pieces else 1 for k in keys]  # no pieces: one zero row
    offsets = np.zeros(len(keys) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(sizes)
    ids, vectors = np.zeros(int(offsets[-1]), np.int32), np.zeros((int(offsets[-1]), dim), np.float16)
    for i, k in enumerate(keys):
        p = pieces.get(k)
        left[k] -= 1
        if not left[k]:
            pieces.pop(k, None)
        if p is not None and len(p.ids):
            ids[offsets[i]:offsets[i + 1]] = p.ids
            vectors[offsets[i]:offsets[i + 1]] = p.vectors
    return ids, vectors, offsets


def make_faiss_index(vectors: np.ndarray, ann_threshold: int):
    """Exact inner-product search up to `ann_threshold` rows, HNSW above it."""
    import faiss

    dim = vectors.shape[1] if vectors.ndim == 2 and vectors.shape[1] else 1
    if len(vectors) > ann_threshold:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 200  # with efSearch 1024: recall@10 0.97 at 10^6 (bench/README.md)
        index.hnsw.efSearch = 1024
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _vector_cache(previous: IndexData | None, model_name: str) -> tuple[dict[str, np.ndarray], dict]:
    """Vectors (and sentences' word pieces) of the served version by text hash, for reuse."""
    if previous is None or previous.manifest.get("model") != model_name:
        return {}, {}
    cache, pieces = {}, {}
    paragraphs = [p for d in previous.documents for p in d.paragraphs]
    for items, vecs in ((previous.sentences, previous.sentence_vectors), (previous.chunks, previous.chunk_vectors),
                        (paragraphs, previous.paragraph_vectors)):
        for item, vec in zip(items, vecs):
            cache[text_key(item.text)] = vec
    for i, s in enumerate(previous.sentences):
        pieces[text_key(s.text)] = tokens.unpack(previous.piece_ids, previous.piece_vectors, previous.piece_offsets, i)
    return cache, pieces


def _encode_with_cache(texts: list[str], encoder: Encoder, cache: dict, say: Progress, pieces: dict,
                       with_pieces: int) -> tuple[np.ndarray, int]:
    """Vectors for `texts`, encoding only what `cache` lacks; the first `with_pieces` texts (the
    sentences) also get their word pieces into `pieces`, from the same model call."""
    keys = [text_key(t) for t in texts]
    want = {keys[i] for i in range(with_pieces)}
    todo = sorted({k: t for k, t in zip(keys, texts) if k not in cache or (k in want and k not in pieces)}.items(),
                  key=lambda kv: len(kv[1]))
    step = 128
    for i in range(0, len(todo), step):
        part = todo[i:i + step]
        say(0.1 + 0.8 * i / max(1, len(todo)), f"embedding {i + len(part)}/{len(todo)} new passages")
        both = [kt for kt in part if kt[0] in want]
        plain = [kt for kt in part if kt[0] not in want]
        if both:
            vecs, parts = encoder.encode_pieces([t for _, t in both])
            for (k, _), vec, p in zip(both, vecs, parts):  # pieces kept as the index stores them (float16)
                cache[k], pieces[k] = vec, tokens.Pieces(p.ids, np.asarray(p.vectors, dtype=np.float16))
        if plain:
            for (k, _), vec in zip(plain, encoder.encode([t for _, t in plain])):
                cache[k] = vec
    dim = len(next(iter(cache.values()))) if cache else getattr(encoder, "dim", 0)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, k in enumerate(keys):
        out[i] = cache[k]
    return out, len(todo)


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("sentence-transformers", "torch", "faiss-cpu", "bm25s", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


# --- what an index is built from -----------------------------------------------------------

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


def read_documents(paths: list[Path], max_bytes: int, excluded: set[str] = frozenset()
                   ) -> tuple[list[Document], dict[str, str], dict[str, dict]]:
    """Read files and folders (absolute paths) -> documents, {file: sha256}, skipped files.

    A file named explicitly must be a readable document (else InputError, naming it); a file
    found by scanning a folder that cannot be read is skipped, logged and reported instead, so
    one bad file in a folder does not stop the others from being indexed. When files were
    found but every one was skipped, InputError names each and why (e.g. over the size limit).
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
