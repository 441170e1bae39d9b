"""The evaluation suite (tools/evalsuite.py, qa/evaluate.py): doc2dial's hit rule, AUROC, the
one-table figures, and a real run over the article's sets."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT

from qa import evaluate

LONG = "you must surrender the plates before you cancel the insurance policy of the vehicle"  # > 40 chars


def test_doc2dial_hit_when_the_gold_is_inside_the_quote():
    assert evaluate.is_hit_doc2dial(f"Note: {LONG}. Then call us.", {"gold": [LONG], "domain": "dmv"})


def test_doc2dial_hit_when_half_a_long_gold_is_shared():
    quote = LONG[: len(LONG) // 2 + 5] + " and nothing else"
    assert evaluate.is_hit_doc2dial(quote, {"gold": [LONG], "domain": "dmv"})
    assert not evaluate.is_hit_doc2dial(LONG[:30] + " other words entirely", {"gold": [LONG], "domain": "dmv"})


def test_doc2dial_a_gold_under_40_characters_must_be_inside():
    rec = {"gold": ["Citizenship requirements"], "domain": "studentaid"}
    assert evaluate.is_hit_doc2dial("The citizenship requirements are these.", rec)
    assert not evaluate.is_hit_doc2dial("Citizenship is required.", rec)


def test_auroc_counts_ties_as_half():
    assert evaluate.auroc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert evaluate.auroc([0.5, 0.5], [True, False]) == 0.5
    assert evaluate.auroc([0.1, 0.9], [True, False]) == 0.0
    assert evaluate.auroc([0.1], [True]) is None


def _row(answerable, rank, found, conf, kind="squad", followup=False):
    return {"kind": kind, "answerable": answerable, "rank": rank, "found": found, "p_answerable": conf,
            "score": 1.0, "quote_words": 10, "ms": 5.0, "followup": followup}


def test_suite_figures_split_turns_and_count_refusals_at_a_threshold():
    rows = [_row(True, 1, True, 0.9), _row(True, 2, True, 0.6, followup=True), _row(True, None, False, 0.2),
            _row(False, None, False, 0.1, kind="squad-impossible"), _row(False, None, True, 0.7, kind="foreign")]
    fig = evaluate.suite_figures(rows)
    assert fig["n"] == 4 and fig["hit@1"] == pytest.approx(1 / 3) and fig["hit@3"] == pytest.approx(2 / 3)
    assert fig["hit@1 first"] == 0.5 and fig["hit@1 follow"] == 0.0
    assert fig["ans refused"] == pytest.approx(1 / 3) and fig["una refused"] == 1.0 and fig["foreign refused"] == 0.0
    assert evaluate.suite_figures(rows, threshold=0.8)["foreign refused"] == 1.0
    assert fig["auroc"] == pytest.approx(4 / 6)
    assert "hit@1 follow" in evaluate.format_suite({"x": fig})


@pytest.mark.slow
def test_the_suite_runs_the_article_sets_in_one_call(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    import evalsuite

    figures, rows = evalsuite.run(["article"], None, tmp_path, all_names=["article", "normans"])
    fig = figures["article"]
    assert fig["n"] == 69  # 36 + 3 + 16 near-miss + 12 conversations + 2 definition questions
    assert fig["hit@1"] >= 0.85  # measured 0.933
    assert fig["una refused"] >= 0.4 and fig["ans refused"] <= 1 / 47  # measured 0.545, 1 of 47 (in-sample)
    assert all(r["features"] is not None and 0 <= r["confidence"] <= 1 and 0 <= r["p_answerable"] <= 1 for r in rows)
    assert {r["kind"] for r in rows} >= {"near-miss", "foreign", "followup"}
