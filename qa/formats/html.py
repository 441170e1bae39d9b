"""Web pages -> blocks through trafilatura: the main text, its title and headings; navigation,
comments, cookie banners and footers are left out by trafilatura's boilerplate detection.

Before extraction, void elements that libxml2's HTML parser does not know as void (`<embed>`,
`<source>`, ...) are removed: left unclosed they swallow everything after them. A page whose
main text trafilatura cannot find (a bare fragment, or nesting deeper than libxml2's limit of
256 levels) keeps all its text, read by trafilatura's baseline or else by the standard
library's tolerant parser, with a warning.
"""

from __future__ import annotations

import bisect
import re
from functools import lru_cache

from . import HEADING, PARA, TITLE, Block, Extracted, one_line

# libxml2 parses these as containers, so `<embed src=x>` with no `</embed>` would hold (and
# trafilatura would drop) the rest of the page.
_UNKNOWN_VOID = re.compile(r"<\s*/?\s*(?:embed|source|track|wbr|param|keygen)\b[^>]*>", re.IGNORECASE)
_DOCUMENT = re.compile(r"<(?:html|body)\b", re.IGNORECASE)
# Above this size trafilatura runs without its second-opinion extractors (readability, jusText):
# a 3 MB page of 60,000 paragraphs takes 18 s with them and 9 s without (measured here).
FAST_ABOVE_BYTES = 1_000_000
# Putting back headings trafilatura dropped (`_with_headings`): the elements that head what
# follows, those whose text is not the page's, and how much of a paragraph finds it in the page.
_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "dt"})
_SKIP_TAGS = frozenset({"head", "script", "style", "noscript", "template", "title"})
_MATCH_CHARS = 60
# Texinfo's navigation line at the top of every page ("Next: X, Previous: Y, Up: Z [Index]").
_NAV_LINE = re.compile(r"^(?:Next|Previous|Prev|Up):\s.*\b(?:Previous|Prev|Up|Next):\s")


@lru_cache(maxsize=1)
def _config():
    from trafilatura.settings import use_config

    cfg = use_config()
    # trafilatura's defaults (250 characters) send short pages to a fallback that runs all
    # their text into one paragraph; we keep a page's structure whatever its length.
    for key in ("MIN_EXTRACTED_SIZE", "MIN_OUTPUT_SIZE", "MIN_EXTRACTED_COMM_SIZE", "MIN_OUTPUT_COMM_SIZE"):
        cfg.set("DEFAULT", key, "1")
    cfg.set("DEFAULT", "EXTRACTION_TIMEOUT", "0")  # its timeout uses signals: not from a worker thread
    return cfg


def extract(markup: str) -> Extracted:
    """HTML text -> title and blocks.

    >>> e = extract("<html><body><h1>T</h1><p>One.</p><embed src=x><p>Two.</p></body></html>")
    >>> e.title, [b.text for b in e.blocks if b.kind == PARA]
    ('T', ['One.', 'Two.'])
    """
    import trafilatura
    from lxml import etree

    markup = _UNKNOWN_VOID.sub("", markup)
    if not _DOCUMENT.search(markup[:5000]):  # a fragment: trafilatura reads whole pages only
        markup = f"<html><body>{markup}</body></html>"
    xml = trafilatura.extract(markup, output_format="xml", with_metadata=True, include_comments=False,
                              include_tables=True, include_formatting=False, include_images=False,
                              include_links=False, deduplicate=False, config=_config(),
                              fast=len(markup) > FAST_ABOVE_BYTES)
    warnings: tuple[str, ...] = ()
    blocks: list[Block] = []
    title = ""
    if xml:
        root = etree.fromstring(xml.encode("utf-8"))
        title = one_line(root.get("title") or "")
        main = root.find("main")
        blocks = _blocks(main) if main is not None else []
    blocks = [b for b in blocks if not _NAV_LINE.match(b.text)]
    if blocks and not any(b.kind == HEADING for b in blocks):  # trafilatura found no frame: put them back
        blocks = _with_headings(markup, blocks, title)
    if not any(b.kind == PARA for b in blocks):
        blocks = _all_text(markup) or _plain_text(markup)
        if blocks:
            warnings = ("The page's main text could not be told apart from the rest: all of its text was kept.",)
    if blocks and blocks[0].kind == HEADING and (blocks[0].text == title or not title):
        title = blocks[0].text
        blocks[0] = Block(TITLE, title)
    return Extracted("html", tuple(blocks), title, None, warnings)


def _with_headings(markup: str, blocks: list[Block], title: str) -> list[Block]:
    """Headings (and a definition list's terms) put back above the paragraphs they head.

    When trafilatura finds no main frame (no `<article>`, `<main>` or content `<div>`, as in
    DocBook and Texinfo pages) it recovers the page's paragraphs but drops every `<h1>`-`<h6>`
    and `<dt>`, so the whole page would be one section and "Postgresql databases are owned by
    this user" would lose the user's name. Each paragraph is found in the page's text (by its
    characters without whitespace, in order) and the last heading before it becomes its section.

    >>> page = "<html><body><h2>root</h2><p>The superuser.</p><dl><dt>daemon</dt><dd>Runs daemons.</dd></dl></body></html>"
    >>> [(b.kind, b.text) for b in _with_headings(page, [Block(PARA, "The superuser."), Block(PARA, "Runs daemons.")], "")]
    [('heading', 'root'), ('para', 'The superuser.'), ('heading', 'daemon'), ('para', 'Runs daemons.')]
    """
    import lxml.html
    from lxml import etree

    try:
        root = lxml.html.fromstring(markup)
    except (etree.ParserError, ValueError):
        return blocks
    pieces: list[str] = []  # the page's text without whitespace
    marks: list[tuple[int, str]] = []  # (offset into that text, heading)
    size = 0

    def add(piece: str | None) -> None:
        nonlocal size
        squeezed = "".join((piece or "").split())
        pieces.append(squeezed)
        size += len(squeezed)

    def walk(el) -> None:
        if isinstance(el.tag, str) and el.tag not in _SKIP_TAGS:
            if (el.tag in _HEADING_TAGS and "author" not in (el.get("class") or "").lower()  # DocBook's title page
                    and (heading := one_line(el.text_content())) and heading != title):
                marks.append((size, heading))
            add(el.text)
            for child in el:
                walk(child)
        add(el.tail)  # a child's tail is text of its parent, after the child

    walk(root)
    if not marks:
        return blocks
    text, starts = "".join(pieces), [pos for pos, _ in marks]
    out: list[Block] = []
    cursor, section = 0, ""
    for b in blocks:
        key = "".join(b.text.split())[:_MATCH_CHARS]
        at = text.find(key, cursor) if key else -1
        if at >= 0:
            cursor = at + len(key)
            i = bisect.bisect_right(starts, at) - 1
            if i >= 0 and marks[i][1] != section:
                section = marks[i][1]
                out.append(Block(HEADING, section))
        out.append(b)
    return out


def _blocks(el) -> list[Block]:
    out: list[Block] = []
    for child in el:
        tag = child.tag
        if tag == "head":
            out += _block(HEADING, child)
        elif tag == "list":
            for item in child.iter("item"):
                own = one_line("".join(_own_text(item)))
                if own:
                    out.append(Block(PARA, own))
        elif tag == "table":
            out += [Block(PARA, row) for row in _table_rows(child)]
        elif tag in ("quote", "div", "main") and len(child):
            out += _blocks(child)
        else:
            out += _block(PARA, child)
    return out


def _block(kind: str, el) -> list[Block]:
    text = one_line(" ".join(el.itertext()) if el.find("lb") is not None else "".join(el.itertext()))
    return [Block(kind, text)] if text else []


def _own_text(item):
    """An item's text without its nested lists (those items come on their own)."""
    yield item.text or ""
    for child in item:
        if child.tag != "list":
            yield " ".join(child.itertext()) if child.tag == "lb" else "".join(child.itertext())
        yield child.tail or ""


def _table_rows(table) -> list[str]:
    """Rows as readable lines: 'Bed: North bed; Crop: Tomatoes' under a header row, else 'a | b'."""
    rows = [[one_line("".join(c.itertext())) for c in row.iter("cell")] for row in table.iter("row")]
    heads = [c.get("role") == "head" for c in next(table.iter("row")).iter("cell")] if rows else []
    out = []
    if rows and heads and all(heads):
        header, body = rows[0], rows[1:]
        for row in body:
            if len(row) == len(header):
                out.append("; ".join(f"{h}: {v}" if h else v for h, v in zip(header, row) if v))
            else:
                out.append(" | ".join(v for v in row if v))
        return [r for r in out if r]
    return [r for r in (" | ".join(v for v in row if v) for row in rows) if r]


def _all_text(markup: str) -> list[Block]:
    """Every line of the page's text (trafilatura's baseline), one paragraph each."""
    from trafilatura import baseline

    _, text, _ = baseline(markup)
    return [Block(PARA, line) for line in map(one_line, text.split("\n")) if line]


def _plain_text(markup: str) -> list[Block]:
    """Last resort, for pages lxml cannot build a tree of (nesting past its depth limit): the
    text between block-level tags, scripts and styles left out (the standard library's parser
    has no depth limit)."""
    from html.parser import HTMLParser

    skip_tags = {"script", "style", "noscript", "template", "head", "title"}
    block_tags = {"p", "div", "li", "tr", "td", "th", "br", "h1", "h2", "h3", "h4", "h5", "h6", "section",
                  "article", "blockquote", "pre", "table", "ul", "ol"}
    parts: list[str] = []
    skipping = [0]

    class Reader(HTMLParser):
        def handle_starttag(self, tag, attrs):
            skipping[0] += tag in skip_tags
            parts.append("\n" if tag in block_tags else "")

        def handle_endtag(self, tag):
            skipping[0] = max(0, skipping[0] - (tag in skip_tags))
            parts.append("\n" if tag in block_tags else "")

        def handle_data(self, data):
            if not skipping[0]:
                parts.append(data)

    reader = Reader(convert_charrefs=True)
    reader.feed(markup)
    reader.close()
    return [Block(PARA, line) for line in map(one_line, "".join(parts).split("\n")) if line]
