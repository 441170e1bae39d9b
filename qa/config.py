"""One frozen `Settings` dataclass; `Settings.from_env()` is the only reader of `QA_*` variables."""

from __future__ import annotations

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
    "ann_threshold": "Chunk count above which FAISS switches from exact to approximate (HNSW) search.",
    "reranker": "Optional cross-encoder (sentence-transformers CrossEncoder folder, or hub id already cached) "
                "that reorders the best few sentences; off when empty.",
}

ENV_PREFIX = "QA_"


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

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        """Read `QA_<FIELD>` variables, e.g. QA_TOP_K=3 -> top_k=3; explicit overrides win."""
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.name, type(getattr(cls(), f.name)), raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for key in ("index_dir", "source_dir"):
            if key in values:
                values[key] = Path(values[key])
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


def _coerce(name: str, kind: type, raw: str):
    try:
        if kind is bool:
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if kind is Path:
            return Path(raw)
        return kind(raw)
    except ValueError:
        from .errors import QAError

        raise QAError(f"QA_{name.upper()}={raw!r} is not a valid {kind.__name__}; fix or unset it.") from None
