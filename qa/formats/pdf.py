"""PDF (with a text layer) -> blocks, through pdfminer.six's layout analysis.

pdfminer groups characters into lines and lines into text boxes in reading order (columns
included). On top of that: running headers, footers and page numbers (a box in the top or
bottom margin whose text, digits aside, repeats on another page, or that is a bare page number)
are dropped; a box of at most three short lines set larger than the body text (or all bold)
is a heading, the largest on page 1 the title; lines are joined, a hyphen at a line end
joined away unless the document writes that word with its hyphen elsewhere; a paragraph that
does not end a sentence continues in the next box, across columns and pages, and keeps the
page it starts on.

pdfminer measured better than pypdf on the test PDFs: pypdf's `extract_text` gives lines with
no paragraph breaks (0 of the shipped article's 21 paragraphs recoverable by blank lines),
pdfminer's boxes give all 21 (tests/test_formats_pdf.py).

Untrusted files are read in a child process under a time limit (`TIME_LIMIT_S`) and an
address-space limit (`MEMORY_LIMIT_BYTES`), and refused past `MAX_PAGES` pages: a
decompression bomb, a page tree of millions of pages or deeply nested objects end that child,
never the app. Encrypted, malformed and scanned (no text layer) files get an `InputError`
saying what to do.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from ..errors import InputError
from . import HEADING, PARA, TITLE, Block, Extracted, one_line

# Bounds for reading one PDF (the file size limit, QA_MAX_FILE_MB, applies first). A text PDF
# of 5 MB (the default size limit) is a few hundred pages; pdfminer reads ~10-20 pages/s here.
MAX_PAGES = 2000
TIME_LIMIT_S = 60
MEMORY_LIMIT_BYTES = 1536 << 20  # address space of the child, Python and pdfminer included (~150 MB)

# Layout thresholds (points are 1/72 inch), set on Chromium- and Word-made PDFs.
MARGIN_BAND = 0.10  # a running header/footer lies wholly in the top or bottom 10% of the page
REPEAT_PAGES = 2  # ... and (digits aside) recurs on this many pages. Not "on half of them": a book's
# running head names the chapter ("Chapter 4: Function reference" on 15 of libtasn1's 36 pages ran
# into its paragraphs)
HEADING_SIZE = 1.15  # a heading is set at least this much larger than the body text
TITLE_SIZE = 1.3  # the title, on page 1, at least this much larger
HEADING_MAX_WORDS = 20

_PAGE_NUMBER = re.compile(r"^[\W_]*(?:(?:page|p\.|seite|pág\.?)?\s*\d{1,5}(?:\s*(?:/|of|von|de)\s*\d{1,5})?"
                          r"|[ivxlc]{1,7})[\W_]*$", re.IGNORECASE)  # roman: a preface's "i", "iv"
# A table of contents' line: "2.1 ASN.1 syntax . . . . . . 2" (dot leaders, then a page number).
# A box whose lines are mostly such lines is the contents, not text to cite.
_LEADER = re.compile(r"\S(?:\s?\.){4,}\s*(?:\d{1,5}|[ivxlc]{1,7})$", re.IGNORECASE)
# Left alone in a box of its own, a number (or a column of them) is a contents entry's or
# a list's number, not a paragraph.
_BARE_NUMBER = re.compile(r"^(?:(?:\d{1,3}(?:\.\d{1,3})*\.?|[ivxlc]{1,7}\.?)(?:\s+|$))+$", re.IGNORECASE)
# pdfminer writes "(cid:N)" for a glyph without a Unicode mapping; TeX's © is "c" over glyph 13.
_CID = re.compile(r"\(cid:\d+\)")
_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})
_ENDS = tuple(".!?:;…")
# A list item's bullet glyph: the item is a paragraph of its own (never the tail of the line or
# box before it), and its text starts after the glyph (a quote does not open with "•").
_BULLET = re.compile(r"^[•◦▪▫‣●○■□∙⁃]\s+(?=\S)")
_CLOSERS = "\"'”’»)]*_ "


def extract(data: bytes, name: str = "input.pdf") -> Extracted:
    pages = _read_in_child(data, name)
    if not any(box["lines"] for page in pages for box in page["boxes"]):
        raise InputError(f"{name}: this PDF has no text layer (it is probably scanned): run OCR on it first "
                         "(for example `ocrmypdf in.pdf out.pdf`), then upload the result.")
    blocks, title = layout(pages)
    return Extracted("pdf", tuple(blocks), title, len(pages))


# --- reading, in a child process ----------------------------------------------------------

def _read_in_child(data: bytes, name: str) -> list[dict]:
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p))
    try:
        code = f"from qa.formats.pdf import _child; _child({MEMORY_LIMIT_BYTES}, {TIME_LIMIT_S}, {MAX_PAGES})"
        proc = subprocess.run([sys.executable, "-c", code],
                              input=data, capture_output=True, timeout=TIME_LIMIT_S, env=env)
    except subprocess.TimeoutExpired:
        proc = None
    out = {}
    if proc is not None:
        try:
            out = json.loads(proc.stdout or b"{}")
        except ValueError:
            pass
    if "pages" in out:
        return out["pages"]
    if proc is None or proc.returncode == -signal.SIGXCPU:
        kind, detail = "time", ""
    elif "error" in out:
        kind, detail = out["error"], out.get("detail", "")
    elif b"MemoryError" in proc.stderr or proc.returncode == -signal.SIGKILL:
        kind, detail = "memory", ""
    else:
        kind = "crash"
        detail = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit {proc.returncode}"])[-1][:200]
    raise InputError(_MESSAGES[kind].format(name=name, detail=detail, max_pages=MAX_PAGES, seconds=TIME_LIMIT_S,
                                            memory_mb=MEMORY_LIMIT_BYTES >> 20))


_MESSAGES = {
    "encrypted": "{name} is encrypted with a password. Open it, save or print it without the password, and upload that.",
    "malformed": "{name} is not a readable PDF ({detail}). Re-export it (or print it to a new PDF) and try again.",
    "pages": "{name} has {detail} pages, over the limit of {max_pages} pages a PDF may have here. "
             "Split it into smaller files.",
    "memory": "{name}: reading this PDF needed more than {memory_mb} MB of memory, so it was "
              "refused (it may be damaged or a decompression bomb). Print it to a new PDF and try again.",
    "crash": "{name} could not be read as a PDF ({detail}). Re-export it and try again.",
    "time": "{name}: reading this PDF took longer than {seconds} s, so it was refused (it may be damaged or "
            "built to exhaust a reader). Print it to a new PDF and try again.",
}


def _child(memory: int, seconds: float, max_pages: int) -> None:
    """Entry point of the child: PDF bytes on stdin -> JSON pages (or an error) on stdout."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = int(seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    sys.setrecursionlimit(5000)
    data = sys.stdin.buffer.read()
    try:
        out = {"pages": read_pages(data, max_pages)}
    except MemoryError:
        out = {"error": "memory"}
    except _Refused as exc:
        out = {"error": exc.args[0], "detail": exc.args[1]}
    except RecursionError:
        out = {"error": "malformed", "detail": "objects nested too deeply"}
    except Exception as exc:  # noqa: BLE001 - any parser failure is a malformed file
        out = {"error": _kind(exc), "detail": f"{type(exc).__name__}: {exc}"[:200]}
    sys.stdout.write(json.dumps(out))


class _Refused(Exception):
    pass


def _kind(exc: Exception) -> str:
    name = type(exc).__name__
    return "encrypted" if "Password" in name or "Encrypt" in name else "malformed"


def read_pages(data: bytes, max_pages: int = MAX_PAGES) -> list[dict]:
    """pdfminer's layout: per page its size and text boxes, each box its lines
    [text, x0, x1, font size, bold]."""
    from io import BytesIO

    from pdfminer.converter import PDFPageAggregator
    from pdfminer.layout import LAParams, LTChar, LTTextBox, LTTextLine
    from pdfminer.pdfdocument import PDFDocument
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage
    from pdfminer.pdfparser import PDFParser
    from pdfminer.pdftypes import resolve1

    if not data.lstrip()[:1024].find(b"%PDF-") >= 0:
        raise _Refused("malformed", "it does not start with %PDF-")
    doc = PDFDocument(PDFParser(BytesIO(data)))
    count = resolve1(resolve1(doc.catalog.get("Pages")) or {}).get("Count", 0) if doc.catalog.get("Pages") else 0
    if isinstance(count, int) and count > max_pages:
        raise _Refused("pages", str(count))
    rsrc = PDFResourceManager(caching=True)
    device = PDFPageAggregator(rsrc, laparams=LAParams())
    interp = PDFPageInterpreter(rsrc, device)
    pages = []
    for i, page in enumerate(PDFPage.create_pages(doc)):
        if i >= max_pages:
            raise _Refused("pages", f"more than {max_pages}")
        interp.process_page(page)
        layout = device.get_result()
        boxes = []
        for el in layout:
            if not isinstance(el, LTTextBox):
                continue
            lines = []
            for line in el:
                if not isinstance(line, LTTextLine):
                    continue
                chars = [c for c in line if isinstance(c, LTChar) and c.get_text().strip()]
                text = _line_text(line.get_text())
                if not chars or not text:
                    continue
                size = Counter(round(c.size, 1) for c in chars).most_common(1)[0][0]
                bold = sum(_is_bold(c.fontname) for c in chars) > 0.8 * len(chars)
                lines.append([text, round(line.x0, 1), round(line.x1, 1), size, bold])
            if lines:
                boxes.append({"x0": el.x0, "y0": el.y0, "x1": el.x1, "y1": el.y1, "lines": lines})
        pages.append({"w": layout.width, "h": layout.height, "boxes": boxes})
    return pages


def _is_bold(fontname: str) -> bool:
    f = fontname.lower()
    return any(w in f for w in ("bold", "black", "heavy", "semibold", ",b"))


# --- layout -> blocks (pure) --------------------------------------------------------------

def layout(pages: list[dict]) -> tuple[list[Block], str]:
    """Pages of boxes -> (blocks, title): margins dropped, headings found, paragraphs joined."""
    pages = _drop_running(pages)
    body = _body_size(pages)
    words = _hyphenated_words(pages)
    blocks: list[Block] = []
    title = ""
    top = max((line[3] for box in (pages[0]["boxes"] if pages else []) for line in box["lines"]), default=0)
    last: tuple[dict, int] | None = None  # the body box the last paragraph ended in, and its page
    for pno, page in enumerate(pages, 1):
        for box in page["boxes"]:
            if _is_contents(box):
                continue
            kind = _box_kind(box, body)
            if kind == HEADING:
                text = one_line(" ".join(line[0] for line in box["lines"]))
                if (not title and not blocks and pno == 1 and box["lines"][0][3] >= max(top, body * TITLE_SIZE)):
                    title = text
                    blocks.append(Block(TITLE, text, pno))
                else:
                    blocks.append(Block(HEADING, text, pno))
                continue
            paras = [para for para in _paragraphs(box, words) if not _BARE_NUMBER.match(para)]
            if not paras:
                continue
            prev = blocks[-1] if blocks else None
            if (prev and prev.kind == PARA and not _BULLET.match(paras[0])
                    and _continues(prev.text, last, box, pno)):
                blocks[-1] = Block(PARA, _join(prev.text, paras[0], words), prev.page)
                paras = paras[1:]
            blocks += [Block(PARA, _BULLET.sub("", para), pno) for para in paras]
            last = (box, pno)
    return blocks, title


def _line_text(raw: str) -> str:
    """pdfminer's text of one line, cleaned: ligatures split, unmapped glyphs dropped.

    >>> _line_text("Copyright c(cid:13) 2001 the \ufb01rst(cid:7)\\n")
    'Copyright © 2001 the first'
    """
    return one_line(_CID.sub("", raw.translate(_LIGATURES).replace("c(cid:13)", "©")))


def _is_contents(box: dict) -> bool:
    """Is this box (mostly) table-of-contents lines with dot leaders and page numbers?"""
    return 2 * sum(bool(_LEADER.search(line[0])) for line in box["lines"]) >= len(box["lines"])


def _drop_running(pages: list[dict]) -> list[dict]:
    """Without boxes in the top/bottom margin that repeat (digits aside) or are page numbers."""
    def band(box, page):
        h = page["h"] or 792
        return "top" if box["y0"] >= h * (1 - MARGIN_BAND) else "bottom" if box["y1"] <= h * MARGIN_BAND else ""

    def key(box):
        return re.sub(r"\d+", "#", " ".join(line[0] for line in box["lines"]).lower())

    seen = Counter((band(b, p), key(b)) for p in pages for b in {key(b): b for b in p["boxes"] if band(b, p)}.values())
    need = REPEAT_PAGES
    out = []
    for p in pages:
        keep = [b for b in p["boxes"] if not band(b, p) or
                (seen[(band(b, p), key(b))] < need and not _PAGE_NUMBER.match(key(b).replace("#", "1")))]
        out.append(dict(p, boxes=keep))
    return out


def _body_size(pages: list[dict]) -> float:
    sizes = Counter()
    for p in pages:
        for b in p["boxes"]:
            for line in b["lines"]:
                sizes[line[3]] += len(line[0])
    return sizes.most_common(1)[0][0] if sizes else 0.0


def _box_kind(box: dict, body: float) -> str:
    lines = box["lines"]
    text = " ".join(line[0] for line in lines)
    size = min(line[3] for line in lines)
    big = size >= body * TITLE_SIZE  # a title may run to a few more lines
    if (len(lines) > (6 if big else 3) or len(text.split()) > HEADING_MAX_WORDS * (2 if big else 1)
            or not any(ch.isalpha() for ch in text)):
        return PARA
    if size >= body * HEADING_SIZE and (not _ends_sentence(text) or text.rstrip().endswith("?")):
        return HEADING
    if all(line[4] for line in lines) and len(lines) == 1 and size >= body * 0.95 and not _ends_sentence(text):
        return HEADING
    return PARA


def _paragraphs(box: dict, words: set[str]) -> list[str]:
    """A box's lines -> paragraphs: a new one starts after a line that ends a sentence with room
    left for the next line's first word (so the break was not for want of space)."""
    lines = box["lines"]
    paras, current = [], lines[0][0]
    for prev, line in zip(lines, lines[1:]):
        starts = line[0][:1].isupper() or line[0][:1].isdigit() or line[0][:1] in "“\"‘'(«"
        if _BULLET.match(line[0]) or starts and _ends_sentence(prev[0]) and _room_left(box, prev, line[0]):
            paras.append(current)
            current = line[0]
        else:
            current = _join(current, line[0], words)
    paras.append(current)
    return paras


def _room_left(box: dict, line: list, next_text: str) -> bool:
    """Would the first word of `next_text` have fitted at the end of `line`? (with 20% to spare)"""
    char_w = (line[2] - line[1]) / max(1, len(line[0]))
    word = next_text.split(" ", 1)[0]
    return box["x1"] - line[2] > 1.2 * char_w * (len(word) + 1)


def _continues(text: str, last: tuple[dict, int] | None, box: dict, page: int) -> bool:
    """Does a paragraph ending in `text` (in box `last`) go on in `box`? When it does not end a
    sentence; or when `box` starts a new column or page and the last line was full."""
    if not _ends_sentence(text):
        return True
    if last is None:
        return False
    prev_box, prev_page = last
    new_column = page != prev_page or abs(box["x0"] - prev_box["x0"]) > 0.5 * (prev_box["x1"] - prev_box["x0"])
    return new_column and not _room_left(prev_box, prev_box["lines"][-1], box["lines"][0][0])


def _join(left: str, right: str, words: set[str]) -> str:
    """Join two lines: 'exam-' + 'ple' -> 'example'; 'Marxism-' + 'Leninism' -> 'Marxism-Leninism'."""
    left = left.rstrip()
    if left.endswith(("\u00ad", "\u2010")):  # a soft hyphen shown at a line end; U+2010 HYPHEN
        left = left[:-1] + "-"
    if left.endswith("-") and len(left) > 1 and left[-2].isalpha() and right[:1].isalpha():
        head = re.search(r"(\w+)-$", left)
        tail = re.match(r"\w+", right)
        compound = f"{head.group(1)}-{tail.group(0)}".lower() if head and tail else ""
        if right[:1].islower() and compound not in words:
            return left[:-1] + right
        return left + right
    if left.endswith("_") and right[:1].isalnum():  # an identifier broken after "_": asn1_der_|decoding()
        return left + right
    return f"{left} {right}"


def _hyphenated_words(pages: list[dict]) -> set[str]:
    """Hyphenated words written within a line somewhere ('well-known'): their hyphen is real."""
    return {m.lower() for p in pages for b in p["boxes"] for line in b["lines"]
            for m in re.findall(r"\w+-\w+", line[0])}


def _ends_sentence(text: str) -> bool:
    return text.rstrip(_CLOSERS).endswith(_ENDS)
