"""Fit the fusion weights on some documents and report them on others (issue 12, item 2).

    PYTHONPATH=. .venv/bin/python tools/tune.py [--limit N] [--cache DIR]

For every record of every set of tools/evalsuite.py (at most N per set, every k-th), the
question is ranked once as the engine ranks it (its conversation replayed from the earlier
turns) with every signal computed for every sentence, and the follow-up adjustments kept
apart; candidate weightings are then scored without re-encoding: the best sentence by the
weighted sum, its quote grown as `answer.quote_span` grows it, and the set's own hit rule.
Coordinate ascent on the mean Hit@1 of the fitting sets, in two directions:

    fit on article + SQuAD (normans, complexity), report on doc2dial (dmv, studentaid)
    fit on doc2dial, report on article + SQuAD

and finally on all sets (the candidate to ship, reported beside the held-out figures).
Hit@1 here ignores the first-quote promotion of `answer.compose` and any reranker, so the
figures are close to, not equal to, tools/evalsuite.py's.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
import evalsuite  # noqa: E402
from qa import evaluate  # noqa: E402
from qa.answer import quote_span  # noqa: E402
from qa.ranking import Conversation, Policy, Question, rank, replay  # noqa: E402
from qa.retrieval import Weights, fuse  # noqa: E402

GROUPS = {"article+squad": ["article", "normans", "complexity"], "doc2dial": ["dmv", "studentaid"]}
VALUES = (0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1, 1.5, 2)


@dataclass
class Case:
    record: dict
    signals: object  # retrieval.Signals, every sentence
    near: np.ndarray | None  # follow-up: sentences in the paragraph the last answer cited
    shown: int | None  # follow-up: the sentence the last answer put first


def collect(names: list[str], limit: int | None, cache: Path, policy: Policy) -> dict:
    """name -> (snapshot, cases)."""
    full = replace(policy, piece_rows=10**9, weights=Weights(coverage=0, answer_type=1, tokens=1))
    out, encoder = {}, None
    for name in names:
        eng = evalsuite.engine_for(name, cache, encoder)
        encoder = eng.encoder
        snap = eng.snapshot()
        cases = []
        for r in evalsuite.every_kth([r for r in evalsuite.records(name) if r.get("answerable", True)], limit):
            turns = r.get("turns") or [r["question"]]
            q = Question.of(turns[-1])
            earlier = [Question.of(t) for t in turns[:-1]]
            conv = replay(snap, earlier, eng._encode, policy) if earlier and q.leans else Conversation()
            rk = rank(snap, q, conv, eng._encode, full)  # the signals; the follow-up adjustments kept apart
            prev = conv.last
            cases.append(Case(r, rk.signals, None if prev is None else snap.sentence_para_rows == prev.paragraph,
                              None if prev is None else prev.shown))
        out[name] = (snap, cases)
        print(f"[{name}] {len(cases)} questions", file=sys.stderr)
    return out


def hit1(data: dict, w: Weights, policy: Policy) -> dict[str, float]:
    res = {}
    for name, (snap, cases) in data.items():
        sents = snap.data.sentences
        hits = 0
        for c in cases:
            f = fuse(c.signals, w)
            if c.near is not None:
                f = f + policy.followup_boost * c.near
                f[c.shown] -= policy.followup_repeat
            best = int(np.argmax(f))
            lo, hi = quote_span(sents, f, best, policy.quote_margin)
            quote = snap.docs[sents[lo].doc].text[sents[lo].start:sents[hi].end]
            hits += bool(evaluate.hit_rule(c.record)(quote, c.record))
        res[name] = hits / max(len(cases), 1)
    return res


def mean(r: dict[str, float]) -> float:
    return sum(r.values()) / len(r)


def ascend(data: dict, start: Weights, policy: Policy, rounds: int = 3) -> Weights:
    cur, best = start, mean(hit1(data, start, policy))
    for _ in range(rounds):
        improved = False
        for field in asdict(cur):
            if field in ("coverage", "para"):
                continue
            for v in VALUES:
                cand = replace(cur, **{field: v})
                o = mean(hit1(data, cand, policy))
                if o > best + 1e-9:
                    cur, best, improved = cand, o, True
        if not improved:
            break
    return cur


def show(label: str, r: dict[str, float]) -> None:
    print(f"{label:<34}" + "  ".join(f"{k} {v:.3f}" for k, v in r.items()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/qa-suite"))
    args = ap.parse_args(argv)
    policy = Policy()
    data = collect([n for g in GROUPS.values() for n in g], args.limit, args.cache, policy)
    show("shipped " + str(tuple(asdict(policy.weights).values())), hit1(data, policy.weights, policy))
    for fit, report in (("article+squad", "doc2dial"), ("doc2dial", "article+squad")):
        w = ascend({n: data[n] for n in GROUPS[fit]}, policy.weights, policy)
        show(f"fit on {fit}: {tuple(asdict(w).values())}", hit1({n: data[n] for n in GROUPS[fit]}, w, policy))
        show(f"  held out, {report}", hit1({n: data[n] for n in GROUPS[report]}, w, policy))
    w = ascend(data, policy.weights, policy)
    show(f"fit on all: {tuple(asdict(w).values())}", hit1(data, w, policy))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
