"""An unreadable published version: the newest intact version is served and the user is told;
an index is rebuilt only from its own recorded sources, never from `./source` when it was
named, and intact versions are not deleted. The hashing encoder throughout."""

from __future__ import annotations

import shutil

import pytest
from conftest import ARTICLE_ID, NORMANS, ids, listing, make_engine

from qa import cli, store
from qa.errors import IndexCorrupt, IndexMissing


@pytest.fixture
def two_versions(settings, tmp_path):
    """A named index (outside ./source) with two intact versions: the article, then + normans."""
    own = tmp_path / "own-docs"
    own.mkdir()
    shutil.copy(NORMANS, own / "normans.txt")
    named = settings.with_(index_dir=tmp_path / "named-index", source_dir=tmp_path / "unrelated")
    (tmp_path / "unrelated").mkdir()
    (tmp_path / "unrelated" / "other.txt").write_text("Unrelated\n\nThis must never be indexed here.", "utf-8")
    engine = make_engine(named)
    old = engine.library.build([own / "normans.txt"]).version
    new = engine.library.build([own]).version
    return named, old, new, own


def versions(settings) -> list[str]:
    return listing(store.versions_dir(settings.index_dir))


@pytest.mark.parametrize("damage", ["garbage-current", "current-names-a-missing-version", "version-folder-gone",
                                    "unreadable-manifest"])
def test_unreadable_current_serves_the_newest_intact_version_and_says_so(two_versions, damage, caplog):
    named, old, new, _ = two_versions
    cur = named.index_dir / "CURRENT"
    if damage == "garbage-current":
        cur.write_bytes(b"\x00\xff not a version \n")
    elif damage == "current-names-a-missing-version":
        cur.write_text("20991231-235959-abcdef\n")
    elif damage == "version-folder-gone":
        shutil.rmtree(store.versions_dir(named.index_dir) / new)
    else:
        (store.versions_dir(named.index_dir) / new / "manifest.json").write_text("{not json")
    engine = make_engine(named)
    expected = old if damage in ("version-folder-gone", "unreadable-manifest") else new
    assert engine.snapshot().version == expected
    assert "serving the newest intact version" in engine.note and "newest intact" in caplog.text
    info = engine.documents()
    assert info.version == expected and "newest intact" in info.note


def test_named_index_repairs_itself_from_its_own_recorded_sources(two_versions):
    named, old, new, own = two_versions
    (named.index_dir / "CURRENT").write_text("garbage!\n")
    engine = make_engine(named)
    assert engine.library.ensure_index(build_missing=False)
    assert "unrelated" not in " ".join(d.source or "" for d in engine.snapshot().data.documents)
    assert ids(engine) == ["normans"]  # rebuilt from its own folder, not from ./source


def test_intact_versions_are_kept_when_the_recorded_sources_are_gone(two_versions):
    named, old, new, own = two_versions
    (named.index_dir / "CURRENT").write_text("garbage!\n")
    shutil.rmtree(own)
    engine = make_engine(named)
    assert engine.library.ensure_index(build_missing=False) is None  # cannot rebuild: keeps serving
    assert engine.snapshot().version == new and versions(named) == sorted([old, new])


def test_named_index_with_no_intact_version_is_never_built_from_source(two_versions):
    named, old, new, _ = two_versions
    for v in (old, new):
        (store.versions_dir(named.index_dir) / v / "manifest.json").write_text("{}")
    engine = make_engine(named)
    with pytest.raises(IndexCorrupt, match="qa build --index"):
        engine.library.ensure_index(build_missing=False)
    assert versions(named) == sorted([old, new])  # nothing deleted


def test_default_index_with_nothing_readable_left_is_rebuilt_from_the_source_folder(settings):
    engine = make_engine(settings)
    engine.library.build([settings.source_dir])
    (settings.index_dir / "CURRENT").write_text("garbage!\n")
    for v in versions(settings):
        (store.versions_dir(settings.index_dir) / v / "manifest.json").write_text("[]")
    fresh = make_engine(settings)
    assert fresh.library.ensure_index() and ids(fresh) == [ARTICLE_ID]


def test_qa_documents_says_which_version_is_served(two_versions, monkeypatch, capsys):
    named, old, new, _ = two_versions
    (named.index_dir / "CURRENT").write_text("20991231-235959-abcdef\n")
    monkeypatch.setattr("qa.embedding.shared_encoder", lambda *a, **k: make_engine(named).encoder)
    assert cli.main(["documents", "--index", str(named.index_dir), "--model", "hash-64"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Note: ") and "newest intact version" in out and new in out


def test_a_missing_index_is_still_missing(settings):
    with pytest.raises(IndexMissing):
        make_engine(settings).snapshot()
