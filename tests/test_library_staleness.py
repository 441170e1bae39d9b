"""Staleness and start-up repair: an index is judged against the sources it recorded, rebuilt
only from them, and keeps serving when it cannot be rebuilt. The hashing encoder throughout."""

from __future__ import annotations

import shutil

import pytest
from conftest import (
    ARTICLE,
    ARTICLE_ID,
    HashEncoder,
    doc_text,
    ids,
    make_engine,
)

from qa import store
from qa.engine import Engine
from qa.errors import BuildInProgress, IndexMissing, InputError

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
    assert engine.library.ensure_index() == f"there was no index in {tmp_path / 'named'}/ yet" and ids(engine) == [ARTICLE_ID]


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
