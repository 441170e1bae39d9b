"""Cold start: a fresh process to its first printed answer (`qa ask` on a prebuilt index, on
ONNX Runtime) next to `qa ask` with QA_ENCODER=torch and to the old floor -- a fresh process
that imports sentence_transformers, loads the model and encodes one question -- in rotating
order in the same session. The times are wall-clock from process start to the first line on
stdout, so interpreter start-up is in all three. Target (issue 13): `qa ask` median <= 1.5 s.

`serve_start`: `qa serve` from launch to its first answered `/ask`, beside a process that only
imports gradio. Target (issue 13): <= 3 s."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import corpus
from .http import stop
from .stats import median

FLOOR = """
import os, sys
for k, v in dict(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", HF_HUB_DISABLE_PROGRESS_BARS="1",
                 TRANSFORMERS_VERBOSITY="error", GOMP_SPINCOUNT="10000").items():
    os.environ.setdefault(k, v)  # the same environment qa.embedding gives the model
import sentence_transformers
from qa.embedding import resolve_model
m = sentence_transformers.SentenceTransformer(resolve_model(""), device="cpu")
m.encode([sys.argv[1]], convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
print("encoded", flush=True)
"""


# Both commands run under this wrapper, which prints the process's own peak RSS (VmHWM) to
# stderr at exit: a child's ru_maxrss would include the (large) bench process it forked from.
WRAP = """
import atexit, runpy, sys

def _peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write("\\n@@peak_kb " + line.split()[1] + "\\n")

atexit.register(_peak)
mode, sys.argv = sys.argv[1], sys.argv[1:]
if mode == "qa":
    sys.argv[0] = "qa"
    runpy.run_module("qa.cli", run_name="__main__")
else:
    exec(compile(open(mode).read(), mode, "exec"), {"__name__": "__main__"})
"""


def run_to_first_line(cmd: list[str], env: dict) -> dict:
    """Start `cmd`; seconds to its first stdout line and to its exit, its peak RSS (MB)."""
    with tempfile.TemporaryFile("w+") as errf:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, env=env, cwd=corpus.ROOT, text=True)
        first = p.stdout.readline()
        t_first = time.perf_counter() - t0
        rest = p.stdout.read()
        status = p.wait()
        t_exit = time.perf_counter() - t0
        errf.seek(0)
        err = errf.read()
    if status != 0 or not first.strip():
        raise RuntimeError(f"{cmd[:4]} failed ({status}): {err[-1500:]}")
    peak = [int(x.split()[1]) for x in err.splitlines() if x.startswith("@@peak_kb ")]
    return {"first_answer_s": t_first, "exit_s": t_exit, "maxrss_mb": round(peak[-1] / 1024, 1) if peak else None,
            "output": (first + rest)[:200]}


def cold_start(index_dir: Path, pool: corpus.Pool, runs: int = 5, torch_ask: bool = True) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1")
    env.pop("QA_INDEX_DIR", None)
    env.pop("QA_ENCODER", None)
    asks, floors, torch_asks = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        floor_py = Path(tmp) / "floor.py"
        floor_py.write_text(FLOOR, "utf-8")
        for i in range(runs):
            q = pool.take(1)[0]
            ask = [sys.executable, "-c", WRAP, "qa", "ask", "--index", str(index_dir), q]
            jobs = [(asks, ask, env), (floors, [sys.executable, "-c", WRAP, str(floor_py), q], env)]
            if torch_ask:
                jobs.append((torch_asks, ask, dict(env, QA_ENCODER="torch")))
            k = i % len(jobs)
            for dest, cmd, e in jobs[k:] + jobs[:k]:
                dest.append(run_to_first_line(cmd, e))
    a = median([r["first_answer_s"] for r in asks])
    f = median([r["first_answer_s"] for r in floors])
    extra = {}
    if torch_asks:
        t = median([r["first_answer_s"] for r in torch_asks])
        extra = {"qa_ask_torch_s": round(t, 3), "ratio_to_torch_ask": round(a / t, 3),
                 "qa_ask_torch_all_s": [round(r["first_answer_s"], 3) for r in torch_asks]}
    return {"runs": runs, "qa_ask_s": round(a, 3), "floor_s": round(f, 3), "ratio": round(a / f, 3), **extra,
            "qa_ask_exit_s": round(median([r["exit_s"] for r in asks]), 3),
            "floor_exit_s": round(median([r["exit_s"] for r in floors]), 3),
            "qa_ask_all_s": [round(r["first_answer_s"], 3) for r in asks],
            "floor_all_s": [round(r["first_answer_s"], 3) for r in floors],
            "qa_ask_maxrss_mb": max(r["maxrss_mb"] for r in asks),
            "floor_maxrss_mb": max(r["maxrss_mb"] for r in floors)}


GRADIO_FLOOR = "import gradio\nprint('imported', flush=True)\n"


def _serve_once(index_dir: Path, env: dict, question: str, timeout: float = 120) -> float:
    """Seconds from starting `qa serve` on a free port to its first answered `/ask` (the client
    connects as soon as the port accepts, as a browser or API client would)."""
    import socket

    from .http import _client, free_port, is_answer

    port = free_port()
    cmd = [sys.executable, "-m", "qa.cli", "serve", "--index", str(index_dir), "--port", str(port)]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=corpus.ROOT)
    try:
        while time.perf_counter() - t0 < timeout:
            if p.poll() is not None:
                raise RuntimeError(f"`qa serve` exited ({p.returncode}) before answering")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    pass
                if is_answer(_client(f"http://127.0.0.1:{port}/").predict(question, api_name="/ask")):
                    return time.perf_counter() - t0
            except Exception:  # noqa: BLE001, S110 -- not up yet
                time.sleep(0.02)
        raise RuntimeError(f"`qa serve` did not answer within {timeout:.0f} s")
    finally:
        stop(p)


def serve_start(index_dir: Path, pool: corpus.Pool, runs: int = 5) -> dict:
    """`qa serve` on a prebuilt index: launch to first answered question (target, issue 13:
    <= 3 s), beside a fresh process that only imports gradio (the one dependency the app cannot
    start without), in alternating order."""
    import gradio_client  # noqa: F401 -- imported here, not inside the timed window

    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False",
               QA_HOST="127.0.0.1")
    env.pop("QA_INDEX_DIR", None)
    serves, floors = [], []
    for i in range(runs):
        q = pool.take(1)[0]
        jobs = [(serves, lambda q=q: _serve_once(index_dir, env, q)),
                (floors, lambda: run_to_first_line([sys.executable, "-c", GRADIO_FLOOR], env)["first_answer_s"])]
        for dest, fn in jobs[i % 2:] + jobs[:i % 2]:
            dest.append(fn())
    s, f = median(serves), median(floors)
    return {"runs": runs, "serve_first_answer_s": round(s, 3), "import_gradio_s": round(f, 3), "ratio": round(s / f, 3),
            "serve_all_s": [round(x, 3) for x in serves], "import_gradio_all_s": [round(x, 3) for x in floors]}
