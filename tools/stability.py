"""Stability under more documents, and answer latency next to the model's encode (issue 12).

    PYTHONPATH=. .venv/bin/python tools/stability.py [--cache DIR]

Stability: every article question of eval/ (dev_qa, dev_chat, dev_qa_nearmiss, dev_chat_more, dev_qa_define)
asked of (a) the article alone and (b) the article plus the two SQuAD articles and the first
20 doc2dial dmv pages (sorted by name); the share of questions with the same found/not-found
AND the same first citation (document, start, end).

Latency: on index (b), `engine.ask` next to the floor of bench/inproc.py (the model's encode of
the question plus the FAISS and BM25 searches), timed in alternating pairs; medians and ratio.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.inproc import floor_fn
from qa import evaluate
from qa.config import Settings
from qa.engine import Engine

EVAL = ROOT / "eval"
ARTICLE_SETS = ["dev_qa.jsonl", "dev_chat.jsonl", "dev_qa_nearmiss.jsonl", "dev_chat_more.jsonl", "dev_qa_define.jsonl"]
EXTRA = [EVAL / "squad" / "normans.txt", EVAL / "squad" / "computational_complexity_theory.txt"] + \
    sorted((EVAL / "doc2dial" / "docs" / "dmv").glob("*.txt"))[:20]


LATENCY_QUESTIONS = 200


def engine(index: Path, sources: list[Path], encoder=None) -> Engine:
    eng = Engine(Settings(index_dir=index, source_dir=index / "_unused"), encoder=encoder)
    if eng.library.staleness() is not None:
        eng.library.build(sources)
    return eng


def answers(eng: Engine, records: list[dict]) -> list[tuple]:
    out = []
    for r in records:
        turns = r.get("turns") or [r["question"]]
        a = eng.ask(turns[-1], turns[:-1])
        c = a.citations[0] if a.citations else None
        out.append((a.found, c and (c.document, c.start, c.end)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/qa-stability"))
    args = ap.parse_args(argv)
    records = [r for name in ARTICLE_SETS if (EVAL / name).exists() for r in evaluate.read_records(EVAL / name)]
    alone = engine(args.cache / "alone", [ROOT / "source"])
    more = engine(args.cache / "more", [ROOT / "source"] + EXTRA, alone.encoder)
    a, b = answers(alone, records), answers(more, records)
    same_found = sum(x[0] == y[0] for x, y in zip(a, b))
    same = sum(x == y for x, y in zip(a, b))
    n = len(records)
    print(f"stability: {len(more.snapshot().data.documents)} documents vs the article alone, {n} article questions")
    print(f"  same found/not-found: {same_found}/{n} = {same_found / n:.3f}")
    print(f"  same found/not-found and first citation: {same}/{n} = {same / n:.3f}")
    for r, x, y in zip(records, a, b):
        if x != y:
            q = (r.get("turns") or [r["question"]])[-1]
            print(f"    changed: {r['id']} {q[:70]!r} found {x[0]}->{y[0]}, citation {'same' if x[1] == y[1] else 'moved'}")
    floor = floor_fn(more)
    # questions this process has not encoded yet (the encoder caches short texts), each once
    seen = {t for r in records for t in (r.get("turns") or [r["question"]])}
    qs = list(dict.fromkeys(r["question"] for name in ("normans_qa.jsonl", "computational_complexity_theory_qa.jsonl")
                            for r in evaluate.read_records(EVAL / "squad" / name) if r["question"] not in seen))
    for q in qs[:10]:
        more.ask(q)
        floor(q)
    asks, floors = [], []
    for i, q in enumerate(qs[10:LATENCY_QUESTIONS + 10]):
        pair = [(asks, lambda q=q: more.ask(q)), (floors, lambda q=q: floor(q))]
        for out, fn in pair if i % 2 else pair[::-1]:  # alternate which goes first
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    ra, rf = statistics.median(asks) * 1000, statistics.median(floors) * 1000
    print(f"latency (index of {len(more.snapshot().data.sentences)} sentences): ask p50 {ra:.2f} ms, "
          f"floor p50 {rf:.2f} ms, ratio {ra / rf:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
