"""Fit `Weights.form` (the definition signal, qa/definition.py) held out by set.

    PYTHONPATH=. .venv/bin/python tools/fit_defines.py [--limit N] [--cache DIR] [--signals FILE]

Every answerable record of every set of tools/evalsuite.py is ranked once with every signal
(tools/tune.py's `collect`); the other weights stay as shipped and only `defines` moves on the
grid GRID. Hit@1 is tune.py's (the best sentence's quote, the set's hit rule; no first-quote
promotion). Three held-out procedures:

- leave one set out: the weight that maximises the mean Hit@1 of the other four sets, reported
  on the fifth;
- tune.py's two groups: fit on article + SQuAD, report on doc2dial, and the reverse;
- tune.py's folds: fit on article, normans, dmv, report on complexity, studentaid, and the reverse.

The signal is zero for any question that is not a definition question, so only those can move;
their counts per set are printed, and Hit@1 on them alone.
"""
from __future__ import annotations

import argparse
import pickle
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
import evalsuite
import tune

from qa.definition import term
from qa.ranking import Policy

GRID = (0.0, 0.075, 0.15, 0.225, 0.3, 0.45, 0.6, 0.75, 1.05, 1.5)


def last_turn(record: dict) -> str:
    return (record.get("turns") or [record.get("question")])[-1]


def hit1(data: dict, v: float, policy: Policy, order_only: bool) -> dict[str, float]:
    """tune.hit1 with `defines` at v, the other weights as shipped."""
    return tune.hit1(data, replace(policy.weights, form=v), policy, order_only)


def fit(data: dict, policy: Policy, order_only: bool) -> float:
    """The grid weight with the best mean Hit@1 over `data`'s sets (ties: the smaller weight)."""
    best, out = -1.0, 0.0
    for v in GRID:
        o = tune.mean(hit1(data, v, policy, order_only))
        if o > best + 1e-9:
            best, out = o, v
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="at most N answerable records per set (0: all)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/qa-suite"))
    ap.add_argument("--signals", type=Path, help="keep the collected signals in this file (reused when present)")
    args = ap.parse_args(argv)
    policy = Policy()
    names = list(evalsuite.SETS)
    if args.signals and args.signals.exists():
        cases = pickle.loads(args.signals.read_bytes())
        data = {n: (evalsuite.engine_for(n, args.cache).snapshot().warm(), cases[n]) for n in names}
    else:
        data = tune.collect(names, args.limit or None, args.cache, policy)
        if args.signals:
            args.signals.write_bytes(pickle.dumps({n: c for n, (_, c) in data.items()}))
    defs = {n: (snap, [c for c in cases if term(last_turn(c.record))]) for n, (snap, cases) in data.items()}
    print("definition questions (answerable, asked): "
          + "  ".join(f"{n} {len(defs[n][1])}/{len(data[n][1])}" for n in names))
    for order_only in (False, True):
        print(f"\n== the boost {'picks the lead only (quote on the scores without it)' if order_only else 'in the fused score'}")
        print("Hit@1 by weight (all answerable / definition questions only):")
        for v in GRID:
            a = hit1(data, v, policy, order_only)
            d = hit1({n: x for n, x in defs.items() if x[1]}, v, policy, order_only)
            print(f"  {v:<6}" + "  ".join(f"{n} {a[n]:.3f}/{d.get(n, float('nan')):.3f}" for n in names))
        print("held out:")
        splits = [([m for m in names if m != n], [n]) for n in names]
        splits += [(tune.GROUPS[f], tune.GROUPS[r]) for f, r in (("article+squad", "doc2dial"), ("doc2dial", "article+squad"))]
        splits += [(tune.FOLDS[f], tune.FOLDS[r]) for f, r in (("A", "B"), ("B", "A"))]
        for fit_on, report in splits:
            v = fit({n: data[n] for n in fit_on}, policy, order_only)
            held = {n: data[n] for n in report}
            off, on = hit1(held, 0.0, policy, order_only), hit1(held, v, policy, order_only)
            print(f"  fit on {'+'.join(fit_on)}: defines {v}; held out "
                  + "  ".join(f"{n} {off[n]:.3f} -> {on[n]:.3f}" for n in report))
        print(f"fit on all sets: defines {fit(data, policy, order_only)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
