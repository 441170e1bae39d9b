"""The answer path's shortcuts give exactly what the longer way gave: top-k selection without a
full sort, best-per-group from a prefix (with its fallback), evidence ranks in one pass, the
who/where cue from a name index, and `replay` taking recently ranked questions again."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from qa import ranking
from qa.ranking import Conversation, Policy, Question, rank, replay
from qa.retrieval import Cues, best_per_group, ranks_of, top_k


def _old_best_per_group(scores, groups, k, among=None):
    """best_per_group as it was: a full stable sort, then the first entry of each group."""
    if among is None:
        order = np.argsort(-scores, kind="stable")
    else:
        among = np.sort(np.asarray(among, dtype=np.int64))
        order = among[np.argsort(-scores[among], kind="stable")]
    seen, out = set(), []
    for i in order:
        if groups[i] in seen:
            continue
        seen.add(groups[i])
        out.append(int(i))
        if len(out) == k:
            break
    return out


def test_top_k_is_the_stable_sorts_prefix_with_many_ties():
    rng = np.random.default_rng(7)
    for n in (1, 7, 64, 65, 300, 600, 2000, 5000):
        scores = rng.integers(0, 4, n).astype(np.float32)  # nearly every score tied
        for k in (1, 2, 8, 9, 40, n - 1, n):
            if k < 1:
                continue
            assert top_k(scores, k).tolist() == np.argsort(-scores, kind="stable")[:k].tolist()


def test_top_k_ties_go_to_the_earlier_index():
    for n in (100, 1000):  # sorted whole, and partitioned
        scores = np.zeros(n, dtype=np.float32)
        scores[[90, 10, 50]] = 1.0
        assert top_k(scores, 5).tolist() == [10, 50, 90, 0, 1]


def test_top_k_with_k_larger_than_n():
    assert top_k(np.array([.1, .3, .2]), 10).tolist() == [1, 2, 0]


def test_top_k_empty_and_k_zero():
    assert top_k(np.zeros(0, dtype=np.float32), 3).tolist() == []
    assert top_k(np.arange(5.0), 0).tolist() == []


def test_top_k_keeps_the_full_sorts_order_with_nan_and_inf():
    scores = np.full(2000, np.nan, dtype=np.float32)
    scores[[3, 150]] = [-np.inf, 0.5]
    for k in (1, 2, 8):
        assert top_k(scores, k).tolist() == np.argsort(-scores, kind="stable")[:k].tolist()
    scores = np.linspace(0, 1, 2000).astype(np.float32)
    scores[[5, 6]] = [np.inf, -np.inf]
    assert top_k(scores, 8).tolist() == np.argsort(-scores, kind="stable")[:8].tolist()


def test_best_per_group_falls_back_when_the_prefix_holds_too_few_groups():
    # the 600 best entries all belong to group "a": the prefix holds one group, not three
    scores = np.concatenate([np.linspace(2, 1, 600), np.linspace(.9, .1, 600)]).astype(np.float32)
    groups = ["a"] * 600 + [f"g{i % 4}" for i in range(600)]
    assert best_per_group(scores, groups, 3) == _old_best_per_group(scores, groups, 3) == [0, 600, 601]


@pytest.mark.parametrize("seed", range(5))
def test_best_per_group_equals_the_full_sort(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    scores = rng.integers(0, 50, n).astype(np.float32)
    groups = list(rng.integers(0, 60, n))
    among = rng.choice(n, 900, replace=False)
    for k in (1, 5, 7, 70):
        assert best_per_group(scores, groups, k) == _old_best_per_group(scores, groups, k)
        assert best_per_group(scores, groups, k, among) == _old_best_per_group(scores, groups, k, among)


def test_best_per_group_empty():
    assert best_per_group(np.zeros(0, dtype=np.float32), [], 5) == []


def test_ranks_of_equal_rank_of_with_ties():
    rng = np.random.default_rng(11)
    scores = rng.integers(0, 5, 300).astype(np.float32)
    idx = [0, 299, 17, 17, 150]
    order = np.argsort(-scores, kind="stable")  # a single entry's rank: its place in a stable descending sort

    def rank_of(s, i):
        return int(np.where(order == i)[0][0]) + 1

    assert ranks_of(scores, idx) == [rank_of(scores, i) for i in idx]
    assert ranks_of(scores, []) == []


def test_new_names_equals_a_set_difference_per_sentence():
    texts = ["He met Raul Castro in Havana.", "They talked.", "Then Castro left.", "He saw Kim Il Sung and Castro."]
    cues = Cues.of(texts)
    for words in (set(), {"castro"}, {"castro", "raul", "havana"}, {"kim", "il", "sung", "castro"}, {"nobody"}):
        assert cues.new_names(words).tolist() == [bool(n - words) for n in cues.names]


# --- replay takes recently ranked questions again ---------------------------------------

def _ranked_equal(a, b) -> bool:
    return (np.array_equal(a.fused, b.fused) and a.tokens == b.tokens
            and np.array_equal(a.signals.tokens, b.signals.tokens))


def test_replay_after_asking_is_the_state_ranking_anew_gives(real_engine, monkeypatch):
    snap, enc, p = real_engine.snapshot(), real_engine._encode, real_engine.policy
    history = [Question.of(t) for t in ("Who visited Pyongyang in 1960?", "What did he declare?",
                                        "When did Fidel Castro visit?")]
    conv = Conversation()
    for q in history:  # asked in turn, as a chat does: each ranked once, and kept
        conv = conv.after(q, rank(snap, q, conv, enc, p), snap, p.recent_turns)
    calls = []
    monkeypatch.setattr(ranking, "_rank", lambda *a, **k: calls.append(a) or pytest.fail("ranked again"))
    assert replay(snap, history, enc, p) == conv and not calls


def test_replay_ranks_anew_on_another_snapshot_or_policy(real_engine):
    snap, enc, p = real_engine.snapshot(), real_engine._encode, real_engine.policy
    q = Question.of("Who visited Pyongyang in 1960?")
    fresh = rank(snap, q, Conversation(), enc, p)
    other = Policy(followup_weight=0.5)
    assert ranking._recent.get(snap, (q, Conversation(), enc, p, None)) is fresh
    assert ranking._recent.get(snap, (q, Conversation(), enc, other, None)) is None
    assert _ranked_equal(ranking._rank(snap, q, Conversation(), enc, p), fresh)
    copy = ranking.Snapshot(snap.data)  # the same data, another snapshot object: not trusted
    assert ranking._recent.get(copy, (q, Conversation(), enc, p, None)) is None


def test_recent_ranked_holds_its_snapshot_weakly(real_engine):
    snap = ranking.Snapshot(real_engine.snapshot().data)
    q = Question.of("Who visited Pyongyang in 1960?")
    rank(snap, q, Conversation(), real_engine._encode, real_engine.policy)
    ref = ranking._recent._snap
    del snap
    gc.collect()
    assert ref() is None
