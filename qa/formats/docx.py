"""Word (.docx) -> blocks through python-docx: heading styles (and Title) become headings, list
items and table rows readable paragraphs; headers, footers, comments and footnotes are not part
of the body and are left out.

A .docx is a zip archive: one whose parts would unpack to more than `MAX_UNZIPPED_BYTES`, or
that is not a Word document at all, is refused before parsing.
"""

from __future__ import annotations

import re
import zipfile
from io import BytesIO

from ..errors import InputError
from . import HEADING, PARA, TITLE, Block, Extracted, one_line

MAX_UNZIPPED_BYTES = 200 << 20  # a zip bomb unpacks to far more; a 5 MB .docx of text to ~30 MB
_HEADING_STYLE = re.compile(r"^(?:heading\s*(\d)|title|subtitle)$", re.IGNORECASE)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def extract(data: bytes, name: str = "input.docx") -> Extracted:
    _check_zip(data, name)
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        d = docx.Document(BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - python-docx raises many kinds for a bad file
        raise InputError(f"{name} is not a readable Word document ({type(exc).__name__}). "
                         "Open it in Word or LibreOffice, save it as .docx again and retry.") from None
    blocks: list[Block] = []
    title = one_line(d.core_properties.title or "")
    for child in d.element.body.iterchildren():
        if child.tag == _W + "p":
            blocks += _paragraph(Paragraph(child, d), not blocks)
        elif child.tag == _W + "tbl":
            blocks += [Block(PARA, row) for row in _rows(Table(child, d))]
    if blocks and blocks[0].kind == TITLE:
        title = blocks[0].text
    return Extracted("docx", tuple(blocks), title, None)


def _paragraph(p, first: bool) -> list[Block]:
    text = one_line(p.text)
    if not text:
        return []
    style = (p.style.name if p.style is not None else "") or ""
    m = _HEADING_STYLE.match(style.strip())
    if m:
        if style.strip().lower() == "title" and first:
            return [Block(TITLE, text)]
        return [Block(HEADING, text)]
    return [Block(PARA, text)]


def _rows(table) -> list[str]:
    """Rows as readable lines: 'Bed: North; Crop: Beans' under a header row of labels, else 'a | b'."""
    rows = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:  # a merged cell appears once per column it spans
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(one_line(cell.text))
        rows.append(cells)
    if len(rows) > 1 and all(rows[0]) and all(len(r) == len(rows[0]) for r in rows[1:]):
        header = rows[0]
        return [r for r in ("; ".join(f"{h}: {v}" for h, v in zip(header, row) if v) for row in rows[1:]) if r]
    return [r for r in (" | ".join(v for v in row if v) for row in rows) if r]


def _check_zip(data: bytes, name: str) -> None:
    try:
        z = zipfile.ZipFile(BytesIO(data))
        infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise InputError(f"{name} is not a Word .docx file (it is not a zip archive). "
                         "If it is an old .doc file, save it as .docx first.") from None
    if "word/document.xml" not in {i.filename for i in infos}:
        raise InputError(f"{name} is a zip archive but not a Word document (no word/document.xml). "
                         "Save it from Word or LibreOffice as .docx.")
    total = sum(i.file_size for i in infos)
    if total > MAX_UNZIPPED_BYTES:
        raise InputError(f"{name} would unpack to {total >> 20} MB, over the {MAX_UNZIPPED_BYTES >> 20} MB "
                         "a .docx may unpack to here (it may be a zip bomb). Save the text as a smaller file.")
