"""The library's builds: replace, add, add uploads (saved under source with safe names), remove;
the default index keeps its documents in source_dir. The hashing encoder throughout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import (
    ARTICLE,
    ARTICLE_ID,
    NORMANS,
    HashEncoder,
    doc_text,
    ids,
    listing,
    make_engine,
    state,
)

from qa import store
from qa.engine import Engine
from qa.errors import IndexCorrupt, IndexMissing, InputError

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
    for v in listing(store.versions_dir(s.index_dir)):  # and no intact version to fall back on
        (store.versions_dir(s.index_dir) / v / "chunks.jsonl").write_text("garbage")
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
