"""`python -m bench`: run every section, print the table, write bench/results/latest.json.

    python -m bench                  # everything (first run builds the 10^6 HNSW index: minutes)
    python -m bench --quick          # smaller samples, scale up to 10^5 (a couple of minutes)
    python -m bench --only answer,http
    python -m bench --only book      # a generated 1 MB book: qa build time, peak memory, index size
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import corpus, report
from .stats import loadavg, maxrss_mb

SECTIONS = ("imports", "answer", "concurrency", "build", "cold", "serve", "http", "scale", "book")
RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller samples; scale only up to 10^5")
    ap.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    ap.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    ap.add_argument("--sizes", help="scale sizes, e.g. 10000,100000,1000000")
    args = ap.parse_args(argv)
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    unknown = only - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    q = args.quick
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    results: dict = {"meta": meta(q)}
    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))

    def step(name: str, fn):
        t = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        out = fn()
        print(f"[bench] {name} done in {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
        return out

    try:
        from . import inproc

        if "imports" in only:
            results["imports"] = step("imports", inproc.imports)
        engine = None
        if only & {"answer", "concurrency", "build", "cold", "serve", "http", "scale"}:
            _, engine, rep = step("building the bench index", lambda: corpus.build(work / "index"))
            results["corpus"] = {k: getattr(rep, k, None) for k in ("documents", "paragraphs", "sentences", "chunks")}
        pool = corpus.Pool(corpus.questions())
        if "answer" in only:
            results["answer"] = step("answer latency", lambda: inproc.answer_latency(
                engine, pool, n=40 if q else 150, followups=10 if q else 30))
        if "concurrency" in only:
            results["concurrency"] = step("in-process concurrency", lambda: inproc.concurrency(
                engine, pool, threads=(1, 8, 32), total=32 if q else 96))
        if "build" in only:
            results["build"] = step("build throughput", lambda: inproc.build_throughput(work, engine, reps=1 if q else 3))
        results["memory"] = {"bench_mb": maxrss_mb()}
        if "cold" in only:
            from .coldstart import cold_start

            results["cold_start"] = step("cold start", lambda: cold_start(work / "index", corpus.Pool(corpus.questions()),
                                                                        runs=2 if q else 5))
            results["memory"].update(qa_ask_mb=results["cold_start"]["qa_ask_maxrss_mb"],
                                     floor_mb=results["cold_start"]["floor_maxrss_mb"])
        if "serve" in only:
            from .coldstart import serve_start

            results["serve"] = step("qa serve to first answer", lambda: serve_start(
                work / "index", corpus.Pool(corpus.questions()), runs=2 if q else 5))
        if "http" in only:
            from .http import http_bench

            levels = ((1, 15), (10, 4), (50, 2)) if q else ((1, 40), (10, 10), (50, 6))
            results["http"] = step("HTTP round trip", lambda: http_bench(work / "index", corpus.Pool(corpus.questions()),
                                                                        RESULTS / "server.log", levels))
            results["memory"]["app_mb"] = results["http"].get("server_peak_rss_mb")
        if "scale" in only:
            from . import scale

            sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else (
                [10_000, 100_000] if q else [10_000, 100_000, 1_000_000])
            results["scale"] = step("scale", lambda: scale.run(engine, sizes, cache=RESULTS / "cache"))
            results["memory"]["bench_with_scale_mb"] = maxrss_mb()
        if "book" in only:
            from . import book

            results["book"] = step("book-sized document", lambda: book.run(300_000 if q else 1_000_000))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["meta"]["loadavg_after"] = loadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", "utf-8")
    print(report.table(results))
    print(f"\n(written to {args.out}; load average before {results['meta']['loadavg_before']}, "
          f"after {results['meta']['loadavg_after']})")
    return 0


def meta(quick: bool) -> dict:
    from qa.config import Settings

    s = Settings.from_env()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False,
                                cwd=corpus.ROOT).stdout.strip()
    except OSError:
        commit = ""
    return {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": commit, "quick": quick,
            "python": platform.python_version(), "cpus": os.cpu_count(), "loadavg_before": loadavg(),
            "concurrency": s.concurrency, "batch_wait_ms": s.batch_wait_ms, "ann_threshold": s.ann_threshold}


if __name__ == "__main__":
    sys.exit(main())
