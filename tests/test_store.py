"""The on-disk index: round trip, manifest, verified load (corruption refused), atomic publish,
pruning and the build lock. All with the hashing encoder; nothing touches the repo's index/."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest
from conftest import ARTICLE, EVAL, HashEncoder, disk_fills_on_save, publish_version

from qa import document, store
from qa.build import CHUNKING, build_index
from qa.engine import Engine
from qa.errors import BuildInProgress, DiskFull, IndexCorrupt, IndexMissing

MB = 1024 * 1024


def _docs():
    return [document.load_file(ARTICLE, 5 * MB), document.load_file(EVAL / "squad" / "normans.txt", 5 * MB)]


def _write(index_dir, docs=None, previous=None):
    return publish_version(index_dir, docs or _docs(), previous)


# --- round trip and manifest --------------------------------------------------------------

def test_round_trip(tmp_path):
    data = _write(tmp_path)
    loaded = store.load(tmp_path)
    assert loaded.version == data.version == store.current_version(tmp_path)
    assert loaded.documents == data.documents
    assert loaded.sentences == data.sentences
    assert loaded.chunks == data.chunks
    assert loaded.paragraph_keys == data.paragraph_keys
    for name in ("sentence_vectors", "chunk_vectors", "paragraph_vectors"):
        a, b = getattr(data, name), getattr(loaded, name)
        assert a.dtype == b.dtype == np.float32 and np.array_equal(a, b)
    assert loaded.faiss_index.ntotal == len(loaded.chunks)
    _, ids = loaded.faiss_index.search(loaded.chunk_vectors[:3], 1)
    assert list(ids[:, 0]) == [0, 1, 2]
    for d in loaded.documents:  # quotes stay verbatim after the round trip
        for p in d.paragraphs:
            assert d.text[p.start:p.end] == p.text
    for s in loaded.sentences:
        assert loaded.document(s.doc).text[s.start:s.end] == s.text


def test_manifest_fields(fake_engine):
    s = fake_engine.settings
    m = store.read_manifest(s.index_dir)
    assert m["format"] == store.FORMAT_VERSION
    assert m["version"] == store.current_version(s.index_dir)
    assert m["model"] == "hash-64" and m["dim"] == 64
    assert m["chunking"] == CHUNKING
    assert m["sources"] == [str(s.source_dir.resolve())]
    assert m["excluded"] == [] and m["skipped"] == {}
    (doc,) = m["documents"]
    parsed = document.load_file(ARTICLE, 5 * MB)
    assert doc["id"] == "unbreakable-alliance-cuba-north-korea"
    assert doc["sha256"] == parsed.sha256
    assert doc["file_sha256"] == store.sha256_file(ARTICLE)
    assert doc["source"] == str(s.source_dir.resolve() / ARTICLE.name)
    assert doc["paragraphs"] == 21 and doc["sections"] == 6
    c = m["counts"]
    assert c["documents"] == 1 and c["paragraphs"] == 21 and c["sentences"] == c["chunks"] > 21
    # sentences and windows are encoded, paragraphs derived from their sentences (build.derive)
    assert c["encoded"] + c["reused"] == c["sentences"] + c["chunks"]
    folder = store.versions_dir(s.index_dir) / m["version"]
    expected = {"documents.jsonl", "sentences.jsonl", "chunks.jsonl", "sentence_vectors.npy",
                "chunk_vectors.npy", "paragraph_vectors.npy", "pieces.npz"}
    assert expected <= set(m["files"])
    assert "vectors.faiss" not in m["files"]  # a flat index is rebuilt from the window vectors at load
    assert not any(k.startswith("bm25_") for k in m["files"])  # format 4: no index-wide BM25 (no question read it)
    for rel, digest in m["files"].items():
        assert store.sha256_file(folder / rel) == digest
    assert {"python", "numpy", "faiss-cpu", "torch", "sentence-transformers"} <= set(m["libraries"])
    assert m["created"][:2] == "20" and "T" in m["created"]


# --- corruption is refused at load ------------------------------------------------------------

def _flip(path, at=-5):
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flip-vectors", "flip-pieces", "delete-chunks", "extra-file", "truncate-doc",
                                    "manifest-not-json", "manifest-list", "wrong-format", "delete-manifest"])
def test_corrupted_version_is_refused(tmp_path, damage):
    data = _write(tmp_path)
    folder = store.versions_dir(tmp_path) / data.version
    if damage == "flip-vectors":
        _flip(folder / "sentence_vectors.npy")
    elif damage == "flip-pieces":
        _flip(folder / "pieces.npz", 100)
    elif damage == "delete-chunks":
        (folder / "chunks.jsonl").unlink()
    elif damage == "extra-file":
        (folder / "stray.bin").write_bytes(b"x")
    elif damage == "truncate-doc":
        p = folder / "documents.jsonl"
        p.write_bytes(p.read_bytes()[:100])
    elif damage == "manifest-not-json":
        (folder / "manifest.json").write_text("{not json")
    elif damage == "manifest-list":
        (folder / "manifest.json").write_text("[]")
    elif damage == "wrong-format":
        m = json.loads((folder / "manifest.json").read_text())
        (folder / "manifest.json").write_text(json.dumps(dict(m, format=999)))
    elif damage == "delete-manifest":
        (folder / "manifest.json").unlink()
    with pytest.raises(IndexCorrupt, match="(?i)rebuild"):
        store.load(tmp_path)


@pytest.mark.parametrize("content", [b"no-such-version\n", b"../../etc\n", b"/etc/passwd", b"\xff\xfe\x00garbage",
                                     b"x" * 500])
def test_bad_current_is_refused(tmp_path, content):
    _write(tmp_path)
    (tmp_path / "CURRENT").write_bytes(content)
    with pytest.raises(IndexCorrupt):
        store.load(tmp_path)
    engine = Engine(_settings(tmp_path), encoder=HashEncoder())  # the engine serves the intact version, and says so
    assert engine.snapshot().version in listing_of(tmp_path) and "newest intact version" in engine.note


def listing_of(index_dir) -> list[str]:
    return sorted(p.name for p in store.versions_dir(index_dir).iterdir())


def test_empty_or_missing_current_means_no_index(tmp_path):
    with pytest.raises(IndexMissing):
        store.load(tmp_path)
    _write(tmp_path)
    (tmp_path / "CURRENT").write_text("  \n")
    with pytest.raises(IndexMissing):
        store.load(tmp_path)


def _settings(index_dir):
    from qa.config import Settings

    return Settings(index_dir=index_dir, source_dir=index_dir / "no-source", model="hash-64")


def test_serving_engine_keeps_serving_when_a_broken_version_is_published(tmp_path, caplog):
    first = _write(tmp_path)
    engine = Engine(_settings(tmp_path), encoder=HashEncoder())
    assert engine.snapshot().version == first.version
    second = _write(tmp_path, _docs()[:1])
    _flip(store.versions_dir(tmp_path) / second.version / "chunk_vectors.npy")
    assert engine.snapshot().version == first.version  # still the old one, no exception
    assert "is broken; still serving" in caplog.text
    caplog.clear()
    assert engine.snapshot().version == first.version
    assert "is broken" not in caplog.text  # the broken version is not re-verified on every question
    assert engine.ask("Who was Rollo?").index_version == first.version
    (tmp_path / "CURRENT").write_text("../../nonsense\n")
    assert engine.snapshot().version == first.version
    third = _write(tmp_path, _docs()[:1])  # a good version is picked up again
    assert engine.snapshot().version == third.version
    with pytest.raises(IndexCorrupt):
        store.load(tmp_path, second.version)


# --- writing, publishing, pruning ----------------------------------------------------------------

def test_write_version_failure_leaves_no_debris(tmp_path, monkeypatch):
    first = _write(tmp_path)
    data, manifest = build_index(_docs()[:1], HashEncoder(), "hash-64", [], None)
    disk_fills_on_save(monkeypatch)
    with pytest.raises(DiskFull, match="No space"):  # a full disk is named, with the space needed (issue 16)
        store.write_version(tmp_path, data, manifest)
    assert sorted(p.name for p in store.versions_dir(tmp_path).iterdir()) == [first.version]
    assert store.current_version(tmp_path) == first.version
    assert store.load(tmp_path).version == first.version


def test_publish_is_atomic_replace(tmp_path, monkeypatch):
    first = _write(tmp_path)
    data, manifest = build_index(_docs()[:1], HashEncoder(), "hash-64", [], None)
    store.write_version(tmp_path, data, manifest)
    assert store.current_version(tmp_path) == first.version  # written, not yet published
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(store.os, "replace", lambda a, b: (replaced.append((str(a), str(b))), real_replace(a, b)))
    store.publish(tmp_path, data.version)
    assert replaced and replaced[-1][1] == str(tmp_path / "CURRENT")
    assert (tmp_path / "CURRENT").read_text() == data.version + "\n"
    assert not list(tmp_path.glob("CURRENT.*.tmp"))


def test_prune_keeps_current_and_last_good_and_removes_leftovers(tmp_path):
    versions = [_write(tmp_path, _docs()[:1]).version for _ in range(4)]
    root = store.versions_dir(tmp_path)
    (root / "20990101-000000-dead00.partial").mkdir()  # a killed build's half-written folder
    (root / "20990101-000000-dead00.partial" / "chunks.jsonl").write_text("x")
    data, manifest = build_index(_docs()[:1], HashEncoder(), "hash-64", [], None)
    orphan = store.write_version(tmp_path, data, manifest)  # written but never published
    (tmp_path / "CURRENT.abcd1234.tmp").write_text("junk")
    removed = store.prune(tmp_path, keep=[versions[2]])
    assert sorted(p.name for p in root.iterdir()) == sorted([versions[2], versions[3]])
    assert orphan.name in removed and versions[0] in removed
    assert not list(tmp_path.glob("CURRENT.*.tmp"))
    assert store.load(tmp_path).version == versions[3]


def test_engine_builds_keep_two_versions(settings, hash_encoder):
    engine = Engine(settings.with_(model="hash-64"), encoder=hash_encoder)
    seen = [engine.library.build([settings.source_dir]).version for _ in range(4)]
    kept = sorted(p.name for p in store.versions_dir(settings.index_dir).iterdir())
    assert kept == sorted(seen[-2:])


def test_build_lock_is_exclusive(tmp_path):
    with store.build_lock(tmp_path):
        with pytest.raises(BuildInProgress, match="already in progress"), store.build_lock(tmp_path):
            pass
        errors = []

        def other_thread():
            try:
                with store.build_lock(tmp_path):
                    pass
            except BuildInProgress as exc:
                errors.append(exc)

        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        assert len(errors) == 1
    with store.build_lock(tmp_path):  # released afterwards
        pass
