"""Cold start: a fresh process to its first printed answer (`qa ask` on a prebuilt index) next
to the floor -- a fresh process that imports sentence_transformers, loads the model and
encodes one question -- alternating runs in the same session."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import corpus
from .stats import median

FLOOR = """
import sys
import sentence_transformers
from qa.embedding import resolve_model
m = sentence_transformers.SentenceTransformer(resolve_model(""), device="cpu")
m.encode([sys.argv[1]], convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
print("encoded", flush=True)
"""


def run_to_first_line(cmd: list[str], env: dict) -> dict:
    """Start `cmd`; seconds to its first stdout line and to its exit, its peak RSS (MB)."""
    with tempfile.TemporaryFile("w+") as errf:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, env=env, cwd=corpus.ROOT, text=True)
        first = p.stdout.readline()
        t_first = time.perf_counter() - t0
        rest = p.stdout.read()
        _, status, usage = os.wait4(p.pid, 0)
        t_exit = time.perf_counter() - t0
        errf.seek(0)
        err = errf.read()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0 or not first.strip():
        raise RuntimeError(f"{cmd[:4]} failed ({p.returncode}): {err[-1500:]}")
    return {"first_answer_s": t_first, "exit_s": t_exit, "maxrss_mb": round(usage.ru_maxrss / 1024, 1),
            "output": (first + rest)[:200]}


def cold_start(index_dir: Path, pool: corpus.Pool, runs: int = 5) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1")
    env.pop("QA_INDEX_DIR", None)
    asks, floors = [], []
    for i in range(runs):
        q = pool.take(1)[0]
        jobs = [(asks, [sys.executable, "-m", "qa.cli", "ask", "--index", str(index_dir), q]),
                (floors, [sys.executable, "-c", FLOOR, q])]
        for dest, cmd in jobs if i % 2 else jobs[::-1]:
            dest.append(run_to_first_line(cmd, env))
    a = median([r["first_answer_s"] for r in asks])
    f = median([r["first_answer_s"] for r in floors])
    return {"runs": runs, "qa_ask_s": round(a, 3), "floor_s": round(f, 3), "ratio": round(a / f, 3),
            "qa_ask_exit_s": round(median([r["exit_s"] for r in asks]), 3),
            "floor_exit_s": round(median([r["exit_s"] for r in floors]), 3),
            "qa_ask_all_s": [round(r["first_answer_s"], 3) for r in asks],
            "floor_all_s": [round(r["first_answer_s"], 3) for r in floors],
            "qa_ask_maxrss_mb": max(r["maxrss_mb"] for r in asks),
            "floor_maxrss_mb": max(r["maxrss_mb"] for r in floors)}
