"""Encodings through charset-normalizer: doubtful or mixed text is read with a warning the
preview shows (`Document.warnings`), never silently garbled; UTF-16 without a BOM is read."""

from __future__ import annotations

import pytest

from qa import document

MB = 1024 * 1024


def test_utf8_text_has_no_warning():
    doc = document.load("Titel\n\nGrüße aus Köln, à bientôt.".encode(), "x.txt", MB)
    assert doc.warnings == () and doc.paragraphs[0].text == "Grüße aus Köln, à bientôt."


def test_latin1_text_is_read_with_a_warning_naming_the_encoding():
    doc = document.load("Titel\n\nGrüße aus Köln, à bientôt.".encode("latin-1"), "x.txt", MB)
    assert doc.paragraphs[0].text == "Grüße aus Köln, à bientôt."
    assert doc.warnings == ("x.txt is not UTF-8: read as Windows-1252 (detected). "
                            "If accented letters look wrong, save the file as UTF-8.",)


def test_mixed_utf8_and_latin1_lines_are_each_read_in_their_own_encoding_with_a_warning():
    data = ("Titel\n\nGrüße aus Köln.\n\n".encode() + "Une soirée à Zürich.\n\n".encode("latin-1")
            + "Ein naïver Satz.".encode())
    doc = document.load(data, "mixed.txt", MB)
    assert [p.text for p in doc.paragraphs] == ["Grüße aus Köln.", "Une soirée à Zürich.", "Ein naïver Satz."]
    assert len(doc.warnings) == 1
    assert doc.warnings[0].startswith("mixed.txt mixes encodings: 1 line(s) are not UTF-8 and were read as "
                                      "Windows-1252 (line 5)")


def test_cyrillic_windows_1251_is_detected():
    text = "Заголовок\n\n" + "Привет, как дела? Это длинный тест текста на русском языке. " * 6
    doc = document.load(text.encode("cp1251"), "ru.txt", MB)
    assert doc.paragraphs[0].text == " ".join(text.split("\n\n")[1].split())
    assert "read as cp1251" in doc.warnings[0]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_bomless_utf16_of_non_ascii_text_is_read(codec):
    text = "Заголовок\n\nПривет, как дела? Это тест текста на русском языке, очень длинный.\n"
    doc = document.load(text.encode(codec), "x.txt", MB)
    assert doc.title == "Заголовок" and doc.paragraphs[0].text.startswith("Привет, как дела?")


def test_double_encoded_utf8_gets_a_warning():
    garbled = "Café au lait, naïve señor, Zürich.".encode().decode("latin-1")
    doc = document.load(f"Title\n\n{garbled}".encode(), "x.txt", MB)
    assert doc.warnings and "looks double-encoded" in doc.warnings[0]


def test_preview_shows_format_pages_and_warnings(tmp_path):
    from qa.config import Settings
    from qa.engine import Engine
    from qa.ui import Handlers

    f = tmp_path / "latin.txt"
    f.write_bytes("Titel\n\nGrüße aus Köln, à bientôt.".encode("latin-1"))
    settings = Settings(index_dir=tmp_path / "index", source_dir=tmp_path)
    handlers = Handlers(Engine(settings), settings)  # previewing loads no model and builds nothing
    from formats_fixtures import one_page_pdf

    from qa.render import unescape_markdown

    pdf = tmp_path / "hello.pdf"
    pdf.write_bytes(one_page_pdf(b"BT /F1 12 Tf 72 700 Td (Hello there.) Tj ET"))
    md = unescape_markdown(handlers.preview([str(f), str(pdf)], None, None))
    assert "text, 1 paragraph;" in md and "warning: latin.txt is not UTF-8" in md
    assert "pdf, 1 page, 1 paragraph;" in md
