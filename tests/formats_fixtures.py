"""Fixtures the format tests make themselves: PDFs printed from HTML by headless Chromium,
.docx files written with python-docx, saved web pages with boilerplate. Nothing is downloaded."""

from __future__ import annotations

import html
import subprocess
from pathlib import Path

from conftest import ARTICLE

from qa import document

CHROMIUM = "/usr/bin/chromium"
MB = 1024 * 1024


def print_pdf(markup: str, folder: Path, name: str, header_footer: bool = False) -> Path:
    """HTML -> PDF with headless Chromium (`--print-to-pdf`); with `header_footer` Chromium adds
    its running header (date, title) and footer (URL, 'n/N') to every page."""
    src = folder / f"{name}.html"
    src.write_text(markup, encoding="utf-8")
    out = folder / f"{name}.pdf"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", f"--print-to-pdf={out}", src.as_uri()]
    if not header_footer:
        cmd.insert(-1, "--no-pdf-header-footer")
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return out


def article_html() -> str:
    """The shipped article as a web page: title h1, section h2s, one <p> per paragraph."""
    doc = document.load_file(ARTICLE, 5 * MB)
    parts, section = [f"<h1>{html.escape(doc.title)}</h1>"], ""
    for p in doc.paragraphs:
        if p.section != section:
            section = p.section
            parts.append(f"<h2>{html.escape(section)}</h2>")
        parts.append(f"<p>{html.escape(p.text)}</p>")
    return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>Printed from the archive</title>"
            "<style>body{font:12pt serif} p{text-align:justify}</style></head><body>"
            + "".join(parts) + "</body></html>")


def article_docx(path: Path) -> Path:
    """The shipped article as Word: Title style, Heading 1 sections, Normal paragraphs, with a
    page header and footer (which must not become paragraphs)."""
    import docx

    doc = document.load_file(ARTICLE, 5 * MB)
    d = docx.Document()
    d.sections[0].header.paragraphs[0].text = "Eurasia Review — running header"
    d.sections[0].footer.paragraphs[0].text = "Page footer text"
    d.add_heading(doc.title, level=0)
    section = ""
    for p in doc.paragraphs:
        if p.section != section:
            section = p.section
            d.add_heading(section, level=1)
        d.add_paragraph(p.text)
    d.save(path)
    return path


_WORDS = ("soil rain compost tomato bean mulch spade frost seedling harvest hedge orchard trellis "
          "meadow pollinator watering nitrogen greenhouse cutting blossom").split()


def report_paragraphs(n: int = 14) -> list[str]:
    """Distinct paragraphs of about 90 words (paragraph i mentions 'marker{i}'), with long
    words that a narrow column must hyphenate."""
    out = []
    for i in range(n):
        words = [_WORDS[(i * 7 + k * 3) % len(_WORDS)] for k in range(70)]
        sents, k = [], 0
        while k < len(words):
            chunk = words[k:k + 11]
            sents.append(" ".join(chunk).capitalize() + ".")
            k += 11
        sents.insert(1, f"The marker{i} bed showed uncharacteristically counterintuitive waterlogging.")
        out.append(" ".join(sents))
    return out


SECTIONS = {0: "Introduction", 5: "Methods", 10: "Results"}


def two_column_html(paragraphs: list[str]) -> str:
    """A report in two columns (printed with Chromium's running header and footer)."""
    parts = ["<h1>Garden Trials 2024</h1>"]
    for i, p in enumerate(paragraphs):
        if i in SECTIONS:
            parts.append(f"<h2>{SECTIONS[i]}</h2>")
        parts.append(f"<p>{html.escape(p)}</p>")
    return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>Garden trials</title><style>"
            "@page{margin:25mm 18mm} body{font:11pt serif}"
            ".cols{column-count:2;column-gap:10mm} p{margin:0 0 8pt} h2{font-size:15pt}"
            "</style></head><body><div class=cols>"
            + "".join(parts) + "</div></body></html>")


def raw_pdf(objects: list[bytes]) -> bytes:
    """A hand-made PDF: object i+1 is objects[i], object 1 the catalog; a correct xref table."""
    out = b"%PDF-1.7\n"
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def one_page_pdf(contents: bytes, stream_dict: bytes = b"", page_extra: bytes = b"", count: int = 1) -> bytes:
    """One page whose content stream is `contents` (already encoded as `stream_dict` says)."""
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [3 0 R] /Count {count} >>".encode(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> " + page_extra + b">>",
        b"<< /Length " + str(len(contents)).encode() + b" " + stream_dict + b">>\nstream\n" + contents + b"\nendstream",
        font,
    ])


def zlib_bomb(size: int) -> bytes:
    """About `size` bytes of spaces, deflated (about 1000:1). One 4 MB segment is compressed and
    flushed with Z_FULL_FLUSH, so it needs no earlier data and can be repeated; the stream's
    final checksum is then wrong, which a reader only finds after inflating it all."""
    import zlib

    chunk = b" " * (1 << 22)
    z = zlib.compressobj(9)
    first = z.compress(chunk) + z.flush(zlib.Z_FULL_FLUSH)  # with the 2-byte zlib header
    again = z.compress(chunk) + z.flush(zlib.Z_FULL_FLUSH)
    return first + again * (size // len(chunk) - 1) + z.flush()
