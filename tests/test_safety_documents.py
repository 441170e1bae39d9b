"""Issue 16, item 8: legal but pathological documents. No sentence -- so no quote -- is longer
than chunking.MAX_SENTENCE_CHARS (an over-long run is cut at a sensible boundary), and the
work stays proportional to the text: the sentence splitter is linear on any input, and the
pieces of a cut run are embedded once each. Build time and memory on the full-size cases
(100,000 one-line paragraphs, a 5 MB line) are measured by `python -m bench.pathological`
(figures in docs/safety.md)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import ROOT, HashEncoder

from bench.pathological import abbrev, lines, longline
from qa import chunking, document
from qa.config import Settings
from qa.engine import Engine

MB = 1024 * 1024
CAP = chunking.MAX_SENTENCE_CHARS


def test_a_5_mb_line_without_a_sentence_end_is_cut_into_sentences_no_longer_than_the_cap():
    text = longline(5)
    doc = document.load(text, "line.txt", 6 * MB)
    sents = chunking.sentences(doc)
    assert len(sents) >= len(doc.paragraphs[0].text) // CAP
    assert max(s.end - s.start for s in sents) <= CAP
    assert all(doc.text[s.start:s.end] == s.text for s in sents)  # still verbatim
    para = doc.paragraphs[0]
    rejoined = " ".join(s.text for s in sents)
    assert rejoined == " ".join(para.text.split())  # nothing lost: cut at spaces, no word split
    windows = chunking.windows(doc, sents)
    assert all(w.text == sents[w.center].text for w in windows)  # one text per piece: embedded once


def test_an_over_long_run_is_cut_after_a_clause_not_inside_a_word():
    clause = "the council met again in the winter and agreed on the bridge, "
    text = clause * (3 * CAP // len(clause))
    spans = chunking.split_sentences(text)
    assert len(spans) >= 3 and all(e - s <= CAP for s, e in spans)
    assert all(text[e - 1] == "," for s, e in spans[:-1])
    nospace = "x" * (2 * CAP + 5)  # no boundary at all: a hard cut, nothing lost
    assert chunking.split_sentences(nospace) == [(0, CAP), (CAP, 2 * CAP), (2 * CAP, 2 * CAP + 5)]


def test_real_sentences_are_not_cut():
    doc = document.load((ROOT / "source").glob("*.txt").__next__().read_bytes(), "a.txt", 5 * MB)
    assert max(s.end - s.start for s in chunking.sentences(doc)) < CAP


def test_5_mb_of_abbreviations_is_split_in_linear_time():
    """Every full stop of "A. A. A. ..." is an abbreviation: the check looked at the whole
    sentence so far, so the split was quadratic (60 KB took 95 s)."""
    code = textwrap.dedent("""
        import time
        from bench.pathological import abbrev
        from qa import chunking
        text = abbrev(1)
        t0 = time.perf_counter()
        spans = chunking.split_sentences(text)
        print(time.perf_counter() - t0, max(e - s for s, e in spans))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=False)
    seconds, longest = done.stdout.split()
    assert float(seconds) < 10 and int(longest) <= CAP, done.stdout


def test_a_5_mb_line_is_quoted_in_pieces_no_longer_than_the_cap(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "line.txt").write_text(longline(5), "utf-8")
    engine = Engine(Settings(index_dir=tmp_path / "index", source_dir=src, model="hash-64"), encoder=HashEncoder())
    report = engine.library.build([src])
    sentences = report.chunks
    assert report.encoded <= sentences + 2  # pieces and their windows are one text each, plus the paragraph
    answer = engine.ask("What about the harbour bridge council?")
    assert answer.citations and all(len(c.quote) <= chunking.MAX_WINDOW_CHARS for c in answer.citations)


def test_100000_one_line_paragraphs_are_split_and_windowed_in_seconds():
    doc = document.load(lines(100_000), "lines.txt", 5 * MB)
    import time

    t0 = time.perf_counter()
    sents = chunking.sentences(doc)
    windows = chunking.windows(doc, sents)
    assert len(doc.paragraphs) == len(sents) == len(windows) == 100_000
    assert time.perf_counter() - t0 < 10
    assert abbrev  # (the generators are shared with bench.pathological)


def test_one_line_paragraphs_hold_their_vectors_once_in_the_build_and_when_loaded(tmp_path):
    """100,000 one-line paragraphs took 4 GB: their sentence, window and paragraph vectors are
    the same rows, so they are one array when built and when loaded (identical files)."""
    import numpy as np

    from qa import store
    from qa.build import build_index

    doc = document.load(lines(2000), "lines.txt", 5 * MB)
    data, manifest = build_index([doc], HashEncoder(), "hash-64", [])
    assert np.shares_memory(data.sentence_vectors, data.chunk_vectors)
    assert np.shares_memory(data.sentence_vectors, data.paragraph_vectors)
    assert manifest["counts"]["encoded"] + manifest["counts"]["reused"] == 2000  # each sentence once (format 3)
    store.commit(tmp_path, data, manifest)
    loaded = store.load(tmp_path)
    assert loaded.chunk_vectors is loaded.sentence_vectors and loaded.paragraph_vectors is loaded.sentence_vectors


def test_pack_pieces_packs_like_tokens_pack_and_releases_what_it_copied():
    import numpy as np
    from conftest import ARTICLE

    from qa import tokens
    from qa.build import pack_pieces, text_key

    doc = document.load_file(ARTICLE, 5 * MB)
    sents = chunking.sentences(doc)
    texts = [s.text for s in sents] + [sents[0].text]  # a repeated sentence shares its entry
    _, parts = HashEncoder().encode_pieces(texts)
    parts[1] = tokens.Pieces.empty(64)  # a sentence without pieces gets one zero row
    cache = {text_key(t): tokens.Pieces(p.ids, p.vectors.astype(np.float16)) for t, p in zip(texts, parts)}
    want = tokens.pack([cache[text_key(t)] for t in texts], 64)
    got = pack_pieces([text_key(t) for t in texts], cache, 64)
    assert np.array_equal(want[0], got[0]) and np.array_equal(want[2], got[2]) and want[0].dtype == got[0].dtype
    assert isinstance(got[1], tokens.PieceCodes)  # the vectors as the index stores them: int8 codes, a scale per row
    assert np.array_equal(np.asarray(got[1]), tokens.dequantize(*tokens.quantize(want[1])))
    assert cache == {}
