"""Paragraphs -> sentences and retrieval `Chunk`s (sentence windows inside one paragraph).

A chunk never crosses a paragraph, and every chunk carries offsets into the document text
with `text[start:end] == chunk.text`. Windows are short (a few sentences), so no text is
lost to the embedding model's 256 word-piece limit.

Work stays proportional to the text on any input (issue 16): no sentence -- and so no quote --
is longer than MAX_SENTENCE_CHARS (an over-long run is cut after the last `;`, `:` or `,`, else
at the last space, else hard), a window takes a neighbour only while it stays within
MAX_WINDOW_CHARS, and the abbreviation check looks at the last few characters only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .document import Document

# A sentence ends at . ! ? or … (plus closing quotes/brackets) followed by space and a capital,
# digit or opening quote -- unless the "sentence" is an abbreviation such as "N." or "Mr.".
_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9À-ÖØ-Þ])")
#: Longest sentence (and quote), in characters. Real sentences are far shorter: the longest of
#: the 4,716 in eval/ and source/ is 1,624 characters (99.9th percentile 1,041), and the
#: embedding model reads about the first 1,000-1,200 characters (256 word pieces) of any text.
MAX_SENTENCE_CHARS = 2000
#: Longest window: a neighbour is added only while the window stays within this. No window of
#: eval/ or source/ is longer (so their chunks are unchanged); a run cut into MAX_SENTENCE_CHARS
#: pieces gets one-sentence windows, whose text equals the sentence and is embedded once.
MAX_WINDOW_CHARS = 3000
_CUT_AFTER = re.compile(r"[;:,](?=\s)")  # where an over-long run is best cut (before a space)
_ABBREV_REACH = 24  # characters before a full stop the abbreviation check looks at (its longest word + room)
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
        end = m.end()
        while end > start and text[end - 1] in "\"'”’)]":
            end -= 1
        if _ABBREV.search(text, max(start, end - _ABBREV_REACH), end):  # the tail only: linear on any text
            continue
        spans.append((start, m.end()))
        start = m.end()
        while start < len(text) and text[start].isspace():
            start += 1
    if start < len(text):
        spans.append((start, len(text.rstrip()) if text.rstrip() else len(text)))
    return [(offset + a, offset + b) for s, e in spans if e > s for a, b in _cut(text, s, e)]


def _cut(text: str, start: int, end: int, cap: int = MAX_SENTENCE_CHARS) -> list[tuple[int, int]]:
    """Split text[start:end] into runs of at most `cap` characters: after the last ; : or , in
    the second half of each run, else at its last space, else hard at `cap`.

    >>> _cut("aaaa, bbbb cc dd", 0, 16, cap=8)
    [(0, 5), (6, 13), (14, 16)]
    """
    out = []
    while end - start > cap:
        limit = start + cap
        cut = None
        for m in _CUT_AFTER.finditer(text, start + cap // 2, limit):
            cut = m.end()
        if cut is None:
            space = max(text.rfind(" ", start + 1, limit + 1), text.rfind("\n", start + 1, limit + 1))
            cut = space if space > start else limit
        out.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        out.append((start, end))
    return out


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
        while lo > 0 and i - lo < radius and sents[lo - 1].para == s.para \
                and s.end - sents[lo - 1].start <= MAX_WINDOW_CHARS:
            lo -= 1
        hi = i
        while hi + 1 < len(sents) and hi - i < radius and sents[hi + 1].para == s.para \
                and sents[hi + 1].end - sents[lo].start <= MAX_WINDOW_CHARS:
            hi += 1
        start, end = sents[lo].start, sents[hi].end
        chunks.append(Chunk(first_id + i, s.doc, s.para, i, start, end, doc.text[start:end]))
    return chunks
