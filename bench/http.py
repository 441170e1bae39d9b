"""The HTTP round trip: the Gradio app (`qa serve`) in a subprocess on a free loopback port,
driven by 1, 10 and 50 concurrent `gradio_client` clients calling the `/ask` endpoint."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

from . import corpus
from .stats import pct, run_together


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_CITED = re.compile(r"^  — .*¶\d+", re.MULTILINE)  # "  — ¶4 · Section", or "  — Title… ¶4" with several documents


def is_answer(text) -> bool:
    """A rendered answer (quote + citation) or the app's 'not in this document' reply."""
    return isinstance(text, str) and (bool(_CITED.search(text)) or "Not in this document" in text)  # /ask: plain text


def _client(url: str):
    from gradio_client import Client

    # ssl_verify=False: the app is plain HTTP on loopback, so no TLS is involved either way; with
    # the default (True) gradio_client builds an httpx client per request that loads the CA
    # bundle (~19 ms of CPU each), which on 2 cores would be measured instead of the app.
    return Client(url, verbose=False, analytics_enabled=False, download_files=False, ssl_verify=False)


def _peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


@contextlib.contextmanager
def app_server(index_dir: Path, log_path: Path, env_overrides: dict | None = None, timeout: float = 240):
    """`python -m qa.cli serve` on a free port; yields (url, process) once `/ask` answers."""
    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False",
               QA_HOST="127.0.0.1", **(env_overrides or {}))
    cmd = [sys.executable, "-m", "qa.cli", "serve", "--index", str(index_dir), "--port", str(port)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=corpus.ROOT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited ({proc.returncode}); see {log_path}")
            try:
                if is_answer(_client(url).predict("What is this document about?", api_name="/ask")):
                    break
            except Exception:  # noqa: BLE001, S110 -- not up yet; the deadline below reports it
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app did not answer within {timeout:.0f} s; see {log_path}")
            time.sleep(0.5)
        yield url, proc
    finally:
        stop(proc)


def _parallel(fn, items) -> None:
    ts = [threading.Thread(target=fn, args=(x,), daemon=True) for x in items]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)


def connect(url: str, n: int) -> list:
    """n gradio_client Clients (connected in parallel; a busy server may need a retry)."""
    conns: list = [None] * n

    def one(i):
        for attempt in range(5):
            try:
                conns[i] = _client(url)
                return
            except Exception:  # noqa: BLE001
                time.sleep(0.2 * (attempt + 1))

    _parallel(one, range(n))
    if any(c is None for c in conns):
        raise RuntimeError("could not connect every client")
    return conns


def close(conns: list) -> None:
    """Close clients in parallel (each close waits for its heartbeat thread)."""
    def one(c):
        with contextlib.suppress(Exception):
            c.close()

    _parallel(one, conns)


def _ask(client, question: str) -> None:
    reply = client.predict(question, api_name="/ask")
    if not is_answer(reply):
        raise ValueError(f"unexpected reply: {str(reply)[:100]!r}")


def load(conns: list, pool: corpus.Pool, per_client: int) -> dict:
    """Each client (its own thread) asks `per_client` distinct questions in turn, all at once."""
    lat, errors, wall = run_together([(partial(_ask, c), pool.take(per_client)) for c in conns])
    return {"clients": len(conns), "requests": len(conns) * per_client, "answers": len(lat), "errors": len(errors),
            "error_samples": sorted(set(errors))[:3], "seconds": round(wall, 3),
            "answers_per_s": round(len(lat) / wall, 2), "latency": pct(lat)}


def run_levels(url: str, pool: corpus.Pool, levels) -> dict:
    """Load levels [(clients, questions per client), ...] against a running app, first level = baseline."""
    out: dict = {"levels": {}}
    conns = connect(url, max(c for c, _ in levels))
    try:
        # untimed: warm the path (model, index, HTTP) and give every client its session (the app
        # makes each new session's state once, ~12 ms of its CPU; steady readers are measured)
        load(conns[:2], pool, 3)
        load(conns, pool, 1)
        for clients, per in levels:
            out["levels"][str(clients)] = load(conns[:clients], pool, per)
    finally:
        close(conns)
    one = out["levels"][str(levels[0][0])]["answers_per_s"]
    for v in out["levels"].values():
        v["speedup"] = round(v["answers_per_s"] / one, 2) if one else None
    return out


def http_bench(index_dir: Path, pool: corpus.Pool, log_path: Path, levels=((1, 40), (10, 10), (50, 6)),
               env_overrides: dict | None = None) -> dict:
    """Start the app on `index_dir` in a subprocess and run the load levels against it."""
    with app_server(index_dir, log_path, env_overrides) as (url, proc):
        out = run_levels(url, pool, levels)
        out["server_peak_rss_mb"] = _peak_rss_mb(proc.pid)
    from qa.config import Settings

    out["concurrency"] = Settings.from_env({**os.environ, **(env_overrides or {})}).concurrency
    return out


def stop(proc: subprocess.Popen, grace_s: float = 15) -> None:
    """Terminate a server process, killing it if it has not ended within `grace_s`."""
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
