"""Do quotes hold the fact asked for? (issue 12, item 6)

    PYTHONPATH=. .venv/bin/python tools/quotefacts.py [--limit N] [--cache DIR] [--sets ...]

For every answerable question of the sets of tools/evalsuite.py whose type asks for a date
("When ...", "In what year ...") or a number ("How many / much / far / long ..."), the share
of first quotes that hold one (the answer-type cues of qa/retrieval.py: a year, a month, a
century for a date; a digit or a number word for a number), and Hit@1 among them.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
import evalsuite

from qa import evaluate
from qa.retrieval import _DATE, _NUMBER, question_type


def holds(kind: str, quote: str) -> bool:
    return bool((_DATE if kind == "when" else _NUMBER).search(quote))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/qa-suite"))
    ap.add_argument("--sets", default=",".join(evalsuite.SETS))
    args = ap.parse_args(argv)
    print(f"{'set':<12}{'kind':<8}{'n':>5}{'holds it':>10}{'hit@1':>8}")
    encoder = None
    for name in args.sets.split(","):
        eng = evalsuite.engine_for(name, args.cache, encoder)
        encoder = eng.encoder
        counts: dict[str, list[int]] = {}
        for r in evalsuite.every_kth([r for r in evalsuite.records(name) if r.get("answerable", True)], args.limit):
            turns = r.get("turns") or [r["question"]]
            kind = question_type(re.sub(r"^(hi|hello)[,.!]*\s*", "", turns[-1], flags=re.IGNORECASE))
            if kind not in ("when", "number"):
                continue
            a = eng.ask(turns[-1], turns[:-1])
            quote = a.citations[0].quote if a.citations else ""
            c = counts.setdefault(kind, [0, 0, 0])
            c[0] += 1
            c[1] += holds(kind, quote)
            c[2] += bool(quote) and evaluate.hit_rule(r)(quote, r)
        for kind, (n, held, hit) in sorted(counts.items()):
            print(f"{name:<12}{kind:<8}{n:>5}{held / n:>10.3f}{hit / n:>8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
