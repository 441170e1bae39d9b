"""Rebuilding from new text, safely (issue 4): replace / add / remove, keeping the default
index's documents in source_dir, staleness, failed and killed builds, concurrency, the
embedding cache, and the CLI. The hashing encoder everywhere except the one real-model CLI test."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ARTICLE, EVAL, HashEncoder, disk_fills_on_save

from qa import cli, document, store
from qa.engine import Engine
from qa.library import BuildReport
from qa.errors import BuildInProgress, IndexCorrupt, IndexMissing, InputError, QAError

NORMANS = EVAL / "squad" / "normans.txt"
ARTICLE_ID = "unbreakable-alliance-cuba-north-korea"


class CountingEncoder(HashEncoder):
    def __init__(self, fail_on_call: int | None = None, gate: threading.Event | None = None):
        self.calls: list[list[str]] = []
        self.fail_on_call = fail_on_call
        self.gate = gate
        self.started = threading.Event()

    @property
    def texts(self) -> list[str]:
        return [t for call in self.calls for t in call]

    def encode(self, texts):
        self.calls.append(list(texts))
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise RuntimeError("encoder crashed")
        return super().encode(texts)


def doc_text(title: str, *paragraphs: str) -> str:
    return "\n\n".join([title, *paragraphs]) + "\n"


def make_engine(settings, encoder=None) -> Engine:
    return Engine(settings.with_(model="hash-64"), encoder=encoder or HashEncoder())


def ids(engine: Engine) -> list[str]:
    return [d.id for d in engine.snapshot().data.documents]


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def state(settings) -> tuple:
    """What must not change when a build fails: CURRENT, the versions and the source folder."""
    root = store.versions_dir(settings.index_dir)
    return (store.current_version(settings.index_dir), listing(root),
            {p.name: p.read_bytes() for p in settings.source_dir.iterdir() if p.is_file()})


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder outside source_dir holding a second document."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "normans.txt").write_bytes(NORMANS.read_bytes())
    return folder


# --- replace and add ------------------------------------------------------------------------

def test_replace_builds_exactly_the_given_sources(fake_engine, outside):
    report = fake_engine.library.build([outside / "normans.txt"])
    assert ids(fake_engine) == ["normans"]
    assert report.documents == 1 and report.copied == ()
    m = fake_engine.snapshot().data.manifest
    assert m["sources"] == [str((outside / "normans.txt").resolve())]
    assert listing(fake_engine.settings.source_dir) == [ARTICLE.name]  # source/ untouched
    assert fake_engine.library.staleness() is None


def test_add_to_the_default_index_copies_the_file_into_source(fake_engine, outside):
    s = fake_engine.settings
    report = fake_engine.library.build([outside / "normans.txt"], add=True)
    assert ids(fake_engine) == [ARTICLE_ID, "normans"]
    assert list(report.copied) == [str(s.source_dir.resolve() / "normans.txt")]
    assert (s.source_dir / "normans.txt").read_bytes() == NORMANS.read_bytes()
    assert fake_engine.snapshot().data.manifest["sources"] == [str(s.source_dir.resolve())]
    # a restart serves the same set, without rebuilding
    restarted = make_engine(s)
    assert restarted.library.staleness() is None and restarted.library.ensure_index() is None
    assert ids(restarted) == [ARTICLE_ID, "normans"]
    # and even a full rebuild from source/ gives the same set
    shutil.rmtree(outside)
    restarted.library.build([s.source_dir])
    assert ids(restarted) == [ARTICLE_ID, "normans"]


def test_add_to_a_named_index_records_the_file_instead(settings, outside, tmp_path):
    own = tmp_path / "mine"
    own.mkdir()
    (own / "a.txt").write_text(doc_text("Alpha notes", "Alpha is the first letter."))
    engine = make_engine(settings.with_(index_dir=tmp_path / "named"))
    engine.library.build([own])
    engine.library.build([outside / "normans.txt"], add=True)
    assert ids(engine) == ["alpha-notes", "normans"]
    assert engine.snapshot().data.manifest["sources"] == [str(own.resolve()), str((outside / "normans.txt").resolve())]
    assert listing(settings.source_dir) == [ARTICLE.name]
    assert engine.library.staleness() is None


def test_add_of_a_same_named_file_replaces_the_document_and_keeps_its_id(fake_engine, tmp_path):
    s = fake_engine.settings
    edited = tmp_path / "edit" / ARTICLE.name
    edited.parent.mkdir()
    text = ARTICLE.read_text("utf-8").replace("The Unbreakable Alliance", "The Unbreakable Friendship")
    edited.write_text(text, "utf-8")
    report = fake_engine.library.build([edited], add=True)
    assert ids(fake_engine) == [ARTICLE_ID]  # same id although the title changed
    assert fake_engine.snapshot().data.documents[0].title.startswith("The Unbreakable Friendship")
    assert listing(s.source_dir) == [".removed", ARTICLE.name]  # replaced in place, the old copy kept aside
    assert (s.source_dir / ARTICLE.name).read_text("utf-8") == text
    (aside,) = (s.source_dir / ".removed").iterdir()
    assert aside.read_bytes() == ARTICLE.read_bytes() and aside.name.startswith(ARTICLE.name + ".")
    assert report.documents == 1
    assert make_engine(s).library.staleness() is None


def test_add_without_an_index_is_a_plain_build(settings, outside):
    engine = make_engine(settings)
    engine.library.build([outside / "normans.txt"], add=True)
    assert ids(engine) == ["normans"]


def test_add_refuses_to_extend_an_unreadable_index(fake_engine, outside):
    s = fake_engine.settings
    (s.index_dir / "CURRENT").write_text("garbage\n")
    fresh = make_engine(s)
    with pytest.raises(IndexCorrupt, match="Nothing can be added"):
        fresh.library.build([outside / "normans.txt"], add=True)
    assert listing(s.source_dir) == [ARTICLE.name]
    fresh.library.build([s.source_dir])  # a replace build repairs it
    assert ids(fresh) == [ARTICLE_ID]


def test_duplicate_titles_get_unique_ids(settings, tmp_path):
    folder = tmp_path / "dups"
    folder.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (folder / name).write_text(doc_text("Notes", f"Paragraph of {name}."))
    (folder / "d.txt").write_text(doc_text("Notes 2", "Another one."))
    engine = make_engine(settings)
    engine.library.build([folder])
    by_file = {Path(d.source).name: d.id for d in engine.snapshot().data.documents}
    assert by_file == {"a.txt": "notes", "b.txt": "notes-3", "c.txt": "notes-4", "d.txt": "notes-2"}


# --- add_text (the UI's paste/upload helper) -------------------------------------------------------

def test_add_text_saves_under_source_with_a_safe_unique_name(fake_engine):
    s = fake_engine.settings
    r1 = fake_engine.library.add_text("../My Notes.txt", doc_text("Pasted notes", "The sky is green here."))
    assert Path(r1.saved[0]) == s.source_dir.resolve() / "My-Notes.txt"
    r2 = fake_engine.library.add_text("../My Notes.txt", doc_text("Other notes", "The grass is blue."))
    assert Path(r2.saved[0]).name == "My-Notes-2.txt"
    r3 = fake_engine.library.add_text("My Notes.txt", doc_text("Pasted notes", "The sky is green here."))
    assert r3.saved[0] == r1.saved[0]  # identical content is not saved twice
    assert ids(fake_engine) == [ARTICLE_ID, "pasted-notes", "other-notes"]
    assert make_engine(s).library.staleness() is None
    r4 = fake_engine.library.add_text("Upload.HTML", "<h1>Web page</h1><p>Some text.</p>".encode("cp1252"))
    assert Path(r4.saved[0]).name == "Upload.html"
    assert "web-page" in ids(fake_engine)
    r5 = fake_engine.library.add_text("pasted page", "<html><body><h1>Pasted page</h1><p>Tags are gone.</p></body></html>")
    assert Path(r5.saved[0]).name == "pasted-page.html"
    assert fake_engine.snapshot().data.document("pasted-page").paragraphs[0].text == "Tags are gone."
    assert make_engine(s).library.staleness() is None


def test_add_copies_files_without_a_suffix_under_a_name_the_folder_scan_reads(fake_engine, tmp_path):
    s = fake_engine.settings
    (tmp_path / "README").write_text(doc_text("Read me", "Plain text without a suffix."))
    (tmp_path / ".hidden.md").write_text("# Hidden notes\n\nA dotfile.")
    report = fake_engine.library.build([tmp_path / "README", tmp_path / ".hidden.md"], add=True)
    assert sorted(Path(p).name for p in report.copied) == ["README.txt", "hidden.md"]
    assert ids(fake_engine) == [ARTICLE_ID, "read-me", "hidden-notes"]
    assert make_engine(s).library.staleness() is None
    fake_engine.library.build([tmp_path / "README"], add=True)  # adding it again replaces it (same copied name)
    assert ids(fake_engine) == [ARTICLE_ID, "read-me", "hidden-notes"]


def test_add_text_replace_makes_it_the_only_document(fake_engine):
    fake_engine.library.add_text("only", "Just this paragraph.", add=False)
    assert ids(fake_engine) == ["only"]
    assert make_engine(fake_engine.settings).library.staleness() is None


@pytest.mark.parametrize("name,content,match", [
    ("empty.txt", "   \n\n ", "empty or whitespace"),
    ("bin.txt", b"\x00\x01\x02binary" * 10, "binary"),
    ("deck.pptx", "Some text.", "unsupported format"),
    ("big.txt", "word " * 300_000, "over the 1 MB limit"),
])
def test_add_text_refuses_bad_input_and_writes_nothing(fake_engine, name, content, match):
    engine = Engine(fake_engine.settings.with_(max_file_mb=1.0), encoder=HashEncoder())
    before = state(engine.settings)
    with pytest.raises(InputError, match=match):
        engine.library.add_text(name, content)
    assert state(engine.settings) == before


def test_add_text_removes_the_saved_file_when_the_build_fails(fake_engine, monkeypatch):
    before = state(fake_engine.settings)
    monkeypatch.setattr("qa.library.build_index", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        fake_engine.library.add_text("new.txt", "A new paragraph.")
    assert state(fake_engine.settings) == before


# --- remove --------------------------------------------------------------------------------------

def test_remove_moves_the_file_aside_so_a_restart_does_not_bring_it_back(fake_engine, outside):
    s = fake_engine.settings
    fake_engine.library.build([outside / "normans.txt"], add=True)
    report = fake_engine.library.remove("normans")
    assert ids(fake_engine) == [ARTICLE_ID]
    assert report.removed == "normans"
    assert listing(s.source_dir) == [".removed", ARTICLE.name]
    assert Path(report.moved_aside).parent == s.source_dir.resolve() / ".removed"
    assert (outside / "normans.txt").exists()  # the original outside source/ is untouched
    restarted = make_engine(s)
    assert restarted.library.staleness() is None and restarted.library.ensure_index() is None
    restarted.library.build([s.source_dir])
    assert ids(restarted) == [ARTICLE_ID]


def test_remove_never_touches_files_outside_source(settings, outside, tmp_path):
    engine = make_engine(settings.with_(index_dir=tmp_path / "named"))
    other = tmp_path / "single.txt"
    other.write_text(doc_text("Single file", "One paragraph."))
    engine.library.build([outside, other])
    before = {p: p.read_bytes() for p in (outside / "normans.txt", other)}
    engine.library.remove("single-file")
    assert engine.snapshot().data.manifest["sources"] == [str(outside.resolve())]
    engine.library.build([other], add=True)
    engine.library.remove("normans")  # a file in a recorded folder: excluded, not moved
    m = engine.snapshot().data.manifest
    assert m["excluded"] == [str((outside / "normans.txt").resolve())]
    assert {p: p.read_bytes() for p in before} == before
    assert engine.library.staleness() is None
    assert engine.library.ensure_index() is None and ids(engine) == ["single-file"]
    (outside / "later.txt").write_text(doc_text("Later", "Dropped in afterwards."))
    assert "new: later.txt" in engine.library.staleness()
    assert engine.library.ensure_index() and sorted(ids(engine)) == ["later", "single-file"]  # still without normans
    engine.library.build([outside / "normans.txt"], add=True)  # naming it again brings it back
    assert "normans" in ids(engine) and engine.snapshot().data.manifest["excluded"] == []
    assert engine.library.staleness() is None


def test_remove_refuses_unknown_ids_and_the_last_document(fake_engine):
    with pytest.raises(InputError, match="No document 'nope'.*qa documents"):
        fake_engine.library.remove("nope")
    with pytest.raises(InputError, match="only document"):
        fake_engine.library.remove(ARTICLE_ID)
    assert listing(fake_engine.settings.source_dir) == [ARTICLE.name]
    with pytest.raises(IndexMissing):
        make_engine(fake_engine.settings.with_(index_dir=fake_engine.settings.index_dir / "none")).library.remove("x")


def test_remove_is_undone_when_the_build_fails(fake_engine, outside, monkeypatch):
    fake_engine.library.build([outside / "normans.txt"], add=True)
    before = state(fake_engine.settings)
    monkeypatch.setattr("qa.library.build_index", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        fake_engine.library.remove("normans")
    assert state(fake_engine.settings) == before
    assert not (fake_engine.settings.source_dir / ".removed").exists() or \
        not list((fake_engine.settings.source_dir / ".removed").iterdir())


# --- staleness -------------------------------------------------------------------------------------

def test_default_index_is_stale_when_a_file_is_dropped_into_source(fake_engine):
    s = fake_engine.settings
    assert fake_engine.library.staleness() is None
    (s.source_dir / "new.md").write_text("# New one\n\nFresh text.")
    assert fake_engine.library.staleness() == "the source documents changed (new: new.md)"
    restarted = make_engine(s)
    assert restarted.library.ensure_index().startswith("the source documents changed")
    assert ids(restarted) == [ARTICLE_ID, "new-one"]
    assert restarted.library.staleness() is None and fake_engine.library.staleness() is None  # the other engine picked it up


def test_staleness_names_changed_and_gone_files(fake_engine):
    s = fake_engine.settings
    (s.source_dir / ARTICLE.name).write_text("Changed\n\nText.")
    assert fake_engine.library.staleness() == f"the source documents changed (changed: {ARTICLE.name})"
    (s.source_dir / ARTICLE.name).unlink()
    assert fake_engine.library.staleness() == f"the source documents changed (gone: {ARTICLE.name})"


def test_hidden_and_unreadable_files_in_source(fake_engine):
    s = fake_engine.settings
    (s.source_dir / ".draft.txt").write_text("Hidden\n\nnot indexed")
    assert fake_engine.library.staleness() is None
    (s.source_dir / "broken.txt").write_bytes(b"\x00\x01" * 100)
    assert "new: broken.txt" in fake_engine.library.staleness()
    report = fake_engine.library.build([s.source_dir])  # the bad file is skipped, the rest is indexed
    assert list(report.skipped) == [str(s.source_dir.resolve() / "broken.txt")]
    assert ids(fake_engine) == [ARTICLE_ID]
    assert fake_engine.library.staleness() is None  # and it does not make the index stale forever
    with pytest.raises(InputError, match="binary"):  # named explicitly it is refused
        fake_engine.library.build([s.source_dir / "broken.txt"], add=True)


def test_named_index_is_never_judged_against_source(settings, outside, tmp_path):
    named = settings.with_(index_dir=tmp_path / "named")
    engine = make_engine(named)
    engine.library.build([outside])
    (settings.source_dir / "other.txt").write_text(doc_text("Other", "Not for the named index."))
    assert engine.library.staleness() is None
    assert engine.library.ensure_index() is None and ids(engine) == ["normans"]
    (outside / "normans.txt").write_text(doc_text("Normans", "Edited."))
    assert "changed: normans.txt" in engine.library.staleness()
    assert engine.library.ensure_index()
    assert ids(engine) == ["normans"] and engine.snapshot().data.documents[0].paragraphs[0].text == "Edited."


def test_missing_named_index_is_not_built_from_source(settings, tmp_path):
    engine = make_engine(settings.with_(index_dir=tmp_path / "named"))
    with pytest.raises(IndexMissing, match="qa build --index"):
        engine.library.ensure_index(build_missing=False)
    assert not (tmp_path / "named" / "CURRENT").exists()
    assert engine.library.ensure_index() == f"no index in {tmp_path / 'named'}" and ids(engine) == [ARTICLE_ID]


def test_vanished_source_keeps_the_index_serving(settings, outside, tmp_path, caplog):
    engine = make_engine(settings.with_(index_dir=tmp_path / "named"))
    engine.library.build([outside / "normans.txt"])
    shutil.rmtree(outside)
    assert "no longer exists" in engine.library.staleness()
    assert engine.library.ensure_index() is None
    assert "was not rebuilt" in caplog.text and ids(engine) == ["normans"]


def test_model_change_and_corrupt_index_are_rebuilt_from_recorded_sources(fake_engine):
    s = fake_engine.settings
    other_model = Engine(s.with_(model="hash-64b"), encoder=HashEncoder())
    assert other_model.library.staleness() == "the model changed (hash-64 -> hash-64b)"
    assert other_model.library.ensure_index() and other_model.snapshot().data.manifest["model"] == "hash-64b"
    version = store.current_version(s.index_dir)
    victim = store.versions_dir(s.index_dir) / version / "chunk_vectors.npy"
    victim.write_bytes(victim.read_bytes()[:-8])
    fresh = Engine(s.with_(model="hash-64b"), encoder=HashEncoder())
    assert "unreadable" in fresh.library.staleness()
    assert fresh.library.ensure_index() and fresh.snapshot().version != version and ids(fresh) == [ARTICLE_ID]


def test_ensure_index_keeps_serving_while_another_build_runs(fake_engine, caplog):
    (fake_engine.settings.source_dir / "new.txt").write_text(doc_text("New", "Text."))
    with store.build_lock(fake_engine.settings.index_dir):
        assert fake_engine.library.ensure_index() is None
    assert "already in progress" in caplog.text
    with store.build_lock(fake_engine.settings.index_dir), pytest.raises(BuildInProgress):
        make_engine(fake_engine.settings.with_(index_dir=fake_engine.settings.index_dir)).library.build([ARTICLE])


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
        monkeypatch.setattr("qa.build.BM25.build", _interrupt)
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
    assert new_p5 in encoded  # the paragraph itself
    assert any(t.startswith(first_sentence + " (edited)") and len(t) < len(new_p5) for t in encoded)
    assert all(t in new_p5 for t in encoded), "text outside the edited paragraph was embedded again"
    assert 2 <= len(encoded) <= 4  # sentence, its windows, the paragraph
    assert report.reused == report.sentences + report.chunks + report.paragraphs - len(encoded)

    enc.calls.clear()
    engine.library.build([edited], add=True)  # nothing changed: nothing embedded
    assert enc.calls == []
    new = engine.snapshot().data
    again = make_engine(settings.with_(index_dir=tmp_path / "fresh")).library.build([edited])
    fresh = store.load(tmp_path / "fresh", again.version)
    assert np.allclose(new.sentence_vectors, fresh.sentence_vectors)  # cached vectors are the right ones
    assert np.allclose(new.chunk_vectors, fresh.chunk_vectors)
    assert np.allclose(new.paragraph_vectors, fresh.paragraph_vectors)


# --- CLI with the hashing encoder -------------------------------------------------------------------

@pytest.fixture
def cli_env(settings, monkeypatch):
    monkeypatch.setenv("QA_MODEL", "hash-64")
    monkeypatch.setenv("QA_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("QA_SOURCE_DIR", str(settings.source_dir))
    monkeypatch.setattr("qa.embedding.shared_encoder", lambda *a, **k: HashEncoder())
    return settings


def test_cli_build_add_documents_remove(cli_env, outside, capsys):
    s = cli_env
    assert cli.main(["build"]) == 0
    assert "Built. Now serving version" in capsys.readouterr().out
    assert cli.main(["build", "--add", "--source", str(outside / "normans.txt")]) == 0
    out = capsys.readouterr().out
    assert "copied into the source folder" in out and (s.source_dir / "normans.txt").exists()
    assert cli.main(["documents"]) == 0
    out = capsys.readouterr().out
    assert f"- {ARTICLE_ID}: The Unbreakable Alliance" in out and "- normans: Normans — 39 paragraphs" in out
    assert cli.main(["documents", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [d["id"] for d in listed["documents"]] == [ARTICLE_ID, "normans"]
    assert cli.main(["documents", "--remove", "normans"]) == 0
    assert "moved to" in capsys.readouterr().out
    assert not (s.source_dir / "normans.txt").exists() and (outside / "normans.txt").exists()
    assert cli.main(["documents", "--remove", "normans"]) == 2
    assert "No document 'normans'" in capsys.readouterr().err
    bad = outside / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4")
    assert cli.main(["build", "--add", "--source", str(bad)]) == 2
    assert "bad.pdf is not a readable PDF" in capsys.readouterr().err
    assert cli.main(["build", "--source", str(outside / "missing.txt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    cli.main(["documents"])
    assert "normans" not in capsys.readouterr().out


def test_cli_named_missing_index_is_not_built(cli_env, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert cli.main(["ask", "Who?", "--index", str(missing)]) == 2
    assert "qa build --index" in capsys.readouterr().err
    assert not (missing / "CURRENT").exists()
    assert cli.main(["documents", "--index", str(missing)]) == 2


# --- CLI with the real model ---------------------------------------------------------------------------

def test_cli_build_ask_and_chat_with_the_real_model(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("QA_MODEL", raising=False)
    monkeypatch.setenv("QA_SOURCE_DIR", str(tmp_path / "source"))
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "default-index"))
    article = document.load_file(ARTICLE, 5 << 20)
    excerpt = tmp_path / "excerpt.txt"  # a short part of the article keeps the real-model build quick
    excerpt.write_text(doc_text(article.title, article.paragraph(1).text, "Historical context",
                                article.paragraph(4).text, "Matija Šerić", article.paragraph(21).text), "utf-8")
    index = tmp_path / "D"
    assert cli.main(["build", "--source", str(excerpt), "--index", str(index)]) == 0
    assert "1 document, 3 paragraphs" in capsys.readouterr().out

    assert cli.main(["ask", "When did Che Guevara visit Pyongyang?", "--index", str(index), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["found"] is True and answer["index_version"] == store.current_version(index)
    top = answer["citations"][0]
    assert top["document"] == ARTICLE_ID and top["paragraph"] == 2 and top["section"] == "Historical context"
    assert "Che Guevara" in top["quote"] and answer["answer"] == top["quote"]
    text = document.load_file(excerpt, 5 << 20).text
    for c in answer["citations"]:
        assert text[c["start"]:c["end"]] == c["quote"]

    monkeypatch.setattr(sys, "stdin", io.StringIO("Who is Matija Šerić?\n\nWhat is the capital of France?\n"))
    assert cli.main(["ask", "-", "--index", str(index), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["question"] for x in lines] == ["Who is Matija Šerić?", "What is the capital of France?"]
    assert lines[0]["found"] and lines[0]["citations"][0]["paragraph"] == 3
    assert lines[1]["citations"] and (lines[1]["answer"] is None) == (lines[1]["found"] is False)

    monkeypatch.setattr(sys, "stdin", io.StringIO("When did Che Guevara visit Pyongyang?\n/reset\n\nWho is Matija Šerić?\n"))
    assert cli.main(["chat", "--index", str(index), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["question"] for x in lines] == ["When did Che Guevara visit Pyongyang?", "Who is Matija Šerić?"]
    assert [x["citations"][0]["paragraph"] for x in lines] == [2, 3]

    monkeypatch.setattr(sys, "stdin", io.StringIO("Who is Matija Šerić?\n/reset\n"))
    assert cli.main(["chat", "--index", str(index)]) == 0
    assert "(new conversation)" in capsys.readouterr().out
    assert not (tmp_path / "default-index").exists() and not (tmp_path / "source").exists()
