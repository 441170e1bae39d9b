"""Documents -> an in-memory `IndexData` (sentences, windows, vectors, BM25) plus its manifest.

Embeddings are cached by content: texts whose vectors the previous version already holds
(same model) are not encoded again, so re-adding a document with one edited paragraph only
encodes that paragraph, its sentences and the windows around them.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import time
from collections import Counter
from collections.abc import Callable

import numpy as np

from . import chunking, tokens
from .document import Document
from .embedding import Encoder
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
