"""PDF: paragraphs, sections and pages from PDFs printed by headless Chromium (the shipped
article with Chromium's running header and footer; a two-column report; line-end hyphens),
and every bad PDF refused with a clear message within the stated bounds."""

from __future__ import annotations

import time

import pytest
from conftest import ARTICLE, MB, offsets_hold
from formats_fixtures import (
    SECTIONS,
    article_html,
    one_page_pdf,
    print_pdf,
    raw_pdf,
    report_paragraphs,
    two_column_html,
    zlib_bomb,
)

from qa import document
from qa.errors import InputError
from qa.formats import pdf


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("pdf")


@pytest.fixture(scope="module")
def article_pdf(folder):
    return print_pdf(article_html(), folder, "article", header_footer=True)


@pytest.fixture(scope="module")
def article_txt():
    return document.load_file(ARTICLE, 5 * MB)


def test_article_pdf_has_the_same_paragraphs_and_sections_as_the_text(article_pdf, article_txt):
    doc = document.load_file(article_pdf, 5 * MB)
    assert doc.format == "pdf" and doc.pages == 5
    assert doc.title == article_txt.title
    assert [p.text for p in doc.paragraphs] == [p.text for p in article_txt.paragraphs]
    assert [p.section for p in doc.paragraphs] == [p.section for p in article_txt.paragraphs]
    offsets_hold(doc)


def test_article_pdf_running_header_footer_and_page_numbers_are_dropped(article_pdf):
    doc = document.load_file(article_pdf, 5 * MB)
    assert "Printed from the archive" not in doc.text  # the <title>, Chromium's running header
    assert "file:" not in doc.text and "1/5" not in doc.text and "5/5" not in doc.text


def test_article_pdf_paragraph_across_a_page_break_keeps_its_first_page(article_pdf):
    doc = document.load_file(article_pdf, 5 * MB)
    pages = [p.page for p in doc.paragraphs]
    assert pages[0] == 1 and pages[-1] == 5 and pages == sorted(pages)
    korean_war = next(p for p in doc.paragraphs if p.text.startswith("When the Korean War is viewed"))
    assert korean_war.page == 1 and korean_war.text.endswith("have been in conflict for decades.")
    assert doc.paragraph(4).page == 1 and doc.paragraph(4).section == "Historical context"


def test_pypdf_gives_no_paragraph_breaks_so_pdfminer_is_used(article_pdf, article_txt):
    """The measurement behind the choice: pypdf's text has no blank lines between paragraphs."""
    import pypdf
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(str(article_pdf)).pages)
    blocks = {" ".join(b.split()) for b in text.split("\n\n")}
    assert sum(p.text in blocks for p in article_txt.paragraphs) == 0


def test_two_column_report_reads_column_by_column(folder):
    paragraphs = report_paragraphs()
    doc = document.load_file(print_pdf(two_column_html(paragraphs), folder, "report", header_footer=True), 5 * MB)
    assert doc.title == "Garden Trials 2024" and doc.pages == 2
    assert [p.text for p in doc.paragraphs] == paragraphs
    expected_sections = []
    for i in range(len(paragraphs)):
        expected_sections.append(SECTIONS.get(i, expected_sections[-1] if expected_sections else ""))
    assert [p.section for p in doc.paragraphs] == expected_sections
    assert {p.page for p in doc.paragraphs} == {1, 2}
    assert "Garden trials" not in doc.text  # the running header (the page's <title>)
    offsets_hold(doc)


def test_line_end_hyphens_are_joined_unless_the_word_is_hyphenated(folder):
    markup = ("<!doctype html><html><body style='font:12pt serif'><h1>Hyphens</h1>"
              "<p>The trial results were counter-<br>intuitive for the long-<br>standing beds.</p>"
              "<p>Their Marxism-<br>Leninism was a well-<br>known trait, as well-known as rain.</p>"
              "<p><b>A bold heading</b></p><p>Under the bold heading.</p></body></html>")
    doc = document.load_file(print_pdf(markup, folder, "hyphens"), 5 * MB)
    assert [(p.section, p.text) for p in doc.paragraphs] == [
        ("", "The trial results were counterintuitive for the longstanding beds."),
        ("", "Their Marxism-Leninism was a well-known trait, as well-known as rain."),
        ("A bold heading", "Under the bold heading."),
    ]


def test_json_citation_and_label_show_the_page():
    from qa.answer import Citation
    from qa.render import label

    c = Citation("report", 12, "Methods", "q", 0, 1, 0.5, "Report", page=4)
    assert label(c, multi_doc=False) == "¶12 · p. 4 · Methods"
    assert c.to_json()["page"] == 4
    assert Citation("a", 3, "", "q", 0, 1, 0.5).to_json()["page"] is None


# --- bad PDFs -------------------------------------------------------------------------------

def test_scanned_pdf_without_text_layer_is_refused(folder):
    markup = "<html><body><div style='width:300px;height:300px;background:#333'></div></body></html>"
    with pytest.raises(InputError, match="this PDF has no text layer .*run OCR on it first"):
        document.load_file(print_pdf(markup, folder, "scan"), 5 * MB)


def test_encrypted_pdf_is_refused(article_pdf, folder):
    import pypdf
    writer = pypdf.PdfWriter(clone_from=str(article_pdf))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-128")
    path = folder / "locked.pdf"
    with open(path, "wb") as fh:
        writer.write(fh)
    with pytest.raises(InputError, match="locked.pdf is encrypted with a password"):
        document.load_file(path, 5 * MB)


@pytest.mark.parametrize("data", [b"Title\n\nSome text.", b"%PDF-1.7\n1 0 obj << /Type /Catalog", b"%PDF-" + bytes(300)],
                         ids=["text-named-pdf", "truncated", "garbage"])
def test_malformed_pdf_is_refused(data):
    with pytest.raises(InputError, match=r"x.pdf (is not a readable PDF|could not be read as a PDF|: this PDF has no text)"):
        document.load(data, "x.pdf", MB)


def test_pdf_claiming_millions_of_pages_is_refused():
    data = one_page_pdf(b"BT /F1 12 Tf 72 700 Td (Hello there.) Tj ET", count=10_000_000)
    with pytest.raises(InputError, match="10000000 pages, over the limit of 2000 pages"):
        document.load(data, "x.pdf", MB)


def test_pdf_decompression_bomb_is_refused_within_the_memory_bound(monkeypatch):
    monkeypatch.setattr(pdf, "MEMORY_LIMIT_BYTES", 512 * MB)
    data = one_page_pdf(zlib_bomb(1024 * MB), b"/Filter /FlateDecode ")
    assert len(data) < 2 * MB
    t = time.monotonic()
    with pytest.raises(InputError, match="needed more than 512 MB of memory"):
        document.load(data, "bomb.pdf", 5 * MB)
    assert time.monotonic() - t < pdf.TIME_LIMIT_S


def test_pdf_with_deeply_nested_objects_is_refused_or_read_within_bounds():
    nested = b"[" * 100_000 + b"]" * 100_000
    data = one_page_pdf(b"BT /F1 12 Tf 72 700 Td (Hello there.) Tj ET", page_extra=b"/Junk " + nested + b" ")
    t = time.monotonic()
    try:
        doc = document.load(data, "deep.pdf", 5 * MB)
    except InputError as exc:
        assert "deep.pdf" in str(exc)
    else:
        assert doc.paragraphs[0].text == "Hello there."
    assert time.monotonic() - t < pdf.TIME_LIMIT_S


def test_pdf_that_takes_too_long_is_refused(article_pdf, monkeypatch):
    monkeypatch.setattr(pdf, "TIME_LIMIT_S", 0.05)
    with pytest.raises(InputError, match="took longer than 0.05 s"):
        document.load_file(article_pdf, 5 * MB)


def test_hand_made_pdf_is_read():
    doc = document.load(raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length 44 >>\nstream\nBT /F1 12 Tf 72 700 Td (Hello there.) Tj ET\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]), "hand.pdf", MB)
    assert [(p.number, p.page, p.text) for p in doc.paragraphs] == [(1, 1, "Hello there.")]


def test_indented_paragraphs_without_spacing_and_bold_body_size_headings(folder, article_txt):
    """Book-like setting: no space between paragraphs (first lines indented), headings bold at
    the body's size: paragraphs are told apart by where their last line stops."""
    markup = article_html().replace(
        "p{text-align:justify}",
        "p{text-align:justify;margin:0;text-indent:2em} h2{font-size:12pt;font-weight:bold;margin:8pt 0 0}")
    doc = document.load_file(print_pdf(markup, folder, "indented"), 5 * MB)
    assert [(p.section, p.text) for p in doc.paragraphs] == [(p.section, p.text) for p in article_txt.paragraphs]


def _box(y, *lines, x0=120.0, x1=540.0):
    return {"x0": x0, "y0": y, "x1": x1, "y1": y + 12 * len(lines),
            "lines": [[text, x0 + (0 if text.startswith("•") else 10), min(x1 - 5, x0 + 5 * len(text)), 10.0, False]
                      for text in lines]}


def test_pdf_bullet_items_in_boxes_of_their_own_are_separate_paragraphs_without_the_bullet():
    # The shared-mime-info spec (DocBook -> PDF) sets each list item in a box of its own; an item
    # ending without a full stop ran into the next one (one paragraph of ten files, 1,483
    # characters), and quotes opened with "•" (rendered "• • ..." under "Also relevant").
    pages = [{"w": 612, "h": 792, "boxes": [
        _box(600, "The files created by update-mime-database are:"),
        _box(580, "• <MIME>/globs (contains a mapping from names to MIME types) [deprecated for globs2]"),
        _box(560, "• <MIME>/magic (contains a mapping from file contents to MIME types)"),
        _box(520, "• magic elements contain a list of match elements, any of which may match, and an optional priority",
             "attribute for all of the contained rules. The default priority value is 50.",
             "• alias elements indicate that the type is also sometimes known by another name."),
    ]}]
    blocks, _ = pdf.layout(pages)
    assert [b.text for b in blocks] == [
        "The files created by update-mime-database are:",
        "<MIME>/globs (contains a mapping from names to MIME types) [deprecated for globs2]",
        "<MIME>/magic (contains a mapping from file contents to MIME types)",
        ("magic elements contain a list of match elements, any of which may match, and an optional priority "
         "attribute for all of the contained rules. The default priority value is 50."),
        "alias elements indicate that the type is also sometimes known by another name.",
    ]


def test_pdf_table_of_contents_roman_page_numbers_and_bare_numbers_are_not_paragraphs():
    # libtasn1's manual (Texinfo -> TeX -> PDF): its contents became a 1,913-character paragraph,
    # its "Introduction . . . 1" a section, the preface's page number "i" and the contents' chapter
    # numbers ("1", "3.1 3.2 3.3") paragraphs of their own.
    pages = [{"w": 612, "h": 792, "boxes": [
        _box(600, "This manual is for GNU Libtasn1, a library for ASN.1 and DER manipulation."),
        _box(30, "i"),
    ]}, {"w": 612, "h": 792, "boxes": [
        _box(700, "1"),
        _box(680, "Introduction . . . . . . . . . . . . . . . . . . 1"),
        _box(600, "2 ASN.1 structure handling . . . . . . . . . . 2", "2.1 ASN.1 syntax. . . . . . . . . . . . . 2",
             "2.2 Naming . . . . . . . . . . . . . . . . 5"),
        _box(560, "3.1 3.2 3.3"),
        _box(30, "ii"),
    ]}, {"w": 612, "h": 792, "boxes": [
        _box(600, "This document describes the Libtasn1 library that provides ASN.1 parsing and structures",
             "management, and DER encoding and decoding functions, such as asn1_der_",
             "decoding() and asn1_der_coding()."),
        _box(30, "1"),
    ]}]
    blocks, _ = pdf.layout(pages)
    assert [b.text for b in blocks] == [
        "This manual is for GNU Libtasn1, a library for ASN.1 and DER manipulation.",
        ("This document describes the Libtasn1 library that provides ASN.1 parsing and structures management, "
         "and DER encoding and decoding functions, such as asn1_der_decoding() and asn1_der_coding()."),
    ]


def test_pdf_running_head_naming_the_chapter_is_dropped_though_it_changes_between_chapters():
    # libtasn1's manual heads each page with its chapter; "Chapter 4: Function reference" (15 of 36
    # pages, under the old "half of the pages" rule) ran into the paragraphs it interrupted.
    def page(head, *text):
        return {"w": 612, "h": 792, "boxes": [_box(760, head), _box(600, *text)]}

    pages = [page("Chapter 2: Structures", "Structures are read from ASN.1 files."),
             page("Chapter 2: Structures", "They are kept in memory."),
             *[page("Chapter 4: Function reference", f"Function {i} is documented here.") for i in range(1, 4)],
             page("Appendix A: Copying", "The licence follows."), page("Appendix A: Copying", "It is long.")]
    blocks, _ = pdf.layout(pages)
    assert [b.text for b in blocks] == [
        "Structures are read from ASN.1 files.", "They are kept in memory.", "Function 1 is documented here.",
        "Function 2 is documented here.", "Function 3 is documented here.", "The licence follows.", "It is long."]
