"""Paragraphs -> sentences and retrieval `Chunk`s (sentence windows inside one paragraph).

A chunk never crosses a paragraph, and every chunk carries offsets into the document text
with `text[start:end] == chunk.text`. Windows are short (a few sentences), so no text is
lost to the embedding model's 256 word-piece limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .document import Document

# A sentence ends at . ! ? or … (plus closing quotes/brackets) followed by space and a capital,
# digit or opening quote -- unless the "sentence" is an abbreviation such as "N." or "Mr.".
_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9À-ÖØ-Þ])")
_ABBREV = re.compile(
    r"(?:\b[A-Z]|\b(?:Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|Gen|Lt|Col|Sgt|Capt|Gov|Sen|Rep|No|Fig|vs|etc|approx|e\.g|i\.e|U\.S|c|ca|cf|Vol|pp|Mt|Ft|Inc|Ltd|Co|Corp))\.$"
)


@dataclass(frozen=True)
class Sentence:
    doc: str
    para: int
    index: int  # position within the paragraph, 0-based
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Chunk:
    """A window of sentences centred on one sentence (`center`), all inside paragraph `para`."""

    id: int
    doc: str
    para: int
    center: int  # index (into the document's sentence list) of the sentence this window is about
    start: int
    end: int
    text: str


def split_sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Sentence spans (absolute offsets) of one paragraph.

    >>> split_sentences("He left. N. Korea won! Then 1960.")
    [(0, 8), (9, 22), (23, 33)]
    """
    spans, start = [], 0
    for m in _END.finditer(text):
        if _ABBREV.search(text[start : m.end()].rstrip("\"'”’)]")):
            continue
        spans.append((start, m.end()))
        start = m.end()
        while start < len(text) and text[start].isspace():
            start += 1
    if start < len(text):
        spans.append((start, len(text.rstrip()) if text.rstrip() else len(text)))
    return [(offset + s, offset + e) for s, e in spans if e > s]


def sentences(doc: Document) -> list[Sentence]:
    out: list[Sentence] = []
    for p in doc.paragraphs:
        for i, (s, e) in enumerate(split_sentences(p.text, p.start)):
            out.append(Sentence(doc.id, p.number, i, s, e, doc.text[s:e]))
    return out


def windows(doc: Document, sents: list[Sentence], radius: int = 1, first_id: int = 0) -> list[Chunk]:
    """One chunk per sentence: the sentence with up to `radius` neighbours each side, same paragraph."""
    chunks: list[Chunk] = []
    for i, s in enumerate(sents):
        lo = i
        while lo > 0 and i - lo < radius and sents[lo - 1].para == s.para:
            lo -= 1
        hi = i
        while hi + 1 < len(sents) and hi - i < radius and sents[hi + 1].para == s.para:
            hi += 1
        start, end = sents[lo].start, sents[hi].end
        chunks.append(Chunk(first_id + i, s.doc, s.para, i, start, end, doc.text[start:end]))
    return chunks
