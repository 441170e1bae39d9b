"""bench.int8's verdict: the largest change of any figure on any set, and which questions moved."""

from __future__ import annotations

from bench import int8


def test_largest_change_is_over_every_set_and_figure():
    base = {"a": {"hit@1": 0.9, "ans refused": 0.0, "auroc": 0.95}, "b": {"hit@1": 0.5, "una refused": 0.2}}
    other = {"a": {"hit@1": 0.9, "ans refused": 0.024, "auroc": 0.951}, "b": {"hit@1": 0.498, "una refused": 0.2}}
    worst, lines = int8.compare(base, other)
    assert abs(worst - 0.024) < 1e-12
    assert len(lines) == 2 and lines[0].endswith("max 0.0240") and lines[1].endswith("max 0.0020")


def test_figure_missing_on_a_set_is_not_a_change():
    worst, _ = int8.compare({"a": {"hit@1": 1.0, "una refused": None}}, {"a": {"hit@1": 1.0, "una refused": None}})
    assert worst == 0.0


def test_changed_lists_questions_whose_rank_or_refusal_moved():
    base = {("a", "q1"): (1, True), ("a", "q2"): (2, True), ("b", "q3"): (None, False)}
    other = {("a", "q1"): (1, True), ("a", "q2"): (2, False), ("b", "q3"): (3, True)}
    assert int8.changed(base, other) == {"a": ["q2"], "b": ["q3"]}
    assert int8.changed(base, dict(base)) == {}
