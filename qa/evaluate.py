"""`qa eval`: Hit@1, Hit@3, MRR@5, abstention and false-abstention rates, per `kind`.

Scoring follows eval/README.md: a citation is a hit when, after lower-casing, folding
curly quotes and collapsing whitespace, its quote contains a gold string (or a long gold
string's first 60 characters); for SQuAD records (with `context`) the gold answer must sit in
its gold paragraph: the quote contains the answer with the 40 characters around it, or the
quote is a verbatim excerpt of the gold paragraph that contains the answer.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

from .answer import Answer

_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‚": "'", "′": "'"})


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower().translate(_QUOTES)).strip()


def is_hit(quote: str, record: dict) -> bool:
    q = norm(quote)
    golds = [norm(g) for g in record.get("gold", []) if g]
    context = record.get("context")
    if not context:
        return any(g in q or (len(g) > 60 and g[:60] in q) for g in golds)
    ctx = norm(context)
    for g in golds:
        if g not in q:
            continue
        if q in ctx:
            return True
        pos = ctx.find(g)
        while pos >= 0:
            window = ctx[max(0, pos - 40): pos + len(g) + 40]
            if window in q:
                return True
            pos = ctx.find(g, pos + 1)
    return False


def first_hit(answer: Answer, record: dict, depth: int = 5) -> int | None:
    """1-based rank of the first hit among the citations, or None."""
    for i, c in enumerate(answer.citations[:depth], 1):
        if is_hit(c.quote, record):
            return i
    return None


def read_records(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def run(engine, records: list[dict], use_history: bool = True) -> list[dict]:
    """Ask every record; returns one result row per record."""
    rows = []
    for r in records:
        turns = r.get("turns") or [r["question"]]
        history = turns[:-1] if use_history else []
        a = engine.ask(turns[-1], history, k=5)
        rank = first_hit(a, r) if r.get("answerable", True) else None
        words = len(a.citations[0].quote.split()) if a.citations else 0
        rows.append({"id": r["id"], "kind": r.get("kind", "?"), "answerable": r.get("answerable", True),
                     "found": a.found, "rank": rank, "quote_words": words,
                     "top_score": a.citations[0].score if a.citations else 0.0})
    return rows


def summarise(rows: list[dict]) -> dict[str, dict]:
    """Figures per kind and for 'all'."""
    groups = defaultdict(list)
    for row in rows:
        groups[row["kind"]].append(row)
        groups["all"].append(row)
    out = {}
    for kind, rs in groups.items():
        ans = [r for r in rs if r["answerable"]]
        una = [r for r in rs if not r["answerable"]]
        fig = {"n": len(rs), "answerable": len(ans), "unanswerable": len(una)}
        if ans:
            fig["hit@1"] = sum(r["rank"] == 1 for r in ans) / len(ans)
            fig["hit@3"] = sum(r["rank"] is not None and r["rank"] <= 3 for r in ans) / len(ans)
            fig["mrr@5"] = sum(1 / r["rank"] for r in ans if r["rank"]) / len(ans)
            fig["false_abstention"] = sum(not r["found"] for r in ans) / len(ans)
            fig["median_quote_words"] = statistics.median(r["quote_words"] for r in ans)
        if una:
            fig["abstention"] = sum(not r["found"] for r in una) / len(una)
        refused = [r for r in rs if not r["found"]]
        if una and refused:
            fig["abstention_precision"] = sum(not r["answerable"] for r in refused) / len(refused)
        out[kind] = fig
    return out


def format_table(summary: dict[str, dict]) -> str:
    cols = ["n", "hit@1", "hit@3", "mrr@5", "abstention", "false_abstention", "abstention_precision",
            "median_quote_words"]
    lines = ["kind".ljust(18) + "".join(c.rjust(12 if c != "abstention_precision" else 22) for c in cols)]
    for kind in sorted(summary, key=lambda k: (k == "all", k)):
        fig = summary[kind]
        cells = []
        for c in cols:
            v = fig.get(c)
            width = 12 if c != "abstention_precision" else 22
            cells.append(("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)).rjust(width))
        lines.append(kind.ljust(18) + "".join(cells))
    return "\n".join(lines)
