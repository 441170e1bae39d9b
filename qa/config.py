"""One frozen `Settings` dataclass; `Settings.from_env()` is the only reader of `QA_*` variables."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

#: name, default, meaning -- the README's settings table is checked against this by a test.
DOCS: dict[str, str] = {
    "index_dir": "Folder of the built index (versions, CURRENT, lock).",
    "source_dir": "Folder of the documents the default index is built from.",
    "model": "sentence-transformers model id or local folder; the default is the embedded all-MiniLM-L6-v2.",
    "encoder": "How the embedded model runs: `onnx` (ONNX Runtime, exported once from its weights into "
               "~/.cache/qa/onnx; no torch when answering) or `torch` (sentence-transformers, the reference). "
               "Any other model runs on torch.",
    "host": "Address the web app binds to; anything but loopback makes rebuilding need the admin password.",
    "port": "Port of the web app.",
    "top_k": "Citations per answer (best first, one per paragraph).",
    "admin_password": "Password that unlocks rebuilding when the app is reachable by others.",
    "share": "Ask Gradio for a public share link (off by default).",
    "max_file_mb": "Largest document accepted (upload, paste or CLI), in megabytes.",
    "max_question_chars": "Longest question accepted, in characters.",
    "queue_size": "Requests that may wait in the web app's queue before new ones are told it is busy.",
    "concurrency": "Questions the web app answers at the same time (they are batched into one encode).",
    "batch_wait_ms": "Under load, how long the question starting an encode call waits for others to join it, "
                     "in milliseconds (a lone question never waits).",
    "ann_threshold": "Chunk count above which search switches from exact (numpy over the window vectors) to "
                     "approximate (FAISS HNSW).",
    "allowed_hosts": "Extra names (comma-separated; `*.example.org` for a domain) the web app answers under, "
                     "besides localhost, 127.0.0.1, [::1] and the bound address; any other Host header gets 403.",
    "reranker": "Optional cross-encoder (sentence-transformers CrossEncoder folder, or hub id already cached) "
                "that reorders the best few sentences; off when empty.",
}

ENV_PREFIX = "QA_"

#: Allowed range of every number, (lowest, highest), both included. Where each bound comes from:
#: ports are 16-bit and 0 means "any port" (not a port a user can open); the engine answers with
#: at most 10 citations; a 1 GB document is far beyond anything the build is sized for (the
#: build's time and memory figures are for 5 MB, docs/safety.md); a question over 100,000
#: characters is no question (the default is 2,000); a queue, concurrency or wait of 0 makes every
#: question wait forever or never batch (issue 16), and a wait over 1 s is a stall, not a batch.
RANGES: dict[str, tuple[float, float]] = {
    "port": (1, 65535),
    "top_k": (1, 10),
    "max_file_mb": (0.001, 1024),
    "max_question_chars": (1, 100_000),
    "queue_size": (1, 100_000),
    "concurrency": (1, 1024),
    "batch_wait_ms": (0, 1000),
    "ann_threshold": (0, 10**12),  # 0: approximate search from the first chunk
}
#: Command-line flags that set a field (named in messages instead of the variable when used).
FLAGS = {"index_dir": "--index", "model": "--model", "reranker": "--reranker", "host": "--host", "port": "--port"}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Settings:
    index_dir: Path = Path("index")
    source_dir: Path = Path("source")
    model: str = "all-MiniLM-L6-v2"
    encoder: str = "onnx"
    host: str = "127.0.0.1"
    port: int = 7860
    top_k: int = 4
    admin_password: str = ""
    share: bool = False
    max_file_mb: float = 5.0
    max_question_chars: int = 2000
    queue_size: int = 64
    concurrency: int = 32
    batch_wait_ms: float = 3.0
    ann_threshold: int = 200_000
    reranker: str = ""
    allowed_hosts: str = ""

    def __post_init__(self) -> None:
        validate(self)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        """Read `QA_<FIELD>` variables, e.g. QA_TOP_K=3 -> top_k=3; explicit overrides win."""
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.name, _kind(f.name), raw)
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(given)
        for key in ("index_dir", "source_dir"):
            if key in values:
                values[key] = Path(values[key])
        labels = {name: FLAGS.get(name, name) if name in given else ENV_PREFIX + name.upper() for name in values}
        validate(values, labels)
        return cls(**values)

    def with_(self, **changes) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def is_public(self) -> bool:
        """True when others can reach the app: bound beyond loopback, or shared."""
        return self.share or self.host not in ("127.0.0.1", "localhost", "::1")


def _kind(name: str) -> type:
    """The type of a Settings field, read off its default (`object` for an unknown name)."""
    return type(getattr(Settings, name, object()))


def _coerce(name: str, kind: type, raw: str):
    from .errors import QAError

    var = ENV_PREFIX + name.upper()
    if kind is bool:
        word = raw.strip().lower()
        if word not in _TRUE + _FALSE:
            raise QAError(f"{var}={raw!r} is not a yes/no value: use one of {', '.join(_TRUE + _FALSE)}, or unset it.")
        return word in _TRUE
    if issubclass(kind, Path):
        return Path(raw)
    try:
        return kind(raw.strip()) if kind is not str else raw
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise QAError(f"{var}={raw!r} is not {what}; {_allowed(name, kind)}, or unset it.") from None


def validate(values, labels: dict[str, str] | None = None) -> None:
    """Raise QAError for the first value out of its allowed range (RANGES) or of the wrong kind,
    naming the variable (or command-line flag, see `labels`) and what is allowed.

    >>> validate({"port": 99999}, {"port": "--port"})
    Traceback (most recent call last):
    ...
    qa.errors.QAError: --port=99999 is out of range: the port must be a whole number from 1 to 65535.
    """
    from .errors import QAError

    items = values.items() if isinstance(values, dict) else ((f.name, getattr(values, f.name)) for f in fields(values))
    for name, value in items:
        label = (labels or {}).get(name, ENV_PREFIX + name.upper())
        kind = _kind(name)
        if kind is bool and not isinstance(value, bool):
            raise QAError(f"{label}={value!r} is not a yes/no value.")
        if issubclass(kind, (str, Path)) and not isinstance(value, (str, Path)):
            raise QAError(f"{label}={value!r} is not text.")
        if issubclass(kind, (str, Path)) and ("\0" in str(value) or (name in ("host", "model", "index_dir", "source_dir")
                                                            and not str(value).strip())):
            raise QAError(f"{label}={str(value)!r} is empty or holds a NUL character; give a value or unset it.")
        if name in RANGES:
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or (kind is int and isinstance(value, float) and not value.is_integer()):
                raise QAError(f"{label}={value!r} is not {'a whole number' if kind is int else 'a number'}; "
                              f"{_allowed(name, kind)}.")
            lo, hi = RANGES[name]
            if not math.isfinite(value) or not lo <= value <= hi:
                raise QAError(f"{label}={value!r} is out of range: {_allowed(name, kind)}.")


def _allowed(name: str, kind: type) -> str:
    what = {"port": "the port", "top_k": "the number of citations", "max_file_mb": "the size limit in MB",
            "max_question_chars": "the question limit", "queue_size": "the queue size",
            "concurrency": "the number of questions answered at once", "batch_wait_ms": "the wait in ms",
            "ann_threshold": "the chunk count"}.get(name, name)
    if name not in RANGES:
        return f"{what} must be {'a whole number' if kind is int else 'a number' if kind is float else 'text'}"
    lo, hi = RANGES[name]
    number = "a whole number" if kind is int else "a finite number"
    return f"{what} must be {number} from {lo:g} to {hi:g}"
