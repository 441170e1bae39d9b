"""The shared encoder's encode_pieces with the real model: one call gives sentence vectors and
each text's word pieces (raw: `TokenVectors`; `qa.tokens.content` keeps the content ones); the
cache and the micro-batching path keep the two consistent."""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pytest

from qa.embedding import TokenVectors, shared_encoder
from qa.tokens import Pieces, content, is_content

QUESTION = "When did Che Guevara visit Pyongyang?"


@pytest.fixture(scope="module")
def encoder():
    enc = shared_encoder()  # the process-wide instance the engines use: the model loads once
    enc.load()
    return enc


def _fresh(text: str) -> str:
    """A text no other test has put in the shared encoder's cache."""
    return f"{text} ({uuid.uuid4().hex[:8]})"


def _names(encoder, p: Pieces) -> list[str]:
    return encoder.load().tokenizer.convert_ids_to_tokens(p.ids.tolist())


def test_pieces_of_a_question_are_its_content_pieces(encoder):
    vectors, parts = encoder.encode_pieces([QUESTION])
    assert vectors.shape == (1, encoder.dim) and vectors.dtype == np.float32
    (raw,) = parts
    assert isinstance(raw, TokenVectors) and raw.tokens[0] == "[CLS]" and "?" in raw.tokens
    assert list(raw.tokens) == ["[CLS]", *encoder.load().tokenizer.tokenize(QUESTION), "[SEP]"]
    p = content(raw)
    assert isinstance(p, Pieces)
    names = _names(encoder, p)
    assert names and all(is_content(n) for n in names)
    assert not {"[CLS]", "[SEP]", "[PAD]", "when", "did", "?"} & set(names)
    # every content piece of the tokenizer's own split is kept, in order
    assert names == [t for t in encoder.load().tokenizer.tokenize(QUESTION) if is_content(t)]
    assert {"che", "visit", "##eva"} <= set(names)
    assert p.ids.dtype == np.int32 and p.vectors.shape == (len(names), encoder.dim)
    assert np.allclose(np.linalg.norm(p.vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # contextual vectors: the same word piece is not one fixed vector
    assert not np.allclose(p.vectors[0], p.vectors[1])


def test_sentence_vector_equals_plain_encode(encoder):
    text = _fresh(QUESTION)
    vectors, _ = encoder.encode_pieces([text])  # not cached yet: a model call with pieces
    plain = encoder.encode([text])
    assert np.allclose(vectors, plain, atol=1e-5)
    assert np.allclose(vectors, encoder._encode_now([text])[0], atol=1e-5)  # the plain model call, no cache
    other = _fresh("Who heads the Cuban government?")
    v2, _ = encoder.encode_pieces([other])
    assert float(v2[0] @ plain[0]) < 0.99  # a different text really gives a different vector


def test_second_call_is_served_from_the_cache(encoder):
    text = _fresh("Which model did Che Guevara say Cuba should follow?")
    v1, p1 = encoder.encode_pieces([text])
    hits = encoder.stats["cache_hits"]
    v2, p2 = encoder.encode_pieces([text])
    assert encoder.stats["cache_hits"] == hits + 1
    assert np.array_equal(v1, v2)
    assert np.array_equal(p1[0].ids, p2[0].ids) and np.array_equal(p1[0].vectors, p2[0].vectors)


def test_encode_then_encode_pieces_re_encodes_rather_than_returning_no_pieces(encoder):
    text = _fresh("In what year did the Bay of Pigs invasion take place?")
    plain = encoder.encode([text])  # caches the vector without pieces
    hits = encoder.stats["cache_hits"]
    vectors, parts = encoder.encode_pieces([text])
    assert encoder.stats["cache_hits"] == hits  # a vector without pieces is not a hit for encode_pieces
    assert parts[0] is not None and len(parts[0].ids) > 0
    assert {"bay", "pigs", "invasion"} <= set(_names(encoder, parts[0]))
    assert np.allclose(vectors, plain, atol=1e-5)
    # and now both kinds of call are served from the cache
    again, parts2 = encoder.encode_pieces([text])
    assert encoder.stats["cache_hits"] == hits + 1 and np.array_equal(parts2[0].ids, parts[0].ids)
    assert np.array_equal(again, vectors)
    assert np.allclose(encoder.encode([text]), plain, atol=1e-5)
    assert encoder.stats["cache_hits"] == hits + 2


def test_encode_pieces_then_encode(encoder):
    text = _fresh("Who was the first Cuban leader to visit North Korea?")
    vectors, _ = encoder.encode_pieces([text])
    assert np.allclose(encoder.encode([text]), vectors, atol=1e-5)


def test_a_batch_mixes_texts_of_different_lengths_and_cached_ones(encoder):
    short, long = _fresh("Cuba sugar."), _fresh("Che Guevara declared that Cuba should follow the North Korean model "
                                                 "after his visit to Pyongyang in 1960.")
    alone_short = encoder._encode_now([short], pieces=True)
    encoder.encode([long])  # the long text is cached without pieces
    vectors, parts = encoder.encode_pieces([short, long, short])
    assert len(parts) == 3 and all(p is not None for p in parts)
    assert np.allclose(vectors[0], alone_short[0][0], atol=1e-5)
    # padding in the batch adds no [PAD] pieces and leaves the short text's pieces as they were alone
    assert np.array_equal(parts[0].ids, alone_short[1][0].ids)
    assert np.allclose(parts[0].vectors, alone_short[1][0].vectors, atol=1e-4)
    assert np.array_equal(parts[0].ids, parts[2].ids)
    assert len(parts[1].ids) > len(parts[0].ids)


def test_concurrent_callers_with_and_without_pieces_share_one_batch(encoder):
    """Hold the model while a first caller is busy, queue callers of both kinds behind it, then
    let go: they are encoded in one batch, and each gets what it asked for."""
    texts = [_fresh(t) for t in ("Cuba and North Korea", "The Bay of Pigs invasion", "Raul Castro in 1968",
                                 "Kim Il Sung received Che Guevara", "sugar and rifles")]
    want = {t: encoder._encode_now([t], pieces=True) for t in texts}
    results: dict[str, tuple] = {}
    errors = []

    def call(text, pieces):
        try:
            results[text] = encoder.encode_pieces([text]) if pieces else (encoder.encode([text]), None)
        except BaseException as exc:  # noqa: BLE001 -- reported by the assertion below
            errors.append(exc)

    batches = encoder.stats["batches"]
    threads = [threading.Thread(target=call, args=(t, i % 2 == 0)) for i, t in enumerate(texts)]
    with encoder._model_lock:
        threads[0].start()  # leads a batch of its own and waits for the model
        deadline = time.monotonic() + 10
        while not encoder._busy and time.monotonic() < deadline:
            time.sleep(0.001)
        for t in threads[1:]:
            t.start()
        while time.monotonic() < deadline:
            with encoder._cv:
                if len(encoder._queue) == len(texts) - 1:
                    break
            time.sleep(0.001)
        with encoder._cv:
            assert len(encoder._queue) == len(texts) - 1
    for t in threads:
        t.join(30)
    assert not errors
    assert encoder.stats["batches"] == batches + 2  # the first caller alone, then the four queued together
    assert encoder.stats["max_batch"] >= len(texts) - 1
    for i, t in enumerate(texts):
        vectors, parts = results[t]
        assert np.allclose(vectors, want[t][0], atol=1e-5)
        if i % 2 == 0:
            assert parts is not None and np.array_equal(parts[0].ids, want[t][1][0].ids)
            assert np.allclose(parts[0].vectors, want[t][1][0].vectors, atol=1e-4)
        else:
            assert parts is None
    # a text first encoded without pieces in that batch still gets its pieces later
    v, p = encoder.encode_pieces([texts[1]])
    assert np.allclose(v, want[texts[1]][0], atol=1e-5)
    assert p[0] is not None and np.array_equal(p[0].ids, want[texts[1]][1][0].ids)
