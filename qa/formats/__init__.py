"""Readers for each file format: bytes -> `Extracted`, a list of `Block`s (title, headings,
paragraphs, each with the page it starts on when the format has pages).

`qa.document` turns an `Extracted` into a numbered `Document` (docs/design.md §4); the readers here
know nothing of numbering. One module per format: `text` (decoding, charset-normalizer),
`html` (trafilatura), `pdf` (pdfminer.six, in a child process with time and memory bounds),
`docx` (python-docx).
"""

from __future__ import annotations

from dataclasses import dataclass, field

TITLE, HEADING, PARA = "title", "heading", "para"


@dataclass(frozen=True)
class Block:
    kind: str  # TITLE, HEADING or PARA
    text: str  # one line: whitespace already collapsed
    page: int | None = None  # 1-based page it starts on (paged formats only)


@dataclass(frozen=True)
class Extracted:
    format: str  # "text", "markdown", "html", "pdf", "docx"
    blocks: tuple[Block, ...]
    title: str = ""  # from the format's metadata or layout ("" when unknown)
    pages: int | None = None
    warnings: tuple[str, ...] = field(default=())


def one_line(text: str) -> str:  # noqa: F811 (the module `text` is imported below)
    """Collapse every run of whitespace (newlines, NBSP, tabs) to one space.

    >>> one_line(" a\\n b\\u00a0\\tc ")
    'a b c'
    """
    return " ".join(text.split())


from . import docx, html, pdf, text  # noqa: E402, F401, F811  (the readers use Block/Extracted above)
