"""Small helpers: timing, percentiles, concurrent askers, peak memory."""

from __future__ import annotations

import resource
import sys
import threading
import time

import numpy as np


def ms(seconds: list[float]) -> np.ndarray:
    return np.asarray(seconds, dtype=np.float64) * 1000.0


def pct(samples_s: list[float]) -> dict:
    """{p50, p95, p99, mean} in milliseconds."""
    a = ms(samples_s)
    if not len(a):
        return {"p50": None, "p95": None, "p99": None, "n": 0}
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3),
            "p99": round(float(np.percentile(a, 99)), 3), "n": len(a)}


def median(xs: list[float]) -> float:
    return float(np.median(np.asarray(xs, dtype=np.float64)))


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def run_together(jobs) -> tuple[list[float], list[str], float]:
    """Each job `(ask, questions)` in its own thread calls `ask(q)` for its questions in turn, all
    threads released at once. Returns (seconds of each call that returned, one line per call that
    raised, wall seconds from the release until the last thread finished)."""
    lat: list[float] = []
    errors: list[str] = []
    barrier = threading.Barrier(len(jobs) + 1)

    def run(ask, qs):
        barrier.wait()
        for q in qs:
            t = time.perf_counter()
            try:
                ask(q)
            except Exception as exc:  # noqa: BLE001 -- counted, reported
                errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
            else:
                lat.append(time.perf_counter() - t)

    ts = [threading.Thread(target=run, args=job) for job in jobs]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    return lat, errors, time.perf_counter() - t0


def maxrss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory of this process (or of its waited-for children), in MB."""
    kb = resource.getrusage(who).ru_maxrss
    return round(kb / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def loadavg() -> list[float]:
    try:
        import os

        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []
