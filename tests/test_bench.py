"""The reduced benchmark (issue 6): the ratios `python -m bench` reports, on small samples, with
margin, so that a regression fails CI. Absolute times are never asserted: the machine is shared
and noisy, so each figure is compared with its floor measured beside it in the same test."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest
from conftest import ARTICLE, ROOT

sys.path.insert(0, str(ROOT))  # `bench` lives next to `qa`, not installed

from bench import corpus, inproc, scale
from bench.coldstart import cold_start
from bench.http import app_server, run_levels
from qa.build import make_faiss_index
from qa.embedding import SentenceEncoder
from qa.retrieval import Signals, candidate_rows, fuse, spread

# --- cold start: what `import qa` and `qa --help` load ----------------------------------------

@pytest.mark.parametrize("what", ["import qa", "qa --help"])
def test_light_entry_points_never_import_torch(what):
    stmt = "import qa" if what == "import qa" else "from qa.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    probe = inproc.import_probe(stmt)
    assert "torch" not in probe["heavy_modules"], probe
    assert "gradio" not in probe["heavy_modules"], probe


# --- the encoder's batching, with a fake model (fast, exact counts) ----------------------------

class SlowModel:
    """Stands in for SentenceTransformer: each call takes `cost` seconds; records batch sizes."""

    def __init__(self, cost: float = 0.01, fail: bool = False):
        self.cost, self.fail, self.calls, self.active = cost, fail, [], 0

    def encode(self, texts, **kwargs):
        self.active += 1
        assert self.active == 1, "two threads inside the model at once"
        try:
            time.sleep(self.cost)
            if self.fail:
                raise RuntimeError("model exploded")
            self.calls.append(len(texts))
            return np.array([[len(t), 1.0, float(hash(t) % 97)] for t in texts], dtype=np.float32)
        finally:
            self.active -= 1


def fake_encoder(model, wait_ms=3.0) -> SentenceEncoder:
    enc = SentenceEncoder("fake", batch_wait_ms=wait_ms)
    enc._model, enc.dim = model, 3
    return enc


def ask_all(enc, texts, n_threads):
    out, errors = {}, []
    barrier = threading.Barrier(n_threads)

    def run(i):
        barrier.wait()
        for t in texts[i::n_threads]:
            try:
                out[t] = enc.encode([t])[0]
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    return out, errors


def test_concurrent_encodes_share_model_calls_and_get_their_own_vectors():
    model = SlowModel(cost=0.01)
    enc = fake_encoder(model)
    texts = [f"question number {i}" + "?" * (i % 5) for i in range(64)]
    out, errors = ask_all(enc, texts, 16)
    assert not errors and len(out) == 64
    want = fake_encoder(SlowModel(cost=0))
    for t, v in out.items():
        np.testing.assert_allclose(v, want.encode([t])[0], rtol=1e-6)
    assert sum(model.calls) == 64
    assert len(model.calls) <= 64 / 3, model.calls  # batched: far fewer model calls than questions


def test_a_lone_question_does_not_wait_for_company():
    model = SlowModel(cost=0.0)
    enc = fake_encoder(model, wait_ms=200)
    t = time.perf_counter()
    for i in range(5):
        enc.encode([f"alone {i}"])
    assert time.perf_counter() - t < 0.5  # a 200 ms wait per call would take 1 s


def test_a_model_error_reaches_every_waiting_caller_without_a_hang():
    enc = fake_encoder(SlowModel(cost=0.02, fail=True))
    out, errors = ask_all(enc, [f"q{i}" for i in range(12)], 6)
    assert not out and len(errors) == 12
    assert all("model exploded" in str(e) for e in errors)


def test_follow_up_reencoding_is_served_from_the_cache():
    model = SlowModel(cost=0.0)
    enc = fake_encoder(model)
    enc.encode(["Who received him?", "What was the Chong Chon Gang?"])
    enc.encode(["What was the Chong Chon Gang?"])
    assert model.calls == [2]


# --- the real model: answer latency, concurrency, build throughput ----------------------------

def test_answer_latency_is_close_to_the_encode_plus_search_floor(real_engine):
    r = inproc.answer_latency(real_engine, corpus.Pool(corpus.questions()), n=40, warmup=5, followups=5,
                              torch_floor=False)
    assert r["ratio_p50"] <= 1.5, r  # target 1.25 (bench/README.md); margin for a noisy machine
    assert r["encoder"]["cache_hits"] >= 5  # follow-ups reuse the previous question's vector


def test_concurrent_askers_are_batched_and_faster_than_one_at_a_time(real_engine):
    r = inproc.concurrency(real_engine, corpus.Pool(corpus.questions()[200:]), threads=(1, 8), total=48)
    assert r["8"]["errors"] == 0
    assert r["8"]["mean_batch"] >= 2, r
    # torch runs a batch on 2 threads far better than single questions (1.4-3.3x here); the ONNX
    # encoder runs on one thread, where a lone question is already near batched throughput
    # (1.1-1.8x, at 51-54 answers/s against torch's 30-56 at load 9): batching must not cost
    torch = getattr(real_engine.encoder, "backend", "torch") == "torch"
    assert r["8"]["speedup"] >= (1.3 if torch else 0.8), r


def test_build_throughput_is_close_to_raw_encode_throughput(real_engine, tmp_path):
    r = inproc.build_throughput(tmp_path, real_engine, reps=1, sources=[ARTICLE])
    assert r["ratio"] >= 0.7, r  # target 0.9


@pytest.mark.slow
def test_cold_start_to_first_answer_is_close_to_its_floor(real_index):
    r = cold_start(real_index.index_dir, corpus.Pool(corpus.questions()), runs=1)
    assert r["ratio"] <= 1.6, r  # target 1.3; one run each on a noisy machine


@pytest.mark.slow
def test_http_throughput_rises_with_concurrent_clients(real_index, tmp_path):
    with app_server(real_index.index_dir, tmp_path / "server.log") as (url, _):
        r = run_levels(url, corpus.Pool(corpus.questions()), ((1, 12), (10, 4)))
    ten = r["levels"]["10"]
    assert ten["errors"] == 0 and r["levels"]["1"]["errors"] == 0, r
    assert ten["speedup"] >= 1.8, r  # about 3.5x measured; 50 clients are in the full bench


# --- scale: HNSW recall and the candidate seam ---------------------------------------------

@pytest.fixture(scope="module")
def embedding_like(real_engine):
    d = real_engine.snapshot().data
    return scale.EmbeddingLike(np.vstack([d.sentence_vectors, d.chunk_vectors, d.paragraph_vectors]))


def test_hnsw_as_built_keeps_recall_at_10_above_095(embedding_like, real_engine):
    x = embedding_like.sample(20_000)
    index = make_faiss_index(x, ann_threshold=1000)  # forces HNSW with the build's own parameters
    assert hasattr(index, "hnsw")
    queries = real_engine.encoder.encode(corpus.questions()[:60])
    _, found = index.search(queries, 10)
    truth = np.argsort(-(queries @ x.T), axis=1)[:, :10]
    assert scale.recall_at(found, truth, 10) >= 0.95


def test_candidate_rows_match_exact_scoring_on_the_top_answers(embedding_like):
    n, rng = 20_000, np.random.default_rng(3)
    sent = embedding_like.sample(n)
    win = sent + 0.3 * np.roll(sent, 1, axis=0)
    win /= np.linalg.norm(win, axis=1, keepdims=True)
    paras = embedding_like.sample(n // 5)
    para_rows = np.arange(n) // 5
    bm25_s = np.where(rng.random(n) < 0.01, rng.random(n) * 5, 0).astype(np.float32)
    bm25_p = np.zeros(n, dtype=np.float32)
    index = make_faiss_index(win, ann_threshold=1000)
    agree = 0
    for q in sent[rng.choice(n, 30, replace=False)] + 0.05:
        q = q / np.linalg.norm(q)
        exact = fuse(Signals(sent @ q, win @ q, (paras @ q)[para_rows], bm25_s, bm25_p))
        rows = candidate_rows(q, index, bm25_s)  # what engine.score does above the ANN threshold
        approx = fuse(Signals(spread(sent[rows] @ q, rows, n, -1.0), spread(win[rows] @ q, rows, n, -1.0),
                              spread((paras @ q)[para_rows[rows]], rows, n, 0.0), bm25_s, bm25_p))
        assert len(rows) < n / 20
        agree += int(np.argmax(approx) == np.argmax(exact))
        np.testing.assert_allclose(approx[rows], exact[rows], rtol=1e-4, atol=1e-5)
    assert agree >= 28
