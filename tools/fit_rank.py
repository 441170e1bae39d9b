"""Fit the learned reranker (qa/learned_rank.py) on some documents and report it on others,
beside the fused ranking's weights refit the same way.

    PYTHONPATH=. .venv/bin/python tools/fit_rank.py [--cache DIR] [--rows FILE] [--write]

1. Every answerable record of every set of tools/evalsuite.py is ranked as the engine ranks it
   (its conversation replayed), with the learned reranker off; the fused ranking's `TOP` best
   sentences are the candidates. Each gets its feature row (`learned_rank.features`) and a
   label: does the quote the engine would grow from it (`answer.quote_span`) hit, by the set's
   own rule? The engine's own first citation is scored too (the baseline).
2. Held out, grouped by document: the article, normans and complexity (one document each) are
   each a fold; doc2dial's pages are split into `PAGE_FOLDS` folds by page (both domains in
   each). Each fold is scored by a model fitted on every other fold. A second, harsher split
   leaves out a whole set at a time (fit on the four others).
3. The first citation is emulated as `answer.compose` picks it: candidates in the model's order,
   one per paragraph, the first of the best `LEAD` that meets the question beyond its names
   (`Policy.abstain_unasked`). Emulated with the fused order it reproduces the engine's own
   first citations (printed as a check).
4. For comparison the fusion's weights are refit on the same folds by tools/tune.py's
   coordinate ascent (its start and grid), on the same candidates and labels: the shipped
   weights were fitted on all five sets, so their figures are in-sample.
5. `--write` fits on every row and writes qa/params/rank.json (the same file byte for byte from
   the same rows).

The model: a listwise logistic regression (softmax over a question's candidates, the
likelihood of the hitting ones, each set weighing the same) over standardised features, the
fused score unpenalised and every other weight with L2 `C`, fitted with scipy's L-BFGS.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
import evalsuite

from qa import evaluate, learned_rank, tokens
from qa.answer import quote_span, restates
from qa.ranking import Conversation, Policy, Question, rank, replay

TOP = 16  # candidates the reranker reorders (the fused ranking's best)
COLLECT = 24  # candidates collected (so smaller TOP can be compared without recollecting)
LEAD = 5  # answer.compose considers this many citations for the first quote (Policy.lead_candidates)
PAGE_FOLDS = 5  # doc2dial pages are split into this many folds
TREES = (2, 200, 0.05, 40)  # depth, trees, learning rate, least rows per leaf (the sweep in docs/ranking.md)
C = 0.01  # the linear model's inverse L2 strength (the held-out sweep in docs/ranking.md: 0.003-0.03 alike, 0.1 and above worse)
SETS = list(evalsuite.SETS)


def collect(cache: Path, policy: Policy, limit: int | None = None) -> list[dict]:
    """One row per answerable record: candidates' features, labels, paragraphs, meets flags,
    and the engine's own first-citation hit."""
    from qa.answer import compose

    off = replace(policy, learned_top=0)
    out, encoder = [], None
    for name in SETS:
        eng = evalsuite.engine_for(name, cache, encoder)
        encoder = eng.encoder
        snap = eng.snapshot()
        data = snap.data
        t0 = time.perf_counter()
        recs = [r for r in evalsuite.records(name) if r.get("answerable", True)]
        for r in evalsuite.every_kth(recs, limit):
            turns = r.get("turns") or [r["question"]]
            q = Question.of(turns[-1])
            earlier = [Question.of(t) for t in turns[:-1]]
            conv = replay(snap, earlier, eng._encode, off) if earlier else Conversation()
            rk = rank(snap, q, conv, eng._encode, off)
            rule = evaluate.hit_rule(r)
            top = learned_rank.top_rows(rk, COLLECT)
            x = learned_rank.features(snap, q, rk, top)
            wants = snap.cues.dates if q.kind == "when" else snap.cues.numbers if q.kind == "number" else None
            labels, meets, alone, size = [], [], [], []
            for i in top.tolist():
                lo, hi = quote_span(data.sentences, rk.fused, i, policy.quote_margin, wants=wants,
                                    restates=restates(set(q.tokens), snap.sentence_tokens[i]))
                doc = snap.docs[data.sentences[lo].doc]
                quote = doc.text[data.sentences[lo].start:data.sentences[hi].end]
                labels.append(bool(rule(quote, r)))
                size.append(len(quote.split()))
                alone.append(bool(rule(data.sentences[i].text, r)))
                m = None if rk.asked is None else tokens.asked_match(rk.asked, rk.names, snap.piece_vectors,
                                                                     data.piece_offsets, lo, hi)
                meets.append(m is None or m >= policy.abstain_unasked)
            ans = compose(snap, q, rk, LEAD, off, conv.recent)
            out.append({"set": name, "id": r["id"], "group": f"{name}:{r.get('document') or name}",
                        "later": len(turns) > 1, "x": x.tolist(), "y": labels, "meets": meets, "alone": alone, "words": size,
                        "para": snap.sentence_para_rows[top].tolist(),
                        "engine_hit": bool(rule(ans.citations[0].quote, r)) if ans.citations else False})
        print(f"[{name}] {sum(o['set'] == name for o in out)} questions in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
    return out


# --- the model -----------------------------------------------------------------------------

def _arrays(rows: list[dict], top: int):
    xs = [np.asarray(r["x"], dtype=np.float64)[:top] for r in rows]
    ys = [np.asarray(r["y"], dtype=bool)[:top] for r in rows]
    return xs, ys


@dataclass(frozen=True)
class Linear:
    """The listwise logistic model compared against (not shipped): standardised features @ coef."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    top: int

    def scores(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.coef


def fit_linear(rows: list[dict], top: int = TOP, c: float = C) -> Linear:
    """Listwise logistic regression: maximise, per question with a hitting and a missing
    candidate, the softmax probability of the hitting ones. Each set weighs the same in the
    likelihood (doc2dial's 1,320 questions would otherwise decide for the article's 45); the
    fused score's gap to the best (`fused_gap`) is not penalised, every other weight has an L2
    penalty |w|^2 / (2 c), so with little evidence the model keeps the fused order."""
    from collections import Counter

    from scipy.optimize import minimize

    xs, ys = _arrays(rows, top)
    keep = [i for i, y in enumerate(ys) if y.any() and not y.all()]
    allx = np.concatenate(xs)
    mean, scale = allx.mean(0), allx.std(0)
    scale[scale < 1e-6] = 1.0
    per_set = Counter(r["set"] for r in rows)
    qw = np.array([len(rows) / len(per_set) / per_set[rows[i]["set"]] for i in keep])
    X = [(xs[i] - mean) / scale for i in keep]
    Y = [ys[i] for i in keep]
    sizes = np.array([len(x) for x in X])
    flat, pos = np.concatenate(X), np.concatenate(Y)
    seg = np.repeat(np.arange(len(X)), sizes)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    penalty = np.ones(flat.shape[1])
    penalty[learned_rank.NAMES.index("fused_gap")] = 0.0

    def loss(w):
        s = flat @ w
        e = np.exp(s - np.maximum.reduceat(s, starts)[seg])
        z, zp = np.bincount(seg, e), np.bincount(seg, e * pos)
        nll = -(qw * (np.log(zp) - np.log(z))).sum()
        p, pp = e / z[seg], (e * pos) / zp[seg]
        return nll + (penalty * w) @ w / (2 * c), flat.T @ ((p - pp) * qw[seg]) + penalty * w / c

    w0 = np.zeros(flat.shape[1])
    w0[learned_rank.NAMES.index("fused_gap")] = 1.0
    res = minimize(loss, w0, jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    return Linear(mean, scale, res.x, top)


def fit(rows: list[dict], top: int = TOP, trees: tuple[int, int, float, int] = TREES) -> learned_rank.Model:
    """Boosted trees (depth, how many, learning rate, least rows per leaf), pointwise: does the
    quote grown from this candidate hit? Each set weighs the same; deterministic (no early
    stopping, no subsampling). Exported as complete trees (`learned_rank.Model`)."""
    from collections import Counter

    from sklearn.ensemble import HistGradientBoostingClassifier

    depth, n, rate, leaf = trees
    used = [r for r in rows if len(r["x"])]
    per_set = Counter(r["set"] for r in used)
    x = np.concatenate([np.asarray(r["x"], dtype=np.float64)[:top] for r in used])
    y = np.concatenate([np.asarray(r["y"], dtype=bool)[:top] for r in used])
    w = np.concatenate([np.full(min(top, len(r["x"])), 1.0 / per_set[r["set"]]) for r in used])
    gbm = HistGradientBoostingClassifier(max_depth=depth, max_iter=n, learning_rate=rate, min_samples_leaf=leaf,
                                         early_stopping=False, random_state=0)
    gbm.fit(x, y, sample_weight=w / w.mean())
    model = export(gbm, depth, top)
    assert np.allclose(model.scores(x[:500]), gbm.decision_function(x[:500]), atol=1e-5)
    return model


def export(gbm, depth: int, top: int) -> learned_rank.Model:
    """scikit-learn's trees as complete binary trees of `depth` levels (a leaf above the last
    level becomes a node that always goes left, both of its children holding its value)."""
    inner = 2 ** depth - 1
    feats, thrs, vals = [], [], []
    for (pred,) in gbm._predictors:
        f, t, v = np.zeros(inner, np.int64), np.full(inner, 1e300), np.zeros(inner + 1)
        _walk(pred.nodes, 0, 0, 0, depth, f, t, v)
        feats.append(f)
        thrs.append(t)
        vals.append(v)
    base = float(np.ravel(gbm._baseline_prediction)[0])
    return learned_rank.Model(base, np.array(feats), np.array(thrs), np.array(vals), top)


def _walk(nodes, i: int, pos: int, level: int, depth: int, f: np.ndarray, t: np.ndarray, v: np.ndarray) -> None:
    inner = len(f)
    nd = nodes[i]
    if level == depth:
        assert nd["is_leaf"]
        v[pos - inner] = nd["value"]
    elif nd["is_leaf"]:
        _walk(nodes, i, 2 * pos + 1, level + 1, depth, f, t, v)
        _walk(nodes, i, 2 * pos + 2, level + 1, depth, f, t, v)
    else:
        f[pos], t[pos] = nd["feature_idx"], nd["num_threshold"]
        _walk(nodes, int(nd["left"]), 2 * pos + 1, level + 1, depth, f, t, v)
        _walk(nodes, int(nd["right"]), 2 * pos + 2, level + 1, depth, f, t, v)


# --- the fusion, refit the same way (tools/tune.py's coordinate ascent, on the candidates) ----

FUSED = ("sent", "win", "bm25_sent", "bm25_para", "type", "pieces")  # Weights' signals, in this order
SHIPPED = (0.3, 0.45, 0.225, 0.225, 0.15, 1.05)  # retrieval.Weights (and followup_document 0.3 below)
GRID = (0, 0.075, 0.15, 0.225, 0.3, 0.45, 0.6, 0.75, 1.05, 1.5, 2.25, 3)  # tools/tune.py's VALUES
FROM = (0.45, 0.3, 0.225, 0.15, 0.15, 2.25)  # tools/tune.py's START


def signals(row: dict) -> np.ndarray:
    """The fused ranking's signals of each candidate plus -1 for another document than the last
    answer's (recovered from the fused score: what the shipped weights leave unexplained)."""
    if "_sig" not in row:
        x = np.asarray(row["x"], dtype=np.float64).reshape(-1, len(learned_rank.NAMES))
        raw = x[:, [learned_rank.NAMES.index(n) for n in FUSED]]
        rest = x[:, learned_rank.NAMES.index("fused_gap")] - raw @ np.asarray(SHIPPED)
        other = np.round((rest.max() - rest) / 0.3) > 0.5 if len(x) else np.zeros(0, bool)
        row["_sig"] = np.column_stack([raw, -other.astype(np.float64)])
    return row["_sig"]


def hit_fusion(row: dict, w: np.ndarray) -> bool:
    return bool(row["y"][lead(signals(row) @ w, row)]) if len(row["x"]) else False


def ascend(rows: list[dict], rounds: int = 2) -> np.ndarray:
    """Coordinate ascent on the mean over sets of Hit@1, from tools/tune.py's start, on its grid."""
    sets = sorted({r["set"] for r in rows})

    def score(w):
        return np.mean([np.mean([hit_fusion(r, w) for r in rows if r["set"] == s]) for s in sets])

    cur = np.array([*FROM, 0.3])
    best = score(cur)
    for _ in range(rounds):
        improved = False
        for k in range(len(FUSED)):
            for v in GRID:
                cand = cur.copy()
                cand[k] = v
                o = score(cand)
                if o > best + 1e-9:
                    cur, best, improved = cand, o, True
        if not improved:
            break
    return cur


def held_out_fusion(rows: list[dict], key) -> list[int | None]:
    """Each row's first candidate under fusion weights refit on every other fold."""
    out: list[int | None] = [None] * len(rows)
    for f in sorted({key(r) for r in rows}):
        w = ascend([r for r in rows if key(r) != f])
        print(f"fusion fit without {f}: {w.round(3).tolist()}", file=sys.stderr)
        for i, r in enumerate(rows):
            if key(r) == f and len(r["x"]):
                out[i] = lead(signals(r) @ w, r)
    return out


def lead(scores: np.ndarray, row: dict) -> int:
    """The candidate `answer.compose` would put first given these scores (see the module doc)."""
    order = np.argsort(-scores, kind="stable")
    seen, firsts = set(), []
    for i in order:
        if row["para"][i] not in seen:
            seen.add(row["para"][i])
            firsts.append(int(i))
        if len(firsts) == LEAD:
            break
    return next((i for i in firsts if row["meets"][i]), firsts[0])


def pick(row: dict, model) -> int | None:
    """The candidate put first under `model` (None: the fused order); None without candidates."""
    x = np.asarray(row["x"], dtype=np.float64)
    if not len(x):
        return None
    n = len(x) if model is None else min(model.top, len(x))
    s = -np.arange(len(x), dtype=np.float64)  # the fused order
    if model is not None and n > 1:
        sc = model.scores(x[:n])
        s[:n] = 100.0 + sc - sc.min()
    return lead(s, row)


def hit(row: dict, model) -> bool:
    i = pick(row, model)
    return i is not None and bool(row["y"][i])


def folds(rows: list[dict]) -> dict[str, str]:
    """group -> fold: each single-document set alone; doc2dial's pages in PAGE_FOLDS folds."""
    out = {}
    for g in sorted({r["group"] for r in rows}):
        name, page = g.split(":", 1)
        out[g] = f"d2d{zlib.crc32(page.encode()) % PAGE_FOLDS}" if name in ("dmv", "studentaid") else name
    return out


def held_out(rows: list[dict], key, fitter=None, label: str = "y") -> list[int | None]:
    """Each row's first candidate under a model fitted (`fitter`, default `fit`) on the rows of
    every other fold (`key(row)`), trained on `label` ("y": the grown quote hits; "alone": the
    candidate sentence by itself does)."""
    out: list[int | None] = [None] * len(rows)
    for f in sorted({key(r) for r in rows}):
        model = (fitter or fit)([r | {"y": r[label]} for r in rows if key(r) != f])
        for i, r in enumerate(rows):
            if key(r) == f:
                out[i] = pick(r, model)
    return out


def rate(rows: list[dict], hits: list[bool], name: str, later: bool | None = None) -> float:
    """Hit@1 of one set's rows (with `later`: only follow-ups, or only first turns)."""
    idx = [i for i, r in enumerate(rows) if r["set"] == name and (later is None or r["later"] == later)]
    return sum(hits[i] for i in idx) / len(idx) if idx else float("nan")


def table(rows: list[dict], columns: dict[str, list[int | None]]) -> str:
    """Hit@1 per set (first turns / follow-ups), their mean, and the first quotes' median words."""
    lines = ["| set | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    hits = {k: [i is not None and bool(r["y"][i]) for r, i in zip(rows, v)] for k, v in columns.items()}
    for name in SETS:
        cells = []
        for h in hits.values():
            allr, first, later = (rate(rows, h, name, k) for k in (None, False, True))
            cells.append(f"{allr:.3f} ({first:.3f} / {later:.3f})" if not np.isnan(later) else f"{allr:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    means = [f"{np.mean([rate(rows, h, s) for s in SETS]):.3f}" for h in hits.values()]
    lines.append("| mean of the sets | " + " | ".join(means) + " |")
    words = [" / ".join(f"{np.median([r['words'][i] for r, i in zip(rows, v) if r['set'] == s and i is not None]):.0f}"
                        for s in SETS) for v in columns.values()]
    lines.append("| median quote words | " + " | ".join(words) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/qa-suite"))
    ap.add_argument("--rows", type=Path, help="keep the collected rows in this JSON file (reused when present)")
    ap.add_argument("--limit", type=int, help="at most N records per set (quick runs)")
    ap.add_argument("--sweep", action="store_true", help="also report other C and TOP values, held out")
    ap.add_argument("--write", action="store_true", help=f"fit on every row and write {learned_rank.PARAMS}")
    args = ap.parse_args(argv)
    if args.rows and args.rows.exists():
        rows = json.loads(args.rows.read_text())
    else:
        rows = collect(args.cache, Policy(), args.limit)
        if args.rows:
            args.rows.write_text(json.dumps(rows))
    fold = folds(rows)
    by_doc = lambda r: fold[r["group"]]
    cols = {"shipped fusion (in-sample)": [pick(r, None) for r in rows],
            "fusion refit by document": held_out_fusion(rows, by_doc),
            "linear, by document": held_out(rows, by_doc, fit_linear),
            "trees, by document": held_out(rows, by_doc),
            "trees, by set": held_out(rows, lambda r: r["set"]),
            "trees on the sentence alone, by document": held_out(rows, by_doc, label="alone")}
    engine = sum(r["engine_hit"] == hit(r, None) for r in rows)
    print(f"the emulated first citation scores as the engine's for {engine} of {len(rows)} questions")
    if args.sweep:
        for trees in ((2, 100, 0.05, 40), (3, 200, 0.05, 40), (3, 200, 0.05, 80), (4, 200, 0.05, 40)):
            cols[f"trees {trees}, by document"] = held_out(rows, by_doc, lambda rs, t=trees: fit(rs, TOP, t))
        for c in (0.003, 0.1):
            cols[f"linear C={c}, by document"] = held_out(rows, by_doc, lambda rs, c=c: fit_linear(rs, TOP, c))
    print("Hit@1, all (first turns / follow-ups); learned: held out\n")
    print(table(rows, cols))
    if args.write:
        model = fit(rows)
        obj = model.to_json(fitted_on=f"{len(rows)} answerable records of {', '.join(SETS)} (tools/fit_rank.py)",
                            trees="depth, trees, learning rate, least rows per leaf: " + str(list(TREES)))
        learned_rank.PARAMS.write_text(json.dumps(obj, separators=(",", ":")) + "\n", encoding="utf-8")
        print(f"\nwrote {learned_rank.PARAMS} ({learned_rank.PARAMS.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
