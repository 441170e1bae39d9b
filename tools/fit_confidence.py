"""Fit the confidence model (qa/params/confidence.json) from the repository's eval data.

    PYTHONPATH=. .venv/bin/python tools/fit_confidence.py [--rows FILE] [--write]

1. Collect: every question of every set in eval/ asked of its own index, plus other sets'
   questions asked of it (negatives), with the features the engine computed for its answer
   (tools/evalsuite.py; or read them from --rows FILE written by `evalsuite.py --rows`).
2. Two labels: `hit` = the answer's first citation is a hit; `answerable` = the index holds
   an answer (unanswerable and foreign questions: 0 for both).
3. For each, fit a logistic regression on standardised features, each set weighing the same,
   with grouped 5-fold cross-validation BY DOCUMENT (the article, each SQuAD article, each
   doc2dial page; a question stays with its document wherever it is asked): every row gets an
   out-of-fold logit from a model that never saw its document.
4. Calibrate: a Platt rescaling of the out-of-fold logits. Threshold on `answerable`: the
   highest at which no set refuses more than `MAX_ANSWERABLE_REFUSED` of its answerable
   questions, out of fold.
5. Print held-out figures per set at that threshold, the reliability table and ECE of the
   confidence; with --write, store the parameters (full-data regressions + their Platt
   rescalings + the threshold).

scikit-learn is used here only; the engine reads the JSON with numpy (qa/confidence.py).
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
from qa import evaluate
from qa.confidence import PARAMS
from qa.features import NAMES

FOLDS = 5
C = 1.0  # inverse L2 strength of the regression (sklearn default)
MAX_ANSWERABLE_REFUSED = 0.05  # the operating point: share of a set's answerable questions refused, out of fold
DECIMALS = 6  # parameters are stored rounded, so that a refit reproduces the file byte for byte


def collect(rows_file: Path | None, cache: Path) -> list[dict]:
    if rows_file:
        with open(rows_file, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    import evalsuite

    from qa import confidence

    confidence.PARAMS = cache / "no-parameters.json"  # the features do not depend on the parameters being refitted
    _, rows = evalsuite.run(list(evalsuite.SETS), None, cache)
    return rows


def arrays(rows: list[dict]):
    rows = [r for r in rows if r.get("features") is not None]
    X = np.array([r["features"] for r in rows], dtype=np.float64)
    y = np.array([bool(r["answerable"] and r["rank"] == 1) for r in rows], dtype=int)
    # a question's document is its group wherever it is asked: the article's questions asked of
    # the normans index are held out with the article
    groups = np.array([r["group"] for r in rows])
    per_set = Counter(r["set"] for r in rows)
    w = np.array([len(rows) / (len(per_set) * per_set[r["set"]]) for r in rows])
    return rows, X, y, groups, w


def fit_lr(X, y, w):
    from sklearn.linear_model import LogisticRegression

    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale < 1e-9] = 1.0
    lr = LogisticRegression(C=C, max_iter=5000)
    lr.fit((X - mean) / scale, y, sample_weight=w)
    return mean, scale, lr.coef_[0], float(lr.intercept_[0])


def logits(X, mean, scale, coef, intercept):
    return ((X - mean) / scale) @ coef + intercept


def fit_platt(z, y, w):
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6, max_iter=5000)
    lr.fit(z.reshape(-1, 1), y, sample_weight=w)
    return float(lr.coef_[0][0]), float(lr.intercept_[0])


def out_of_fold(X, y, w, groups):
    from sklearn.model_selection import GroupKFold

    z = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=FOLDS).split(X, y, groups):
        z[test] = logits(X[test], *fit_lr(X[train], y[train], w[train]))
    return z


def choose_threshold(p, answerable, sets) -> float:
    """The highest threshold at which no set refuses more than MAX_ANSWERABLE_REFUSED of its
    answerable rows (a row is refused when p < threshold)."""
    best = 1.0
    for s in sorted(set(sets)):
        pa = np.sort(p[answerable & (sets == s)])
        if len(pa):
            k = int(np.floor(MAX_ANSWERABLE_REFUSED * len(pa)))  # the k lowest may be refused
            best = min(best, float(pa[k]))
    return best


def reliability(p, y, bins=10) -> tuple[list[tuple], float]:
    edges = np.linspace(0, 1, bins + 1)
    table, ece = [], 0.0
    for lo, hi in itertools.pairwise(edges):
        m = (p >= lo) & ((p < hi) if hi < 1 else (p <= hi))
        if m.any():
            table.append((lo, hi, int(m.sum()), float(p[m].mean()), float(y[m].mean())))
            ece += m.sum() / len(p) * abs(p[m].mean() - y[m].mean())
    return table, float(ece)


def r6(v):
    return [round(float(x), DECIMALS) for x in v] if np.ndim(v) else round(float(v), DECIMALS)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=Path, help="rows from `tools/evalsuite.py --rows FILE` (else collected now)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/qa-suite"))
    ap.add_argument("--write", action="store_true", help=f"write {PARAMS.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    rows, X, y, groups, w = arrays(collect(args.rows, args.cache))
    if X.shape[1] != len(NAMES):
        raise SystemExit(f"rows have {X.shape[1]} features, the engine computes {len(NAMES)}: collect them again")
    answerable = np.array([bool(r["answerable"]) for r in rows])
    sets = np.array([r["set"] for r in rows])
    print(f"{len(rows)} rows, {len(set(groups))} documents, {y.mean():.3f} hits, {answerable.mean():.3f} answerable",
          file=sys.stderr)
    params: dict = {"features": list(NAMES)}
    oof = {}
    for head, label in (("hit", y), ("answerable", answerable.astype(int))):
        z = out_of_fold(X, label, w, groups)
        a, b = fit_platt(z, label, w)
        oof[head] = 1 / (1 + np.exp(-(a * z + b)))
        mean, scale, coef, intercept = fit_lr(X, label, w)
        params[head] = {"mean": r6(mean), "scale": r6(scale), "coef": r6(coef), "intercept": r6(intercept),
                        "platt": [r6(a), r6(b)]}
    threshold = round(choose_threshold(oof["answerable"], answerable, sets), DECIMALS)
    params["threshold"] = threshold
    params["fitted_on"] = {"rows": len(rows), "documents": len(set(groups)), "folds": FOLDS, "C": C,
                           "max_answerable_refused": MAX_ANSWERABLE_REFUSED}
    for r, pa, ph in zip(rows, oof["answerable"], oof["hit"]):
        r["p_answerable"], r["confidence"] = float(pa), float(ph)
    figures = {name: evaluate.suite_figures([r for r in rows if r["set"] == name], threshold)
               for name in dict.fromkeys(sets)}
    print(f"held-out (grouped {FOLDS}-fold by document), refusing below P(answerable) {threshold}:")
    print(evaluate.format_suite(figures))
    by_kind = Counter((r["set"], r["kind"]) for r in rows if not r["answerable"] and r["kind"] != "foreign")
    refused = Counter((r["set"], r["kind"]) for r in rows if not r["answerable"] and r["kind"] != "foreign"
                      and r["p_answerable"] < threshold)
    print("unanswerable refused by kind: " + ", ".join(f"{s}/{k} {refused[(s, k)]} of {n}" for (s, k), n in by_kind.items()))
    table, ece = reliability(oof["hit"], y)
    print("\nreliability of the confidence (held out): bin, n, mean confidence, share of first citations that answer")
    for lo, hi, n, conf, acc in table:
        print(f"  {lo:.1f}-{hi:.1f} {n:6d} {conf:8.3f} {acc:8.3f}")
    print(f"ECE {ece:.3f}")
    for head in ("answerable", "hit"):
        print(f"\n{head} coefficients (standardised):")
        print("  " + "  ".join(f"{n} {c:+.2f}" for n, c in sorted(zip(NAMES, params[head]["coef"]),
                                                                  key=lambda t: -abs(t[1]))))
    if args.write:
        PARAMS.parent.mkdir(exist_ok=True)
        PARAMS.write_text(json.dumps(params, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {PARAMS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
