"""What a person sees (issue 5): the web app in a real headless Chromium, with the real model.

Ask, read the cited answer, see the quoted part highlighted in the sources panel, get a refusal
for an unanswerable question, start a new conversation; and (issue 4) upload a document in the
Documents tab, rebuild, and ask about it. Every step is saved as a screenshot under
artifacts/screenshots/ (git-ignored). Loopback only: any request that leaves 127.0.0.1 fails
the test.
"""

from __future__ import annotations

import pytest
from conftest import (
    BOT,
    PLACEHOLDER,
    QUESTION_BOX,
    SOURCES,
    USER,
    ask,
    free_port,
    kangaroo_app,
    new_page,
    running_app,
    shot,
)
from playwright.sync_api import expect

from qa.engine import Engine
from qa.ui import EXAMPLES, SOURCES_PLACEHOLDER

pytestmark = pytest.mark.browser

# --- the chat ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def article_app(real_index, tmp_path_factory):
    settings = real_index.with_(source_dir=tmp_path_factory.mktemp("browser-source"), port=free_port())
    with running_app(Engine(settings), settings) as url:
        yield url


def test_ask_see_cited_answer_and_highlighted_source_then_refusal_and_reset(article_app, page):
    page.goto(article_app)
    box = page.locator(QUESTION_BOX)
    expect(box).to_be_visible()
    expect(box).to_have_attribute("placeholder", PLACEHOLDER)
    expect(page.get_by_text("1 document:")).to_be_visible()  # the status line names the index
    expect(page.locator(SOURCES)).to_contain_text("Ask a question")
    shot(page, "01_loaded")

    answer = ask(page, "When did Che Guevara visit Pyongyang?")
    expect(page.locator(USER).last).to_have_text("Question: When did Che Guevara visit Pyongyang?")
    expect(answer).to_contain_text("Che Guevara, visited Pyongyang")
    expect(answer.locator("blockquote")).to_contain_text("visited Pyongyang")
    expect(answer.locator(".qa-cite a")).to_contain_text("¶4")
    shot(page, "02_answer_with_citation")

    sources = page.locator(SOURCES)
    expect(sources.locator("h3")).to_have_text("Cited passages")
    first = sources.locator("details.qa-source").first
    expect(first.locator("summary").first).to_contain_text("¶4 · Historical context")
    mark = first.locator("mark")
    expect(mark).to_have_count(1)
    expect(mark).to_be_visible()  # the first source is open, its quote highlighted
    quote = answer.locator("blockquote").inner_text().strip()
    assert mark.inner_text().strip() == quote
    paragraph = first.locator("p").first.inner_text()
    assert paragraph.startswith("Havana and Pyongyang developed their friendship") and quote in paragraph
    assert len(paragraph) > len(quote)  # the whole paragraph, not just the quote
    bg = mark.evaluate("el => getComputedStyle(el).backgroundColor")
    assert bg not in ("rgba(0, 0, 0, 0)", "transparent")
    shot(page, "03_sources_panel_highlight", sources)

    refusal = ask(page, "How do I bake sourdough bread?")
    expect(refusal).to_contain_text("Not in this document")
    expect(refusal).to_contain_text("Closest passages, but not an answer")
    expect(sources.locator("section:not([hidden]) h3")).to_have_text("Closest passages (not an answer)")
    expect(page.locator(BOT)).to_have_count(2)  # the earlier answer stays in the conversation
    shot(page, "04_refusal")

    page.get_by_role("button", name="New conversation").click()
    expect(page.locator(BOT)).to_have_count(0)
    expect(page.locator(USER)).to_have_count(0)
    expect(sources).to_contain_text("Ask a question: the cited paragraphs appear here")
    assert "mark" not in SOURCES_PLACEHOLDER
    shot(page, "05_after_reset")

    first = ask(page, "Who is Ri Yong-ho?")  # a new conversation, with a follow-up
    expect(first).to_contain_text("Ri Yong-ho")
    follow = ask(page, "Who received him in Havana?")
    expect(follow.locator("blockquote")).to_contain_text("received by then Cuban President Raul Castro")
    expect(page.locator(USER)).to_have_count(2)
    shot(page, "05b_follow_up")
    page.watch.assert_clean()


def test_a_found_answer_of_low_confidence_shows_its_caution_above_the_quote(article_app, page):
    # "What is the population of Vietnam?" quotes Cuba's population at a low confidence (issue 12)
    page.goto(article_app)
    answer = ask(page, "What is the population of Vietnam?")
    caution = answer.locator(".qa-low")
    expect(caution).to_be_visible()
    expect(caution).to_contain_text("Low confidence")
    expect(caution).to_contain_text("may not answer the question")
    assert caution.bounding_box()["y"] < answer.locator("blockquote").bounding_box()["y"]
    shot(page, "02b_low_confidence_caution", answer)
    confident = ask(page, "When did Che Guevara visit Pyongyang?")
    expect(confident.locator(".qa-low")).to_have_count(0)
    page.watch.assert_clean()


def test_example_button_asks_the_question(article_app, page):
    page.goto(article_app)
    page.get_by_role("button", name="What happened to the ship Chong Chon Gang in 2013?").click()
    expect(page.locator(BOT)).to_have_count(1)
    expect(page.locator(BOT).last).to_contain_text("Chong Chon Gang")
    expect(page.locator(SOURCES).locator("mark").first).to_be_visible()
    page.watch.assert_clean()


# --- the documents tab (issue 4) -------------------------------------------------------------------

WOMBAT = ("Wombat field notes\n\n"
          "The wombat Bartholomew lives in a burrow under the old eucalyptus tree near Ballarat.\n\n"
          "Wombats leave cube-shaped droppings on rocks to mark their territory.\n")


def test_upload_a_file_rebuild_and_ask_about_it(browser, tmp_path):
    settings, engine = kangaroo_app(tmp_path, free_port())
    source = settings.source_dir
    old = engine.snapshot().version
    upload = tmp_path / "upload" / "Wombat notes.txt"
    upload.parent.mkdir()
    upload.write_text(WOMBAT, "utf-8")

    with new_page(browser) as page, running_app(engine, settings) as url:
        page.goto(url)
        # the example questions ask about the shipped article, which this index does not hold
        expect(page.get_by_text("1 document: Kangaroo notes")).to_be_visible()  # the page has loaded
        expect(page.get_by_role("button", name=EXAMPLES[0])).to_be_hidden()
        page.get_by_role("tab", name="Documents").click()
        table = page.locator("table.qa-docs")
        expect(table).to_contain_text("Kangaroo notes")
        page.locator("input[type=file]").set_input_files(str(upload))
        expect(page.get_by_text("Wombat notes.txt")).to_be_visible()  # the upload landed
        page.get_by_label("Replace").check()
        page.get_by_role("button", name="Preview").click()
        expect(page.get_by_text("2 paragraphs")).to_be_visible()
        page.get_by_role("button", name="Rebuild index").click()
        expect(page.get_by_text("Replaced. Now serving version")).to_be_visible(timeout=90_000)
        expect(table).to_contain_text("Wombat field notes")
        expect(table).not_to_contain_text("Kangaroo notes")
        shot(page, "06_upload_rebuilt")

        page.get_by_role("tab", name="Chat").click()
        expect(page.locator(QUESTION_BOX)).to_have_attribute("placeholder", "Ask a question about “Wombat field notes”.")
        answer = ask(page, "Where does the wombat Bartholomew live?")
        expect(answer.locator("blockquote")).to_contain_text("lives in a burrow under the old eucalyptus tree")
        expect(answer.locator(".qa-cite a")).to_contain_text("¶1")
        expect(page.locator(SOURCES).locator("mark").first).to_contain_text("Bartholomew")
        shot(page, "07_upload_answer")
        page.watch.assert_clean()
    assert engine.snapshot().version != old
    assert [d.title for d in engine.snapshot().data.documents] == ["Wombat field notes"]
    saved = sorted(p.name for p in source.iterdir() if p.is_file())
    assert saved == ["Wombat-notes.txt", "kangaroo.txt"]  # kept beside the old file, under a safe name
    assert (source / "Wombat-notes.txt").read_text("utf-8") == WOMBAT
