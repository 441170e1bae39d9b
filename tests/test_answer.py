"""The JSON answer contract (DESIGN.md §4), verbatim quotes, escaping."""

from __future__ import annotations

from qa.answer import escape_markdown, sources_html, to_markdown


def test_json_answer_has_exactly_the_contract_fields(fake_engine):
    out = fake_engine.ask("When did Che Guevara visit Pyongyang?").to_json()
    assert set(out) == {"question", "found", "answer", "citations", "index_version"}
    assert out["citations"]
    for c in out["citations"]:
        assert {"document", "paragraph", "section", "quote", "start", "end", "score"} <= set(c)
        assert isinstance(c["paragraph"], int) and c["paragraph"] >= 1
        assert len(c["quote"].split(". ")) <= 3


def test_every_quote_is_verbatim_document_text(fake_engine):
    snap = fake_engine.snapshot()
    for q in ["Che Guevara Pyongyang", "Bay of Pigs", "sugar railway equipment", "Raul Castro 1968"]:
        for c in fake_engine.ask(q).citations:
            assert snap.docs[c.document].text[c.start:c.end] == c.quote


def test_one_citation_per_paragraph(fake_engine):
    cites = fake_engine.ask("Cuba North Korea relations", k=6).citations
    keys = [(c.document, c.paragraph) for c in cites]
    assert len(keys) == len(set(keys)) == 6


def test_quoted_script_tag_is_shown_as_text():
    md = escape_markdown('<script>alert("x")</script> **bold** [link](javascript:x) $$a$$')
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "\\*\\*bold\\*\\*" in md and "\\[link\\]" in md and "\\$\\$" in md


def test_not_found_answer_is_labelled_and_keeps_nearest_passages(fake_engine):
    from dataclasses import replace

    ans = fake_engine.ask("sourdough bread recipe")
    ans = replace(ans, found=False, answer=None)
    docs = fake_engine.snapshot().docs
    md = to_markdown(ans, docs)
    assert "Not in this document" in md and "Closest passages, but not an answer" in md
    assert "not an answer" in sources_html(ans, docs)
