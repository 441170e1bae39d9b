"""A reader's workspace (issue 14) in headless Chromium with the real model, at 1280x800 and on
a 390x844 phone, in light and dark: the answer in view after each question, ¶ links opening
the reader scrolled to the highlighted quote (also from a shared address), each answer's
sources, copy and export, axe-core with no serious or critical violation, the Documents tab
(progress beside, not over, the form; confirm before removing; one plain message; "Ask
within"), and a question asked during the first build answered when the index is ready.
Screenshots of every state go to artifacts/screenshots/ws_*.png.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from conftest import (
    BOT,
    DESKTOP,
    PHONE,
    QUESTION_BOX,
    SHOTS,
    SOURCES,
    ask,
    free_port,
    kangaroo_app,
    new_page,
    running_app,
    shot,
)
from playwright.sync_api import expect

from qa.engine import Engine
from qa.ui import Handlers, Startup, build_app, launch_kwargs

pytestmark = pytest.mark.browser

QUESTION = "When did Che Guevara visit Pyongyang?"
FOLLOW_UP = "Who received him in Havana?"
REFUSED = "How do I bake sourdough bread?"
ARTICLE_ID = "unbreakable-alliance-cuba-north-korea"
SIZES = {"desktop": DESKTOP, "phone": PHONE}
AXE = Axe()


def serious_violations(page) -> list:
    """axe-core's serious and critical violations on the page as it is now: (rule, targets)."""
    result = AXE.run(page, options={"resultTypes": ["violations"]})
    return [(v["id"], [n["target"] for n in v["nodes"]]) for v in result.response["violations"]
            if v["impact"] in ("serious", "critical")]


def in_view(page, locator) -> None:
    """The element is wholly inside the viewport (what a person sees without scrolling)."""
    box = locator.bounding_box()
    height = page.viewport_size["height"]
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height, (box, height)


def _luminance(rgb: tuple[float, ...]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(page, locator) -> float:
    """WCAG contrast of an element's text colour on its own background colour."""
    fg, bg = locator.evaluate("el => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]")
    rgb = [tuple(float(x) for x in re.findall(r"[\d.]+", c)) for c in (fg, bg)]
    hi, lo = sorted((_luminance(c) for c in rgb), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.fixture(scope="module")
def article_app(real_index, tmp_path_factory):
    settings = real_index.with_(source_dir=tmp_path_factory.mktemp("workspace-source"), port=free_port())
    with running_app(Engine(settings), settings) as url:
        yield url


# --- 1, 2, 5, 6: answer first, citations open the source, plain words, accessible --------------------

@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_answer_in_view_citation_opens_reader_accessible(article_app, browser, size, theme):
    name = f"ws_{size}_{theme}"
    with new_page(browser, SIZES[size]) as page:
        page.goto(article_app + ("?__theme=dark" if theme == "dark" else ""))
        expect(page.locator(QUESTION_BOX)).to_be_visible()
        expect(page.get_by_text("1 document:")).to_be_visible()
        assert page.locator("h1").count() == 1
        assert serious_violations(page) == []
        shot(page, f"{name}_1_empty")

        for question in (QUESTION, FOLLOW_UP, "What happened to the ship Chong Chon Gang in 2013?"):
            answer = ask(page, question)
            page.wait_for_timeout(300)  # the scroll runs after the update is drawn
            in_view(page, answer.locator(".qa-quote"))  # the quote that answers ...
            in_view(page, answer.locator(".qa-cite a.qa-open"))  # ... and its citation, without scrolling
        shot(page, f"{name}_2_answer")
        page.screenshot(path=str(SHOTS / f"{name}_2_answer_viewport.png"))  # what is in view, as a person sees it

        quote_size = float(answer.locator(".qa-quote").evaluate("el => parseFloat(getComputedStyle(el).fontSize)"))
        support = answer.locator(".qa-support li").first
        assert float(support.evaluate("el => parseFloat(getComputedStyle(el).fontSize)")) < quote_size
        expect(answer.locator(".qa-support > ul > li")).to_have_count(2)  # two shown, the rest collapsed
        expect(answer.locator("details.qa-more")).not_to_have_attribute("open", "")
        expect(answer).not_to_contain_text("fused score")  # engine terms only behind "Why this passage?"
        if size == "phone":  # the sources come right after the answer
            inline = answer.locator(".qa-inline-sources")
            expect(inline).to_be_visible()
            cite = answer.locator(".qa-cite").bounding_box()
            assert 0 <= inline.bounding_box()["y"] - (cite["y"] + cite["height"]) < 40
            expect(page.locator(SOURCES)).to_be_hidden()
            mark = inline.locator("mark").first
        else:
            expect(answer.locator(".qa-inline-sources")).to_be_hidden()
            mark = page.locator(SOURCES).locator("section:not([hidden]) mark").first
        expect(mark).to_be_visible()
        assert contrast(page, mark) >= 4.5
        why = page.locator("details.qa-why:visible").first
        why.locator("summary").click()
        expect(why).to_contain_text("closest in meaning")
        assert serious_violations(page) == []

        refusal = ask(page, REFUSED)
        page.wait_for_timeout(300)
        expect(refusal).to_contain_text("Not in this document")
        in_view(page, refusal.locator(".qa-refusal"))
        assert serious_violations(page) == []
        shot(page, f"{name}_3_refusal")

        # the citation is a link, reachable by keyboard: focus it and press Enter
        link = page.locator(BOT).nth(1).locator(".qa-cite a.qa-open")
        expected_quote = page.locator(BOT).nth(1).locator(".qa-quote").inner_text().strip()
        link.focus()
        page.keyboard.press("Enter")
        target = page.locator("#qa-reader #qa-target")
        expect(target).to_be_visible()
        expect(page.get_by_role("tab", name="Reader")).to_have_attribute("aria-selected", "true")
        assert re.search(rf"\?doc={ARTICLE_ID}&p=13&s=\d+&e=\d+$", page.url)
        page.wait_for_timeout(400)
        in_view(page, target.locator("mark.qa-hl"))  # scrolled to the highlighted quote
        assert target.locator("mark.qa-hl").inner_text().strip() == expected_quote
        assert target.inner_text().startswith("¶13")
        assert contrast(page, target.locator("mark.qa-hl")) >= 4.5
        expect(page.locator("#qa-reader h3.qa-reader-section").first).to_be_visible()
        assert serious_violations(page) == []
        shot(page, f"{name}_4_reader")

        page.get_by_role("tab", name="Documents").click()
        expect(page.locator("table.qa-docs")).to_contain_text("The Unbreakable Alliance")
        assert serious_violations(page) == []
        shot(page, f"{name}_5_documents")
        assert page.locator("h1").count() == 1
        page.watch.assert_clean()


def test_a_shared_citation_address_opens_the_reader(article_app, page):
    page.goto(f"{article_app}?doc={ARTICLE_ID}&p=9")
    target = page.locator("#qa-reader #qa-target")
    expect(target).to_be_visible()
    expect(page.get_by_role("tab", name="Reader")).to_have_attribute("aria-selected", "true")
    page.wait_for_timeout(400)
    in_view(page, target)
    assert target.inner_text().startswith("¶9") and target.locator("mark").count() == 0
    shot(page, "ws_6_shared_address")
    page.get_by_role("button", name="Back to the chat").click()
    expect(page.locator(QUESTION_BOX)).to_be_visible()
    assert "?doc=" not in page.url
    page.goto(f"{article_app}?doc=no-such-doc&p=2")
    expect(page.locator("#qa-reader")).to_contain_text("No document with the id “no-such-doc”")
    page.watch.assert_clean()


# --- 3: sources per answer; 4: copy and export; 8: empty questions ---------------------------------

def test_selecting_an_earlier_answer_shows_its_sources(article_app, page):
    page.goto(article_app)
    ask(page, QUESTION)
    ask(page, REFUSED)
    panel = page.locator(SOURCES)
    expect(panel.locator("section:not([hidden]) .qa-for")).to_contain_text(REFUSED)
    page.locator(BOT).first.get_by_role("button", name="Show sources").click()
    expect(panel.locator("section:not([hidden]) .qa-for")).to_contain_text(QUESTION)
    expect(panel.locator("section:not([hidden]) h3")).to_have_text("Cited passages")
    expect(page.locator("article.qa-turn").first).to_have_class(re.compile("qa-selected"))
    shot(page, "ws_7_earlier_sources")
    page.watch.assert_clean()


def test_copy_citation_and_export_the_conversation(article_app, browser, tmp_path):
    with new_page(browser, DESKTOP, permissions=["clipboard-read", "clipboard-write"],
                  accept_downloads=True) as page:
        page.goto(article_app)
        answer = ask(page, QUESTION)
        answer.get_by_role("button", name="Copy citation").click()
        expect(answer.locator(".qa-copied")).to_have_text("Copied")
        copied = page.evaluate("navigator.clipboard.readText()")
        quote = answer.locator(".qa-quote").inner_text().strip()
        assert copied == (f"“{quote}” — The Unbreakable Alliance Of Cuba And North Korea: How The Two Nations Were "
                          "Linked By Communism And Resistance To US Imperialism – OpEd, ¶4 (Historical context)")
        ask(page, REFUSED)
        with page.expect_download() as md:
            page.get_by_role("button", name="Export Markdown").click()
        text = Path(md.value.path()).read_text("utf-8")
        assert f"## {QUESTION}" in text and "¶4 (Historical context)" in text and "_Index version " in text
        with page.expect_download() as js:
            page.get_by_role("button", name="Export JSON").click()
        data = json.loads(Path(js.value.path()).read_text("utf-8"))
        assert [t["question"] for t in data["turns"]] == [QUESTION, REFUSED]
        first = data["turns"][0]["answer"]
        assert first["found"] and first["citations"][0]["paragraph"] == 4 and first["index_version"]
        assert data["turns"][1]["answer"]["found"] is False
        page.watch.assert_clean()


def test_empty_question_adds_nothing(article_app, page):
    page.goto(article_app)
    box = page.locator(QUESTION_BOX)
    expect(box).to_be_visible()
    box.fill("   ")
    box.press("Enter")
    page.wait_for_timeout(1500)
    expect(page.locator(BOT)).to_have_count(0)
    page.watch.assert_clean()


# --- 7: the documents tab ----------------------------------------------------------------------------

def _overlap(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_documents_tab_progress_confirm_messages_and_ask_within(browser, tmp_path, theme):
    settings, engine = kangaroo_app(tmp_path, free_port())
    real_add = engine.library.add_files

    def slow_add(items, add=True, progress=None):  # a long build: progress and time left are shown
        for i in range(5):
            progress(i / 10, "embedding passages")
            time.sleep(0.8)
        return real_add(items, add=add, progress=progress)

    engine.library.add_files = slow_add
    with new_page(browser, DESKTOP) as page, running_app(engine, settings) as url:
        page.goto(url + ("?__theme=dark" if theme == "dark" else ""))
        expect(page.get_by_text("1 document: Kangaroo notes")).to_be_visible()
        ask(page, "Where does the kangaroo live?")
        expect(page.get_by_label("Ask within")).to_be_hidden()  # one document: nothing to choose
        page.get_by_role("tab", name="Documents").click()
        page.get_by_label("Title (optional, for pasted text)").fill("Wombat <notes>")
        page.get_by_label("Paste text").fill("The wombat digs burrows in the forest near Ballarat.")
        page.get_by_role("button", name="Rebuild index").click()
        progress = page.locator("#qa-build-progress .qa-build")
        expect(progress).to_contain_text("left", timeout=15_000)  # an estimate of the time left
        expect(progress.locator("progress")).to_be_visible()
        bar = progress.bounding_box()
        for other in ("Rebuild index", "Preview", "Remove…"):
            assert not _overlap(bar, page.get_by_role("button", name=other).bounding_box())
        assert not _overlap(bar, page.get_by_label("Paste text").bounding_box())
        shot(page, f"ws_docs_{theme}_1_progress")
        message = page.locator("#qa-documents-message")
        expect(message).to_contain_text("Added. Now serving version", timeout=60_000)
        expect(progress).to_have_count(0)
        expect(page.get_by_label("Paste text")).to_have_value("")  # the form is cleared
        expect(page.get_by_label("Title (optional, for pasted text)")).to_have_value("")
        expect(page.locator("table.qa-docs")).to_contain_text("Wombat <notes>")  # shown literally
        assert serious_violations(page) == []
        shot(page, f"ws_docs_{theme}_2_added")

        pick = page.get_by_label("Document to remove")
        pick.click()
        page.get_by_role("option", name=re.compile("Kangaroo notes")).click()
        page.get_by_role("button", name="Remove…").click()
        expect(page.get_by_text("Remove “Kangaroo notes” (kangaroo-notes) from the index?")).to_be_visible()
        assert serious_violations(page) == []
        shot(page, f"ws_docs_{theme}_3_confirm")
        page.get_by_role("button", name="Cancel").click()
        expect(page.get_by_role("button", name="Yes, remove it")).to_be_hidden()
        expect(page.locator("table.qa-docs")).to_contain_text("Kangaroo notes")

        page.get_by_role("tab", name="Chat").click()  # two documents now: ask within one of them
        expect(page.locator(BOT).first).to_contain_text("From a previous index version")  # stale flag kept
        within = page.get_by_label("Ask within")
        expect(within).to_be_visible()
        within.click()
        page.get_by_role("option", name=re.compile("Wombat")).click()
        page.keyboard.press("Escape")
        answer = ask(page, "Where does the kangaroo live?")
        expect(answer).to_contain_text("Asked within: Wombat <notes>")
        expect(answer.locator(".qa-cite a, .qa-support a").first).to_contain_text("Wombat")
        assert "Kangaroo notes" not in answer.inner_text()
        shot(page, f"ws_docs_{theme}_4_within")

        page.get_by_role("tab", name="Documents").click()
        pick.click()
        page.get_by_role("option", name=re.compile("Kangaroo notes")).click()
        page.get_by_role("button", name="Remove…").click()
        page.get_by_role("button", name="Yes, remove it").click()
        expect(message).to_contain_text("Removed kangaroo-notes. Now serving version", timeout=60_000)
        expect(message).not_to_contain_text("Added.")  # the message replaces the previous one
        assert "\\" not in message.inner_text()
        expect(page.locator("table.qa-docs")).not_to_contain_text("Kangaroo notes")
        content = page.content()
        assert "common.complete" not in content, content[max(0, content.find("common.complete") - 600):content.find("common.complete") + 100]
        shot(page, f"ws_docs_{theme}_5_removed")
        page.get_by_role("tab", name="Chat").click()
        expect(page.get_by_label("Ask within")).to_be_hidden()
        page.watch.assert_clean()


# --- 8: start-up that tells the truth ----------------------------------------------------------------

def test_a_question_asked_during_the_first_build_is_answered_when_ready(browser, tmp_path):
    settings, engine = kangaroo_app(tmp_path, free_port(), build=False)
    real_ensure = engine.library.ensure_index

    def slow_ensure(*args, progress=None, **kwargs):
        for i in range(6):
            progress(i / 10, "Reading documents")
            time.sleep(0.5)
        return real_ensure(*args, progress=progress, **kwargs)

    engine.library.ensure_index = slow_ensure
    startup = Startup()
    demo = build_app(engine, settings, startup)
    demo.launch(**(launch_kwargs(settings) | {"prevent_thread_lock": True, "quiet": True}))
    lines = []
    try:
        startup.announce(demo, lines.append)
        startup.start(engine)
        with new_page(browser, PHONE) as page:
            page.goto(demo.local_url)
            box = page.locator(QUESTION_BOX)
            box.fill("Where does the kangaroo live?")
            box.press("Enter")
            pending = page.locator(".qa-pending")
            expect(pending).to_contain_text("Preparing the index")
            expect(pending).to_contain_text("Reading documents")
            assert not lines  # not "ready" yet
            shot(page, "ws_8_startup_waiting")
            answer = page.locator(BOT).last
            expect(answer.locator(".qa-quote")).to_contain_text("lives in Australia", timeout=60_000)
            expect(page.locator(BOT)).to_have_count(1)  # one question, one answer: no "try again"
            shot(page, "ws_9_startup_answered")
            page.watch.assert_clean()
        deadline = time.monotonic() + 10
        while not lines and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lines == [f"qa: ready at {demo.local_url}"]
    finally:
        demo.close()


def test_ready_line_says_why_when_the_app_cannot_answer():
    class Demo:
        local_url = "http://127.0.0.1:1/"

    startup, lines = Startup(), []
    startup.error = "Model folder 'x' is missing."
    startup.done.set()
    startup.announce(Demo(), lines.append).join(5)
    assert lines == ["qa: the app is up at http://127.0.0.1:1/ but cannot answer: Model folder 'x' is missing."]
    assert Handlers  # the handlers module is the one serving these pages
