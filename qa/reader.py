"""The reader view: a whole indexed document as HTML, with the paragraph numbers and section
headings of the index (docs/design.md §4) and page markers for paged formats, one paragraph marked
as the target and a quote in it highlighted. Opened from a citation link or from an address
such as `?doc=ID&p=12` (optionally `&s=START&e=END`, the quote's offsets in the text).

All document text is escaped; the target paragraph carries `id='qa-target'` so the page can
scroll to it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass

from .document import Document
from .render import count

EMPTY = ("<div class='qa-reader'><p class='qa-hint'>Open a citation (the ¶ links under an answer) to read "
         "its paragraph in the whole document here.</p></div>")


@dataclass(frozen=True)
class Target:
    """What to show: a document, a paragraph in it, and the quote's [start, end) in its text."""

    doc: str
    paragraph: int | None = None
    start: int | None = None
    end: int | None = None

    @classmethod
    def of(cls, query: Mapping[str, str] | None) -> Target | None:
        """From URL query parameters (doc, p, s, e); None without a `doc`. Bad numbers are ignored.

        >>> Target.of({"doc": "cuba", "p": "4", "s": "x"})
        Target(doc='cuba', paragraph=4, start=None, end=None)
        """
        query = query or {}
        doc = str(query.get("doc") or "").strip()
        if not doc:
            return None
        return cls(doc, _int(query.get("p")), _int(query.get("s")), _int(query.get("e")))


def _int(value) -> int | None:
    try:
        n = int(str(value))
    except (TypeError, ValueError):
        return None
    return n if n >= 0 else None


def reader_html(doc: Document, target: Target | None = None) -> str:
    """The document with paragraph numbers, sections, pages; the target paragraph marked."""
    esc = html.escape
    want = target.paragraph if target and target.paragraph and 1 <= target.paragraph <= len(doc.paragraphs) else None
    pages = f" · {count(doc.pages, 'page')}" if doc.pages else ""
    parts = [("<article class='qa-reader' aria-labelledby='qa-reader-title'>"
              f"<h2 id='qa-reader-title'>{esc(doc.title)}</h2>"
              f"<p class='qa-reader-meta'>{count(len(doc.paragraphs), 'paragraph')}{pages}</p>")]
    if target and target.paragraph and want is None:
        parts.append(f"<p class='qa-stale' role='alert'>This document has no ¶{target.paragraph}; "
                     f"it has {len(doc.paragraphs)}.</p>")
    section, page = None, None
    for p in doc.paragraphs:
        if p.section != section:
            section = p.section
            if section:
                parts.append(f"<h3 class='qa-reader-section'>{esc(section)}</h3>")
        if p.page is not None and p.page != page:
            page = p.page
            parts.append(f"<p class='qa-page'>Page {page}</p>")
        parts.append(_paragraph(doc, p, target if p.number == want else None))
    parts.append("</article>")
    return "".join(parts)


def _paragraph(doc: Document, p, target: Target | None) -> str:
    esc = html.escape
    num = f"<span class='qa-pnum'>¶{p.number}</span>"
    text = doc.text[p.start:p.end]
    if target is None:
        return f"<p class='qa-para' data-p='{p.number}'>{num} {esc(text)}</p>"
    lo, hi = target.start, target.end
    if lo is not None and hi is not None and p.start <= lo < hi <= p.end:
        body = (f"{esc(doc.text[p.start:lo])}<mark class='qa-hl'>{esc(doc.text[lo:hi])}</mark>"
                f"{esc(doc.text[hi:p.end])}")
    else:
        body = esc(text)
    return (f"<p class='qa-para qa-target' id='qa-target' tabindex='-1' data-p='{p.number}'>"
            f"{num} {body}<span class='qa-sr'> (the cited paragraph)</span></p>")


def open_reader(docs: Mapping[str, Document], target: Target | None) -> str:
    """The reader for `target` among the served documents, or a plain message why not."""
    if target is None:
        return EMPTY
    doc = docs.get(target.doc)
    if doc is None:
        return (f"<div class='qa-reader'><p class='qa-stale' role='alert'>No document with the id "
                f"“{html.escape(target.doc)}” is indexed now.</p></div>")
    return reader_html(doc, target)
