"""Search cost as the index grows: exact (FAISS flat, and the numpy scan `score()` does) vs
HNSW at 10^4, 10^5 and 10^6 vectors of dim 384, with HNSW recall@10 against exact search.

Two kinds of vectors:

* `embedding-like`: Gaussian with the mean and covariance of real all-MiniLM-L6-v2 vectors of
  the bench corpus (so the same anisotropy and spectrum as the model's output), queried with
  the real question embeddings. This is what the efSearch choice is made on.
* `uniform`: uniform random unit vectors and queries. Every point is about equally far from
  every other (top-1 cosine ~0.2), the worst case for any graph index; shown to make that
  point, with HNSW only up to 10^5 (its build is slow and its recall poor).

The HNSW index is the one `build.make_faiss_index` makes (its M, efConstruction, efSearch);
efSearch is also swept to show the recall/latency trade-off. HNSW indexes are cached in
bench/results/cache (keyed by data, size and parameters), so only the first run pays for
building the 10^6 graph.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from .stats import median

DIM = 384
EF_SEARCH = (16, 32, 64, 128, 256, 512)


class EmbeddingLike:
    """Samples from N(mean, cov) of real vectors, L2-normalised."""

    name = "embedding-like"

    def __init__(self, real: np.ndarray, seed: int = 0):
        real = np.asarray(real, dtype=np.float64)
        self.mean = real.mean(0)
        w, v = np.linalg.eigh(np.cov((real - self.mean).T))
        self.scale = (v * np.sqrt(np.clip(w, 0, None))).T.astype(np.float32)  # z @ scale ~ N(0, cov)
        self.mean = self.mean.astype(np.float32)
        self.seed = seed
        self.key = hashlib.sha1(np.round(real, 4).tobytes()).hexdigest()[:10] + f"-s{seed}"

    def sample(self, n: int) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        out = np.empty((n, DIM), dtype=np.float32)
        for i in range(0, n, 100_000):
            m = min(100_000, n - i)
            x = rng.standard_normal((m, DIM), dtype=np.float32) @ self.scale + self.mean
            out[i:i + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out


class Uniform:
    name = "uniform"

    def __init__(self, seed: int = 0):
        self.seed, self.key = seed, f"uniform-s{seed}"

    def sample(self, n: int, seed_offset: int = 0) -> np.ndarray:
        rng = np.random.default_rng(self.seed + seed_offset)
        out = np.empty((n, DIM), dtype=np.float32)
        for i in range(0, n, 100_000):
            m = min(100_000, n - i)
            x = rng.standard_normal((m, DIM), dtype=np.float32)
            out[i:i + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out


def one_query_ms(fn, queries: np.ndarray, limit: int) -> float:
    """Median milliseconds of fn(one query) -- questions arrive one at a time."""
    times = []
    for q in queries[:limit]:
        t = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t)
    return round(median(times) * 1000, 4)


def recall_at(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth)]))


def production_params() -> dict:
    """M, efConstruction, efSearch of the HNSW index `build.make_faiss_index` makes."""
    from qa.build import make_faiss_index

    index = make_faiss_index(np.zeros((2, DIM), dtype=np.float32), ann_threshold=0)
    h = index.hnsw  # owned by `index`: keep it alive while reading
    return {"M": int(h.nb_neighbors(1)), "ef_construction": int(h.efConstruction), "ef_search": int(h.efSearch)}


def hnsw_index(x: np.ndarray, params: dict, cache: Path | None, key: str):
    """`build.make_faiss_index` forced to HNSW (cached on disk by data, size and parameters);
    returns (index, build seconds or None when it came from the cache)."""
    import faiss

    from qa.build import make_faiss_index

    name = f"hnsw-{key}-n{len(x)}-M{params['M']}-efc{params['ef_construction']}.faiss"
    path = cache / name if cache else None
    if path and path.exists():
        index = faiss.read_index(str(path))
        if index.ntotal == len(x):
            index.hnsw.efSearch = params["ef_search"]
            return index, None
    t = time.perf_counter()
    index = make_faiss_index(x, ann_threshold=0)
    seconds = time.perf_counter() - t
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        faiss.write_index(index, str(path.with_suffix(".tmp")))
        path.with_suffix(".tmp").replace(path)
    return index, seconds


def measure(data, queries: np.ndarray, n: int, hnsw: bool, ef_search=EF_SEARCH, k: int = 10,
            cache: Path | None = None, latency_queries: int = 100, target: float = 0.95) -> dict:
    import faiss

    x = data.sample(n)
    flat = faiss.IndexFlatIP(DIM)
    flat.add(x)
    q1 = queries.reshape(len(queries), 1, DIM)
    few = latency_queries // (4 if n >= 10**6 else 1)
    out = {"n": n, "flat_p50_ms": one_query_ms(lambda q: flat.search(q, k), q1, few),
           "numpy_p50_ms": one_query_ms(lambda q: np.argpartition(-(x @ q[0]), k)[:k], q1, few)}
    _, truth = flat.search(queries, k)
    flat.reset()  # free its copy of the vectors before HNSW
    if not hnsw:
        out["hnsw_note"] = "not built at this size (see module docstring)"
        return out
    params = production_params()
    index, build_s = hnsw_index(x, params, cache, data.key)
    out.update(params, hnsw_build_s=None if build_s is None else round(build_s, 1), hnsw={})
    for ef in sorted(set(ef_search) | {params["ef_search"]}):
        index.hnsw.efSearch = ef
        _, found = index.search(queries, k)
        out["hnsw"][str(ef)] = {"ef_search": ef, "recall": round(recall_at(found, truth, k), 4),
                                "p50_ms": one_query_ms(lambda q: index.search(q, k), q1, latency_queries)}
    out["hnsw_as_built"] = out["hnsw"][str(params["ef_search"])]
    ok = [v for v in out["hnsw"].values() if v["recall"] >= target]
    out["hnsw_least_ef"] = min(ok, key=lambda v: v["ef_search"]) if ok else None
    return out


def real_vectors(engine) -> tuple[np.ndarray, np.ndarray]:
    """(passage vectors, question vectors) of the bench corpus, from the real model."""
    from . import corpus

    d = engine.snapshot().data
    passages = np.vstack([d.sentence_vectors, d.chunk_vectors, d.paragraph_vectors])
    questions, _ = engine.encoder._encode_now(corpus.questions())
    return passages, np.ascontiguousarray(questions, dtype=np.float32)


def run(engine, sizes=(10_000, 100_000, 1_000_000), cache: Path | None = None, n_queries: int = 200,
        uniform_hnsw_max: int = 100_000) -> dict:
    import faiss

    passages, questions = real_vectors(engine)
    emb = EmbeddingLike(np.vstack([passages, questions]))
    rng = np.random.default_rng(1)
    real_q = questions[rng.permutation(len(questions))[:n_queries]]
    uni = Uniform()
    uni_q = uni.sample(n_queries, seed_offset=10_000)
    out = {"dim": DIM, "k": 10, "queries": n_queries, "faiss_threads": faiss.omp_get_max_threads(),
           "hnsw_params": production_params(), "datasets": {}}
    for data, queries, hnsw_max in ((emb, real_q, max(sizes)), (uni, uni_q, uniform_hnsw_max)):
        d = out["datasets"][data.name] = {"sizes": {}}
        for n in sizes:
            d["sizes"][str(n)] = measure(data, queries, n, n <= hnsw_max, cache=cache)
        # growth: cost at the largest size over the smallest
        lo, hi = d["sizes"][str(min(sizes))], d["sizes"][str(max(sizes))]
        d["growth"] = {"size_ratio": max(sizes) // min(sizes),
                       "flat": round(hi["flat_p50_ms"] / lo["flat_p50_ms"], 1),
                       "numpy": round(hi["numpy_p50_ms"] / lo["numpy_p50_ms"], 1)}
        if hi.get("hnsw_as_built") and lo.get("hnsw_as_built"):
            d["growth"]["hnsw"] = round(hi["hnsw_as_built"]["p50_ms"] / lo["hnsw_as_built"]["p50_ms"], 1)
    return out
