"""A full disk while writing an index version: recognising it (ENOSPC/EDQUOT, or numpy's bare
short write when too little space is free) and the message that says how much space was needed.
`data` is a `store.IndexData` (read by attribute only)."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from .errors import DiskFull

_FULL = (errno.ENOSPC, errno.EDQUOT)


def estimated_bytes(data) -> int:
    """About how many bytes `write_version` writes for `data` (arrays exactly, text files
    estimated): what a full disk is told it was short of."""
    arrays = (data.sentence_vectors, data.chunk_vectors, data.paragraph_vectors, data.piece_ids,
              data.piece_vectors, data.piece_offsets)
    n = sum(int(getattr(a, "nbytes", 0)) for a in arrays)
    n += int(getattr(data.chunk_vectors, "nbytes", 0)) * (2 if len(data.chunks) > 200_000 else 1)  # faiss (HNSW: links)
    n += sum(2 * len(d.text.encode("utf-8", "replace")) + 40 * len(d.paragraphs) for d in data.documents)
    n += sum(len(c.text.encode("utf-8", "replace")) + 80 for c in data.chunks) + 40 * len(data.sentences)
    return n + 64 * 1024  # manifest, file-system blocks


def is_full(index_dir: Path, data, exc: BaseException) -> bool:
    """Was this write error a full disk? ENOSPC/EDQUOT, or (numpy reports a short write as a bare
    "N requested and M written") too little free space for the version, measured after cleanup."""
    if not isinstance(exc, OSError):
        return False
    if exc.errno in _FULL:
        return True
    try:
        return shutil.disk_usage(index_dir).free < estimated_bytes(data)
    except OSError:
        return False


def disk_full(index_dir: Path, data, exc: OSError, served: str | None) -> DiskFull:
    try:
        free = shutil.disk_usage(index_dir).free
    except OSError:
        free = None
    return DiskFull(
        f"The disk holding {index_dir} is full ({exc.strerror or exc or 'short write'}): the new index version needs about "
        f"{_mb(estimated_bytes(data))}" + (f" and {_mb(free)} is free" if free is not None else "") + ". "
        "Nothing was published and the half-written files were removed; "
        + (f"version {served} is still being served. " if served else "")
        + "Free some disk space and build again.")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"
