"""Index formats 3-4 (issue 13, book-sized documents): each distinct sentence and window is encoded
once, paragraphs' vectors are derived from their sentences', arrays are stored compactly, and
a format-2 or format-3 index still loads and is rebuilt at start without encoding anything
again. Hashing encoder only."""

from __future__ import annotations

import json

import numpy as np
from conftest import ARTICLE, HashEncoder, make_engine, publish_version

from qa import document, store, tokens
from qa.build import CHUNKING, derive, paragraph_rows

MB = 1024 * 1024


class CountingEncoder(HashEncoder):
    """The hashing encoder, counting the texts it is asked to encode."""

    def __init__(self):
        self.texts: list[str] = []

    def encode(self, texts):
        self.texts += list(texts)
        return HashEncoder().encode(texts)

    def encode_pieces(self, texts):
        self.texts += list(texts)
        return HashEncoder().encode_pieces(texts)


def _docs():
    return [document.load_file(ARTICLE, 5 * MB)]


def test_each_distinct_sentence_and_window_is_encoded_once_and_paragraphs_are_derived(tmp_path):
    enc = CountingEncoder()
    data = publish_version_with(tmp_path, enc)
    want = {s.text for s in data.sentences} | {c.text for c in data.chunks}
    assert len(enc.texts) == len(want) and set(enc.texts) == want
    plo, phi = paragraph_rows(list(data.sentences), list(data.paragraph_keys))
    for j, key in enumerate(data.paragraph_keys):
        assert phi[j] > plo[j] and [(s.doc, s.para) for s in data.sentences[plo[j]:phi[j]]] == [key] * (phi[j] - plo[j])
        v = data.sentence_vectors[plo[j]:phi[j]].sum(axis=0)
        assert np.allclose(data.paragraph_vectors[j], v / np.linalg.norm(v), atol=1e-3)


def publish_version_with(index_dir, encoder):
    from qa.build import build_index

    data, manifest = build_index(_docs(), encoder, "hash-64", ["/x"])
    store.write_version(index_dir, data, manifest)
    store.publish(index_dir, data.version)
    return data


def test_derive_of_one_sentence_spans_is_the_sentence_array_itself():
    v = np.eye(3, dtype=np.float32)
    assert derive(v, np.arange(3), np.arange(1, 4)) is v
    assert derive(v, np.array([0]), np.array([0])).tolist() == [[0.0, 0.0, 0.0]]  # no sentences: a zero row


def test_index_files_are_compact_and_load_back_as_built(tmp_path):
    data = publish_version(tmp_path, _docs())
    folder = store.versions_dir(tmp_path) / data.version
    m = store.read_manifest(tmp_path)
    assert m["format"] == store.FORMAT_VERSION and "vectors.faiss" not in m["files"]
    for name in ("sentence", "chunk", "paragraph"):
        assert np.load(folder / m["arrays"][name]).dtype == np.float16
    codes = np.load(folder / "piece_codes.npy")
    with np.load(folder / "pieces.npz") as p:
        assert codes.dtype == np.int8 and len(p["scales"]) == len(codes) == len(data.piece_ids)
    assert "text" not in (folder / "chunks.jsonl").read_text().splitlines()[0]
    loaded = store.load(tmp_path)
    assert loaded.chunks == data.chunks  # window texts come back from the documents
    for name in ("sentence_vectors", "chunk_vectors", "paragraph_vectors", "piece_vectors"):
        assert np.array_equal(getattr(loaded, name), getattr(data, name))
    assert loaded.sentence_vectors.dtype == np.float32 and isinstance(loaded.piece_vectors, tokens.PieceCodes)
    assert np.array_equal(loaded.piece_vectors.codes, codes)  # served as stored: int8 codes, not a float copy
    assert loaded.faiss_index.ntotal == len(loaded.chunks)


def test_quantized_pieces_survive_a_second_round_unchanged():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((50, 384)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    codes, scales = tokens.quantize(v)
    once = tokens.dequantize(codes, scales)
    assert np.abs(once.astype(np.float32) - v).max() < 0.005
    again = tokens.quantize(once)
    assert np.array_equal(again[0], codes)  # the build's cache reuses pieces without degrading them


def test_one_sentence_paragraphs_write_the_vector_array_once(tmp_path):
    docs = [document.load(b"Title\n\nOne line here.\n\nAnother line there.\n\nA third one.\n", "lines.txt", MB)]
    data = publish_version(tmp_path, docs)
    assert data.chunk_vectors is data.sentence_vectors and data.paragraph_vectors is data.sentence_vectors
    m = store.read_manifest(tmp_path)
    assert set(m["arrays"].values()) == {"sentence_vectors.npy"}
    loaded = store.load(tmp_path)
    assert loaded.chunk_vectors is loaded.sentence_vectors is loaded.paragraph_vectors


def _as_format_2(folder):
    """Rewrite a format-3 version folder as format 2 wrote it (float32 arrays, window texts, a
    flat FAISS file, float16 pieces, the old chunking key) with fresh checksums."""
    import faiss

    m = json.loads((folder / "manifest.json").read_text())
    arrays = {k: np.load(folder / m["arrays"][k]).astype(np.float32) for k in ("sentence", "chunk", "paragraph")}
    for k, a in arrays.items():
        np.save(folder / f"{k}_vectors.npy", a)
    docs = {json.loads(line)["id"]: json.loads(line)["text"] for line in (folder / "documents.jsonl").read_text().splitlines()}
    rows = [json.loads(line) for line in (folder / "chunks.jsonl").read_text().splitlines()]
    (folder / "chunks.jsonl").write_text("".join(json.dumps({"id": i, "doc": d, "para": p, "center": c, "start": s,
                                                             "end": e, "text": docs[d][s:e]}) + "\n"
                                                 for i, d, p, c, s, e in rows))
    index = faiss.IndexFlatIP(arrays["chunk"].shape[1])
    index.add(arrays["chunk"])
    faiss.write_index(index, str(folder / "vectors.faiss"))
    with np.load(folder / "pieces.npz") as p:
        np.savez(folder / "pieces.npz", ids=p["ids"], vectors=tokens.dequantize(np.load(folder / "piece_codes.npy"),
                                                                                 p["scales"]), offsets=p["offsets"])
    (folder / "piece_codes.npy").unlink()
    chunking = {k: v for k, v in CHUNKING.items() if k != "vectors"}
    m = {k: v for k, v in m.items() if k != "arrays"}
    m.update(format=2, chunking=chunking, files=store._checksums(folder))
    (folder / "manifest.json").write_text(json.dumps(m))


def test_format_2_index_loads_and_is_rebuilt_at_start_reusing_its_vectors(tmp_path, settings):
    engine = make_engine(settings)
    engine.library.build([settings.source_dir])
    old = store.current_version(settings.index_dir)
    _as_format_2(store.versions_dir(settings.index_dir) / old)
    loaded = store.load(settings.index_dir)
    assert loaded.manifest["format"] == 2 and loaded.chunks[3].text
    fresh = make_engine(settings)
    assert fresh.library.staleness() == "the chunking parameters changed"
    assert fresh.library.ensure_index()
    m = store.read_manifest(settings.index_dir)
    assert m["format"] == store.FORMAT_VERSION and m["version"] != old
    c = m["counts"]
    assert c["encoded"] == 0 and c["reused"] == c["sentences"] + c["chunks"]


def test_format_3_index_with_its_bm25_folders_loads_and_is_rebuilt_at_start_reusing_its_vectors(tmp_path, settings):
    """Format 3 also stored an index-wide BM25 (bm25s folders) that no question read: such a
    version still loads (the folders ignored) and the start-up check rebuilds it as format 4
    from its recorded sources without encoding anything."""
    engine = make_engine(settings)
    engine.library.build([settings.source_dir])
    old = store.current_version(settings.index_dir)
    folder = store.versions_dir(settings.index_dir) / old
    for name in ("bm25_sentences", "bm25_paragraphs"):
        (folder / name).mkdir()
        (folder / name / "params.index.json").write_text('{"method": "lucene"}')
    m = json.loads((folder / "manifest.json").read_text())
    m.update(format=3, files=store._checksums(folder))
    (folder / "manifest.json").write_text(json.dumps(m))
    assert store.load(settings.index_dir).manifest["format"] == 3
    fresh = make_engine(settings)
    assert fresh.library.staleness() == f"the index format changed (3 -> {store.FORMAT_VERSION})"
    assert fresh.library.ensure_index()
    m = store.read_manifest(settings.index_dir)
    assert m["format"] == store.FORMAT_VERSION and m["version"] != old
    assert not any(k.startswith("bm25_") for k in m["files"])
    assert m["counts"]["encoded"] == 0
