"""Load (issue 5): the web app with the real model under 20 concurrent API clients, and a full
queue answered at once with "busy, try again" instead of a hang. Loopback only, every wait bounded.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest
from conftest import ARTICLE, free_port, running_app
from gradio_client import Client
from gradio_client.utils import QueueError

from qa.document import normalise_newlines
from qa.engine import Engine

ARTICLE_ID = "unbreakable-alliance-cuba-north-korea"
CLIENTS, PER_CLIENT = 20, 5
DEADLINE_S = 150  # the whole load run; it takes about 15 s on 2 cores
QUESTIONS = [
    "When did Che Guevara visit Pyongyang?",
    "What bodies of water surround Cuba?",
    "Do Koreans and Cubans share the same cultural traditions?",
    "Who heads the Cuban government according to the article?",
    "In which years was the Korean War fought?",
    "Under whose auspices did the Americans intervene in Korea?",
    "How does the Monroe Doctrine see the Americas?",
    "In what year did the Bay of Pigs invasion take place?",
    "What crisis occurred in October 1962?",
    "Which neighbour ended up more developed than North Korea?",
    "Why must Havana and Pyongyang stick together?",
    "How did Bruno Rodriguez justify standing by Pyongyang?",
    "What will the Juche regime do with Cuban sugar?",
    "Did North Korea send anyone to Fidel Castro's funeral?",
    "What did Raul Castro say in May 2017?",
    "When did the new Cuban president travel to North Korea?",
    "What were the demonstrators in Havana demanding?",
    "What did North Korea's foreign ministry issue on July 16, 2021?",
    "What happened to the ship Chong Chon Gang in 2013?",
    "What topics does the author write about?",
    "What is the capital of Australia?",
    "How do I bake sourdough bread?",
    "Who founded the Workers' Party of Korea?",
]


@pytest.fixture(scope="module")
def app(real_index, tmp_path_factory):
    settings = real_index.with_(source_dir=tmp_path_factory.mktemp("load-source"), port=free_port())
    engine = Engine(settings)
    with running_app(engine, settings) as url:
        yield engine, url


def run_threads(target, n: int, deadline_s: float) -> None:
    threads = [threading.Thread(target=target, args=(i,), daemon=True, name=f"client-{i}") for i in range(n)]
    end = time.monotonic() + deadline_s
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"still running after {deadline_s} s: {stuck}"


@pytest.mark.slow
def test_100_questions_from_20_concurrent_clients_all_verbatim(app):
    engine, url = app
    text = normalise_newlines(ARTICLE.read_bytes().decode("utf-8"))
    assert engine.snapshot().docs[ARTICLE_ID].text == text  # the served text is the shipped file's
    results: list[tuple[str, dict, float]] = []
    errors: list[str] = []
    start = threading.Barrier(CLIENTS, timeout=60)

    def client(i: int) -> None:
        try:
            c = Client(url, verbose=False)
            start.wait()  # all 20 ask at once
            for j in range(PER_CLIENT):
                q = QUESTIONS[(i * PER_CLIENT + j) % len(QUESTIONS)]
                t0 = time.perf_counter()
                job = c.submit(q, [], api_name="/answer_json")
                results.append((q, job.result(timeout=60), time.perf_counter() - t0))
        except Exception as exc:  # noqa: BLE001 - every failure is counted
            errors.append(f"client {i}: {type(exc).__name__}: {exc}")

    t0 = time.perf_counter()
    run_threads(client, CLIENTS, DEADLINE_S)
    wall = time.perf_counter() - t0
    assert errors == []
    assert len(results) == CLIENTS * PER_CLIENT
    tops = defaultdict(set)
    for q, data, _ in results:
        assert "error" not in data, data
        assert data["question"] == q and data["citations"] and data["index_version"] == engine.snapshot().version
        for c in data["citations"]:
            assert c["document"] == ARTICLE_ID
            assert text[c["start"]:c["end"]] == c["quote"], f"not verbatim: {c}"
        assert data["answer"] == (data["citations"][0]["quote"] if data["found"] else None)
        top = data["citations"][0]
        tops[q].add((data["found"], top["paragraph"], top["start"], top["end"]))
    assert all(len(v) == 1 for v in tops.values()), "the same question got different answers under load"
    assert tops["When did Che Guevara visit Pyongyang?"].pop()[:2] == (True, 4)
    latencies = sorted(r[2] for r in results)
    print(f"\n100 questions, 20 clients: {wall:.1f} s wall, median {latencies[49] * 1000:.0f} ms, "
          f"max {latencies[-1] * 1000:.0f} ms")
    assert latencies[-1] < 60


def test_a_full_queue_says_busy_at_once_and_recovers(real_index, tmp_path):
    settings = real_index.with_(source_dir=tmp_path, port=free_port(), queue_size=1, concurrency=1)
    engine = Engine(settings)
    entered, release = threading.Event(), threading.Event()
    real_ask = engine.ask

    def held_ask(*args, **kwargs):  # the first question holds the only worker until released
        entered.set()
        release.wait(30)
        return real_ask(*args, **kwargs)

    engine.ask = held_ask
    question = "When did Che Guevara visit Pyongyang?"
    outcomes: list[tuple[str, float, str]] = []
    with running_app(engine, settings) as url:
        clients = [Client(url, verbose=False) for _ in range(6)]
        try:
            running = clients[0].submit(question, [], api_name="/answer_json")
            assert entered.wait(20), "the first question never started"

            def more(i: int) -> None:
                t0 = time.perf_counter()
                try:
                    data = clients[i + 1].predict(question, [], api_name="/answer_json")
                    outcomes.append(("ok", time.perf_counter() - t0, str(data.get("found"))))
                except QueueError as exc:
                    outcomes.append(("busy", time.perf_counter() - t0, str(exc)))
                except Exception as exc:  # noqa: BLE001
                    outcomes.append(("other", time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"))

            extra = [threading.Thread(target=more, args=(i,), daemon=True) for i in range(5)]
            for t in extra:
                t.start()
            deadline = time.monotonic() + 15
            while sum(o[0] == "busy" for o in outcomes) < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            busy = [o for o in outcomes if o[0] == "busy"]
            assert len(busy) == 4, outcomes  # one waits in the queue (size 1); the other four are told at once
            assert all(seconds < 5 for _, seconds, _ in busy), busy
            assert all("queue is full" in msg.lower() and "try again" in msg.lower() for _, _, msg in busy)
        finally:
            release.set()
        for t in extra:
            t.join(30)
        assert running.result(timeout=30)["found"] is True
        assert [o[0] for o in outcomes].count("ok") == 1 and all(o[0] != "other" for o in outcomes), outcomes
        assert clients[1].predict(question, [], api_name="/answer_json")["found"] is True  # recovered
