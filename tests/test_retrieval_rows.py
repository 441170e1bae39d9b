"""qa.retrieval's helpers for the scale path on tiny arrays: ranks_of, answer-type scores and
best-per-group restricted to candidate `rows`, and candidate_rows itself."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from qa.retrieval import Cues, answer_type_scores, best_per_group, candidate_rows, ranks_of, spread

SENTENCES = ["He met Raul Castro in 1968.", "They talked.", "Three hundred rifles arrived.",
             "In January the ship left Havana.", "It was quiet.", "Kim Il Sung received him."]


def rank_of(scores, i):
    return ranks_of(scores, [i])[0]


def test_rank_of_is_the_position_in_a_stable_descending_sort():
    assert rank_of(np.array([.1, .9, .5]), 2) == 2
    assert rank_of(np.array([.1, .9, .5]), 1) == 1
    assert [rank_of(np.array([.5, .5, .5]), i) for i in range(3)] == [1, 2, 3]  # ties go to the earlier
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 5, 40).astype(np.float32)  # many ties
    order = np.argsort(-scores, kind="stable")
    for i in range(len(scores)):
        assert rank_of(scores, i) == int(np.where(order == i)[0][0]) + 1


@pytest.mark.parametrize("qtype", ["when", "number", "who", "where", ""])
def test_answer_type_scores_with_rows_equal_the_full_scores_at_those_rows(qtype):
    cues = Cues.of(SENTENCES)
    full = answer_type_scores(qtype, cues, {"met", "raul"})
    for rows in ([0], [5, 1, 3], [2, 2], list(range(len(SENTENCES)))):
        part = answer_type_scores(qtype, cues, {"met", "raul"}, np.array(rows))
        assert part.dtype == np.float32 and part.tolist() == full[rows].tolist()


def test_answer_type_scores_mark_what_is_asked_for():
    cues = Cues.of(SENTENCES)
    assert answer_type_scores("when", cues, set()).tolist() == [1, 0, 0, 1, 0, 0]
    assert answer_type_scores("number", cues, set()).tolist() == [1, 0, 1, 0, 0, 0]
    # "Raul Castro" is a name, but not one the question did not already hold
    assert answer_type_scores("who", cues, {"raul", "castro"}).tolist() == [0, 0, 0, 1, 0, 1]
    assert answer_type_scores("", cues, set(), np.array([0, 1])).tolist() == [0, 0]


def test_best_per_group_among_candidates_only():
    scores = np.array([.2, .9, .5, .4, .8, .1])
    groups = ["a", "a", "b", "c", "c", "d"]
    assert best_per_group(scores, groups, 3) == [1, 4, 2]
    assert best_per_group(scores, groups, 3, among=np.array([0, 2, 3])) == [2, 3, 0]  # 1 and 4 not candidates
    assert best_per_group(scores, groups, 10, among=np.array([5, 3, 0])) == [3, 0, 5]  # order of `among` is irrelevant
    assert best_per_group(scores, groups, 2, among=np.array([], dtype=np.int64)) == []
    # the same as masking every non-candidate out of the full ranking
    rng = np.random.default_rng(5)
    s = rng.random(30)
    g = [i // 3 for i in range(30)]
    among = rng.choice(30, 12, replace=False)
    masked = np.where(np.isin(np.arange(30), among), s, -np.inf)
    assert best_per_group(s, g, 5, among=among) == best_per_group(masked, g, 5)


def _flat(vectors):
    ix = faiss.IndexFlatIP(vectors.shape[1])
    ix.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return ix


def test_candidate_rows_are_the_faiss_neighbours_plus_bm25s_best():
    v = np.eye(6, dtype=np.float32)
    q = (v[1] + 0.5 * v[4]) / np.linalg.norm(v[1] + 0.5 * v[4])
    bm25 = np.array([0, 0, 3.0, 0, 0, 1.0])
    assert candidate_rows(q, _flat(v), bm25, k=2, lexical_k=1).tolist() == [1, 2, 4]
    assert candidate_rows(q, _flat(v), bm25, k=2, lexical_k=5).tolist() == [1, 2, 4, 5]  # zero bm25 never joins
    assert candidate_rows(q, _flat(v), np.zeros(6), k=1, lexical_k=3).tolist() == [1]
    assert candidate_rows(q, _flat(v), bm25, k=100, lexical_k=100).tolist() == list(range(6))  # k beyond the index
    assert candidate_rows(q, _flat(v), bm25, k=2, lexical_k=0).tolist() == [1, 4]
    rows = candidate_rows(q, _flat(v), bm25, k=3, lexical_k=2)
    assert rows.dtype == np.int64 and np.all(np.diff(rows) > 0)  # sorted and unique


def test_spread_fills_non_candidates():
    assert spread(np.array([5.0, 7.0]), np.array([0, 2]), 3, -1.0).tolist() == [5, -1, 7]
