"""qa.tokens (word-piece late interaction) on tiny hand-made arrays: which pieces count, packing
into the index's arrays and back, idf, and the maxsim score with and without `rows`."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qa.tokens import Pieces, asked_match, idf, is_content, maxsim, pack, select, unpack


def _unit(*rows) -> np.ndarray:
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _e(i: int, dim: int = 4) -> list[float]:
    out = [0.0] * dim
    out[i] = 1.0
    return out


# --- which pieces count ---------------------------------------------------------------------

@pytest.mark.parametrize("piece", ["[CLS]", "[SEP]", "[PAD]", "[UNK]", ",", "?", ".", "##", "", "the", "did", "when"])
def test_is_content_drops_markers_punctuation_and_stop_words(piece):
    assert not is_content(piece)


@pytest.mark.parametrize("piece", ["##eva", "che", "gu", "visit", "1961", "##ra", "pyongyang",
                                   "##it", "##or", "▁visit", "Ġvisit"])  # a continuation is never a stop word
def test_is_content_keeps_words_and_word_pieces(piece):
    assert is_content(piece)


def test_select_keeps_content_pieces_with_their_ids_and_renormalised_vectors():
    pieces = ["[CLS]", "when", "did", "che", "gu", "##eva", "?", "[SEP]"]
    ids = np.arange(100, 108)
    vectors = np.arange(8 * 3, dtype=np.float32).reshape(8, 3) + 1.0  # not unit length
    p = select(pieces, ids, vectors)
    assert p.ids.dtype == np.int32 and p.ids.tolist() == [103, 104, 105]
    assert np.allclose(np.linalg.norm(p.vectors, axis=1), 1.0)
    assert np.allclose(p.vectors, vectors[3:6] / np.linalg.norm(vectors[3:6], axis=1, keepdims=True))


def test_select_gives_no_pieces_for_a_text_of_stop_words():
    # only markers, a stop word and punctuation: nothing to match (a stop word must not match
    # another stop word); pack gives such a sentence a zero row
    p = select(["[CLS]", "the", ".", "[SEP]", "[PAD]"], np.array([101, 1996, 1012, 102, 0]), np.eye(5, dtype=np.float32))
    assert p.ids.tolist() == [] and p.vectors.shape == (0, 5)


def test_select_ignores_pieces_beyond_the_vectors():
    # token list longer than the vectors (e.g. truncated by the model's max length)
    p = select(["[CLS]", "cuba", "korea", "sugar"], np.array([1, 2, 3, 4]), np.eye(3, dtype=np.float32))
    assert p.ids.tolist() == [2, 3]


# --- packing ---------------------------------------------------------------------------------

def test_pack_unpack_round_trip():
    a = Pieces(np.array([5, 9], dtype=np.int32), _unit(_e(0), [1, 1, 0, 0]))
    b = Pieces(np.array([7], dtype=np.int32), _unit([0, 0.6, 0.8, 0]))
    c = Pieces(np.array([5, 2, 3], dtype=np.int32), _unit(_e(3), _e(2), [1, 2, 3, 4]))
    ids, vectors, offsets = pack([a, b, c], 4)
    assert ids.dtype == np.int32 and vectors.dtype == np.float16 and offsets.dtype == np.int64
    assert offsets.tolist() == [0, 2, 3, 6]
    assert ids.tolist() == [5, 9, 7, 5, 2, 3]
    for i, want in enumerate([a, b, c]):
        got = unpack(ids, vectors, offsets, i)
        assert got.ids.dtype == np.int32 and got.vectors.dtype == np.float16  # as stored
        assert np.array_equal(got.ids, want.ids)
        assert np.allclose(got.vectors, want.vectors, atol=1e-3)  # float16 on disk


def test_pack_gives_an_empty_pieces_one_zero_row():
    full = Pieces(np.array([4], dtype=np.int32), _unit(_e(1)))
    ids, vectors, offsets = pack([Pieces.empty(4), full, Pieces.empty(4)], 4)
    assert offsets.tolist() == [0, 1, 2, 3]  # segments never empty
    assert np.all(np.diff(offsets) >= 1)
    assert ids.tolist() == [0, 4, 0]
    assert not vectors[0].any() and not vectors[2].any()
    empty = unpack(ids, vectors, offsets, 0)  # the zero row stands for "no pieces"
    assert len(empty.ids) == 0


def test_pack_of_nothing():
    ids, vectors, offsets = pack([], 4)
    assert offsets.tolist() == [0]
    assert ids.shape == (0,) and vectors.shape == (0, 4)
    assert maxsim(Pieces(np.array([1], np.int32), _unit(_e(0))), vectors, offsets, {}).shape == (0,)


# --- idf -------------------------------------------------------------------------------------

def test_idf_counts_sentences_not_occurrences():
    # sentence 0: 7, 7, 8   sentence 1: 7   sentence 2: 9
    table = idf(np.array([7, 7, 8, 7, 9]), np.array([0, 3, 4, 5]))
    assert table[7] == pytest.approx(math.log(4 / 2.5))  # in 2 of 3 sentences, however often
    assert table[8] == pytest.approx(math.log(4 / 1.5)) == table[9]
    assert table[7] < table[8]
    assert idf(np.zeros(0, np.int32), np.array([0])) == {}


# --- maxsim ----------------------------------------------------------------------------------

def _index():
    """Four sentences over a 4-d space; piece ids chosen so that 1 is common, 2 and 3 are rare."""
    items = [
        Pieces(np.array([1, 2], np.int32), _unit(_e(0), _e(1))),  # an exact copy of the question
        Pieces(np.array([1], np.int32), _unit(_e(0))),  # only the common piece
        Pieces(np.array([3, 1], np.int32), _unit([0, 0.8, 0.6, 0], _e(3))),  # a close counterpart of piece 2
        Pieces.empty(4),  # a sentence without pieces
    ]
    ids, vectors, offsets = pack(items, 4)
    return ids, vectors.astype(np.float32), offsets


def test_exact_copy_scores_one_and_a_partial_match_less():
    ids, vectors, offsets = _index()
    q = Pieces(np.array([1, 2], np.int32), _unit(_e(0), _e(1)))
    s = maxsim(q, vectors, offsets, idf(ids, offsets))
    assert s.dtype == np.float32 and s.shape == (4,)
    assert s[0] == pytest.approx(1.0, abs=1e-6)
    assert 0 < s[1] < 1 and 0 < s[2] < 1
    assert s[3] == pytest.approx(0.0)  # the zero row matches nothing
    assert int(np.argmax(s)) == 0


def test_maxsim_is_the_idf_weighted_mean_of_each_pieces_best_cosine():
    ids, vectors, offsets = _index()
    w = idf(ids, offsets)
    q = Pieces(np.array([1, 2], np.int32), _unit(_e(0), _e(1)))
    s = maxsim(q, vectors, offsets, w)
    w1, w2 = w[1], w[2]
    # sentence 2: piece 1 meets e3 (cos 0) and [0, .8, .6, 0] (cos 0) -> 0; piece 2 meets [0, .8, .6, 0] -> 0.8
    assert s[2] == pytest.approx(w2 * 0.8 / (w1 + w2), abs=1e-3)
    assert s[1] == pytest.approx(w1 / (w1 + w2), abs=1e-6)


def test_an_unseen_question_piece_weighs_more_than_a_common_one():
    ids, vectors, offsets = _index()
    w = idf(ids, offsets)
    assert 99 not in w
    # piece 1 is common; piece 99 the index never saw, its vector matches sentence 2's first piece
    q = Pieces(np.array([1, 99], np.int32), _unit(_e(0), [0, 0.8, 0.6, 0]))
    s = maxsim(q, vectors, offsets, w)
    unseen = math.log((len(offsets) - 1 + 1) / 0.5)  # lexical.idf(0, n): the one rule for unseen words
    assert s[2] > s[1]  # meeting only the unseen piece beats meeting only the common one
    assert s[2] == pytest.approx(unseen / (w[1] + unseen), abs=1e-3)
    assert s[1] == pytest.approx(w[1] / (w[1] + unseen), abs=1e-3)


def test_maxsim_with_rows_equals_the_full_result_at_those_rows():
    rng = np.random.default_rng(7)
    items = [Pieces(rng.integers(0, 20, m).astype(np.int32), _unit(*rng.normal(size=(m, 8))))
             for m in (3, 1, 5, 2, 4, 1, 6)]
    ids, vectors, offsets = pack(items, 8)
    w = idf(ids, offsets)
    q = Pieces(np.array([3, 11, 42], np.int32), _unit(*rng.normal(size=(3, 8))))
    full = maxsim(q, vectors, offsets, w)
    for rows in ([0], [6], [2, 4, 5], [5, 0, 3], list(range(7))):
        part = maxsim(q, vectors, offsets, w, np.array(rows))
        assert part.shape == (len(rows),)
        assert np.allclose(part, full[rows], atol=1e-6), rows
    assert maxsim(q, vectors, offsets, w, np.array([], dtype=np.int64)).shape == (0,)


def test_maxsim_without_question_pieces_is_zero():
    ids, vectors, offsets = _index()
    s = maxsim(Pieces.empty(4), vectors, offsets, idf(ids, offsets))
    assert s.shape == (4,) and not s.any()
    assert not maxsim(Pieces.empty(4), vectors, offsets, {}, np.array([1, 2])).any()


def test_merge_adds_only_missing_pieces_at_a_lower_weight():
    from qa.tokens import merge

    own = Pieces(np.array([1], np.int32), _unit(_e(0)))
    prev = Pieces(np.array([1, 2], np.int32), _unit(_e(0), _e(1)))
    m = merge(own, prev, 0.5)
    assert m.ids.tolist() == [1, 2] and m.scale.tolist() == [1.0, 0.5]
    _, vectors, offsets = pack([Pieces(np.array([2], np.int32), _unit(_e(1)))], 4)
    # the sentence matches only the borrowed piece: its share of the weight is 0.5 / 1.5
    assert maxsim(m, vectors, offsets, {1: 1.0, 2: 1.0})[0] == pytest.approx(1 / 3, abs=1e-3)


# --- what the question asks beyond its names -----------------------------------------------

def test_select_keeps_the_word_of_each_piece():
    text_pieces = ["[CLS]", "who", "poisoned", "ri", "yong", "-", "ho", "of", "ko", "##rea", "?", "[SEP]"]
    p = select(text_pieces, np.arange(len(text_pieces)), np.eye(len(text_pieces), 16))
    assert [text_pieces[i] for i in p.ids] == ["poisoned", "ri", "yong", "ho", "ko", "##rea"]
    assert p.words == ("poisoned", "ri", "yong", "ho", "korea", "korea")


def test_select_reads_word_start_marks_and_punctuation_of_other_tokenizers():
    pieces = ["<s>", "▁When", "▁did", "▁Ch", "e", "▁Gue", "vara", "▁visit", "▁Pyong", "yang", "?", "</s>"]
    p = select(pieces, np.arange(len(pieces)), np.eye(len(pieces), 16))
    assert p.words == ("che", "che", "guevara", "guevara", "visit", "pyongyang", "pyongyang")


@pytest.mark.parametrize("question", [
    "Who founded the Workers' Party of Korea?",
    "who founded the workers' party of korea?",  # no casing: the documents' capitals decide
    "WHO FOUNDED THE WORKERS' PARTY OF KOREA?",
    "Who Founded The Workers' Party Of Korea?",
])
def test_a_questions_names_do_not_depend_on_how_it_is_typed(question):
    from qa.tokens import capitalised_words, name_words

    known = capitalised_words(["In 2015 the Workers' Party of Korea and the Party of Cuba met.",
                               "It was founded late, and the party grew."])
    assert name_words(question, known) >= {"workers", "korea"}
    assert "founded" not in name_words(question, known)


def test_hyphenated_and_possessive_names_count_whole_and_in_parts():
    from qa.tokens import name_mask, name_words

    names = name_words("Who poisoned Ri Yong-ho, Kim's envoy?")
    assert {"ri", "yong-ho", "yong", "ho", "kim's", "kim", "s"} <= names and "poisoned" not in names
    p = Pieces(np.arange(4, dtype=np.int32), np.eye(4, dtype=np.float32), words=("poisoned", "ri", "yong", "ho"))
    assert name_mask(p, names).tolist() == [False, True, True, True]
    assert name_mask(Pieces(p.ids, p.vectors), names) is None  # words unknown


def test_asked_match_is_the_best_cosine_of_a_question_word_beyond_its_names():
    # question: a name piece (e0) and one asked piece (e1); sentence 0 has only the name,
    # sentence 1 a piece close to the asked one
    q = Pieces(np.array([1, 2], np.int32), _unit(_e(0), _e(1)))
    names = np.array([True, False])
    vectors = _unit(_e(0), _e(2), [0.0, 0.8, 0.6, 0.0])
    offsets = np.array([0, 2, 3])
    assert asked_match(q, names, vectors, offsets, 0, 0) == pytest.approx(0.0)
    assert asked_match(q, names, vectors, offsets, 1, 1) == pytest.approx(0.8)
    assert asked_match(q, names, vectors, offsets, 0, 1) == pytest.approx(0.8)
    assert asked_match(q, np.array([True, True]), vectors, offsets, 0, 1) is None  # "Raul Castro in May 2017?"
    assert asked_match(q, None, vectors, offsets, 0, 1) is None  # names unknown
