"""Documents -> an in-memory `IndexData` (sentences, windows, vectors, word pieces) plus its manifest.

Sentences and windows are encoded, paragraphs' vectors derived from their sentences' (`derive`).
Embeddings are cached by content: texts whose vectors the previous version already holds
(same model) are not encoded again, so re-adding a document with one edited paragraph only
encodes that paragraph's new sentences and the windows around them.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterator

import numpy as np

from . import chunking, tokens
from .document import Document
from .embedding import Encoder
from .store import IndexData, new_version_id

log = logging.getLogger("qa")

#: What a version's rows mean; a change makes every index stale (rebuilt at start, qa.library).
#: words 2: accents folded; splitter 2: caps (chunking.MAX_*); vectors: 3 = paragraphs' vectors
#: derived from their sentences' (2 was windows' too: measured in docs/scaling.md, "Book-sized
#: documents", windows are ~60% of the model's work on a book, but deriving them cost up to
#: 0.04 Hit@1, so windows are encoded)
#: Texts per model call of a build: progress (and its ETA) is reported after each, ~7 s apart on
#: the 1 MB book here. Measured on that book in the same quiet hour: 1,024 took 105 s and peaked
#: at 744 MB, 256 took 116 s and 1,081 MB (`python -m bench --only book`).
EMBED_STEP = 1024
#: ...and at most this many characters per call: a call's word pieces are float32 until packed as
#: int8 (1,536 bytes per piece), so 1,024 texts of the 2,000-character cap held ~0.4 GB at once
#: and a 5 MB line without a sentence end peaked at 1.61 GB (issue 16 asks for 1.5). A book's
#: calls stay whole (its 1,024 longest windows hold ~0.5 M characters).
EMBED_CHARS = 600_000
CHUNKING = {"unit": "sentence", "window_radius": 1, "splitter": 2, "pieces": 1, "words": 2, "vectors": 3}
Progress = Callable[[float, str], None]


def build_index(documents: list[Document], encoder: Encoder, model_name: str, sources: list[str],
                previous: IndexData | None = None, ann_threshold: int = 200_000,
                progress: Progress | None = None) -> tuple[IndexData, dict]:
    """Build everything a version holds. `progress(fraction, message)` is called along the way.

    Sentences and windows go through the model, each distinct text once (sentences with their
    word pieces); a paragraph's vector is the normalised sum of its sentences' (`derive`)."""
    say = progress or (lambda f, m: None)
    t0 = time.perf_counter()
    sentences, chunks = [], []
    for doc in documents:
        sents = chunking.sentences(doc)
        chunks += chunking.windows(doc, sents, CHUNKING["window_radius"], first_id=len(sentences))
        sentences += sents
    paragraphs = [(d.id, p) for d in documents for p in d.paragraphs]
    say(0.05, f"{len(documents)} document(s), {len(paragraphs)} paragraphs, {len(sentences)} sentences")

    ns, nc = len(sentences), len(chunks)
    s_texts = [s.text for s in sentences]
    c_texts = [c.text for c in chunks]
    same_c = c_texts == s_texts  # one-sentence windows (issue 16: 100,000 one-line paragraphs)
    cache, piece_cache = _vector_cache(previous, model_name)
    vectors, encoded = _encode_with_cache(s_texts + ([] if same_c else c_texts), encoder, cache, say, piece_cache, ns)
    del cache  # memory stays proportional: each array is held once (issue 16)
    dim = int(vectors.shape[1]) if len(vectors) else int(getattr(encoder, "dim", 0))
    # held as the index stores them (int8 codes, a scale per row): what a build serves is
    # exactly what a later load reads back
    piece_ids, piece_vectors, piece_offsets = pack_pieces([text_key(t) for t in s_texts], piece_cache, dim)
    _round_to_float16(vectors)  # in place: views of it, no copies (100,000 one-line paragraphs)
    sentence_vectors = vectors[:ns]
    chunk_vectors = sentence_vectors if same_c else vectors[ns:]  # one-sentence windows share the sentences' array
    paragraph_vectors = derive(sentence_vectors, *paragraph_rows(sentences, [(d, p.number) for d, p in paragraphs]))
    if paragraph_vectors is not sentence_vectors:  # one-sentence paragraphs share the sentences' array
        _round_to_float16(paragraph_vectors)  # as stored

    # a flat index would only copy the window vectors (100,000 one-line paragraphs: 154 MB): none
    # is built or stored; a loaded version searches its window vectors (versionfiles.FlatIP)
    faiss_index = make_faiss_index(chunk_vectors, ann_threshold) if nc > ann_threshold else None
    version = new_version_id()
    data = IndexData(version, {}, tuple(documents), tuple(sentences), tuple(chunks),
                     tuple((d, p.number) for d, p in paragraphs), sentence_vectors, chunk_vectors,
                     paragraph_vectors, faiss_index, piece_ids, piece_vectors, piece_offsets)
    reused = ns + (0 if same_c else nc) - encoded
    backend = getattr(encoder, "backend", "custom")
    return data, _manifest(documents, model_name, backend, dim, sources, len(paragraphs), ns, nc, encoded,
                           reused, ann_threshold, time.perf_counter() - t0)


def _manifest(documents: list[Document], model_name: str, backend: str, dim: int, sources: list[str],
              paragraphs: int, ns: int, nc: int, encoded: int, reused: int, ann_threshold: int, seconds: float) -> dict:
    """What a version records about itself besides its files' checksums (store.write_version adds those)."""
    return {
        "model": model_name, "encoder": backend, "dim": dim, "chunking": CHUNKING, "sources": sources,
        "documents": [{"id": d.id, "title": d.title, "source": d.source, "sha256": d.sha256,
                       "paragraphs": len(d.paragraphs), "sections": len(d.sections),
                       "warnings": list(d.warnings)} for d in documents],
        "counts": {"documents": len(documents), "paragraphs": paragraphs, "sentences": ns, "chunks": nc,
                   "encoded": encoded, "reused": reused},
        "ann": "hnsw" if nc > ann_threshold else "flat",
        "libraries": _library_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": round(seconds, 3),
    }


def derive(vectors: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Row j = the L2-normalised sum of `vectors[lo[j]:hi[j]]` (a zero row when that is empty):
    a window's or a paragraph's vector from its sentences'. O(rows x dim), overlapping spans
    included (prefix sums).

    >>> derive(np.array([[1, 0], [0, 1], [0, 1]], np.float32), np.array([0, 1, 0]), np.array([2, 3, 0])).astype(float).round(3).tolist()
    [[0.707, 0.707], [0.0, 1.0], [0.0, 0.0]]
    """
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    if len(lo) == len(vectors) and np.array_equal(lo, np.arange(len(lo))) and np.array_equal(hi, lo + 1):
        return vectors  # one sentence each: the sentences' own (unit) vectors, not a copy
    if not len(lo):
        return np.zeros((0, dim), np.float32)
    csum = np.zeros((len(vectors) + 1, dim), np.float64)
    np.cumsum(vectors, axis=0, dtype=np.float64, out=csum[1:])
    out = (csum[hi] - csum[lo]).astype(np.float32)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def _round_to_float16(vectors: np.ndarray, block: int = 8192) -> None:
    """Round float32 vectors to float16 precision in place, a block at a time."""
    for lo in range(0, len(vectors), block):
        vectors[lo:lo + block] = vectors[lo:lo + block].astype(np.float16)


def paragraph_rows(sentences: list, keys: list[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Each paragraph's sentence rows [lo, hi) (sentences are in paragraph order; a paragraph
    without sentences gets an empty span, so a zero vector)."""
    spans: dict[tuple[str, int], list[int]] = {}
    for i, s in enumerate(sentences):
        span = spans.setdefault((s.doc, s.para), [i, i])
        span[1] = i + 1
    rows = [spans.get(k, (0, 0)) for k in keys]
    return np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.int64)


def pack_pieces(keys: list[str], pieces: dict, dim: int) -> tuple[np.ndarray, tokens.PieceCodes, np.ndarray]:
    """The pieces of `pieces[key]` for each key packed as `tokens.pack` lays them out (ids,
    vectors, offsets; a key without pieces gets one zero row), the vectors as int8 codes with a
    scale per row (`tokens.PieceCodes`, what the index stores). Fills preallocated arrays and
    drops each entry of `pieces` once copied for its last key, so the pieces are held once, not
    twice. An entry is a `tokens.Pieces` or (ids, int8 codes, scales) (`tokens.quantize`)."""
    left = Counter(keys)
    sizes = [max(1, len(_ids(pieces[k]))) if k in pieces else 1 for k in keys]  # no pieces: one zero row
    offsets = np.zeros(len(keys) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(sizes)
    total = int(offsets[-1])
    ids, codes, scales = np.zeros(total, np.int32), np.zeros((total, dim), np.int8), np.zeros(total, np.float32)
    for i, k in enumerate(keys):
        p = pieces.get(k)
        left[k] -= 1
        if not left[k]:
            pieces.pop(k, None)
        if isinstance(p, tokens.Pieces):
            p = _stored(p)
        if p is not None and len(p[0]):
            lo, hi = offsets[i], offsets[i + 1]
            ids[lo:hi], codes[lo:hi], scales[lo:hi] = p
    return ids, tokens.PieceCodes(codes, scales), offsets


def _ids(p) -> np.ndarray:
    return p[0] if isinstance(p, tuple) else p.ids


def _stored(p: tokens.Pieces) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A sentence's pieces as the build keeps them until packing: ids, int8 codes, scales (what
    the index stores; a quarter of float32's memory: 100,000 one-line paragraphs, issue 16)."""
    return (np.asarray(p.ids, dtype=np.int32), *tokens.quantize(p.vectors))


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
    """Vectors of the served version's sentences (with their word pieces) and encoded windows
    by text hash, for reuse; derived vectors are not reused (they are derived again)."""
    if previous is None or previous.manifest.get("model") != model_name:
        return {}, {}
    cache, pieces = {}, {}
    if previous.manifest.get("chunking", {}).get("vectors") != 2:  # windows were encoded
        for c, vec in zip(previous.chunks, previous.chunk_vectors):
            cache[text_key(c.text)] = vec
    held = previous.piece_vectors
    for i, s in enumerate(previous.sentences):
        key = text_key(s.text)
        cache[key] = previous.sentence_vectors[i]
        lo, hi = int(previous.piece_offsets[i]), int(previous.piece_offsets[i + 1])  # the stored codes as
        keep = held.codes[lo:hi].any(axis=1)  # they are, nothing re-quantized; a zero row means "no pieces"
        pieces[key] = (previous.piece_ids[lo:hi][keep], held.codes[lo:hi][keep], held.scales[lo:hi][keep])
    return cache, pieces


def _encode_with_cache(texts: list[str], encoder: Encoder, cache: dict, say: Progress, pieces: dict,
                       with_pieces: int) -> tuple[np.ndarray, int]:
    """Vectors for `texts`, encoding only the distinct texts `cache` lacks; the first
    `with_pieces` texts (the sentences) also get their content word pieces (`tokens.content`)
    into `pieces`, from the same model call. Each vector goes straight into its rows of the
    result (no second copy of the encoded vectors is held). Returns (vectors, texts encoded)."""
    keys = [text_key(t) for t in texts]
    rows: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        rows.setdefault(k, []).append(i)
    want = set(keys[:with_pieces])
    todo = sorted({k: t for k, t in zip(keys, texts) if k not in cache or (k in want and k not in pieces)}.items(),
                  key=lambda kv: len(kv[1]))
    out: np.ndarray | None = None

    def put(k: str, vec: np.ndarray) -> None:
        nonlocal out
        if out is None:
            out = np.zeros((len(texts), len(vec)), dtype=np.float32)
        out[rows[k]] = vec

    for k in rows.keys() & cache.keys():
        put(k, cache[k])
    total = sum(len(t) for _, t in todo) or 1  # the model's time grows with text length, not count
    done = count = 0
    if todo:
        say(0.1, f"embedding {len(todo)} new passages")
    for part in _calls(todo):
        both = [kt for kt in part if kt[0] in want]
        plain = [kt for kt in part if kt[0] not in want]
        if both:
            vecs, parts = encoder.encode_pieces([t for _, t in both])
            for (k, _), vec, raw in zip(both, vecs, parts):  # pieces kept as the index stores them (int8)
                put(k, vec)
                pieces[k] = _stored(tokens.content(raw))
        if plain:
            for (k, _), vec in zip(plain, encoder.encode([t for _, t in plain])):
                put(k, vec)
        count += len(part)
        done += sum(len(t) for _, t in part)
        say(0.1 + 0.8 * done / total, f"embedding passages: {count} of {len(todo)} done")
    if out is None:
        out = np.zeros((len(texts), int(getattr(encoder, "dim", 0))), dtype=np.float32)
    return out, len(todo)


def _calls(todo: list[tuple[str, str]]) -> Iterator[list[tuple[str, str]]]:
    """`todo` (key, text) in runs of at most EMBED_STEP texts and EMBED_CHARS characters (a text
    longer than that alone).

    >>> [len(p) for p in _calls([("k", "x" * 400_000)] * 3)]
    [1, 1, 1]
    """
    part: list[tuple[str, str]] = []
    chars = 0
    for kt in todo:
        if part and (len(part) == EMBED_STEP or chars + len(kt[1]) > EMBED_CHARS):
            yield part
            part, chars = [], 0
        part.append(kt)
        chars += len(kt[1])
    if part:
        yield part


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("sentence-transformers", "torch", "onnxruntime", "tokenizers", "faiss-cpu", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
