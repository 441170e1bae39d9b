"""`python -m bench.pieces_pq [M ...]`: would product quantization of the word pieces keep the
quality figures? (issue 13, item 4: the book's index is 56 MB against a 25 MB target, 41 MB of
it the word pieces' int8 codes, 384 bytes a piece; 25 MB needs about 100.)

For each M (default 96 and 128: bytes per piece), a FAISS `ProductQuantizer` (M sub-vectors,
256 centroids each) is trained on the dmv pages' word pieces only, then every development set
is answered with its pieces served as that quantizer gives them back (rows with no pieces stay
zero), beside the same sets with the stored pieces. It prints each set's figures and the rows
whose first citation or refusal changed. Rule (the same as for int8): shipped only if every
rate stays within 0.005. The indexes are built once into --cache (tools/evalsuite.py's).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from . import corpus

TRAIN_SET = "dmv"  # the quantizer's training pieces; the other four sets are held out
TOLERANCE = 0.005
KEYS = ("hit@1", "hit@3", "mrr@5", "una refused", "ans refused", "foreign refused")


def pieces_of(cache: Path, name: str) -> np.ndarray:
    folder = cache / name / "versions" / (cache / name / "CURRENT").read_text().strip()
    scales = np.load(folder / "pieces.npz")["scales"]
    return np.load(folder / "piece_codes.npy").astype(np.float32) * scales[:, None]


def serve_quantized(pq) -> None:
    """From now on every loaded version holds its pieces as `pq` gives them back."""
    from qa import tokens, versionfiles

    read = versionfiles.read_files

    def read_quantized(*args, **kwargs):
        data = read(*args, **kwargs)
        x = np.ascontiguousarray(np.asarray(data.piece_vectors))
        y = pq.decode(pq.compute_codes(x))
        y[~x.any(axis=1)] = 0  # a zero row means "no pieces"
        object.__setattr__(data, "piece_vectors", tokens.PieceCodes(*tokens.quantize(y)))
        return data

    versionfiles.read_files = read_quantized


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pieces_pq", description=__doc__.splitlines()[0])
    ap.add_argument("m", nargs="*", type=int, default=[96, 128], help="bytes per piece (sub-vectors)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/qa-suite"))
    args = ap.parse_args(argv)
    import faiss

    sys.path.insert(0, str(corpus.ROOT / "tools"))
    import evalsuite

    from qa import versionfiles

    names = list(evalsuite.SETS)
    base, base_rows = evalsuite.run(names, None, args.cache)
    train = pieces_of(args.cache, TRAIN_SET)
    train = np.ascontiguousarray(train[train.any(axis=1)])
    read = versionfiles.read_files
    for m in args.m:
        pq = faiss.ProductQuantizer(train.shape[1], m, 8)
        pq.train(train)
        serve_quantized(pq)
        try:
            got, rows = evalsuite.run(names, None, args.cache)
        finally:
            versionfiles.read_files = read
        changed = sum((a["hits"][:1], a["found"]) != (b["hits"][:1], b["found"]) for a, b in zip(base_rows, rows))
        worst = 0.0
        print(f"\nM = {m} bytes per piece ({TRAIN_SET}'s pieces train the quantizer)")
        print(f"{'set':12s} {'figure':12s} {'stored':>8s} {'PQ':>8s} {'diff':>8s}")
        for name in names:
            for k in KEYS:
                a, b = base[name].get(k), got[name].get(k)
                if a is None or b is None:
                    continue
                worst = max(worst, abs(b - a)) if name != TRAIN_SET else worst
                print(f"{name:12s} {k:12s} {a:8.3f} {b:8.3f} {b - a:+8.3f}")
        verdict = "keeps" if worst <= TOLERANCE else "does NOT keep"
        print(f"M = {m} {verdict} every held-out rate within {TOLERANCE} (largest change {worst:.3f}); "
              f"{changed} of {len(rows)} rows changed their first citation or refusal")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
