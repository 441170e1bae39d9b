"""`python -m bench.int8`: does int8 quantization of the ONNX model keep the quality figures?

Builds each development set's index with the fp32 ONNX encoder and with its dynamic int8
quantization (`qa.onnx_export.quantized`), asks every question, and prints Hit@1 / Hit@3 /
MRR@5 and refusals side by side. Issue 13's rule: int8 only if every figure stays within 0.005.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from . import corpus

SETS = [  # (name, question files, document); dev_chat is asked with and without its history
    ("article dev_qa", ["eval/dev_qa.jsonl"], "source/000_81a114a99364fef0.txt"),
    ("article dev_chat", ["eval/dev_chat.jsonl"], "source/000_81a114a99364fef0.txt"),
    ("squad normans", ["eval/squad/normans_qa.jsonl"], "eval/squad/normans.txt"),
    ("squad complexity", ["eval/squad/computational_complexity_theory_qa.jsonl"],
     "eval/squad/computational_complexity_theory.txt"),
]
KEYS = ("hit@1", "hit@3", "mrr@5", "false_abstention", "abstention", "abstention_precision")
TOLERANCE = 0.005


def figures(int8: bool) -> dict:
    from qa import evaluate
    from qa.config import Settings
    from qa.engine import Engine
    from qa.onnx_encoder import OnnxEncoder

    enc = OnnxEncoder()
    enc.int8 = int8
    out = {}
    for name, qa_files, doc in SETS:
        with tempfile.TemporaryDirectory(prefix="qa-int8-") as tmp:
            engine = Engine(Settings(index_dir=Path(tmp), source_dir=corpus.ROOT / "source"), encoder=enc)
            engine.build([corpus.ROOT / doc])
            records = [r for f in qa_files for r in evaluate.read_records(corpus.ROOT / f)]
            out[name] = evaluate.summarise(evaluate.run(engine, records, use_history=True))
    return out


def main() -> int:
    t = time.perf_counter()
    fp32, int8 = figures(False), figures(True)
    worst = 0.0
    print(f"{'set':18s} {'figure':22s} {'fp32':>8s} {'int8':>8s} {'diff':>8s}")
    for name in fp32:
        a, b = fp32[name]["all"], int8[name]["all"]
        for k in KEYS:
            if a.get(k) is not None and b.get(k) is not None:
                d = b[k] - a[k]
                worst = max(worst, abs(d))
                print(f"{name:18s} {k:22s} {a[k]:8.3f} {b[k]:8.3f} {d:+8.3f}")
    verdict = "keeps" if worst <= TOLERANCE else "does NOT keep"
    print(f"\nint8 {verdict} every rate within {TOLERANCE} (largest change {worst:.3f}); {time.perf_counter() - t:.0f} s")
    json.dump({"fp32": fp32, "int8": int8, "largest_change": worst}, sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
