"""The index's word-piece arrays (pieces.npz, int8 since index format 3): written, loaded back unchanged,
reused by the next build, and refused with IndexCorrupt when damaged. Hashing encoder only."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ARTICLE, HashEncoder, publish_version

from qa import document, store, tokens
from qa.errors import IndexCorrupt

MB = 1024 * 1024


def _write(index_dir, previous=None):
    return publish_version(index_dir, [document.load_file(ARTICLE, 5 * MB)], previous)


def test_index_has_pieces_in_the_manifest(tmp_path):
    data = _write(tmp_path)
    m = store.read_manifest(tmp_path)
    assert m["format"] == store.FORMAT_VERSION
    folder = store.versions_dir(tmp_path) / data.version
    assert m["files"]["pieces.npz"] == store.sha256_file(folder / "pieces.npz")


def test_piece_arrays_round_trip(tmp_path):
    data = _write(tmp_path)
    loaded = store.load(tmp_path)
    assert loaded.piece_ids.dtype == np.int32 and isinstance(loaded.piece_vectors, tokens.PieceCodes)
    assert loaded.piece_offsets.dtype == np.int64
    assert np.array_equal(loaded.piece_ids, data.piece_ids)
    assert np.array_equal(loaded.piece_vectors, data.piece_vectors)
    assert np.array_equal(loaded.piece_offsets, data.piece_offsets)
    n = len(loaded.sentences)
    assert len(loaded.piece_offsets) == n + 1 and loaded.piece_offsets[0] == 0
    assert np.all(np.diff(loaded.piece_offsets) >= 1)  # every sentence owns at least one row
    assert loaded.piece_vectors.shape == (len(loaded.piece_ids), 64)
    # the rows are the sentences' own pieces: what the encoder gives for each sentence's text
    enc = HashEncoder()
    for i in (0, n // 2, n - 1):
        (want,) = enc.encode_pieces([loaded.sentences[i].text])[1]
        got = tokens.unpack(loaded.piece_ids, loaded.piece_vectors, loaded.piece_offsets, i)
        if len(want.ids):
            assert np.array_equal(got.ids, want.ids)
            assert np.allclose(got.vectors, want.vectors, atol=1e-3)
        else:  # a sentence without content words owns one zero row
            assert len(got.ids) == 1 and not got.vectors.any()


def test_next_build_reuses_the_pieces(tmp_path):
    first = _write(tmp_path)
    second = _write(tmp_path, previous=store.load(tmp_path))
    assert second.version != first.version
    assert store.read_manifest(tmp_path)["counts"]["encoded"] == 0  # nothing re-encoded, pieces included
    loaded = store.load(tmp_path)
    assert np.array_equal(loaded.piece_ids, first.piece_ids)
    assert np.array_equal(loaded.piece_offsets, first.piece_offsets)
    assert np.array_equal(loaded.piece_vectors, first.piece_vectors)


def _resign(folder):
    """Make the manifest's checksum match the damaged pieces.npz (a consistent but wrong version)."""
    m = json.loads((folder / "manifest.json").read_text())
    m["files"]["pieces.npz"] = store.sha256_file(folder / "pieces.npz")
    (folder / "manifest.json").write_text(json.dumps(m))


def _damage(folder, data, how):
    p = folder / "pieces.npz"
    if how == "garbage":
        p.write_bytes(b"not an npz archive " * 50)
    elif how == "truncated":
        p.write_bytes(p.read_bytes()[:200])
    elif how == "bit-flip":
        raw = bytearray(p.read_bytes())
        raw[300] ^= 0xFF
        p.write_bytes(bytes(raw))
    elif how == "plain-npy":
        with open(p, "wb") as fh:
            np.save(fh, data.piece_ids)
    elif how == "missing-offsets":
        np.savez(p, ids=data.piece_ids, vectors=data.piece_vectors)
    elif how == "short-offsets":
        np.savez(p, ids=data.piece_ids, vectors=data.piece_vectors, offsets=data.piece_offsets[:-1])
    elif how == "rows-missing":
        np.savez(p, ids=data.piece_ids[:-1], vectors=data.piece_vectors[:-1], offsets=data.piece_offsets)
    elif how == "object-array":
        np.savez(p, ids=np.array([None, 1], dtype=object), vectors=data.piece_vectors, offsets=data.piece_offsets)
    elif how == "deleted":
        p.unlink()


DAMAGE = ["garbage", "truncated", "bit-flip", "plain-npy", "missing-offsets", "short-offsets", "rows-missing",
          "object-array"]


@pytest.mark.parametrize("how", [*DAMAGE, "deleted"])
def test_damaged_pieces_fail_the_checksum(tmp_path, how):
    data = _write(tmp_path)
    folder = store.versions_dir(tmp_path) / data.version
    _damage(folder, data, how)
    with pytest.raises(IndexCorrupt, match="checksum check .*pieces.npz"):
        store.load(tmp_path)


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_pieces_with_a_matching_checksum_are_still_refused(tmp_path, how):
    data = _write(tmp_path)
    folder = store.versions_dir(tmp_path) / data.version
    _damage(folder, data, how)
    _resign(folder)
    with pytest.raises(IndexCorrupt, match="(?i)rebuild") as err:
        store.load(tmp_path)
    assert "checksum" not in str(err.value)  # it passed the checksum and was caught by reading it


# Well-formed archives of the wrong shape, with a matching checksum: refused when read.
@pytest.mark.parametrize("how", ["empty-file", "2d-offsets", "scalar-offsets", "decreasing-offsets", "empty-segment",
                                 "narrow-vectors"])
def test_malformed_pieces_with_a_matching_checksum_are_refused(tmp_path, how):
    data = _write(tmp_path)
    folder = store.versions_dir(tmp_path) / data.version
    p = folder / "pieces.npz"
    if how == "empty-file":
        p.write_bytes(b"")
    elif how == "2d-offsets":
        np.savez(p, ids=data.piece_ids, scales=data.piece_vectors.scales,
                 offsets=np.stack([data.piece_offsets, data.piece_offsets], 1))
    elif how == "scalar-offsets":
        np.savez(p, ids=data.piece_ids, scales=data.piece_vectors.scales, offsets=np.int64(5))
    elif how == "empty-segment":
        off = data.piece_offsets.copy()
        off[1] = off[0]  # sentence 0 would own no rows: maxsim's reduceat needs every segment non-empty
        np.savez(p, ids=data.piece_ids, scales=data.piece_vectors.scales, offsets=off)
    elif how == "decreasing-offsets":
        off = data.piece_offsets.copy()
        off[1] = off[2] + 1  # sentence 1 would own rows [off[2] + 1, off[2]): a negative count
        np.savez(p, ids=data.piece_ids, scales=data.piece_vectors.scales, offsets=off)
    else:
        np.save(folder / "piece_codes.npy", data.piece_vectors.codes[:, :5])
        m = json.loads((folder / "manifest.json").read_text())
        m["files"]["piece_codes.npy"] = store.sha256_file(folder / "piece_codes.npy")
        (folder / "manifest.json").write_text(json.dumps(m))
    _resign(folder)
    with pytest.raises(IndexCorrupt):
        store.load(tmp_path)
