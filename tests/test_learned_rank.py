"""The learned reranker (qa/learned_rank.py) on the real model and index: its features, the
order it gives the fused ranking's best candidates, what it leaves alone (quotes grow on the
fused scores, the confidence features read them), the shipped parameter file, and the fitting
tool's model and first-citation emulation on rows small enough to check by hand."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qa import learned_rank
from qa.answer import compose
from qa.ranking import Conversation, Policy, Question, rank

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import fit_rank

QUESTION = "When did Che Guevara visit Pyongyang?"


def ranked(engine, question: str, policy: Policy):
    snap = engine.snapshot()
    q = Question.of(question)
    return snap, q, rank(snap, q, Conversation(), engine._encode, policy)


def stump(name: str, threshold: float, left: float, right: float, top: int = 8) -> learned_rank.Model:
    """One tree of one split: `left` where the feature is at most `threshold`, else `right`."""
    return learned_rank.Model(0.0, np.array([[learned_rank.NAMES.index(name)]]), np.array([[threshold]]),
                              np.array([[left, right]]), top)


def prefers_other_length(snap, plain) -> tuple[learned_rank.Model, int]:
    """A stump preferring, among the top 8, sentences on the other side of their median length
    than the fused best; and the sentence it should put first (the fused best of those)."""
    top = learned_rank.top_rows(plain, 8)
    size = np.log1p([len(snap.data.sentences[i].text.split()) for i in top])
    cut = float(np.median(size))
    long_wanted = size[0] <= cut
    wanted = [int(i) for i, v in zip(top, size) if (v > cut) == long_wanted]
    return stump("words_log", cut, 0.0 if long_wanted else 1.0, 1.0 if long_wanted else 0.0), wanted[0]


def test_every_candidate_gets_one_finite_row_of_the_named_features(real_engine):
    snap, q, r = ranked(real_engine, QUESTION, replace(Policy(), learned_top=0))
    top = learned_rank.top_rows(r, 16)
    x = learned_rank.features(snap, q, r, top)
    assert x.shape == (16, len(learned_rank.NAMES)) and np.isfinite(x).all()
    col = dict(zip(learned_rank.NAMES, x.T))
    assert col["fused_gap"][0] == 0 and (col["fused_gap"] <= 0).all()  # best first
    assert col["type"].max() == 1.0 and (col["type_near"] >= col["type"]).all()  # dates, for a "when" question
    assert col["names_sent"].max() == 1.0  # some candidate names Che Guevara and Pyongyang


def test_the_model_orders_the_best_candidates_and_the_fused_scores_are_kept(real_engine):
    snap, q, plain = ranked(real_engine, QUESTION, replace(Policy(), learned_top=0))
    model, expected = prefers_other_length(snap, plain)
    r = learned_rank.rerank(snap, q, plain, model)
    top = learned_rank.top_rows(plain, 8)
    assert int(np.argmax(r.fused)) == expected != int(top[0])  # the fused best of the preferred length
    assert np.array_equal(r.prior, plain.fused)  # quotes, scores and confidence read these
    rest = np.setdiff1d(np.arange(len(r.fused)), top)
    assert r.fused[top].min() > r.fused[rest].max()  # the candidates stay above every other sentence
    assert np.array_equal(r.fused[rest], plain.fused[rest])


def test_a_reranked_answer_quotes_and_scores_on_the_fused_scores(real_engine):
    snap, q, plain = ranked(real_engine, QUESTION, replace(Policy(), learned_top=0))
    r = learned_rank.rerank(snap, q, plain, prefers_other_length(snap, plain)[0])
    a = compose(snap, q, r, 5, Policy())
    assert a.citations[0].quote != compose(snap, q, plain, 5, Policy()).citations[0].quote  # the model's lead
    for c in a.citations:
        assert c.verified
        assert c.score <= plain.fused.max() and np.isclose(plain.fused, c.score).any()  # fused, not the model's


def test_without_a_model_the_fused_ranking_is_unchanged(real_engine):
    snap, q, plain = ranked(real_engine, QUESTION, replace(Policy(), learned_top=0))
    assert learned_rank.rerank(snap, q, plain, None) is plain


def test_the_shipped_parameters_match_the_features_computed(real_engine):
    model = learned_rank.load()
    obj = json.loads(learned_rank.PARAMS.read_text(encoding="utf-8"))
    assert model is not None and obj["features"] == list(learned_rank.NAMES)
    assert np.isfinite(model.leaf).all() and model.top == fit_rank.TOP
    assert model.feature.max() < len(learned_rank.NAMES) and model.depth == fit_rank.TREES[0]


def test_parameters_fitted_on_other_features_are_one_clear_error():
    obj = stump("sent", 0.5, 0.0, 1.0).to_json()
    obj["features"] = ["a", "b"]
    with pytest.raises(ValueError, match="refit it with tools/fit_rank.py"):
        learned_rank.Model.from_json(obj)


def test_the_policy_switch_turns_the_reranker_on_and_off(real_engine):
    _, _, off = ranked(real_engine, QUESTION, replace(Policy(), learned_top=0))
    _, _, on = ranked(real_engine, QUESTION, replace(Policy(), learned_top=16))
    assert off.prior is None and on.prior is not None and np.array_equal(on.prior, off.fused)


def test_the_trees_walked_with_numpy_give_scikit_learns_scores():
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    y = (x[:, 0] + 0.5 * x[:, 3] * x[:, 1] > 0.2)
    gbm = HistGradientBoostingClassifier(max_depth=3, max_iter=30, min_samples_leaf=40, early_stopping=False,
                                         random_state=0).fit(x, y)
    model = fit_rank.export(gbm, 3, 16)  # some trees stop above depth 3 (min_samples_leaf): completed
    assert np.allclose(model.scores(x), gbm.decision_function(x), atol=1e-9)


def test_the_fitted_model_learns_which_feature_marks_the_hits():
    rng = np.random.default_rng(0)
    k = len(learned_rank.NAMES)
    rows = []
    for n in range(300):
        x = rng.normal(size=(6, k))
        hit = int(rng.integers(6))
        x[:, 5] = 0.0
        x[hit, 5] = 1.0  # the 'win_gap' column marks the hitting candidate
        rows.append({"x": x.tolist(), "y": [i == hit for i in range(6)], "set": "s", "meets": [True] * 6,
                     "para": list(range(6))})
    model = fit_rank.fit(rows, top=6)
    assert (model.feature[:, 0] == 5).all()  # every tree splits on it first
    assert all(fit_rank.hit(r, model) for r in rows)
    linear = fit_rank.fit_linear(rows, top=6, c=1.0)
    assert int(np.argmax(linear.coef)) == 5


def test_the_first_citation_emulation_skips_a_paragraph_seen_and_a_quote_that_meets_nothing():
    row = {"para": [7, 7, 8, 9], "meets": [False, True, False, True], "y": [False, False, False, True]}
    # best per paragraph: 0 (para 7), 2 (para 8), 3 (para 9); 0 and 2 meet nothing beyond the names
    assert fit_rank.lead(np.array([4.0, 3.0, 2.0, 1.0]), row) == 3
    row["meets"] = [False] * 4
    assert fit_rank.lead(np.array([4.0, 3.0, 2.0, 1.0]), row) == 0
