"""Build time and memory on legal but pathological documents (issue 16, item 8; docs/safety.md).

    python -m bench.pathological lines 100000            # 100,000 one-line paragraphs (~3.7 MB)
    python -m bench.pathological longline 5              # one 5 MB line without a sentence end
    python -m bench.pathological abbrev 5                # 5 MB of "A. " (every full stop an abbreviation)
    ... --fake                                           # a 384-dimension stand-in for the model: measures
                                                         # everything but the model (fast), same array sizes

Each run is one fresh process: it writes the document into a temporary folder, builds an
index of it with `Engine.build`, and prints one JSON line: seconds (wall and CPU), peak resident
memory (ru_maxrss), index size on disk, counts, longest sentence, the texts embedded, and the
targets beside them (under 3 minutes and 1.5 GB).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: issue 16, item 8: each case builds in under 3 minutes and 1.5 GB, no sentence over the cap
TARGET_SECONDS, TARGET_PEAK_MB = 180, 1536
WORDS = ["alpha", "beta", "gamma", "delta", "river", "stone", "market", "harbour", "winter", "council", "bridge", "garden", "letter"]


def lines(n: int) -> str:
    rnd = random.Random(1)
    return "Pathological lines\n\n" + "\n\n".join(
        f"Item {i} notes {rnd.choice(WORDS)} {rnd.choice(WORDS)} here." for i in range(n)) + "\n"


def longline(mb: float) -> str:
    rnd = random.Random(1)
    size = int(mb * 1024 * 1024) - 400
    out, n = [], 0
    while n < size:
        w = rnd.choice(WORDS)
        out.append(w)
        n += len(w) + 1
    return "Long line\n\n" + " ".join(out)[:size] + "\n"


def abbrev(mb: float) -> str:
    return "Abbreviations\n\n" + "A. " * int(mb * 1024 * 1024 / 3 - 200) + "\n"


class FakeEncoder:
    """384 dimensions, one float32 piece vector per content word: the model's array sizes, no model."""

    name, dim = "fake-384", 384

    def _vec(self, text: str) -> np.ndarray:
        seed = int(hashlib.md5(text.encode()).hexdigest()[:8], 16)
        v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
        return v / np.linalg.norm(v)

    def encode(self, texts):
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def encode_pieces(self, texts):
        from qa.tokens import Pieces, is_content

        parts = []
        for t in texts:
            words = [w for w in t.lower().split()[:200] if is_content(w)]  # the model reads ~256 pieces
            ids = np.array([int(hashlib.md5(w.encode()).hexdigest()[:6], 16) % 30000 for w in words], np.int32)
            vecs = np.random.default_rng(len(t)).standard_normal((len(words), self.dim)).astype(np.float32)
            parts.append(Pieces(ids, vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-9)))
        return self.encode(texts), parts


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.pathological")
    ap.add_argument("kind", choices=["lines", "longline", "abbrev"])
    ap.add_argument("size", type=float, help="paragraphs (lines) or megabytes (longline, abbrev)")
    ap.add_argument("--fake", action="store_true", help="a stand-in encoder instead of the model")
    args = ap.parse_args(argv)

    from qa import chunking
    from qa.config import Settings
    from qa.engine import Engine

    text = {"lines": lambda: lines(int(args.size)), "longline": lambda: longline(args.size),
            "abbrev": lambda: abbrev(args.size)}[args.kind]()
    with tempfile.TemporaryDirectory(prefix="qa-patho-") as tmp:
        src = Path(tmp) / "source"
        src.mkdir()
        (src / f"{args.kind}.txt").write_text(text, "utf-8")
        encoder = FakeEncoder() if args.fake else None
        settings = Settings(index_dir=Path(tmp) / "index", source_dir=src,
                            model="fake-384" if args.fake else Settings().model)
        engine = Engine(settings, encoder=encoder)
        if not args.fake:
            engine.encoder.encode(["warm up"])  # model load is not build time
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0, c0 = time.perf_counter(), time.process_time()
        report = engine.library.build([src])
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        snap = engine.snapshot()
        size = sum(p.stat().st_size for p in settings.index_dir.rglob("*") if p.is_file())
        out = {"kind": args.kind, "size": args.size, "fake": args.fake, "text_mb": round(len(text.encode()) / 1e6, 2),
               "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
               "rss_before_build_mb": round(base), "index_mb": round(size / 1e6, 1),
               "paragraphs": report.paragraphs, "chunks": report.chunks, "embedded": report.encoded,
               "longest_sentence": max(s.end - s.start for s in snap.data.sentences),
               "cap": chunking.MAX_SENTENCE_CHARS}
    out["targets"] = {"seconds": TARGET_SECONDS, "peak_rss_mb": TARGET_PEAK_MB,
                      "met": out["seconds"] <= TARGET_SECONDS and out["peak_rss_mb"] <= TARGET_PEAK_MB
                      and out["longest_sentence"] <= chunking.MAX_SENTENCE_CHARS}
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
