"""Grid/coordinate search over ranking weights on the eval sets (see README "How ranking was tuned").

    .venv/bin/python tools/tune.py [--held-out]

Builds a temporary index per article, computes every per-sentence signal once per question,
then scores candidate weightings without re-encoding. Prints Hit@1 per set for each candidate.
"""
from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from qa import evaluate, tokens
from qa.config import Settings
from qa.engine import Engine
from qa.ranking import Policy, Question, score
from qa.retrieval import Weights

EVAL = ROOT / "eval"
SETS = [("article", ROOT / "source" / "000_81a114a99364fef0.txt", EVAL / "dev_qa.jsonl"),
        ("normans", EVAL / "squad" / "normans.txt", EVAL / "squad" / "normans_qa.jsonl"),
        ("cct", EVAL / "squad" / "computational_complexity_theory.txt",
         EVAL / "squad" / "computational_complexity_theory_qa.jsonl")]


def collect():
    out = {}
    for name, src, qa in SETS:
        tmp = tempfile.mkdtemp()
        eng = Engine(Settings(index_dir=Path(tmp)))
        eng.library.build([src])
        snap = eng.snapshot()
        recs = evaluate.read_records(qa)
        qv, qp = eng._encode([r["question"] for r in recs])  # content pieces (tokens.content)
        rows = []
        for r, v, p in zip(recs, qv, qp):
            policy = Policy(weights=Weights(coverage=1, answer_type=1, tokens=0))
            rk = score(snap, Question.of(r["question"]), v, None, policy)
            # the word-piece match for every sentence (score() computes it only near its own top)
            full = tokens.maxsim(p, snap.data.piece_vectors, snap.data.piece_offsets, snap.piece_idf)
            rk = replace(rk, signals=replace(rk.signals, tokens=full))
            sents = snap.data.sentences
            hit1 = np.array([evaluate.is_hit(s.text, r) for s in sents]) if r["answerable"] else None
            rows.append((r, rk.signals, hit1))
        out[name] = (snap, rows)
    return out


def evaluate_weights(data, w: Weights):
    res = {}
    for name, (snap, rows) in data.items():
        from qa.retrieval import fuse
        hits, hits3, n = 0, 0, 0
        paras = [(s.doc, s.para) for s in snap.data.sentences]
        for r, sig, hit in rows:
            if hit is None:
                continue
            n += 1
            f = fuse(sig, w)
            order = np.argsort(-f)
            hits += bool(hit[order[0]])
            seen = set()
            for i in order:
                if paras[i] in seen:
                    continue
                seen.add(paras[i])
                if hit[i]:
                    hits3 += 1
                    break
                if len(seen) == 3:
                    break
        res[name] = hits / n
        res[name + "@3"] = hits3 / n
    return res


def objective(r: dict) -> float:
    """Mean Hit@1 over the sets, plus half the mean Hit@3 (a right passage in the top 3 matters too)."""
    h1 = [v for k, v in r.items() if not k.endswith("@3")]
    h3 = [v for k, v in r.items() if k.endswith("@3")]
    return sum(h1) / len(h1) + 0.5 * sum(h3) / len(h3)


def coordinate_ascent(data, start: Weights, values=(0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1, 1.5, 2),
                      rounds=3):
    from dataclasses import asdict, replace
    cur = start
    cur_r = evaluate_weights(data, cur)
    cur_o = objective(cur_r)
    for _ in range(rounds):
        improved = False
        for field in asdict(cur):
            for v in values:
                cand = replace(cur, **{field: v})
                r = evaluate_weights(data, cand)
                o = objective(r)
                if o > cur_o + 1e-9:
                    cur, cur_r, cur_o, improved = cand, r, o, True
        print("round", cur_o, cur_r, cur)
        if not improved:
            break
    return cur, cur_r


if __name__ == "__main__":
    data = collect()
    print("default", evaluate_weights(data, Weights()))
    w, r = coordinate_ascent(data, Weights())
    print("best", w, r)
    if "--held-out" in sys.argv:  # generalisation check: tune on two sets, test on the third
        for held in data:
            train = {k: v for k, v in data.items() if k != held}
            wt, _ = coordinate_ascent(train, Weights(0.3, 0.3, 0.0, 0.3, 0.1, 0.0, 0.1, 0.5))
            print("held-out", held, evaluate_weights({held: data[held]}, wt), wt)
