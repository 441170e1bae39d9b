"""Documents -> an in-memory `IndexData` (sentences, windows, vectors, BM25) plus its manifest.

Embeddings are cached by content: texts whose vectors the previous version already holds
(same model) are not encoded again, so re-adding a document with one edited paragraph only
encodes that paragraph's sentences.
"""

from __future__ import annotations

import hashlib
import platform
import time
from typing import Callable

import numpy as np

from . import chunking
from .document import Document
from .embedding import Encoder
from .lexical import BM25
from .store import IndexData, new_version_id

CHUNKING = {"unit": "sentence", "window_radius": 1, "splitter": 1}
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

    texts = [s.text for s in sentences] + [c.text for c in chunks] + [p.text for _, p in paragraphs]
    cache = _vector_cache(previous, model_name)
    vectors, encoded = _encode_with_cache(texts, encoder, cache, say)
    ns, nc = len(sentences), len(chunks)
    sentence_vectors, chunk_vectors, paragraph_vectors = vectors[:ns], vectors[ns:ns + nc], vectors[ns + nc:]

    say(0.92, "building the lexical index")
    bm25_s = BM25.build([s.text for s in sentences])
    bm25_p = BM25.build([p.text for _, p in paragraphs])
    faiss_index = make_faiss_index(chunk_vectors, ann_threshold)
    version = new_version_id()
    data = IndexData(version, {}, tuple(documents), tuple(sentences), tuple(chunks),
                     tuple((d, p.number) for d, p in paragraphs), sentence_vectors, chunk_vectors,
                     paragraph_vectors, faiss_index, bm25_s, bm25_p)
    manifest = {
        "model": model_name, "dim": int(vectors.shape[1]), "chunking": CHUNKING, "sources": sources,
        "documents": [{"id": d.id, "title": d.title, "source": d.source, "sha256": d.sha256,
                       "paragraphs": len(d.paragraphs), "sections": len(d.sections),
                       "warnings": list(d.warnings)} for d in documents],
        "counts": {"documents": len(documents), "paragraphs": len(paragraphs), "sentences": ns, "chunks": nc,
                   "encoded": encoded, "reused": len(texts) - encoded},
        "ann": "hnsw" if nc > ann_threshold else "flat",
        "libraries": _library_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": round(time.perf_counter() - t0, 3),
    }
    return data, manifest


def make_faiss_index(vectors: np.ndarray, ann_threshold: int):
    """Exact inner-product search up to `ann_threshold` rows, HNSW above it."""
    import faiss

    dim = vectors.shape[1] if vectors.ndim == 2 and vectors.shape[1] else 1
    if len(vectors) > ann_threshold:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 128
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _vector_cache(previous: IndexData | None, model_name: str) -> dict[str, np.ndarray]:
    if previous is None or previous.manifest.get("model") != model_name:
        return {}
    cache = {}
    paragraphs = [p for d in previous.documents for p in d.paragraphs]
    for items, vecs in ((previous.sentences, previous.sentence_vectors), (previous.chunks, previous.chunk_vectors),
                        (paragraphs, previous.paragraph_vectors)):
        for item, vec in zip(items, vecs):
            cache[text_key(item.text)] = vec
    return cache


def _encode_with_cache(texts: list[str], encoder: Encoder, cache: dict, say: Progress) -> tuple[np.ndarray, int]:
    keys = [text_key(t) for t in texts]
    todo = sorted({k: t for k, t in zip(keys, texts) if k not in cache}.items(), key=lambda kv: len(kv[1]))
    step = 128
    for i in range(0, len(todo), step):
        part = todo[i:i + step]
        say(0.1 + 0.8 * i / max(1, len(todo)), f"embedding {i + len(part)}/{len(todo)} new passages")
        for (k, _), vec in zip(part, encoder.encode([t for _, t in part])):
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
