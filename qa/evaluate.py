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

from . import confidence

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


def read_records(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def run(engine, records: list[dict], use_history: bool = True) -> list[dict]:
    """Ask every record; returns one result row per record (`ask_record`: each set's own hit rule)."""
    return [ask_record(engine, r, use_history) for r in records]


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


COLUMNS = [("n", "n"), ("hit@1", "Hit@1"), ("hit@3", "Hit@3"), ("mrr@5", "MRR@5"),
           ("abstention", "unanswerable refused"), ("false_abstention", "answerable refused"),
           ("abstention_precision", "refusal precision"), ("median_quote_words", "median quote words")]


def format_table(summary: dict[str, dict]) -> str:
    """One row per kind of question (and 'all'), each column as wide as its label.

    >>> print(format_table({"all": {"n": 2, "hit@1": 0.5}}))
    kind      n  Hit@1  Hit@3  MRR@5  unanswerable refused  answerable refused  refusal precision  median quote words
    all       2  0.500      -      -                     -                   -                  -                   -
    """
    kinds = sorted(summary, key=lambda k: (k == "all", k))
    first = max([len("kind"), *map(len, kinds)]) + 2
    lines = ["kind".ljust(first) + "  ".join(label.rjust(max(len(label), 5)) for _, label in COLUMNS)]
    for kind in kinds:
        cells = []
        for key, label in COLUMNS:
            v = summary[kind].get(key)
            text = "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)
            cells.append(text.rjust(max(len(label), 5)))
        lines.append(kind.ljust(first) + "  ".join(cells))
    return "\n".join(lines)


# --- doc2dial's hit rule (eval/doc2dial/README.md) ----------------------------------------

def longest_common(a: str, b: str) -> int:
    """Length of the longest common substring: longest_common('the red car', 'a red cab') -> 6."""
    from difflib import SequenceMatcher

    m = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return m.size


def is_hit_doc2dial(quote: str, record: dict) -> bool:
    """The gold is inside the quote, or the quote and the gold share a substring of at least
    max(40, half the gold) characters; a gold under 40 characters must be inside the quote."""
    q = norm(quote)
    for gold in record.get("gold", []):
        g = norm(gold)
        if not g:
            continue
        if g in q:
            return True
        if len(g) >= 40 and longest_common(q, g) >= max(40, len(g) / 2):
            return True
    return False


def hit_rule(record: dict):
    return is_hit_doc2dial if record.get("domain") else is_hit


def auroc(scores: list[float], positive: list[bool]) -> float | None:
    """Probability that a random positive outscores a random negative (ties count half)."""
    import numpy as np

    s = np.asarray(scores, dtype=float)
    y = np.asarray(positive, dtype=bool)
    if y.all() or not y.any():
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    # average ranks for ties
    _, start, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = start + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    npos, nneg = int(y.sum()), int((~y).sum())
    return float((ranks[y].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def ask_record(engine, record: dict, use_history: bool = True, depth: int = 5) -> dict:
    """Ask one record (its last turn, the earlier turns as history) and score the answer:
    rank of the first hit, found, confidence, the features behind it, time taken."""
    import time

    turns = record.get("turns") or [record["question"]]
    history = turns[:-1] if use_history else []
    t0 = time.perf_counter()
    a = engine.ask(turns[-1], history, k=depth)
    ms = (time.perf_counter() - t0) * 1000
    rule = hit_rule(record)
    answerable = record.get("answerable", True)
    hits = [rule(c.quote, record) for c in a.citations[:depth]] if answerable else []
    rank = next((i for i, h in enumerate(hits, 1) if h), None)
    kind = record.get("kind", "?")
    followup = kind in ("followup", "doc2dial") or len(turns) > 1
    feats = getattr(a, "features", None)
    p_answerable = None
    if feats is not None and confidence.PARAMS.exists():
        p_answerable = confidence.load(confidence.PARAMS).answerable.probability(feats)
    return {"id": record["id"], "kind": kind, "answerable": answerable, "followup": followup,
            "later": bool(history), "found": a.found, "rank": rank, "hits": hits,
            "quote_words": len(a.citations[0].quote.split()) if a.citations else 0,
            "score": a.citations[0].score if a.citations else 0.0,
            "confidence": getattr(a, "confidence", None), "p_answerable": p_answerable,
            "features": None if feats is None else list(map(float, feats)),
            "ms": ms, "group": record.get("document") or record.get("group") or "?"}


OTHER_DOCUMENTS = ("foreign", "foreign-after")  # kinds of rows that ask one document's question of another's index


def suite_figures(rows: list[dict], threshold: float | None = None, key: str = "p_answerable") -> dict:
    """One set's figures. `rows` are `ask_record` rows of that set's own questions plus rows
    with kind 'foreign' (another document's questions asked of this index: answerable False)
    or 'foreign-after' (the same, asked after this index's own earlier turns).
    With `threshold`, refusal is `row[key] < threshold` instead of the engine's `found`. AUROC
    ranks answerable above unanswerable and foreign questions by `row[key]` (the probability
    the refusal is decided on), or by the first citation's score where there is none."""
    def refused(r):
        return (not r["found"]) if threshold is None else (r.get(key) if r.get(key) is not None else r["score"]) < threshold

    own = [r for r in rows if r["kind"] not in OTHER_DOCUMENTS]
    ans = [r for r in own if r["answerable"]]
    una = [r for r in own if not r["answerable"]]
    foreign = [r for r in rows if r["kind"] in OTHER_DOCUMENTS]
    fig: dict = {"n": len(own)}

    def hit1(rs):
        return sum(r["rank"] == 1 for r in rs) / len(rs) if rs else None

    if ans:
        fig["hit@1"] = hit1(ans)
        fig["hit@3"] = sum(r["rank"] is not None and r["rank"] <= 3 for r in ans) / len(ans)
        fig["mrr@5"] = sum(1 / r["rank"] for r in ans if r["rank"]) / len(ans)
        fig["hit@1 first"] = hit1([r for r in ans if not r["followup"]])
        fig["hit@1 follow"] = hit1([r for r in ans if r["followup"]])
        fig["ans refused"] = sum(refused(r) for r in ans) / len(ans)
        fig["median words"] = statistics.median(r["quote_words"] for r in ans)
    if una:
        fig["una refused"] = sum(refused(r) for r in una) / len(una)
        fig["n una"] = len(una)
    if foreign:
        fig["foreign refused"] = sum(refused(r) for r in foreign) / len(foreign)
    neg = una + foreign
    if ans and neg:
        sc = [(r.get(key) if r.get(key) is not None else r["score"]) for r in ans + neg]
        fig["auroc"] = auroc(sc, [True] * len(ans) + [False] * len(neg))
    fig["ms"] = statistics.median(r["ms"] for r in rows) if rows else None
    return fig


SUITE_COLUMNS = ["n", "hit@1", "hit@3", "mrr@5", "hit@1 first", "hit@1 follow", "una refused", "ans refused",
                 "foreign refused", "auroc", "median words", "ms"]


def format_suite(figures: dict[str, dict]) -> str:
    """One table: a row per set, the columns of `SUITE_COLUMNS`."""
    w = 9
    lines = ["set".ljust(16) + "".join(c.rjust(max(w, len(c) + 1)) for c in SUITE_COLUMNS)]
    for name, fig in figures.items():
        cells = []
        for c in SUITE_COLUMNS:
            v = fig.get(c)
            s = "-" if v is None else f"{v:.0f}" if c in ("n", "median words") else \
                f"{v:.1f}" if c == "ms" else f"{v:.3f}"
            cells.append(s.rjust(max(w, len(c) + 1)))
        lines.append(name.ljust(16) + "".join(cells))
    return "\n".join(lines)
