"""Failed, interrupted and killed builds, concurrent builds and questions, and the embedding
cache: the old version keeps serving and nothing is left behind. The hashing encoder throughout."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    ARTICLE,
    ARTICLE_ID,
    CountingEncoder,
    disk_fills_on_save,
    doc_text,
    ids,
    listing,
    make_engine,
    state,
)

from qa import store
from qa.engine import Engine
from qa.errors import BuildInProgress, QAError
from qa.library import BuildReport

# --- failed, interrupted and killed builds ------------------------------------------------------------

def _boom(*a, **k):
    raise RuntimeError("injected failure")


def _interrupt(*a, **k):
    raise KeyboardInterrupt


@pytest.mark.parametrize("failure", ["build_index", "encoder", "disk-full", "interrupt", "publish"])
def test_failed_build_leaves_the_old_version_serving(fake_engine, outside, monkeypatch, failure):
    s = fake_engine.settings
    old = fake_engine.snapshot().version
    other = make_engine(s)
    assert other.ask("Who is Matija Šerić?").index_version == old
    before = state(s)
    builder = fake_engine
    expected: type[BaseException] = RuntimeError
    if failure == "build_index":
        monkeypatch.setattr("qa.library.build_index", _boom)
    elif failure == "encoder":
        builder = Engine(s.with_(model="hash-64"), encoder=CountingEncoder(fail_on_call=2))
    elif failure == "disk-full":
        disk_fills_on_save(monkeypatch)
        expected = QAError
    elif failure == "interrupt":
        monkeypatch.setattr("qa.build.pack_pieces", _interrupt)
        expected = KeyboardInterrupt
    elif failure == "publish":
        monkeypatch.setattr(store, "publish", _boom)
    (outside / "x.txt").write_text(doc_text("Extra", "Extra text to index."))
    with pytest.raises(expected) as info:
        builder.library.build([outside / "x.txt", outside / "normans.txt"], add=True)
    if failure == "disk-full":
        assert "No space left" in str(info.value) and "still being served" in str(info.value)
    after = state(s)
    assert after[0] == before[0] == old
    assert after[2] == before[2], "source/ was changed by a failed build"
    if failure != "publish":
        assert after == before
    assert not list(store.versions_dir(s.index_dir).glob("*.partial"))
    assert other.ask("Who is Matija Šerić?").index_version == old
    assert make_engine(s).snapshot().version == old
    monkeypatch.undo()
    report = make_engine(s).library.build([outside / "x.txt"], add=True)  # the next build is not disturbed
    assert listing(store.versions_dir(s.index_dir)) == sorted([old, report.version])
    assert other.snapshot().version == report.version


KILL_SCRIPT = r"""
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from conftest import HashEncoder
from qa import store
from qa.config import Settings
from qa.engine import Engine

mode, index, source = sys.argv[1:4]
die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
if mode == "during-write":
    store._fsync_tree = die
elif mode == "before-publish":
    store.publish = die
Engine(Settings(index_dir=Path(index), source_dir=Path(source), model="hash-64"), encoder=HashEncoder()).library.build(
    [Path(source)])
print("published")
"""


def _run_build_process(mode: str, settings, tmp_path) -> subprocess.CompletedProcess:
    script = tmp_path / "build_proc.py"
    script.write_text(KILL_SCRIPT.format(tests=str(Path(__file__).parent)))
    return subprocess.run([sys.executable, str(script), mode, str(settings.index_dir), str(settings.source_dir)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)


@pytest.mark.parametrize("mode", ["during-write", "before-publish"])
def test_killed_build_process_leaves_nothing_that_breaks_the_next_build(fake_engine, tmp_path, mode):
    s = fake_engine.settings
    old = fake_engine.snapshot().version
    (s.source_dir / "new.txt").write_text(doc_text("New", "Text of the new one."))
    proc = _run_build_process(mode, s, tmp_path)
    assert proc.returncode == -9, proc.stderr
    root = store.versions_dir(s.index_dir)
    leftovers = [n for n in listing(root) if n != old]
    assert len(leftovers) == 1 and leftovers[0].endswith(".partial") == (mode == "during-write")
    assert store.current_version(s.index_dir) == old and make_engine(s).snapshot().version == old
    assert fake_engine.ask("Who is Matija Šerić?").index_version == old
    report = make_engine(s).library.build([s.source_dir])  # the lock was released by the kernel; prune cleans up
    assert listing(root) == sorted([old, report.version])
    assert fake_engine.snapshot().version == report.version and "new" in ids(fake_engine)


def test_running_engine_notices_a_version_published_by_another_process(fake_engine, tmp_path):
    s = fake_engine.settings
    old = fake_engine.snapshot().version
    (s.source_dir / "new.txt").write_text(doc_text("New", "Text of the new one."))
    proc = _run_build_process("publish", s, tmp_path)
    assert proc.returncode == 0 and "published" in proc.stdout, proc.stderr
    published = store.current_version(s.index_dir)
    assert published != old
    assert fake_engine.ask("What is the new one?").index_version == published  # no restart needed
    assert ids(fake_engine) == [ARTICLE_ID, "new"]


def test_running_engine_notices_a_version_published_by_another_engine(fake_engine, outside):
    old = fake_engine.snapshot().version
    other = make_engine(fake_engine.settings)
    report = other.library.build([outside / "normans.txt"], add=True)
    assert report.version != old
    a = fake_engine.ask("Who was Rollo?")
    assert a.index_version == report.version and a.citations[0].document == "normans"


# --- concurrency ----------------------------------------------------------------------------------

def test_questions_during_rebuilds_see_one_version_never_a_mix(settings, tmp_path):
    folder = tmp_path / "flip"
    folder.mkdir()
    target = folder / "doc.txt"
    variants = [
        doc_text("Colours", "The sky is red today.", "Grass is purple in this story.", "The sea is golden."),
        doc_text("Colours", "Long introduction paragraph that shifts every offset of the text below it.",
                 "The sea is silver and calm.", "The sky is green at dawn.", "Grass is orange here."),
    ]
    target.write_text(variants[0])
    builder = make_engine(settings.with_(index_dir=tmp_path / "ix"))
    builder.library.build([folder])
    texts: dict[str, dict[str, str]] = {}

    def remember():
        data = builder.snapshot().data
        texts[data.version] = {d.id: d.text for d in data.documents}

    remember()
    done = threading.Event()
    answers, errors = [], []

    def asker():
        engine = make_engine(settings.with_(index_dir=tmp_path / "ix"))
        while not done.is_set():
            try:
                for q in ("What colour is the sky?", "What colour is the sea?", "What colour is grass?"):
                    answers.append(engine.ask(q))
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=asker) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(12):
            target.write_text(variants[(i + 1) % 2])
            builder.library.build([folder])
            remember()
            time.sleep(0.01)
    finally:
        done.set()
        for t in threads:
            t.join(10)
    assert not errors, errors
    seen = {a.index_version for a in answers}
    assert len(seen) >= 2, "the askers should have seen several versions"
    for a in answers:
        docs = texts[a.index_version]
        for c in a.citations:
            assert docs[c.document][c.start:c.end] == c.quote, "an answer mixed two versions"


def test_two_rebuilds_at_once_one_gets_build_in_progress(fake_engine, outside):
    gate = threading.Event()
    slow = CountingEncoder(gate=gate)
    first = Engine(fake_engine.settings.with_(model="hash-64"), encoder=slow)
    results = {}

    def run():
        try:
            results["first"] = first.library.build([outside / "normans.txt"], add=True)
        except Exception as exc:  # noqa: BLE001
            results["first"] = exc

    t = threading.Thread(target=run)
    t.start()
    try:
        assert slow.started.wait(10)
        with pytest.raises(BuildInProgress, match="already in progress"):
            fake_engine.library.build([fake_engine.settings.source_dir])
        with pytest.raises(BuildInProgress):
            fake_engine.library.add_text("x.txt", "Some text.")
        with pytest.raises(BuildInProgress):
            fake_engine.library.remove(ARTICLE_ID)
    finally:
        gate.set()
        t.join(10)
    assert isinstance(results["first"], BuildReport), results["first"]
    assert ids(fake_engine) == [ARTICLE_ID, "normans"]
    assert not (fake_engine.settings.source_dir / "x.txt").exists()


# --- the embedding cache -------------------------------------------------------------------------

def test_only_changed_text_is_embedded_again(settings, tmp_path):
    enc = CountingEncoder()
    engine = make_engine(settings, enc)
    first = engine.library.build([settings.source_dir])
    assert first.encoded == len(enc.texts) == len(set(enc.texts))  # each distinct text once
    doc = engine.snapshot().data.documents[0]
    p5 = doc.paragraph(5).text
    first_sentence = p5.split(". ")[0]
    new_p5 = p5.replace(first_sentence, first_sentence + " (edited)", 1)
    edited = tmp_path / "edited" / ARTICLE.name
    edited.parent.mkdir()
    edited.write_text(doc.text.replace(p5, new_p5), "utf-8")

    enc.calls.clear()
    report = engine.library.build([edited], add=True)
    assert ids(engine) == [ARTICLE_ID]
    encoded = enc.texts
    assert report.encoded == len(encoded)
    assert any(t.startswith(first_sentence + " (edited)") and len(t) < len(new_p5) for t in encoded)
    assert all(t in new_p5 for t in encoded), "text outside the edited paragraph was embedded again"
    assert 2 <= len(encoded) <= 3  # the sentence and its windows (the paragraph's vector is derived: format 3)
    assert report.reused == report.sentences + report.chunks - len(encoded)

    enc.calls.clear()
    engine.library.build([edited], add=True)  # nothing changed: nothing embedded
    assert enc.calls == []
    new = engine.snapshot().data
    again = make_engine(settings.with_(index_dir=tmp_path / "fresh")).library.build([edited])
    fresh = store.load(tmp_path / "fresh", again.version)
    assert np.allclose(new.sentence_vectors, fresh.sentence_vectors)  # cached vectors are the right ones
    assert np.allclose(new.chunk_vectors, fresh.chunk_vectors)
    assert np.allclose(new.paragraph_vectors, fresh.paragraph_vectors)
