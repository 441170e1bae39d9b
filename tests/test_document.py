"""Document parsing and input checks: the paragraph-numbering contract (docs/design.md §4) pinned on
the shipped article, chunk offsets, and every kind of bad input refused with a clear message."""

from __future__ import annotations

import codecs

import pytest
from conftest import ARTICLE, EVAL, MB, offsets_hold

from qa import chunking, document
from qa.config import Settings
from qa.errors import InputError

# --- the numbering contract on the shipped article ------------------------------------------

@pytest.fixture(scope="module")
def article() -> document.Document:
    return document.load_file(ARTICLE, 5 * MB)


def test_article_title_and_headings_are_not_numbered(article):
    assert article.title.startswith("The Unbreakable Alliance Of Cuba And North Korea")
    assert len(article.paragraphs) == 21
    texts = [p.text for p in article.paragraphs]
    for heading in ("Historical context", "“Identical in every way”", "Alliance for a multipolar world",
                    "To preserve socialism at all costs"):
        assert heading not in texts
        assert heading in article.sections
    assert not any(t.startswith("The Unbreakable Alliance") for t in texts)


def test_article_paragraph_4_is_first_under_historical_context(article):
    p4 = article.paragraph(4)
    assert p4.section == "Historical context"
    assert "Che Guevara" in p4.text
    assert article.paragraph(3).section == ""
    assert next(p.number for p in article.paragraphs if p.section == "Historical context") == 4


def test_article_authors_note_is_the_last_paragraph(article):
    last = article.paragraphs[-1]
    assert last.number == 21
    assert last.text.startswith("Matija Šerić is a geopolitical analyst")


def test_article_comment_form_boilerplate_is_dropped(article):
    assert "Leave a Reply" not in " ".join(p.text for p in article.paragraphs)
    assert not any("Your email address will not be published" in p.text for p in article.paragraphs)
    assert article.warnings == ()


def test_article_paragraph_offsets(article):
    offsets_hold(article)


# --- chunk offsets -----------------------------------------------------------------------------

@pytest.mark.parametrize("path", [ARTICLE, EVAL / "squad" / "normans.txt"], ids=["article", "normans"])
def test_sentences_and_windows_are_verbatim_and_stay_in_their_paragraph(path):
    doc = document.load_file(path, 5 * MB)
    sents = chunking.sentences(doc)
    wins = chunking.windows(doc, sents, radius=1)
    assert len(wins) == len(sents) > len(doc.paragraphs)
    bounds = {p.number: (p.start, p.end) for p in doc.paragraphs}
    for s in sents:
        assert doc.text[s.start:s.end] == s.text and s.text.strip() == s.text and s.text
        lo, hi = bounds[s.para]
        assert lo <= s.start < s.end <= hi
    for c in wins:
        assert doc.text[c.start:c.end] == c.text
        lo, hi = bounds[c.para]
        assert lo <= c.start < c.end <= hi, "a window crosses a paragraph"
        assert sents[c.center].para == c.para
    # every paragraph's sentences cover its text, in order
    for p in doc.paragraphs:
        mine = [s for s in sents if s.para == p.number]
        assert mine[0].start == p.start and mine[-1].end == p.end
        assert [s.index for s in mine] == list(range(len(mine)))


def test_sentence_split_keeps_abbreviations_and_quotes():
    doc = document.parse("T\n\nMr. Kim met Dr. Castro in the U.S. capital. He said “no.” Then N. Korea left!")
    sents = [s.text for s in chunking.sentences(doc)]
    assert sents == ["Mr. Kim met Dr. Castro in the U.S. capital.", "He said “no.”", "Then N. Korea left!"]


# --- formats ---------------------------------------------------------------------------------------

def test_html_is_reduced_to_readable_paragraphs():
    markup = """<!doctype html><html><head><title>ignored</title><style>p { color: red }</style>
    <script>document.write("tracking")</script></head><body><nav>Home | About | Contact</nav>
    <h1>The Page Title</h1><p>First &amp; foremost, a <b>bold</b> claim.</p>
    <h2>Details</h2><p>Second paragraph<br>after a line break.</p>
    <ul><li>Item one is here.</li><li>Item two is there.</li></ul>
    <script>more()</script><form>Leave a Reply <input name=x></form></body></html>"""
    doc = document.load(markup.encode("utf-8"), "page.html", MB)
    assert doc.title == "The Page Title"
    assert [(p.number, p.section, p.text) for p in doc.paragraphs] == [
        (1, "", "First & foremost, a bold claim."),
        (2, "Details", "Second paragraph after a line break."),
        (3, "Details", "Item one is here."),
        (4, "Details", "Item two is there."),
    ]
    assert "tracking" not in doc.text and "color" not in doc.text and "Home" not in doc.text
    offsets_hold(doc)


def test_html_without_suffix_is_detected():
    doc = document.load("<html><body><h1>T</h1><p>Body text here.</p></body></html>", "pasted", MB)
    assert [p.text for p in doc.paragraphs] == ["Body text here."]


def test_markdown_headings_become_sections():
    md = "# My Notes\n\nIntro para.\n\n## First part\nText right under the heading.\n\n---\n\n### Why so?\n\nMore text."
    doc = document.load(md, "notes.md", MB)
    assert doc.title == "My Notes"
    assert [(p.number, p.section, p.text) for p in doc.paragraphs] == [
        (1, "", "Intro para."), (2, "First part", "Text right under the heading."), (3, "Why so?", "More text.")]
    offsets_hold(doc)


def test_crlf_gives_the_same_paragraphs_as_lf():
    lf = ARTICLE.read_text("utf-8")
    a = document.load(lf.encode(), "a.txt", 5 * MB)
    b = document.load(lf.replace("\n", "\r\n").encode(), "a.txt", 5 * MB)
    c = document.load(lf.replace("\n", "\r").encode(), "a.txt", 5 * MB)
    assert [p.text for p in a.paragraphs] == [p.text for p in b.paragraphs] == [p.text for p in c.paragraphs]
    assert "\r" not in b.text
    offsets_hold(b)


def test_curly_quotes_are_kept_and_a_quoted_sentence_is_not_a_heading():
    text = "Title\n\n“A quoted heading”\n\nHe said: “It’s over.”\n\nShort line ending in a quote.”\n\nEnd."
    doc = document.parse(text)
    assert [(p.section, p.text) for p in doc.paragraphs] == [
        ("“A quoted heading”", "He said: “It’s over.”"),
        ("“A quoted heading”", "Short line ending in a quote.”"),
        ("“A quoted heading”", "End."),
    ]


def test_duplicate_paragraphs_are_merged_with_a_warning():
    doc = document.parse("Title\n\nSame text here.\n\nOther text.\n\nSame   text here.\n\nLast one.")
    assert [p.text for p in doc.paragraphs] == ["Same text here.", "Other text.", "Last one."]
    assert doc.warnings == ("1 duplicate paragraph(s) merged",)
    offsets_hold(doc)


# --- encodings ----------------------------------------------------------------------------------

TEXT = "Café “Zürich”\n\nThe naïve señor paid 5 € — twice.\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp1252"])
def test_encodings_are_detected(encoding):
    data = TEXT.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):
        data = codecs.BOM_UTF16_LE + data if encoding.endswith("le") else codecs.BOM_UTF16_BE + data
    doc = document.load(data, "x.txt", MB)
    assert doc.paragraphs[0].text == "The naïve señor paid 5 € — twice."
    assert doc.title == "Café “Zürich”"


def test_bomless_utf16_is_detected():
    data = "Plain title\n\nAn ASCII paragraph of text.\n".encode("utf-16-le")
    assert document.load(data, "x.txt", MB).paragraphs[0].text == "An ASCII paragraph of text."


def test_latin1_is_decoded():
    doc = document.load("Titel\n\nGrüße aus Köln, à bientôt.".encode("latin-1"), "x.txt", MB)
    assert doc.paragraphs[0].text == "Grüße aus Köln, à bientôt."


# --- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("data,match", [
    (b"", "empty or whitespace only"),
    (b"   \n\n \t \r\n  ", "empty or whitespace only"),
    ("  \n\u3000\n".encode(), "empty or whitespace only"),
    (b"Leave a Reply\n\nYour email address will not be published.\n\n---", "no paragraphs"),
    (b"<html><body><script>x()</script><style>a{}</style></body></html>", "no paragraphs"),
], ids=["empty", "whitespace", "unicode-space", "boilerplate-only", "html-script-only"])
def test_texts_without_paragraphs_are_refused(data, match):
    name = "x.html" if data.startswith(b"<html") else "x.txt"
    with pytest.raises(InputError, match=match):
        document.load(data, name, MB)
    with pytest.raises(InputError, match=match):
        document.load(data.decode("utf-8"), name, MB)


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)) * 4,
    b"PK\x03\x04\x14\x00\x06\x00" + bytes(200),
    bytes(range(1, 32)) * 50,
    b"hello\x00world",
], ids=["png", "zip", "controls", "nul"])
def test_binary_data_is_refused(data):
    with pytest.raises(InputError, match="binary"):
        document.load(data, "x.txt", MB)


def test_text_with_nul_characters_is_refused():
    with pytest.raises(InputError, match="binary"):
        document.load("Title\n\nText\x00\x00\x00 here", "pasted", MB)


def test_bad_bom_is_refused():
    with pytest.raises(InputError, match="byte-order mark"):
        document.load(codecs.BOM_UTF16_LE + b"\x00\xd8", "x.txt", MB)


@pytest.mark.parametrize("name", ["slides.pptx", "letter.doc", "photo.JPG", "archive.zip", "data.csv"])
def test_unsupported_formats_are_refused(name, tmp_path):
    with pytest.raises(InputError, match="unsupported format"):
        document.load(b"Title\n\nSome text.", name, MB)
    f = tmp_path / name
    f.write_bytes(b"Title\n\nSome text.")
    with pytest.raises(InputError, match="unsupported format"):
        document.load_file(f, MB)


def test_files_over_the_size_limit_are_refused(tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"Title\n\n" + b"word " * 300_000)  # 1.5 MB
    with pytest.raises(InputError, match=r"big.txt is 1.4 MB, over the 1 MB limit \(set QA_MAX_FILE_MB"):
        document.load_file(big, MB)
    with pytest.raises(InputError, match="over the 1 MB limit"):
        document.load(big.read_bytes(), "big.txt", MB)
    with pytest.raises(InputError, match="over the 1 MB limit"):
        document.load(big.read_text(), "big.txt", MB)
    assert document.load_file(big, 2 * MB).paragraphs


def test_size_limit_setting_defaults_to_5_mb_and_reads_the_environment():
    assert Settings().max_file_bytes == 5 * MB
    assert Settings.from_env({"QA_MAX_FILE_MB": "0.5"}).max_file_bytes == MB // 2


def test_missing_file_and_folder_are_refused(tmp_path):
    with pytest.raises(InputError, match="is not a file"):
        document.load_file(tmp_path / "nope.txt", MB)
    with pytest.raises(InputError, match="does not exist"):
        document.expand_sources([tmp_path / "nope"])


def test_folder_scan_skips_hidden_backup_and_unsupported_files(tmp_path):
    for name in ("b.txt", "a.md", "c.html", ".hidden.txt", "d.txt~", "e.pptx", ".#f.txt"):
        (tmp_path / name).write_text("Title\n\nText.")
    (tmp_path / ".removed").mkdir()
    (tmp_path / ".removed" / "g.txt").write_text("x")
    assert [p.name for p in document.expand_sources([tmp_path])] == ["a.md", "b.txt", "c.html"]


@pytest.mark.parametrize("name,expected", [
    ("notes.txt", "notes.txt"),
    ("../../etc/passwd", "passwd.txt"),
    ("..\\windows\\evil.md", "evil.md"),
    ("My Notes (v2).MD", "My-Notes-v2.md"),
    ("Report 1.0", "Report-1.0.txt"),
    (".bashrc", "bashrc.txt"),
    ("Šerić’s article.html", "Serics-article.html"),
    ("", "document.txt"),
    ("???", "document.txt"),
    ("x" * 300 + ".txt", "x" * 76 + ".txt"),
])
def test_safe_filename(name, expected):
    assert document.safe_filename(name) == expected


def test_safe_filename_refuses_unsupported_formats():
    with pytest.raises(InputError, match="unsupported format"):
        document.safe_filename("slides.pptx")


def test_numbered_licence_headings_ending_with_a_full_stop_are_sections_not_paragraphs():
    # GPL-3's "0. Definitions." and "13. Use with the GNU Affero General Public License." end with
    # a full stop, so the short-line rule alone made them numbered, citable paragraphs.
    text = ("TERMS AND CONDITIONS\n\n  0. Definitions.\n\n  \"This License\" refers to version 3.\n\n"
            "  13. Use with the GNU Affero General Public License.\n\n  Notwithstanding any other provision, you may combine.\n\n"
            "  1. Install it. Then run it.\n\n  2. run the tests.\n\nThe end.")
    doc = document.parse(text)
    assert [(p.number, p.section, p.text) for p in doc.paragraphs] == [
        (1, "0. Definitions", "\"This License\" refers to version 3."),
        (2, "13. Use with the GNU Affero General Public License", "Notwithstanding any other provision, you may combine."),
        (3, "13. Use with the GNU Affero General Public License", "1. Install it. Then run it."),
        (4, "13. Use with the GNU Affero General Public License", "2. run the tests."),
        (5, "13. Use with the GNU Affero General Public License", "The end."),
    ]


def test_underlined_readme_headings_are_the_title_and_sections_not_paragraphs():
    # Debian's base-passwd README opens "base-passwd for Debian\n----------------------": the
    # title and its underline were numbered ¶1 and the title fell back to the file name.
    text = ("base-passwd for Debian\n----------------------\n\nThis package supplies the master copies.\n\n"
            "Reserved ids\n============\n\nThe following ids have been allocated.")
    doc = document.parse(text)
    assert doc.title == "base-passwd for Debian"
    assert [(p.number, p.section, p.text) for p in doc.paragraphs] == [
        (1, "", "This package supplies the master copies."),
        (2, "Reserved ids", "The following ids have been allocated."),
    ]


def test_apache_style_clause_opening_with_its_numbered_heading_starts_a_new_section():
    # Apache-2.0 gives "1. Definitions." a line of its own but opens every later clause with its
    # heading ("2. Grant of Copyright License. Subject to ..."): without this, "7. Disclaimer of
    # Warranty" was cited as "· 1. Definitions".
    text = ("TERMS AND CONDITIONS\n\n1. Definitions.\n\n\"Licensor\" shall mean the copyright owner.\n\n"
            "2. Grant of Copyright License. Subject to the terms of this License, you may copy it.\n\n"
            "(a) You must give any other recipients of the Work a copy of this License.\n\n"
            "7. Disclaimer of Warranty. The Work is provided AS IS.")
    doc = document.parse(text)
    assert [(p.number, p.section) for p in doc.paragraphs] == [
        (1, "1. Definitions"), (2, "2. Grant of Copyright License"), (3, "2. Grant of Copyright License"),
        (4, "7. Disclaimer of Warranty")]
    plain = document.parse("Notes\n\nFirst things.\n\n1. Install Python. Then run the tests.")
    assert [p.section for p in plain.paragraphs] == ["", ""]  # not in a numbered document: no section
