"""The reader's workspace (issue 14) without a browser: the reader view, copy and export, the
plain /ask text, "Why this passage?", grammatical counts and full titles, "Ask within", the
Documents tab's confirm and progress."""

from __future__ import annotations

import html
import json
import os
import time
from pathlib import Path

import pytest

from qa import render
from qa.chatview import ChatTurn, conversation_html, sources_panel, turn_html
from qa.document import Document, Paragraph
from qa.engine import Engine
from qa.errors import InputError
from qa.reader import EMPTY, Target, open_reader, reader_html
from qa.ui import Handlers, message_html
from qa.ui_handlers import EXPORT_KEEP_S

QUESTION = "When did Che Guevara visit Pyongyang?"
KANGAROO = "Kangaroo notes\n\nThe kangaroo lives in Australia and hops.\n\nKangaroos eat grass at night.\n"
PASTED_TITLE = "A very long title about kangaroos that goes on well past forty characters easily"


@pytest.fixture
def handlers(fake_engine) -> Handlers:
    return Handlers(fake_engine, fake_engine.settings)


def paged_document() -> Document:
    parts = ["Title", "Intro <b>bold</b> text.", "Methods", "We measured & counted.", "Then we slept."]
    text = "\n\n".join(parts)
    spans, pos = [], 0
    for p in parts:
        spans.append((pos, pos + len(p)))
        pos += len(p) + 2
    paras = (Paragraph(1, "", *spans[1], parts[1], page=1), Paragraph(2, "Methods", *spans[3], parts[3], page=1),
             Paragraph(3, "Methods", *spans[4], parts[4], page=2))
    return Document("paged", "Title", text, paras, format="pdf", pages=2)


# --- the reader -------------------------------------------------------------------------------

def test_reader_shows_numbers_sections_pages_and_highlights_the_quote():
    doc = paged_document()
    p2 = doc.paragraphs[1]
    out = reader_html(doc, Target("paged", 2, p2.start + 3, p2.start + 11))
    assert "<h2 id='qa-reader-title'>Title</h2>" in out and "<h3 class='qa-reader-section'>Methods</h3>" in out
    assert out.count("class='qa-page'") == 2 and "Page 2" in out  # a marker where each page starts
    assert "¶1" in out and "¶2" in out and "¶3" in out
    assert out.count("id='qa-target'") == 1 and "<mark class='qa-hl'>measured</mark>" in out
    assert "&lt;b&gt;bold&lt;/b&gt;" in out and "<b>" not in out and "&amp; counted" in out


def test_reader_for_a_bad_address_says_why():
    doc = paged_document()
    assert "has no ¶99" in reader_html(doc, Target("paged", 99))
    assert "No document with the id “&lt;x&gt;”" in open_reader({"paged": doc}, Target("<x>", 1))
    assert open_reader({"paged": doc}, None) == EMPTY
    assert Target.of({"doc": "paged", "p": "-3", "s": "1e9", "e": "12"}) == Target("paged", None, None, 12)
    assert Target.of({"p": "4"}) is None
    whole = reader_html(doc, Target("paged", 3, 0, 5))  # offsets outside the paragraph: no highlight
    assert "id='qa-target'" in whole and "<mark" not in whole


def test_citation_link_opens_the_reader_at_that_paragraph(handlers):
    t = handlers.turn(QUESTION, [])
    c = t.answer.citations[0]
    shown = handlers.conversation([t])
    href = html.escape(f"?doc={c.document}&p={c.paragraph}&s={c.start}&e={c.end}", quote=True)
    assert f"href='{href}'" in shown
    reader = handlers.read(Target(c.document, c.paragraph, c.start, c.end))
    assert f"<mark class='qa-hl'>{html.escape(c.quote)}</mark>" in reader


# --- the conversation ------------------------------------------------------------------------------

def test_answer_first_then_a_few_supporting_passages_and_more_collapsed(real_engine):
    h = Handlers(real_engine, real_engine.settings)
    t = h.turn(QUESTION, [])
    out = turn_html(0, t, t.answer.index_version, True)
    assert out.index("qa-quote") < out.index("Copy citation") < out.index("Also relevant")
    supporting = out[out.index("qa-support"):]
    shown, _, hidden = supporting.partition("<details class='qa-more'>")
    assert shown.count("<li>") == 2 and "More passages (1)" in hidden


def test_why_this_passage_holds_the_engine_terms(handlers):
    t = handlers.turn(QUESTION, [])
    panel = sources_panel([t], "")
    assert "fused score" not in panel and "dense rank" not in panel and "BM25" not in panel
    why = panel[panel.index("Why this passage?"):]
    assert "closest in meaning" in why and "shares these words with the question" in why


def test_each_answer_keeps_its_sources_and_the_panel_holds_the_last(handlers):
    a = handlers.turn(QUESTION, [])
    b = handlers.turn("How do I bake sourdough bread?", [a])
    panel = sources_panel([a, b], "")
    assert panel.count("<section") == 1 and "Sources for: <q>How do I bake" in panel
    conversation = conversation_html([a, b], None)
    first = conversation[:conversation.index("data-turn='1'")]
    assert "qa-inline-sources" in first and "<mark>" in first  # the first answer's own sources (copied on select)


def test_counts_are_grammatical_and_titles_full(handlers):
    assert "1 document:" in handlers.status() and "document(s)" not in handlers.status()
    handlers.rebuild(None, KANGAROO, "", "Add", "")
    handlers.rebuild(None, "Placeholder\n\nSome words here.", PASTED_TITLE, "Add", "")
    status = handlers.status()
    assert "3 documents:" in status and html.escape(PASTED_TITLE) in status
    assert "Ask a question about the 3 indexed documents" in handlers.box_placeholder() or handlers.examples_visible()
    assert render.count(1, "passage") == "1 passage" and render.count(2, "passage") == "2 passages"


def test_empty_conversation_shows_the_placeholder():
    out = conversation_html([], None, None, "Ask <away>")
    assert "Ask &lt;away&gt;" in out and "qa-turn" not in out


# --- copy, export, API ------------------------------------------------------------------------

def test_copy_citation_is_plain_text(handlers):
    t = handlers.turn(QUESTION, [])
    c = t.answer.citations[0]
    text = render.copy_citation(c)
    assert text == f"“{c.quote}” — {c.title}, ¶{c.paragraph} ({c.section})"
    assert "\\" not in text and "&#" not in text
    assert f"data-copy='{html.escape(text, quote=True)}'" in handlers.conversation([t])


def test_export_markdown_and_json_carry_citations_and_index_version(handlers):
    a = handlers.turn(QUESTION, [])
    b = handlers.turn("How do I bake sourdough bread?", [a])
    err = ChatTurn("x" * 10, None, "Something <went> wrong")
    md_path, json_path = handlers.export_files([a, b, err])
    md = Path(md_path).read_text("utf-8")
    data = json.loads(Path(json_path).read_text("utf-8"))
    assert f"## {QUESTION}" in md and f"> {render._md(a.answer.citations[0].quote)}" in md
    assert f"_Index version {a.answer.index_version}_" in md
    assert ("**Not in this document.**" in md) is (not b.answer.found)
    assert "Something \\<went\\> wrong" in md
    turns = data["turns"]
    assert [t["question"] for t in turns] == [QUESTION, "How do I bake sourdough bread?", "x" * 10]
    assert turns[0]["answer"]["index_version"] == a.answer.index_version
    assert turns[0]["answer"]["citations"][0]["paragraph"] == a.answer.citations[0].paragraph
    assert turns[0]["answer"]["citations"][0]["title"] == a.answer.citations[0].title
    assert turns[1]["answer"]["found"] is b.answer.found and turns[2] == {"question": "x" * 10, "answer": None,
                                                                  "message": "Something <went> wrong"}


def test_old_export_folders_are_deleted_on_a_long_running_server(handlers):
    first, _ = handlers.export_files([])
    old = Path(first).parent
    os.utime(old, (time.time() - 2 * EXPORT_KEEP_S,) * 2)
    second, _ = handlers.export_files([])
    assert not old.exists() and Path(second).exists()
    assert Path(second).parent.parent == handlers.export_root  # one folder per app, one per answer under it


def test_api_ask_returns_plain_text_without_markdown_escapes(handlers):
    text = handlers.api_ask(QUESTION)
    a = handlers.answer(QUESTION)
    assert text.startswith(a.citations[0].quote) and "\\" not in text and "&#" not in text
    assert f"— ¶{a.citations[0].paragraph}" in text


def test_api_answer_json_is_unchanged(handlers):
    assert handlers.api_answer_json(QUESTION) == handlers.answer(QUESTION).to_json()


# --- ask within --------------------------------------------------------------------------------

def test_ask_within_one_document_cites_only_it(fake_engine: Engine, handlers):
    handlers.rebuild(None, KANGAROO, "", "Add", "")
    ids = [d.id for d in fake_engine.snapshot().data.documents]
    assert len(ids) == 2
    article, kangaroo = ids
    everywhere = fake_engine.ask("Where does the kangaroo live?")
    only = fake_engine.ask("Where does the kangaroo live?", documents=[article])
    assert {c.document for c in only.citations} == {article}
    assert {c.document for c in fake_engine.ask("Che Guevara Pyongyang", documents=[kangaroo]).citations} == {kangaroo}
    assert fake_engine.ask("Where does the kangaroo live?", documents=None) == everywhere  # no filter: unchanged
    with pytest.raises(InputError, match="None of the chosen documents"):
        fake_engine.ask(QUESTION, documents=["gone"])
    t = handlers.turn("Where does the kangaroo live?", [], [article])
    title = fake_engine.snapshot().docs[article].title
    assert t.within == (title,) and f"Asked within: {html.escape(title)}" in handlers.conversation([t])
    choices = handlers.within_choices()
    assert choices["visible"] is True and [v for _, v in choices["choices"]] == ids


def test_ask_within_is_hidden_with_one_document(handlers):
    assert handlers.within_choices()["visible"] is False


# --- the documents tab ---------------------------------------------------------------------------

def test_remove_asks_to_confirm_and_names_the_document(handlers):
    handlers.rebuild(None, KANGAROO, "", "Add", "")
    row, question, message = handlers.confirm_remove("kangaroo-notes")
    assert row["visible"] is True and "Remove “Kangaroo notes” (kangaroo-notes)" in question and message == ""
    row, question, message = handlers.confirm_remove(None)
    assert row["visible"] is False and "Choose a document" in message
    assert len(handlers.documents_table()) == 2  # asking removed nothing


def test_documents_messages_have_no_escape_characters(handlers):
    handlers.rebuild(None, KANGAROO, "", "Add", "")
    steps = list(handlers.in_background(lambda say: handlers._remove("kangaroo-notes", "", say)))
    assert steps[-1][0] == "" and steps[-1][1][0] is True
    shown = message_html(*steps[-1][1])
    assert "Removed kangaroo-notes." in shown and "\\" not in shown
    assert "\\" not in message_html(False, "Not removed:", "no document honeybees-decide (yet)")


def test_rebuild_in_background_reports_progress_then_the_result(handlers):
    def slow(say):
        import time

        for i in range(4):
            say(i / 4, "embedding passages")
            time.sleep(0.3)
        return True, "", "Added."

    steps = list(handlers.in_background(slow))
    assert steps[-1] == ("", (True, "", "Added."))
    shown = [s for s, r in steps[:-1]]
    assert shown and all("<progress" in s and "role='status'" in s for s in shown if "%" in s)
    assert any("Embedding passages" in s for s in shown)


def test_ask_within_is_a_mask_in_ranking(fake_engine: Engine, handlers):
    import numpy as np

    from qa.ranking import Conversation, Question, rank, within

    handlers.rebuild(None, KANGAROO, "", "Add", "")
    snap = fake_engine.snapshot()
    rows = within(snap, ["kangaroo-notes"])
    assert within(snap, None) is None and len(within(snap, ["gone"])) == 0
    assert {snap.data.sentences[i].doc for i in rows} == {"kangaroo-notes"}
    r = rank(snap, Question.of("Where does the kangaroo live?"), Conversation(), fake_engine._encode,
             fake_engine.policy, ["kangaroo-notes"])
    outside = np.setdiff1d(np.arange(len(snap.data.sentences)), rows)
    assert np.isneginf(r.fused[outside]).all() and np.isfinite(r.fused[rows]).all()
    assert set(r.rows.tolist()) == set(rows.tolist())


def test_export_of_a_quote_holding_a_dash_keeps_its_citation_line():
    from qa.answer import Answer, Citation

    text = "He came — and left."
    c = Citation("d", 4, "History", text, 0, len(text), 1.0, "The Alliance", context=text)
    md = render.export_markdown([ChatTurn("Who came?", Answer("Who came?", True, text, (c,), "v1"))], "now")
    assert "— The Alliance, ¶4 (History)" in md and "— and left." not in md.split("> ", 1)[1].split("\n", 1)[1]
