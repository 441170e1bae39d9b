"""`Snapshot`: one loaded index version plus the per-version tables every question reads.

A question is always answered from one snapshot, never a mix of two versions. The tables every
question reads (answer-type cues, per-document BM25 and word-piece idf, the piece vectors) are
built once when a version is loaded (`warm`), not on its first question.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from . import byline, store, tokens
from .lexical import DocBM25, tokenize, words
from .retrieval import Cues, idf_table


class Snapshot:
    """An `IndexData` plus lookups derived from it once at load."""

    def __init__(self, data: store.IndexData):
        self.data = data
        self.docs = {d.id: d for d in data.documents}
        rows = {key: i for i, key in enumerate(data.paragraph_keys)}
        self.sentence_para_rows = np.array([rows[(s.doc, s.para)] for s in data.sentences], dtype=np.int64)
        self.groups = [(s.doc, s.para) for s in data.sentences]

    @property
    def version(self) -> str:
        return self.data.version

    @property
    def approximate(self) -> bool:
        """Is this index big enough that only candidates are scored (manifest "ann": "hnsw")?"""
        return self.data.manifest.get("ann") == "hnsw"

    def warm(self) -> Snapshot:
        """Build the per-version tables every question needs now, at load (after a rebuild that
        is the build's thread), rather than on the first question."""
        for table in ("cues", "sentence_tokens", "capitalised", "sentence_bm25", "paragraph_bm25", "doc_piece_idf"):
            getattr(self, table)
        return self

    @cached_property
    def sentence_token_lists(self) -> list[list[str]]:
        """Each sentence's content words in order, repeats kept (BM25 counts them)."""
        return [tokenize(s.text) for s in self.data.sentences]

    @cached_property
    def sentence_tokens(self) -> list[set[str]]:
        return [set(t) for t in self.sentence_token_lists]

    @cached_property
    def window_tokens(self) -> list[set[str]]:
        return [set(tokenize(c.text)) for c in self.data.chunks]

    @cached_property
    def idf(self) -> dict[str, float]:
        """Word idf over the whole index: only the `coverage` signal reads it (weighted 0 today),
        so it is built on first use, not at load."""
        return idf_table(self.sentence_tokens)

    # --- per-document tables: a document's scores do not depend on the other documents (ranking)

    @cached_property
    def doc_order(self) -> dict[str, int]:
        """Each document id's index into `data.documents` (the per-document tables' rows)."""
        return {d.id: i for i, d in enumerate(self.data.documents)}

    @cached_property
    def sentence_docs(self) -> np.ndarray:
        """Each sentence's document, as an index into `data.documents`."""
        return np.array([self.doc_order[s.doc] for s in self.data.sentences], dtype=np.int64)

    @cached_property
    def author_notes(self) -> np.ndarray:
        """The rows of the sentences that are a byline or an author's note (`byline.author_note`)
        within `byline.EDGE_PARAGRAPHS` paragraphs of their document's start or end, where such
        lines sit; read once per index, not per question."""
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for doc, para in self.data.paragraph_keys:
            first[doc], last[doc] = min(first.get(doc, para), para), max(last.get(doc, para), para)
        edge = byline.EDGE_PARAGRAPHS
        return np.array([i for i, s in enumerate(self.data.sentences)
                         if min(s.para - first[s.doc], last[s.doc] - s.para) < edge and byline.author_note(s.text)],
                        dtype=np.int64)

    @cached_property
    def sentence_bm25(self) -> DocBM25:
        return DocBM25(self.sentence_token_lists, self.sentence_docs)

    @cached_property
    def paragraph_bm25(self) -> DocBM25:
        keys = self.data.paragraph_keys
        return DocBM25([tokenize(self.docs[doc].paragraph(para).text) for doc, para in keys],
                       np.array([self.doc_order[doc] for doc, _ in keys], dtype=np.int64))

    def doc_words(self, doc: str) -> tuple[frozenset[str], frozenset[str]]:
        """One document's words (lower case, accents off) and its content words, stemmed: what
        the confidence features look a question's words up in. Read once per document."""
        cache = self.__dict__.setdefault("_doc_words", {})
        if doc not in cache:
            text = self.docs[doc].text
            cache[doc] = (frozenset(words(text)), frozenset(tokenize(text)))
        return cache[doc]

    def doc_idf(self, doc: int) -> dict[str, float]:
        """`idf` over one document's sentences only (`doc`: an index into `data.documents`): what
        a question's words weigh in that document, whatever else is indexed."""
        cache = self.__dict__.setdefault("_doc_idf", {})
        if doc not in cache:
            tokens_of = self.sentence_tokens
            cache[doc] = idf_table([tokens_of[i] for i in np.flatnonzero(self.sentence_docs == doc)])
        return cache[doc]

    @cached_property
    def doc_piece_idf(self) -> tokens.DocPieceIdf:
        return tokens.DocPieceIdf(self.data.piece_ids, self.data.piece_offsets, self.sentence_docs)

    @cached_property
    def capitalised(self) -> frozenset[str]:
        """Words the documents write with a capital inside a sentence more often than without
        (lower-cased, accents off): the names a question typed all in lower case may use."""
        return tokens.capitalised_words(s.text for s in self.data.sentences)

    @cached_property
    def cues(self) -> Cues:
        return Cues.of([s.text for s in self.data.sentences])

    @property
    def piece_vectors(self) -> tokens.PieceCodes:
        """The word-piece vectors for matching, as the index stores them (int8 codes, a scale
        per row: a quarter of float32's memory); matching converts only the rows it scores."""
        return self.data.piece_vectors
