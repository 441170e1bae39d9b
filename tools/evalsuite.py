"""Every development set in eval/, one table (issue 12).

    PYTHONPATH=. .venv/bin/python tools/evalsuite.py [--limit N] [--sets article,normans,...]
        [--cache DIR] [--rows FILE] [--no-history] [--learned-top N]

Per set: Hit@1, Hit@3, MRR@5, Hit@1 on first turns and on follow-ups, unanswerable questions
refused, answerable questions refused (at the engine's operating point), other documents'
questions refused ("foreign": questions of another set asked of this set's index, alone or after
this index's own earlier turns, "foreign-after"), abstention
AUROC (answerable vs unanswerable + foreign, on the answer's confidence), median quote words
of answerable questions, median ms per question.

Each set gets its own index (article: source/; SQuAD: one article each; doc2dial: the domain's
folder of pages), built once into --cache (default /tmp/qa-suite) and reused while the model
and chunking are unchanged. doc2dial is scored with its own hit rule (eval/doc2dial/README.md).
`--limit N` asks at most N of a set's records (every k-th, deterministic); `--rows FILE`
writes every row (with features) as JSON for tools/fit_confidence.py.
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from qa import evaluate
from qa.config import Settings
from qa.engine import Engine
from qa.ranking import Policy

EVAL = ROOT / "eval"
D2D = EVAL / "doc2dial"
SETS: dict[str, tuple[Path, list[Path]]] = {
    "article": (ROOT / "source", [EVAL / "dev_qa.jsonl", EVAL / "dev_chat.jsonl", EVAL / "dev_qa_nearmiss.jsonl",
                                  EVAL / "dev_chat_more.jsonl", EVAL / "dev_qa_define.jsonl"]),
    "normans": (EVAL / "squad" / "normans.txt", [EVAL / "squad" / "normans_qa.jsonl",
                                                 EVAL / "squad" / "normans_nearmiss.jsonl",
                                                 EVAL / "squad" / "normans_define.jsonl"]),
    "complexity": (EVAL / "squad" / "computational_complexity_theory.txt",
                   [EVAL / "squad" / "computational_complexity_theory_qa.jsonl",
                    EVAL / "squad" / "computational_complexity_theory_nearmiss.jsonl",
                    EVAL / "squad" / "computational_complexity_theory_define.jsonl"]),
    "dmv": (D2D / "docs" / "dmv", [D2D / "dev_dmv.jsonl", D2D / "nearmiss_dmv.jsonl", D2D / "define_dmv.jsonl"]),
    "studentaid": (D2D / "docs" / "studentaid", [D2D / "dev_studentaid.jsonl", D2D / "nearmiss_studentaid.jsonl",
                                                         D2D / "define_studentaid.jsonl"]),
}
FOREIGN_PER_SET = 20  # questions each other set lends as "foreign" questions to a set's index...
FOREIGN_TURNS = 20  # ...and conversations (a follow-up with its earlier turns), where it has them...
SWITCH_PER_SET = 20  # ...and questions asked after this index's own earlier turns (a change of topic)


def records(name: str) -> list[dict]:
    out = []
    for path in SETS[name][1]:
        if path.exists():
            for r in evaluate.read_records(path):
                r.setdefault("group", r.get("document") or name)
                out.append(r)
    return out


def every_kth(items: list, n: int | None) -> list:
    if not n or len(items) <= n:
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def foreign_records(name: str, names: list[str]) -> list[dict]:
    """Answerable single questions (first turns) and conversations of the other sets, asked of
    this set's index."""
    out = []
    for other in names:
        if other == name:
            continue
        own = [r for r in records(other) if r.get("answerable", True)]
        single = [r for r in own if len(r.get("turns") or [1]) == 1]
        turns = [r for r in own if len(r.get("turns") or [1]) > 1]
        for r in every_kth(single, FOREIGN_PER_SET) + every_kth(turns, FOREIGN_TURNS):
            out.append({**r, "id": f"{other}>{name}:{r['id']}", "kind": "foreign", "answerable": False,
                        "group": r["group"]})
        for r, before in zip(every_kth(single, SWITCH_PER_SET), earlier_turns(name)):
            out.append({**r, "id": f"{other}>>{name}:{r['id']}", "kind": "foreign-after", "answerable": False,
                        "turns": [*before, r.get("question") or r["turns"][-1]], "group": r["group"]})
    return out


def earlier_turns(name: str) -> itertools.cycle:
    """Earlier turns a conversation about this set's documents could have had, endlessly: its
    conversations' turns before the last, or else its answerable single questions one by one."""
    own = [r for r in records(name) if r.get("answerable", True)]
    convs = [r["turns"][:-1] for r in own if len(r.get("turns") or [1]) > 1]
    return itertools.cycle(every_kth(convs, SWITCH_PER_SET) or [[r.get("question") or r["turns"][-1]]
                                                                for r in every_kth(own, SWITCH_PER_SET)])


def engine_for(name: str, cache: Path, encoder=None, policy: Policy | None = None) -> Engine:
    eng = Engine(Settings(index_dir=cache / name, source_dir=cache / name / "_unused"), encoder=encoder,
                 policy=policy or Policy())
    if eng.library.staleness() is not None:
        t0 = time.perf_counter()
        eng.library.build([SETS[name][0]])
        print(f"[{name}] index built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return eng


def run(names: list[str], limit: int | None, cache: Path, use_history: bool = True,
        all_names: list[str] | None = None, policy: Policy | None = None,
        encoder=None) -> tuple[dict[str, dict], list[dict]]:
    """Every set's figures and rows; `encoder` (default: the engine's own) encodes questions,
    and builds any index not yet in `cache` (bench/int8.py asks fp32-built indexes with int8)."""
    figures, rows = {}, []
    for name in names:
        eng = engine_for(name, cache, encoder, policy)
        encoder = eng.encoder
        recs = every_kth(records(name), limit) + foreign_records(name, all_names or list(SETS))
        t0 = time.perf_counter()
        set_rows = []
        for r in recs:
            row = evaluate.ask_record(eng, r, use_history=use_history)
            row["set"] = name
            set_rows.append(row)
        figures[name] = evaluate.suite_figures(set_rows)
        print(f"[{name}] {len(recs)} questions in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        rows += set_rows
    return figures, rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, help="at most N records per set (every k-th)")
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated: " + ",".join(SETS))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/qa-suite"), help="where the indexes are kept")
    ap.add_argument("--rows", type=Path, help="write every row as JSON lines here")
    ap.add_argument("--no-history", action="store_true", help="ask follow-ups without the earlier turns")
    ap.add_argument("--learned-top", type=int, help="Policy.learned_top: the learned reranker over this many (0: off)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    names = [n for n in args.sets.split(",") if n]
    policy = Policy() if args.learned_top is None else replace(Policy(), learned_top=args.learned_top)
    figures, rows = run(names, args.limit, args.cache, not args.no_history, policy=policy)
    print(evaluate.format_suite(figures))
    if args.rows:
        with open(args.rows, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
