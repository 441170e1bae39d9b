"""Issue 16, item 2: a full disk while a new version is written or published.

Wanted: a clear message saying about how much space was needed, no orphan version and no
CURRENT.*.tmp left behind, the old version still served, and the next build after space is
freed succeeds. Run for real on a small tmpfs when the tests run as root, and with an injected
OSError(ENOSPC) at every write step of `store.commit` everywhere.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import faiss
import pytest
from conftest import ARTICLE, HashEncoder, publish_version

from qa import document, store, versionfiles
from qa.build import build_index
from qa.config import Settings
from qa.engine import Engine
from qa.errors import DiskFull

MB = 1024 * 1024


def _leftovers(index_dir: Path) -> list[str]:
    tmp = [p.name for p in Path(index_dir).glob("CURRENT.*.tmp")]
    return tmp + [p.name for p in store.versions_dir(index_dir).iterdir()
                  if p.name != store.current_version(index_dir)]


class FullAt:
    """Every write step of `store.commit` counts one call; call number `n` fails with ENOSPC."""

    def __init__(self, monkeypatch, n: int | None):
        self.n, self.calls = n, []
        targets = [(versionfiles.np, "save"), (versionfiles.np, "savez"), (versionfiles, "_write_jsonl"), (faiss, "write_index"),
                   (Path, "write_text"), (store.os, "fsync"), (store.os, "replace"),
                   (store, "_fsync_dir"), (store.os, "open")]
        for owner, name in targets:
            monkeypatch.setattr(owner, name, self._wrap(name, getattr(owner, name)))

    def _wrap(self, name, real):
        def step(*args, **kwargs):
            self.calls.append(name)
            if len(self.calls) == self.n:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(*args, **kwargs)
        return step


def _small_docs():
    return [document.load(ARTICLE.read_bytes(), ARTICLE.name, 5 * MB)]


def test_full_disk_at_every_write_step_leaves_the_old_version_served_and_nothing_behind(tmp_path, monkeypatch):
    old = publish_version(tmp_path, _small_docs())
    data, manifest = build_index(_small_docs(), HashEncoder(), "hash-64", [], None)
    with monkeypatch.context() as m:
        count = FullAt(m, None)
        store.commit(tmp_path, data, manifest)  # how many write steps a commit has
    steps = list(count.calls)
    assert len(steps) > 15 and {"save", "savez", "replace", "fsync"} <= set(steps)  # write_index: HNSW only
    store.publish(tmp_path, old.version)
    store.prune(tmp_path)
    for n in range(1, len(steps) + 1):
        data, manifest = build_index(_small_docs(), HashEncoder(), "hash-64", [], None)
        with monkeypatch.context() as m:
            FullAt(m, n)
            try:
                store.commit(tmp_path, data, manifest)
            except DiskFull as exc:
                msg = str(exc)
            else:  # only syncing the folder after CURRENT was replaced may fail unnoticed (it is published)
                assert n >= len(steps) - steps[::-1].index("_fsync_dir"), (n, steps[n - 1])
                assert store.load(tmp_path).version == data.version
                store.publish(tmp_path, old.version)
                store.prune(tmp_path)
                continue
        assert "needs about" in msg and " MB" in msg and f"version {old.version} is still being served" in msg, \
            (n, steps[n - 1], msg)
        assert store.current_version(tmp_path) == old.version, (n, steps[n - 1])
        assert _leftovers(tmp_path) == [], (n, steps[n - 1])
        assert store.load(tmp_path).version == old.version
    data, manifest = build_index(_small_docs(), HashEncoder(), "hash-64", [], None)
    store.commit(tmp_path, data, manifest)  # space is back: the next build succeeds
    assert store.load(tmp_path).version == data.version


def test_a_killed_builds_leftovers_do_not_make_the_next_build_fail(tmp_path):
    old = publish_version(tmp_path, _small_docs())
    (store.versions_dir(tmp_path) / "20200101-000000-dead00.partial").mkdir()
    (store.versions_dir(tmp_path) / "20200101-000000-dead00.partial" / "vectors.faiss").write_bytes(b"x" * 1000)
    (tmp_path / "CURRENT.deadbeef.tmp").write_text("20200101-000000-dead00\n")
    data, manifest = build_index(_small_docs(), HashEncoder(), "hash-64", [], None)
    store.commit(tmp_path, data, manifest)
    names = {p.name for p in store.versions_dir(tmp_path).iterdir()}
    assert names == {old.version, data.version} and not list(tmp_path.glob("CURRENT.*.tmp"))


# --- for real: a small tmpfs ---------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (root only: mounting needs it)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; test_full_disk_at_every_write_step covers this case")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(folder: Path, leave: int) -> Path:
    """Fill the file system of `folder` until only about `leave` bytes are free."""
    filler = folder / "filler.bin"
    free = shutil.disk_usage(folder).free
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))
    return filler


def test_full_disk_at_publish_on_a_real_tmpfs(small_disk, tmp_path, hash_encoder):
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(ARTICLE, source / ARTICLE.name)
    settings = Settings(index_dir=small_disk / "index", source_dir=source, model="hash-64")
    engine = Engine(settings, encoder=hash_encoder)
    old = engine.library.build([source]).version
    size = sum(p.stat().st_size for p in (store.versions_dir(settings.index_dir) / old).rglob("*") if p.is_file())
    filler = _fill(small_disk, size // 3)  # a third of a version fits: the write fails half-way
    with pytest.raises(DiskFull) as err:
        engine.library.build([source])
    msg = str(err.value)
    assert "is full" in msg and "needs about" in msg and f"version {old} is still being served" in msg, msg
    assert _leftovers(settings.index_dir) == []
    assert store.current_version(settings.index_dir) == old
    assert engine.ask("When did Che Guevara visit Pyongyang?").index_version == old  # still served
    assert Engine(settings, encoder=hash_encoder).snapshot().version == old  # and by a fresh process
    filler.unlink()  # space is freed: the next build succeeds
    new = engine.library.build([source]).version
    assert new != old and store.current_version(settings.index_dir) == new
    assert engine.ask("When did Che Guevara visit Pyongyang?").index_version == new
