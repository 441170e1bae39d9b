"""Word (.docx) files written with python-docx: heading styles become sections, list items and
table rows readable paragraphs, headers and footers dropped; bad files refused clearly."""

from __future__ import annotations

import io
import zipfile

import docx
import pytest
from conftest import ARTICLE
from formats_fixtures import article_docx

from qa import document
from qa.errors import InputError

MB = 1024 * 1024


def test_article_docx_has_the_same_paragraphs_and_sections_as_the_text(tmp_path):
    txt = document.load_file(ARTICLE, 5 * MB)
    doc = document.load_file(article_docx(tmp_path / "article.docx"), 5 * MB)
    assert doc.format == "docx" and doc.pages is None
    assert doc.title == txt.title
    assert [(p.number, p.section, p.text) for p in doc.paragraphs] == [
        (p.number, p.section, p.text) for p in txt.paragraphs]
    assert "running header" not in doc.text and "Page footer" not in doc.text
    for p in doc.paragraphs:
        assert doc.text[p.start:p.end] == p.text and p.page is None


def test_docx_lists_and_tables_become_readable_paragraphs(tmp_path):
    d = docx.Document()
    d.add_heading("Allotment minutes", level=0)
    d.add_heading("Decisions", level=1)
    d.add_paragraph("The committee met on Tuesday.")
    d.add_paragraph("Buy a new water butt.", style="List Bullet")
    d.add_paragraph("Repair the shed roof.", style="List Number")
    d.add_heading("Harvest", level=2)
    table = d.add_table(rows=3, cols=2)
    for row, cells in zip(table.rows, [("Bed", "Crop"), ("North", "Beans"), ("South", "Leeks")]):
        for cell, text in zip(row.cells, cells):
            cell.text = text
    d.add_paragraph("")  # empty paragraphs are not numbered
    d.add_paragraph("Next meeting in May.")
    path = tmp_path / "minutes.docx"
    d.save(path)
    doc = document.load_file(path, MB)
    assert doc.title == "Allotment minutes"
    assert [(p.number, p.section, p.text) for p in doc.paragraphs] == [
        (1, "Decisions", "The committee met on Tuesday."),
        (2, "Decisions", "Buy a new water butt."),
        (3, "Decisions", "Repair the shed roof."),
        (4, "Harvest", "Bed: North; Crop: Beans"),
        (5, "Harvest", "Bed: South; Crop: Leeks"),
        (6, "Harvest", "Next meeting in May."),
    ]


def test_docx_without_title_style_takes_the_file_name(tmp_path):
    d = docx.Document()
    d.add_paragraph("Just one paragraph of text.")
    d.save(tmp_path / "plain-note.docx")
    doc = document.load_file(tmp_path / "plain-note.docx", MB)
    assert doc.title == "plain-note" and [p.text for p in doc.paragraphs] == ["Just one paragraph of text."]


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_docx_that_is_not_a_zip_is_refused():
    with pytest.raises(InputError, match=r"x.docx is not a Word .docx file .*old .doc file, save it as .docx"):
        document.load(b"Title\n\nSome text.", "x.docx", MB)


def test_zip_that_is_not_a_word_document_is_refused():
    with pytest.raises(InputError, match="x.docx is a zip archive but not a Word document"):
        document.load(_zip({"readme.txt": b"hello"}), "x.docx", MB)


def test_docx_with_broken_xml_is_refused():
    data = _zip({"[Content_Types].xml": b"<Types", "word/document.xml": b"<w:document"})
    with pytest.raises(InputError, match="x.docx is not a readable Word document"):
        document.load(data, "x.docx", MB)


def test_docx_zip_bomb_is_refused_before_unpacking():
    data = _zip({"word/document.xml": b"<" + b" " * (300 * MB)})
    assert len(data) < MB
    with pytest.raises(InputError, match="would unpack to 300 MB, over the 200 MB"):
        document.load(data, "x.docx", MB)


def test_empty_docx_is_refused(tmp_path):
    docx.Document().save(tmp_path / "empty.docx")
    with pytest.raises(InputError, match="no paragraphs"):
        document.load_file(tmp_path / "empty.docx", MB)


def test_docx_numbered_clause_heading_in_normal_style_is_a_section(tmp_path):
    # A licence typed into Word: "1. Definitions." is a Normal paragraph, not a Heading style.
    d = docx.Document()
    d.add_paragraph("TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION")
    d.add_paragraph("1. Definitions.")
    d.add_paragraph('"Licensor" shall mean the copyright owner granting the License.')
    d.add_paragraph("2. Grant of Copyright License. Subject to the terms of this License, you may copy it.")
    path = tmp_path / "licence.docx"
    d.save(path)
    doc = document.load_file(path, MB)
    assert [(p.number, p.section, p.text) for p in doc.paragraphs][1:] == [
        (2, "1. Definitions", '"Licensor" shall mean the copyright owner granting the License.'),
        (3, "2. Grant of Copyright License", "2. Grant of Copyright License. Subject to the terms of this License, you may copy it."),
    ]
