"""Uploading PDF and Word files through the engine: the original bytes are kept in source/,
the index cites pages; a bad file changes nothing and the old index keeps serving."""

from __future__ import annotations

import pytest
from formats_fixtures import one_page_pdf, zlib_bomb

from qa.errors import InputError

HELLO = b"BT /F1 24 Tf 72 700 Td (Kangaroo notes) Tj /F1 12 Tf 0 -40 Td (Kangaroos live in Australia.) Tj ET"


def test_uploaded_pdf_is_kept_as_uploaded_and_cited_with_its_page(fake_engine):
    data = one_page_pdf(HELLO)
    report = fake_engine.library.add_text("kangaroo notes.pdf", data)
    saved = fake_engine.settings.source_dir / "kangaroo-notes.pdf"
    assert report.saved[0] == str(saved) and saved.read_bytes() == data
    answer = fake_engine.ask("Where do kangaroos live?")
    top = next(c for c in answer.citations if c.document.startswith("kangaroo"))
    assert top.page == 1 and top.quote == "Kangaroos live in Australia."


@pytest.mark.parametrize("name,data,message", [
    ("scan.pdf", lambda: one_page_pdf(b"0 0 m 100 100 l S"), "this PDF has no text layer"),
    ("broken.pdf", lambda: b"%PDF-1.4\n", "is not a readable PDF"),
    ("bomb.pdf", lambda: one_page_pdf(zlib_bomb(1024 << 20), b"/Filter /FlateDecode "), "more than 512 MB of memory"),
    ("huge.pdf", lambda: one_page_pdf(HELLO, count=5_000_000), "over the limit of 2000 pages"),
    ("letter.docx", lambda: b"Not a zip at all.", "is not a Word .docx file"),
], ids=["scanned", "malformed", "decompression-bomb", "page-count", "fake-docx"])
def test_bad_upload_is_refused_and_the_old_index_keeps_serving(fake_engine, name, data, message, monkeypatch):
    from qa.formats import pdf

    monkeypatch.setattr(pdf, "MEMORY_LIMIT_BYTES", 512 << 20)  # the bomb need not be bigger than 1 GiB
    before = fake_engine.snapshot().version
    files = sorted(p.name for p in fake_engine.settings.source_dir.iterdir())
    with pytest.raises(InputError, match=message):
        fake_engine.library.add_text(name, data())
    assert fake_engine.snapshot().version == before
    assert sorted(p.name for p in fake_engine.settings.source_dir.iterdir()) == files
    assert fake_engine.ask("When did Che Guevara visit Pyongyang?").citations
