"""`python -m bench.int8`: does an int8 quantization of the ONNX model keep the quality figures?

    python -m bench.int8 [--variants int8-w16-a4,int8-mm-pc] [--mode question|all|both]
        [--sets article,normans,...] [--limit N] [--cache DIR] [--timing N] [--out FILE]

Every development set of `tools/evalsuite.py` (article, normans, complexity, doc2dial dmv and
studentaid, each with its near-miss and foreign questions) plus the article's held-out
questions (`eval/holdout/article_fresh.jsonl`), asked through `tools/evalsuite.run` with the
encoder swapped:

- fp32: the fp32 export builds each index and encodes the questions (the reference);
- `question` mode: the SAME fp32-built indexes, questions encoded by the int8 variant (what a
  question-only int8 path changes: the question's vector and word pieces, nothing stored);
- `all` mode: the variant also builds the indexes (documents encoded in int8 too);
- `--variants torch`: sentence-transformers in place of the fp32 export, the noise floor (its
  vectors differ from the export's by float rounding only).

Per set and variant: Hit@1, Hit@3, MRR@5, Hit@1 of first turns and follow-ups, answerable /
unanswerable / foreign questions refused, AUROC, and the largest change against fp32. Issue 13's
rule: int8 only if every figure of every set stays within TOLERANCE. Then the per-question encode
(`_encode_now([q], pieces=True)`, what answering calls) of fp32 and each variant, interleaved in
rotating order over `--timing` questions: medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import evalsuite

#: the held-out questions of the article (never fitted on), asked of their own copy of its index
HOLDOUT = ("holdout", ROOT / "source", [ROOT / "eval" / "holdout" / "article_fresh.jsonl"])
#: figures compared; every one must stay within TOLERANCE of fp32 on every set
KEYS = ("hit@1", "hit@3", "mrr@5", "hit@1 first", "hit@1 follow", "ans refused", "una refused",
        "foreign refused", "auroc")
TOLERANCE = 0.005
DEFAULT_VARIANTS = "int8,int8-pc,int8-pc-rr,int8-mm-pc,int8-mm-pc-noffn2,int8-w16-a4,int8-w32-a4,int8-w32-a4-asym,int8-w64-a4"


def encoder(variant: str | None):
    """The fp32 ONNX encoder (None), an int8 variant of it, or "torch": sentence-transformers, a
    variant whose vectors differ from the fp32 export's only by float rounding (a noise floor)."""
    from qa.onnx_encoder import OnnxEncoder

    if variant == "torch":
        from qa.embedding import SentenceEncoder

        enc = SentenceEncoder()
        enc.load()
        return enc
    enc = OnnxEncoder()
    enc.quantization = variant
    enc.load()
    return enc


def suite(enc, names: list[str], limit: int | None, cache: Path) -> tuple[dict[str, dict], dict]:
    """tools/evalsuite.run's figures for `names` (+ the holdout set) with `enc` encoding questions
    (and building whatever index `cache` lacks), and each question's outcome by (set, id)."""
    main = [n for n in names if n != HOLDOUT[0]]
    figures, rows = evalsuite.run(main, limit, cache, encoder=enc, all_names=list(evalsuite.SETS)) if main else ({}, [])
    if HOLDOUT[0] in names:  # its foreign questions come from every set but the article (same document)
        evalsuite.SETS[HOLDOUT[0]] = (HOLDOUT[1], HOLDOUT[2])
        try:
            others = [n for n in evalsuite.SETS if n not in ("article", HOLDOUT[0])]
            more = evalsuite.run([HOLDOUT[0]], limit, cache, encoder=enc, all_names=[HOLDOUT[0], *others])
        finally:
            del evalsuite.SETS[HOLDOUT[0]]
        figures.update(more[0])
        rows += more[1]
    return figures, {(r["set"], r["id"]): (r["rank"], r["found"]) for r in rows}


def changed(base: dict, other: dict) -> dict[str, list[str]]:
    """Per set, the questions whose rank or refusal differs from fp32's."""
    out: dict[str, list[str]] = {}
    for key, got in other.items():
        if base.get(key) != got:
            out.setdefault(key[0], []).append(key[1])
    return out


def compare(base: dict[str, dict], other: dict[str, dict]) -> tuple[float, list[str]]:
    """Largest absolute change of any KEYS figure over every set, and a line per set."""
    worst, lines = 0.0, []
    for name, a in base.items():
        b = other[name]
        cells, set_worst = [], 0.0
        for k in KEYS:
            if a.get(k) is None or b.get(k) is None:
                cells.append(f"{'-':>16s}")
                continue
            d = b[k] - a[k]
            set_worst = max(set_worst, abs(d))
            cells.append(f"{b[k]:9.3f}({d:+.3f})")
        worst = max(worst, set_worst)
        lines.append(f"  {name:11s}" + "".join(cells) + f"  max {set_worst:.4f}")
    return worst, lines


def encode_times(variants: list[str], n: int) -> dict[str, float]:
    """Median ms of one question's encode (with word pieces, no cache) per encoder, interleaved."""
    records = [r for name in evalsuite.SETS for r in evalsuite.records(name)]
    questions = [r.get("question") or r["turns"][-1] for r in evalsuite.every_kth(records, n)]
    encs = {"fp32": encoder(None), **{v: encoder(v) for v in variants}}
    for e in encs.values():  # warm: first calls allocate
        e._encode_now(questions[:3], pieces=True)
    times: dict[str, list[float]] = {k: [] for k in encs}
    order = list(encs)
    for i, q in enumerate(questions):
        for k in order[i % len(order):] + order[:i % len(order)]:
            t = time.perf_counter()
            encs[k]._encode_now([q], pieces=True)
            times[k].append(time.perf_counter() - t)
    return {k: round(statistics.median(v) * 1000, 3) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.int8", description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default=DEFAULT_VARIANTS,
                    help="qa.onnx_export.QUANTIZATIONS names, or torch (sentence-transformers), comma-separated")
    ap.add_argument("--mode", choices=("question", "all", "both"), default="question",
                    help="int8 for questions only (fp32-built indexes), for building too, or both")
    ap.add_argument("--sets", default=",".join([*evalsuite.SETS, HOLDOUT[0]]))
    ap.add_argument("--limit", type=int, help="at most N records per set (every k-th); default all")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/qa-int8-bench"), help="indexes: <cache>/fp32, <cache>/<variant>")
    ap.add_argument("--timing", type=int, default=300, help="questions timed per encoder (0: no timing)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "int8.json")
    args = ap.parse_args(argv)
    from qa.onnx_export import QUANTIZATIONS

    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in QUANTIZATIONS and v != "torch"]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}: one of {', '.join(QUANTIZATIONS)}")
    names = [n for n in args.sets.split(",") if n]
    modes = ("question", "all") if args.mode == "both" else (args.mode,)
    t0 = time.perf_counter()
    base, base_rows = suite(encoder(None), names, args.limit, args.cache / "fp32")
    out: dict = {"fp32": base, "variants": {}, "limit": args.limit}
    print(f"fp32{'':9s}" + "".join(f"{k:>16s}" for k in KEYS))
    for name, a in base.items():
        print(f"  {name:11s}" + "".join(f"{a[k]:16.3f}" if a.get(k) is not None else f"{'-':>16s}" for k in KEYS))
    verdicts = []
    for v in variants:
        for mode in modes:
            enc = encoder(v)
            figs, rows = suite(enc, names, args.limit, args.cache / ("fp32" if mode == "question" else v))
            worst, lines = compare(base, figs)
            moved = changed(base_rows, rows)
            keeps = worst <= TOLERANCE + 1e-9  # one question in 200 is exactly 0.005
            print(f"\n{v} ({mode}): largest change {worst:.4f} -> {'KEEPS' if keeps else 'does NOT keep'} "
                  f"every figure within {TOLERANCE}")
            print("\n".join(lines))
            print("  questions whose rank or refusal changed: " + (", ".join(
                f"{name} {len(ids)} ({', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''})" for name, ids in moved.items())
                or "none"))
            out["variants"][f"{v}/{mode}"] = {"figures": figs, "largest_change": worst, "keeps": keeps, "changed": moved}
            verdicts.append((v, mode, worst))
    if args.timing:
        ms = encode_times(variants, args.timing)
        out["encode_ms"] = ms
        print(f"\none question's encode, median of {args.timing} interleaved: " +
              ", ".join(f"{k} {m:.2f} ms ({m / ms['fp32']:.2f}x)" for k, m in ms.items()))
    print(f"\n{time.perf_counter() - t0:.0f} s; " + "; ".join(f"{v}/{m} {w:.4f}" for v, m, w in verdicts))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
