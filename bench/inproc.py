"""In-process figures: answer latency next to its floor, batching under concurrent askers,
build throughput next to raw encode throughput, and which heavy modules `import qa` loads."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import corpus
from .stats import median, pct, run_together, timed

HEAVY = ("torch", "sentence_transformers", "transformers", "gradio", "faiss", "bm25s")


def floor_fn(engine):
    """The least work one question needs: the encoder's own model call for it (no cache, no
    word pieces) plus the index search as answering does it (FAISS top-10 over the windows and
    every sentence's per-document BM25 score, `Snapshot.sentence_bm25`), nothing else."""
    from qa.lexical import tokenize
    from qa.retrieval import search_faiss

    snap = engine.snapshot()
    data = snap.data
    bm25 = snap.sentence_bm25
    enc = engine.encoder
    enc.load()

    def floor(q: str) -> None:
        v, _ = enc._encode_now([q])
        search_faiss(data.faiss_index, v[0], 10)
        bm25.share(tokenize(q))

    return floor


def torch_encode_fn():
    """sentence-transformers' encode of one question (the torch reference, QA_ENCODER=torch):
    the old floor, measured beside the ONNX encoder's answers."""
    from qa.embedding import SentenceEncoder

    model = SentenceEncoder().load()

    def encode(q: str) -> None:
        model.encode([q], convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)

    return encode


def answer_latency(engine, pool: corpus.Pool, n: int = 150, warmup: int = 10, followups: int = 30,
                   torch_floor: bool = True) -> dict:
    """engine.ask p50/p95 next to its floor (the encoder's encode + search) and, when the engine
    runs on ONNX, next to torch's encode of the same question; timed in rotating order on the
    same questions."""
    floor = floor_fn(engine)
    torch_enc = torch_encode_fn() if torch_floor and getattr(engine.encoder, "backend", "") == "onnx" else None
    for q in pool.take(warmup):
        engine.ask(q)
        floor(q)
        if torch_enc:
            torch_enc(q)
    asks, floors, torches = [], [], []
    cpu: dict = {engine.ask: [], floor: []}  # this thread's CPU time too: what other processes' load hides less
    for i, q in enumerate(pool.take(n)):
        jobs = [(asks, engine.ask), (floors, floor)] + ([(torches, torch_enc)] if torch_enc else [])
        k = i % len(jobs)
        for dest, fn in jobs[k:] + jobs[:k]:
            c = time.thread_time()
            dest.append(timed(fn, q)[0])
            if fn in cpu:
                cpu[fn].append(time.thread_time() - c)
    # Follow-ups: the first question is asked (untimed), then "And <another question>?" with it
    # as history -- the path that also looks at the previous question.
    fu, fu_floor = [], []
    for _ in range(followups):
        first, other = pool.take(2)
        follow = "And " + other[0].lower() + other[1:]
        engine.ask(first)
        fu_floor.append(timed(floor, follow)[0])
        fu.append(timed(engine.ask, follow, [first])[0])
    out = {"backend": getattr(engine.encoder, "backend", "?"), "ask": pct(asks), "floor": pct(floors),
           "ratio_p50": round(median(asks) / median(floors), 3),
           "cpu_ms_p50": round(1000 * median(cpu[engine.ask]), 3), "floor_cpu_ms_p50": round(1000 * median(cpu[floor]), 3),
           "cpu_ratio_p50": round(median(cpu[engine.ask]) / median(cpu[floor]), 3),
           "followup": pct(fu), "followup_floor": pct(fu_floor),
           "followup_ratio_p50": round(median(fu) / median(fu_floor), 3) if fu else None,
           "encoder": dict(getattr(engine.encoder, "stats", {}))}
    if torches:
        out.update(torch_encode=pct(torches), ratio_to_torch_p50=round(median(asks) / median(torches), 3))
    return out


def concurrency(engine, pool: corpus.Pool, threads=(1, 8, 32), total: int = 96) -> dict:
    """engine.ask answers/s with N threads asking at once (the batching at work)."""
    out = {}
    enc = engine.encoder
    for n in threads:
        per = max(1, total // n)
        before = dict(getattr(enc, "stats", {}))
        lat, errors, wall = run_together([(engine.ask, pool.take(per)) for _ in range(n)])
        after = dict(getattr(enc, "stats", {}))
        batches = after.get("batches", 0) - before.get("batches", 0)
        calls = after.get("batched_calls", 0) - before.get("batched_calls", 0)
        out[str(n)] = {"threads": n, "answers": len(lat), "errors": len(errors), "seconds": round(wall, 3),
                       "answers_per_s": round(len(lat) / wall, 1), "latency": pct(lat),
                       "model_calls": batches, "mean_batch": round(calls / batches, 2) if batches else None}
    one = out[str(threads[0])]["answers_per_s"]
    for v in out.values():
        v["speedup"] = round(v["answers_per_s"] / one, 2)
    return out


def build_throughput(workdir: Path, engine, reps: int = 2, sources: list[Path] | None = None) -> dict:
    """`Engine.build` of the bench corpus into fresh folders vs the encoder's model calls on
    exactly the texts that build embeds (same warm model, alternating), in texts/s and chunks/s."""
    from qa.config import Settings
    from qa.engine import Engine

    data = engine.snapshot().data
    # what a build embeds: sentences and windows (paragraphs are derived, index format 3), each distinct text once
    texts = list(dict.fromkeys([s.text for s in data.sentences] + [c.text for c in data.chunks]))
    enc = engine.encoder
    enc.load()
    builds, raws, report = [], [], [None]

    def build(r):
        folder = workdir / f"build-{r}"
        shutil.rmtree(folder, ignore_errors=True)
        b = Engine(Settings(index_dir=folder, source_dir=corpus.ROOT / "source"), encoder=engine.encoder)
        t, rep = timed(b.library.build, sources or corpus.sources())
        shutil.rmtree(folder, ignore_errors=True)
        report[0] = rep
        builds.append(t)

    def raw(r):
        raws.append(timed(enc._encode_now, texts)[0])  # the encoder's own model calls, no cache

    for r in range(reps):
        for step in (build, raw) if r % 2 == 0 else (raw, build):
            step(r)
    n_texts, n_chunks = len(texts), len(data.chunks)
    b, r = median(builds), median(raws)
    return {"texts": n_texts, "chunks": n_chunks, "encoded_by_build": report[0].encoded,
            "build_s": round(b, 3), "raw_encode_s": round(r, 3),
            "build_texts_per_s": round(n_texts / b, 1), "raw_texts_per_s": round(n_texts / r, 1),
            "build_chunks_per_s": round(n_chunks / b, 1), "raw_chunks_per_s": round(n_chunks / r, 1),
            "ratio": round(r / b, 3), "builds_s": [round(x, 3) for x in builds], "raws_s": [round(x, 3) for x in raws]}


_PROBE = """
import json, sys, time
t = time.perf_counter()
{stmt}
sys.stderr.write("\\n@@" + json.dumps({{"seconds": time.perf_counter() - t,
                  "loaded": sorted(m for m in {heavy!r} if m in sys.modules)}}) + "\\n")
"""


def import_probe(stmt: str) -> dict:
    """Run `stmt` in a fresh interpreter; which heavy modules did it load, and how long did it take?"""
    code = _PROBE.format(stmt=stmt, heavy=HEAVY)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=corpus.ROOT, timeout=120,
                       check=False)
    line = [x for x in p.stderr.splitlines() if x.startswith("@@")]
    if not line:
        raise RuntimeError(f"probe failed: {p.stderr[-2000:]}")
    info = json.loads(line[-1][2:])
    return {"statement": stmt, "seconds": round(info["seconds"], 3), "heavy_modules": info["loaded"]}


def imports() -> dict:
    help_stmt = "from qa.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    return {"import qa": import_probe("import qa"), "qa --help": import_probe(help_stmt),
            "import qa.engine": import_probe("import qa.engine")}
