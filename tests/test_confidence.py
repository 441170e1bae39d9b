"""The learned abstainer and calibrated confidence (qa/features.py, qa/confidence.py, issue 12)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qa import confidence, features
from qa.retrieval import Cues


def test_shipped_parameters_match_the_features_the_engine_computes():
    model = confidence.load()
    assert model.names == features.NAMES
    assert 0.0 < model.threshold < 1.0
    for head in (model.hit, model.answerable):
        assert len(head.coef) == len(head.mean) == len(head.scale) == len(features.NAMES)
        assert (head.scale > 0).all()


def test_a_head_gives_a_probability_that_rises_with_a_positive_coefficient():
    n = len(features.NAMES)
    coef = np.zeros(n)
    coef[0] = 2.0
    head = confidence.Head(np.zeros(n), np.ones(n), coef, 0.0, 1.0, 0.0)
    low, high = head.probability([-1.0] + [0.0] * (n - 1)), head.probability([1.0] + [0.0] * (n - 1))
    assert 0.0 < low < 0.5 < high < 1.0


def test_without_a_parameter_file_every_answer_is_found_without_confidence(tmp_path):
    assert confidence.decide([0.0] * len(features.NAMES), path=tmp_path / "none.json") == (True, None)


def test_found_is_the_answerable_probability_against_the_shipped_threshold(tmp_path):
    obj = json.loads(confidence.PARAMS.read_text())
    n = len(features.NAMES)
    obj["answerable"] = {"mean": [0.0] * n, "scale": [1.0] * n, "coef": [1.0] + [0.0] * (n - 1),
                         "intercept": 0.0, "platt": [1.0, 0.0]}
    obj["threshold"] = 0.5
    path = tmp_path / "p.json"
    path.write_text(json.dumps(obj))
    assert confidence.decide([0.1] + [0.0] * (n - 1), path=path)[0]
    assert not confidence.decide([-0.1] + [0.0] * (n - 1), path=path)[0]


def test_the_confidence_follows_its_isotonic_curve_and_stays_inside_it():
    n = len(features.NAMES)
    head = confidence.Head(np.zeros(n), np.ones(n), np.eye(n)[0], 0.0, 1.0, 0.0,
                           (np.array([-1.0, 0.0, 1.0]), np.array([0.1, 0.4, 0.9])))
    assert head.probability([0.5] + [0.0] * (n - 1)) == pytest.approx(0.65)
    assert head.probability([-9.0] + [0.0] * (n - 1)) == pytest.approx(0.1)
    assert head.probability([9.0] + [0.0] * (n - 1)) == pytest.approx(0.9)


def test_parameters_fitted_on_other_features_say_to_refit(tmp_path):
    obj = json.loads(confidence.PARAMS.read_text())
    obj["features"] = obj["features"][:-1]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(ValueError, match="fit_confidence"):
        confidence.load(path)


def _tiny(question, quote_rows, history=(), names=("havana", "pyongyang")):
    """Four sentences in two paragraphs; the candidate is sentence 1 (quote rows as given)."""
    texts = ["Cuba is an island.", "Havana met Pyongyang in 1986.", "What is a lapse?", "Lapses cost money."]
    cues = Cues.of(texts)
    from qa.lexical import tokenize, words

    toks = [set(tokenize(t)) for t in texts]
    doc = " ".join(texts)
    prior = np.array([0.5, 1.5, 1.2, 0.4], dtype=np.float32)
    dense = np.array([0.1, 0.6, 0.5, 0.2], dtype=np.float32)
    lo, hi = quote_rows
    return features.compute(question, tokenize(question), set(names), prior, dense, None, None,
                            np.array([0, 0, 1, 1]), lo, lo, hi, toks, lambda i: texts[i],
                            frozenset(words(doc)), frozenset(tokenize(doc)),
                            {t: 1.0 for ts in toks for t in ts}, cues, 0.5, history).as_dict()


def test_features_of_a_quote_holding_the_names_and_the_date_asked_for():
    f = _tiny("When did Havana meet Pyongyang?", (1, 1))
    assert f["names_quote"] == f["names_doc"] == 1.0
    assert f["type_unmet"] == 0.0  # a "when" question, a quote with a year
    assert f["margin"] == pytest.approx(1.5 - 1.2)  # the best of the other paragraph
    assert f["quote_question"] == 0.0 and f["has_history"] == 0.0


def test_a_how_many_question_is_not_met_by_a_year_nor_a_when_question_by_its_own_date():
    assert _tiny("How many times did Havana meet Pyongyang?", (1, 1))["type_unmet"] == 1.0
    assert _tiny("When did Havana meet Pyongyang after 1986?", (1, 1))["type_unmet"] == 1.0


def test_a_possessive_name_counts_as_the_name():
    f = _tiny("Whom did Havana's mayor meet?", (1, 1), names=("havana's", "havana", "s"))
    assert f["names_quote"] == f["names_doc"] == 1.0


def test_words_beyond_the_names_that_the_document_lacks():
    f = _tiny("What currency does Havana use?", (1, 1))
    assert f["asked_doc"] == f["asked_para"] == 0.0  # neither "currency" nor "use" occurs
    f = _tiny("What does a lapse cost?", (3, 3))
    assert f["asked_doc"] == f["asked_para"] == 1.0


def test_features_of_a_faq_question_line_and_of_a_conversation():
    f = _tiny("What does a lapse cost?", (2, 2), history=["Tell me about insurance lapses"])
    assert f["quote_question"] == 1.0  # the page's own question line, not an answer
    assert f["has_history"] == 1.0 and 0.0 < f["hist_doc"] <= 1.0


def test_a_when_question_whose_quote_holds_no_date_is_unmet(real_engine):
    """With the real model: the article says Venezuela cut off the oil but not when."""
    i = features.NAMES.index("type_unmet")
    assert real_engine.ask("When did Fidel Castro visit Pyongyang?").features[i] == 0.0
    assert real_engine.ask("When did Venezuela cut off its oil supply to Cuba?").features[i] == 1.0


def _weak(engine, question, quote, names):
    """`features._weakest` of one question against one quote sentence, with the real model's pieces."""
    from qa import tokens

    _, parts = engine.encoder.encode_pieces([question, quote])
    q, s = (tokens.content(p) for p in parts)
    return features._weakest(q, np.asarray(s.vectors), np.array([0, len(s.ids)]), (0, 0), (), set(names))


def test_a_name_the_quote_lacks_is_its_least_met_name(real_engine):
    """weak_name: a near-miss question pairs the document's names wrongly; the quote about
    Fidel Castro's funeral does not meet 'Che Guevara', one about Che's death does."""
    names = {"che", "guevara"}
    _, _, away = _weak(real_engine, "Where did Che Guevara die?",
                       "After the death of Fidel Castro in late 2016, Pyongyang declared three days of mourning.", names)
    _, _, there = _weak(real_engine, "Where did Che Guevara die?", "Che Guevara died in Bolivia in 1967.", names)
    assert away < 0.4 and there > 0.8


def test_a_year_the_quote_does_not_hold_is_a_name_it_does_not_meet(real_engine):
    names = {"pyongyang", "1960"}
    _, _, other_year = _weak(real_engine, "Who visited Pyongyang in 1960?", "In 1986, Fidel Castro visited Pyongyang.", names)
    _, _, same_year = _weak(real_engine, "Who visited Pyongyang in 1960?", "In 1960, Che Guevara visited Pyongyang.", names)
    assert other_year < 0.6 and same_year > 0.8


def test_a_question_that_names_nothing_is_not_judged_on_names(real_engine):
    weak_quote, _, weak_name = _weak(real_engine, "How do I bake bread?", "Bread is baked in an oven.", set())
    assert weak_name == 1.0 and weak_quote < 1.0


def test_without_word_pieces_every_least_met_word_is_one():
    assert features._weakest(None, None, None, (0, 0), (), {"havana"}) == (1.0, 1.0, 1.0)
    assert _tiny("When did Havana meet Pyongyang?", (1, 1))["weak_name"] == 1.0  # _tiny gives no pieces


def test_every_answer_carries_a_calibrated_confidence(real_engine):
    good = real_engine.ask("In what year did the Bay of Pigs invasion take place?")
    off = real_engine.ask("How do I bake sourdough bread?")
    assert good.found and 0.0 <= good.confidence <= 1.0 and good.to_json()["confidence"] == round(good.confidence, 4)
    assert not off.found and off.confidence < good.confidence
    assert len(good.features) == len(features.NAMES)


def _fit_tool():
    import sys

    from conftest import ROOT

    sys.path.insert(0, str(ROOT / "tools"))
    import fit_confidence

    return fit_confidence


def test_a_bounded_coefficient_stays_on_the_side_its_meaning_says():
    fit = _fit_tool()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    y = (X[:, 0] - X[:, 1] + rng.normal(scale=0.5, size=400) > 0).astype(int)
    _, _, free, _ = fit.fit_lr(X, y, np.ones(400))
    _, _, bounded, _ = fit.fit_lr(X, y, np.ones(400), signs=[1, 1])
    assert free[0] > 0 > free[1]  # the data push the second feature down...
    assert bounded[0] > 0 and bounded[1] == pytest.approx(0.0, abs=1e-9)  # ...its bound holds it at 0


def test_the_thresholds_refuse_at_most_the_cap_of_any_set():
    fit = _fit_tool()
    p = np.array([0.1, 0.2, 0.3, 0.4] * 25 + [0.05, 0.5] * 50)
    answerable = np.ones(len(p), dtype=bool)
    sets = np.array(["a"] * 100 + ["b"] * 100)
    later = np.zeros(len(p), dtype=bool)
    t_first, _ = fit.choose_thresholds(p, answerable, sets, later, np.array(["squad"] * len(p)))
    for s in ("a", "b"):
        assert np.mean(p[sets == s] < t_first) <= fit.MAX_ANSWERABLE_REFUSED


def test_the_thresholds_spend_the_refusal_budget_where_it_refuses_unanswerable_questions():
    fit = _fit_tool()
    # 40 answerable rows (a budget of one refusal at 2.5%): 20 asked first, 20 later; the
    # unanswerable rows are asked first, just above the weakest answerable first question
    p = np.array([0.30] + [0.90] * 19 + [0.10] + [0.80] * 19 + [0.35] * 10)
    answerable = np.array([True] * 40 + [False] * 10)
    later = np.array([False] * 20 + [True] * 20 + [False] * 10)
    kinds = np.array(["squad"] * 40 + ["near-miss"] * 10)
    t_first, t_later = fit.choose_thresholds(p, answerable, np.array(["a"] * 50), later, kinds)
    refused = p < np.where(later, t_later, t_first)
    assert refused[:40].sum() <= 1 and refused[40:].all()  # the budget refuses the weak first question
    assert not refused[20]  # ...not the weak follow-up, which would buy nothing
