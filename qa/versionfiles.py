"""What one index version's folder holds, and how each file is written and read back (format 4:
float16 vectors, an array identical to another written once, word pieces as int8 codes with one
scale per row, served as they are stored (`tokens.PieceCodes`); no BM25 files: answering builds
its per-document BM25 at load; formats 2 and 3 still read). `store.py` owns the versions' life
(writing a folder atomically, publishing, pruning, verifying); this module only the files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import tokens
from .chunking import Chunk, Sentence
from .document import Document, Paragraph

FORMAT_VERSION = 4
#: 2: float32 vectors, float16 pieces, window texts, always a vectors.faiss; 3: also an index-wide
#: BM25 (bm25s folders bm25_sentences/ and bm25_paragraphs/), which no question read (answering
#: scores BM25 per document, `lexical.DocBM25`): read as format 4, those folders ignored (and
#: rebuilt at start: `Library.staleness`)
READABLE_FORMATS = (2, 3, 4)

@dataclass(frozen=True, eq=False)
class IndexData:
    """Everything one index version holds, in memory. Rows of the vector arrays align with
    `sentences` (sentence_vectors), `chunks` (chunk_vectors) and `paragraph_keys`."""

    version: str
    manifest: dict
    documents: tuple[Document, ...]
    sentences: tuple[Sentence, ...]
    chunks: tuple[Chunk, ...]
    paragraph_keys: tuple[tuple[str, int], ...]
    sentence_vectors: np.ndarray
    chunk_vectors: np.ndarray
    paragraph_vectors: np.ndarray
    faiss_index: object  # HNSW (faiss) above the threshold; flat: None in a build's own data, `FlatIP` once loaded
    piece_ids: np.ndarray  # int32: the sentences' content word pieces, packed (qa.tokens.pack)
    piece_vectors: tokens.PieceCodes  # one row per piece: int8 codes, a scale per row; rows read as float32
    piece_offsets: np.ndarray  # int64, len(sentences) + 1: sentence i owns rows [offsets[i], offsets[i+1])

    def document(self, doc_id: str) -> Document:
        for d in self.documents:
            if d.id == doc_id:
                return d
        raise KeyError(doc_id)


def write_files(folder: Path, data: IndexData, hnsw: bool) -> dict[str, str]:
    """Write every file of `data` into `folder` (not the manifest); returns which file holds
    each vector array (`arrays` in the manifest)."""
    import faiss

    _write_jsonl(folder / "documents.jsonl", (_doc_record(d) for d in data.documents))
    _write_jsonl(folder / "sentences.jsonl", ([s.doc, s.para, s.index, s.start, s.end] for s in data.sentences))
    _write_jsonl(folder / "chunks.jsonl", ([c.id, c.doc, c.para, c.center, c.start, c.end] for c in data.chunks))
    arrays = {}  # which file holds each vector array: an array shared with another is written once
    for name, arr in (("sentence", data.sentence_vectors), ("chunk", data.chunk_vectors),
                      ("paragraph", data.paragraph_vectors)):
        same = next((arrays[k] for k, a in (("sentence", data.sentence_vectors), ("chunk", data.chunk_vectors))
                     if k in arrays and a is arr), None)
        arrays[name] = same or f"{name}_vectors.npy"
        if same is None:
            np.save(folder / arrays[name], np.asarray(arr, dtype=np.float16))
    if hnsw:  # an exact index is only the window vectors again: searched in place at load (FlatIP)
        faiss.write_index(data.faiss_index, str(folder / "vectors.faiss"))
    pieces = data.piece_vectors  # int8 codes as the build holds them (tokens.PieceCodes): written as they are
    np.save(folder / "piece_codes.npy", pieces.codes)
    np.savez(folder / "pieces.npz", ids=data.piece_ids, scales=pieces.scales, offsets=data.piece_offsets)
    return arrays


def read_files(folder: Path, version: str, manifest: dict) -> IndexData:
    """The version in `folder` as its manifest describes it (checksums already verified).
    Raises KeyError, ValueError, OSError, ... on anything malformed (store.load says so)."""
    form = manifest.get("format")
    documents = tuple(_doc_from(r) for r in _read_jsonl(folder / "documents.jsonl"))
    with np.load(folder / "pieces.npz") as pieces:
        piece_ids, piece_offsets = pieces["ids"], pieces["offsets"]
        piece_vectors = tokens.PieceCodes(*tokens.quantize(pieces["vectors"])) if form == 2 else \
            tokens.PieceCodes(np.load(folder / "piece_codes.npy"), pieces["scales"])
    texts = {d.id: d.text for d in documents}
    sentences = tuple(Sentence(doc, para, i, s, e, texts[doc][s:e])
                      for doc, para, i, s, e in _read_jsonl(folder / "sentences.jsonl"))
    if form == 2:
        chunks = tuple(Chunk(r["id"], r["doc"], r["para"], r["center"], r["start"], r["end"], r["text"])
                       for r in _read_jsonl(folder / "chunks.jsonl"))
    else:
        chunks = tuple(Chunk(i, doc, para, c, s, e, texts[doc][s:e])
                       for i, doc, para, c, s, e in _read_jsonl(folder / "chunks.jsonl"))
    files = manifest.get("arrays") or {k: f"{k}_vectors.npy" for k in ("sentence", "chunk", "paragraph")}
    arrays: dict[str, np.ndarray] = {}  # by checksum: identical files (one-sentence paragraphs) held once

    def vectors(kind: str) -> np.ndarray:
        key = manifest["files"][files[kind]]
        if key not in arrays:
            arrays[key] = np.ascontiguousarray(np.load(folder / files[kind]), dtype=np.float32)
        return arrays[key]

    chunk_vectors = vectors("chunk")
    if (folder / "vectors.faiss").exists():
        import faiss

        faiss_index = faiss.read_index(str(folder / "vectors.faiss"))
    else:  # exact search over the window vectors held already: no second copy
        faiss_index = FlatIP(chunk_vectors)
    return IndexData(
        version=version, manifest=manifest, documents=documents, sentences=sentences, chunks=chunks,
        paragraph_keys=tuple((d.id, p.number) for d in documents for p in d.paragraphs),
        sentence_vectors=vectors("sentence"),
        chunk_vectors=chunk_vectors,
        paragraph_vectors=vectors("paragraph"),
        faiss_index=faiss_index,
        piece_ids=piece_ids, piece_vectors=piece_vectors, piece_offsets=piece_offsets,
    )


class FlatIP:
    """Exact inner-product search over the window vectors as loaded (the array itself, not a
    copy): a flat index, as FAISS's IndexFlatIP answers `ntotal` and `search`. IndexFlatIP held a
    second copy of the vectors (100,000 one-line paragraphs: 154 MB at load), and answering an
    exact index scores every row itself; only an HNSW index (`vectors.faiss`) is searched for
    candidates.

    >>> FlatIP(np.array([[1, 0], [0.6, 0.8], [0, 1]], np.float32)).search(np.array([[0, 1]], np.float32), 2)[1].tolist()
    [[2, 1]]
    """

    def __init__(self, vectors: np.ndarray):
        self.vectors = vectors

    @property
    def ntotal(self) -> int:
        return len(self.vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = np.asarray(queries, dtype=np.float32) @ np.asarray(self.vectors, dtype=np.float32).T
        k = min(k, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k else np.zeros((len(scores), 0), np.int64)
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable"), 1)
        return np.take_along_axis(scores, top, 1), top.astype(np.int64)


def consistent(data: IndexData) -> bool:
    """Do the rows of every array agree (sentences, windows, paragraphs, FAISS, word pieces)?"""
    return (len(data.sentences) == len(data.sentence_vectors) == len(data.chunks) == data.faiss_index.ntotal
            and len(data.paragraph_keys) == len(data.paragraph_vectors) and _pieces_fit(data))


def _pieces_fit(data: IndexData) -> bool:
    """Do the word-piece arrays have the shapes `qa.tokens` relies on? (1-D ids and offsets
    starting at 0, at least one row per sentence, ending at the piece count; vectors as wide as the others.)"""
    ids, vecs, off = data.piece_ids, data.piece_vectors, data.piece_offsets
    if ids.ndim != 1 or off.ndim != 1 or vecs.ndim != 2 or len(off) != len(data.sentences) + 1:
        return False
    dim = data.sentence_vectors.shape[1] if data.sentence_vectors.ndim == 2 else -1
    return (len(off) > 0 and int(off[0]) == 0 and bool(np.all(np.diff(off) >= 1)) and int(off[-1]) == len(ids) == len(vecs)
            and (vecs.shape[1] == dim or len(vecs) == 0))


def _doc_record(d: Document) -> dict:
    return {"id": d.id, "title": d.title, "source": d.source, "warnings": list(d.warnings), "text": d.text,
            "format": d.format, "pages": d.pages,
            "paragraphs": [[p.number, p.section, p.start, p.end, *([p.page] if p.page is not None else [])]
                           for p in d.paragraphs]}


def _doc_from(r: dict) -> Document:
    text = r["text"]
    paras = tuple(Paragraph(n, sec, s, e, text[s:e], *page) for n, sec, s, e, *page in r["paragraphs"])
    return Document(r["id"], r["title"], text, paras, r.get("source", ""), tuple(r.get("warnings", ())),
                    r.get("format", "text"), r.get("pages"))


def _write_jsonl(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _read_jsonl(path: Path) -> list:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
