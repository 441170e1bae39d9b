"""Book-sized documents: `qa build` of one ~1 MB prose text, in a fresh process (wall time,
peak memory VmHWM, index size on disk), then a rebuild after editing one paragraph (how many
texts it re-encodes); and the memory loading and warming the built version adds (`load_mb`).

The book is generated, deterministically: every paragraph of the repository's real prose
(the article, the two SQuAD articles, the 101 doc2dial pages, ~620 KB), then new paragraphs
made by joining the first half of one real sentence to the second half of another, until
the size is reached, so that no text repeats and the encoder cannot skip any.
Targets (issue 13): <= 120 s, <= 1 GB peak, <= 25 MB on disk.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import corpus
from .coldstart import WRAP

TARGETS = {"wall_s": 120, "peak_mb": 1024, "index_mb": 25}  # issue 13, item 4
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def real_paragraphs() -> list[str]:
    files = sorted((corpus.ROOT / "source").glob("*.txt")) + sorted((corpus.EVAL / "squad").glob("*.txt"))
    files += sorted((corpus.EVAL / "doc2dial" / "docs").rglob("*.txt"))
    out = []
    for f in files:
        for p in re.split(r"\n\s*\n", f.read_text("utf-8")):
            p = " ".join(p.split())
            if len(p) > 40:
                out.append(p)
    return out


def make_book(size: int = 1_000_000, seed: int = 13) -> str:
    """~`size` bytes of prose, every paragraph distinct."""
    paras = real_paragraphs()
    sentences = [s for p in paras for s in SENTENCE.split(p) if len(s.split()) >= 6]
    rng = random.Random(seed)
    out, total, seen = [], 0, set()
    for p in paras:
        if p not in seen:
            seen.add(p)
            out.append(p)
            total += len(p.encode()) + 2
    while total < size:
        para = []
        for _ in range(rng.randint(3, 7)):
            a, b = rng.sample(sentences, 2)
            wa, wb = a.split(), b.split()
            para.append(" ".join(wa[:len(wa) // 2] + wb[len(wb) // 2:]))
        p = " ".join(para)
        if p not in seen:
            seen.add(p)
            out.append(p)
            total += len(p.encode()) + 2
    return "Generated book\n\n" + "\n\n".join(out) + "\n"


def _build(index: Path, source: Path, env: dict) -> dict:
    with tempfile.TemporaryFile("w+") as errf:
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-c", WRAP, "qa", "build", "--index", str(index), "--source", str(source)],
                           stdout=subprocess.PIPE, stderr=errf, text=True, env=env, cwd=corpus.ROOT, check=False)
        wall = time.perf_counter() - t0
        errf.seek(0)
        err = errf.read()
    if p.returncode != 0:
        raise RuntimeError(f"qa build failed ({p.returncode}): {err[-1500:]}")
    peak = [int(x.split()[1]) for x in err.splitlines() if x.startswith("@@peak_kb ")]
    m = re.search(r"\((\d+) passages embedded, (\d+) reused\)", p.stdout)
    return {"wall_s": round(wall, 1), "peak_mb": round(peak[-1] / 1024) if peak else None,
            "encoded": int(m.group(1)) if m else None, "reused": int(m.group(2)) if m else None,
            "output": p.stdout.strip()[:300]}


_LOAD = """
import sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
import numpy, faiss  # noqa: F401 -- imported before the baseline is read
from pathlib import Path
from qa import store
from qa.snapshot import Snapshot
before = rss()
snap = Snapshot(store.load(Path(sys.argv[1]))).warm()
print(round(rss() - before))
"""


def _load_mb(index: Path, env: dict) -> int | None:
    """Memory that loading and warming the served version adds (VmRSS, a fresh process): what
    serving the book costs beside the model."""
    p = subprocess.run([sys.executable, "-c", _LOAD, str(index)], capture_output=True, text=True, env=env,
                       cwd=corpus.ROOT, check=False)
    return int(p.stdout.split()[-1]) if p.returncode == 0 and p.stdout.split() else None


def _version_mb(index: Path) -> float:
    current = (index / "CURRENT").read_text().strip()
    folder = index / "versions" / current
    return round(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6, 1)


def run(size: int = 1_000_000, encoder: str | None = None) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1")
    env.pop("QA_INDEX_DIR", None)
    if encoder:
        env["QA_ENCODER"] = encoder
    with tempfile.TemporaryDirectory(prefix="qa-book-") as tmp:
        src = Path(tmp) / "book.txt"
        text = make_book(size)
        src.write_text(text, "utf-8")
        index = Path(tmp) / "index"
        first = _build(index, src, env)
        first["index_mb"] = _version_mb(index)
        first["load_mb"] = _load_mb(index, env)
        paras = text.split("\n\n")
        paras[len(paras) // 2] += " This sentence was added by an edit."
        src.write_text("\n\n".join(paras), "utf-8")
        second = _build(index, src, env)
    met = {"wall_s": first["wall_s"] <= TARGETS["wall_s"], "peak_mb": (first["peak_mb"] or 0) <= TARGETS["peak_mb"],
           "index_mb": first["index_mb"] <= TARGETS["index_mb"]}
    return {"bytes": len(text.encode()), "words": len(text.split()), "encoder": encoder or "onnx",
            "build": first, "rebuild_after_one_edit": second, "targets": TARGETS, "met": met}


if __name__ == "__main__":
    import json

    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000), indent=2))
