"""An onnxruntime session that starts fast: the model's graph optimised once per machine and kept
beside the export, so later processes (every `qa ask`) skip the optimiser.

onnxruntime optimises a graph each time a session opens (ORT_ENABLE_ALL: fusing attention,
layer norms, GELU); for all-MiniLM-L6-v2 that is about a quarter of opening the session.
`open_session` saves the optimised graph the first time (`optimized_model_filepath`), checks
that it gives the same output as the session that wrote it on a probe input (bit for bit), and
from then on opens it with optimisation off: 268 -> 205 ms measured here, same outputs, same
speed per question. The saved graph may use this machine's instruction set, so its name holds
the onnxruntime version and a hash of the CPU's flags; anything that goes wrong with it (a read-only
cache, a damaged file, a different output) falls back to optimising at every start, as before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
from pathlib import Path

import numpy as np

log = logging.getLogger("qa")

#: token ids of a probe input ("[CLS] when did che guevara visit pyongyang ? [SEP]" in the
#: model's vocabulary; any ids below the vocabulary size would do)
PROBE_IDS = (101, 2043, 2106, 18178, 15597, 3942, 1052, 2100, 1029, 102)


def open_session(path: Path, options, providers: list[str]):
    """An `onnxruntime.InferenceSession` for the model at `path` with `options` (graph
    optimisation ORT_ENABLE_ALL as the caller set it), from the saved optimised graph when
    there is a good one, else optimising (and saving the result for the next process)."""
    import onnxruntime as ort

    saved = optimised_path(path)
    if saved.is_file():
        try:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            return ort.InferenceSession(str(saved), options, providers=providers)
        except Exception as exc:  # noqa: BLE001 -- a damaged file: optimise as before and replace it
            log.warning("could not open the optimised model %s (%s); optimising again", saved, exc)
            _unlink(saved)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    tmp = saved.with_name(f".{saved.stem}-{os.getpid()}.tmp.onnx")
    options.optimized_model_filepath = str(tmp)
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception:
        _unlink(tmp)
        raise
    options.optimized_model_filepath = ""
    _keep(session, tmp, saved, options, providers)
    return session


def optimised_path(path: Path) -> Path:
    """Where the optimised graph of the model at `path` is kept on this machine."""
    import onnxruntime as ort

    return path.with_name(f"{path.stem}.opt-ort{ort.__version__}-{platform.machine()}-{_cpu_key()}.onnx")


def _keep(session, tmp: Path, saved: Path, options, providers: list[str]) -> None:
    """Rename the graph `session` just saved into place when a session opened from it (no
    optimisation) gives exactly the same output on the probe; otherwise delete it."""
    import onnxruntime as ort

    try:
        if not tmp.is_file():
            return
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        check = ort.InferenceSession(str(tmp), options, providers=providers)
        if np.array_equal(_probe(session), _probe(check)):
            os.replace(tmp, saved)
        else:
            log.warning("the optimised model gave a different output; optimising at every start instead")
    except Exception as exc:  # noqa: BLE001 -- only start-up speed is at stake
        log.info("not keeping the optimised model (%s)", exc)
    finally:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        _unlink(tmp)


def _probe(session) -> np.ndarray:
    ids = np.array([PROBE_IDS], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    names = {i.name for i in session.get_inputs()}
    return session.run(None, {k: v for k, v in feeds.items() if k in names})[0]


def _cpu_key() -> str:
    """A short hash of the CPU's model name and flags (Linux /proc/cpuinfo; else the platform)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            lines = [ln for ln in fh if ln.startswith(("flags", "model name", "Features", "CPU part"))]
        info = "".join(sorted(set(lines)))
    except OSError:
        info = platform.processor() or platform.platform()
    return hashlib.sha1(info.encode("utf-8")).hexdigest()[:10]


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
