"""Hostile documents and questions (issue 5).

A document full of markup that would run scripts, load remote images, restyle the page or
render as tables and maths is indexed with the real model and questioned in a real headless
Chromium: no script runs (no dialog, no flag set by the injected code), no request leaves
loopback, and the text is shown literally. Questions that are empty, whitespace, 100 KB long,
full of control characters or broken surrogates get a friendly message through the handlers
and the HTTP API (never a traceback), and the next question still works.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from conftest import BOT, QUESTION_BOX, SOURCES, USER, ask, free_port, running_app, shot
from gradio_client import Client
from playwright.sync_api import expect

from qa.config import Settings
from qa.engine import Engine
from qa.render import escape_markdown, unescape_markdown
from qa.ui import GENERIC_ERROR, Handlers

# Each payload, if it ever ran, would set window.__pwned and open a dialog.
HOSTILE = """# Hostile <img src=x onerror="window.__pwned=1;alert('title')"> notes

## Scripts <script>window.__pwned=1;alert('section')</script> and tags

The zebra paragraph contains <script>window.__pwned=1;alert('zebra')</script> written inside it.

The giraffe paragraph hides an image tag <img src=x onerror="window.__pwned=1;alert('giraffe')"> in its text.

The hippo paragraph embeds a frame <iframe srcdoc="<script>parent.__pwned=1;parent.alert('hippo')</script>"></iframe> in the middle.

The llama paragraph links to [click the llama](javascript:window.__pwned=1;alert('llama')) and to <a href="javascript:window.__pwned=1;alert('llama2')">the other llama</a>.

The walrus paragraph shows a remote picture ![walrus](http://example.invalid/x.png) and <img src="http://example.invalid/y.png"> from far away, see www.example.invalid/w.png or https://example.invalid/v.png or write to walrus@example.invalid.

The otter paragraph carries a style block <style>body { display: none !important; }</style> that would hide the page.

The parrot paragraph has an svg <svg onload="window.__pwned=1;alert('parrot')"></svg> and a <details open ontoggle="window.__pwned=1;alert('parrot2')">details</details> element.

## Tables and maths

| Animal | Sound |
|--------|-------|
| cow    | moo   |

The formula paragraph says $$x^2 + y^2 = z^2$$ and also $e=mc^2$ inline about the pythagoras theorem.

The heading paragraph writes ### not a heading and **not bold** and `not code` about the kiwi bird.
"""

QUESTIONS = [
    "What does the zebra paragraph contain written inside it?",
    "What image tag does the giraffe paragraph hide?",
    "What frame does the hippo paragraph embed?",
    "Where does the llama paragraph link to?",
    "What remote picture does the walrus paragraph show?",
    "What style block does the otter paragraph carry?",
    "What does the parrot paragraph have, an svg?",
    "What sound does the cow make in the table?",
    "What does the formula paragraph say about the pythagoras theorem?",
    "What does the heading paragraph write about the kiwi bird?",
]

# What must be visible, character for character (whitespace collapsed), somewhere on the page.
LITERAL = [
    "<script>window.__pwned=1;alert('zebra')</script>",
    "<img src=x onerror=\"window.__pwned=1;alert('giraffe')\">",
    "<iframe srcdoc=\"<script>parent.__pwned=1;parent.alert('hippo')</script>\"></iframe>",
    "[click the llama](javascript:window.__pwned=1;alert('llama'))",
    "<a href=\"javascript:window.__pwned=1;alert('llama2')\">the other llama</a>",
    "![walrus](http://example.invalid/x.png)",
    "<img src=\"http://example.invalid/y.png\">",
    "see www.example.invalid/w.png or https://example.invalid/v.png or write to walrus@example.invalid.",
    "<style>body { display: none !important; }</style>",
    "<svg onload=\"window.__pwned=1;alert('parrot')\"></svg>",
    "| Animal | Sound | |--------|-------| | cow | moo |",
    "$$x^2 + y^2 = z^2$$ and also $e=mc^2$",
    "### not a heading and **not bold** and `not code`",
]

# Elements the document's text must never become, inside the chat and the sources panel.
FORBIDDEN = "script, img, iframe, svg, style, table, math, .katex, a[href^='javascript'], [onerror], [onload], [ontoggle]"


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A real-model index of the hostile document, served on loopback."""
    root = tmp_path_factory.mktemp("hostile")
    source = root / "source"
    source.mkdir()
    (source / "hostile.md").write_text(HOSTILE, "utf-8")
    settings = Settings(index_dir=root / "index", source_dir=source, port=free_port())
    engine = Engine(settings)
    engine.library.build([source / "hostile.md"])
    with running_app(engine, settings) as url:
        yield engine, url


# --- the browser ---------------------------------------------------------------------------------



@pytest.mark.browser
def test_hostile_document_is_shown_literally_and_nothing_runs_or_loads(hostile, page):
    _, url = hostile
    page.goto(url)
    expect(page.locator(QUESTION_BOX)).to_be_visible()
    expect(page.get_by_text("1 document: Hostile <img src=x")).to_be_visible()  # the title, literally
    chat: list[str] = []  # the answers (escaped Markdown) and the sources panel (escaped HTML)
    panel: list[str] = []
    for question in QUESTIONS:
        answer = ask(page, question)
        shown = page.locator(SOURCES).locator("section:not([hidden])")  # this answer's sources
        expect(shown.locator("details.qa-source").first).to_be_visible()
        chat.append(answer.inner_text())
        shown.evaluate("el => el.querySelectorAll('details').forEach(d => { d.open = true; })")
        panel.append(shown.inner_text())  # every cited paragraph, as displayed
        assert page.locator(f"{BOT} :is({FORBIDDEN}), {USER} :is({FORBIDDEN}), "
                            f"{SOURCES} :is({FORBIDDEN})").count() == 0
        hrefs = page.locator(f"{BOT} a, {SOURCES} a").evaluate_all("els => els.map(a => a.getAttribute('href'))")
        assert hrefs and all(h.startswith("?doc=") for h in hrefs)  # only the ¶ links: no URL in the text became one
    shot(page, "08_hostile_document")
    for where, seen in (("chat", chat), ("sources panel", panel)):
        text = flat("\n".join(seen))
        missing = [s for s in LITERAL if flat(s) not in text]
        assert not missing, f"not shown literally in the {where}: {missing}"
        assert "Scripts <script>window.__pwned=1;alert('section')</script> and tags" in text  # a section label
    page.get_by_role("tab", name="Documents").click()
    expect(page.locator("table.qa-docs")).to_contain_text("Hostile <img src=x onerror=")
    shot(page, "09_hostile_documents_tab")
    page.get_by_role("tab", name="Chat").click()

    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("getComputedStyle(document.body).display") != "none"
    assert page.locator("iframe").count() == 0
    page.watch.assert_clean()


@pytest.mark.browser
def test_hostile_questions_in_the_browser(hostile, page):
    engine, url = hostile
    page.goto(url)
    expect(page.locator(QUESTION_BOX)).to_be_visible()
    questions = [
        "What does <script>window.__pwned=1;alert('q')</script> do in the zebra paragraph?",
        "Is ![q](http://example.invalid/q.png) or <img src=\"http://example.invalid/q2.png\"> in the walrus paragraph?",
        "<img src=x onerror=\"window.__pwned=1;alert('q3')\"> giraffe?",
    ]
    for q in questions:
        answer = ask(page, q)
        expect(answer).not_to_contain_text("Something went wrong")
        expect(page.locator(USER).last).to_contain_text(flat(q))  # the question, shown literally
    assert page.locator(f"{USER} :is({FORBIDDEN}), {BOT} :is({FORBIDDEN})").count() == 0
    page.locator(USER).last.scroll_into_view_if_needed()
    shot(page, "10_hostile_questions")

    box = page.locator(QUESTION_BOX)
    box.fill("x" * 100_000)  # the box stops at the limit + 1, so the person is told the limit
    assert len(box.input_value()) == engine.settings.max_question_chars + 1
    box.press("Enter")
    expect(page.locator(BOT).last).to_contain_text("the limit is 2000")
    expect(box).to_have_value("")

    before = page.locator(BOT).count()  # a lone surrogate and control characters, as a script could send
    box.evaluate("el => { el.value = String.fromCharCode(0xD800) + '\\u0000\\u0007 hippo frame?' + "
                 "String.fromCharCode(0xDFFF); el.dispatchEvent(new Event('input', {bubbles: true})); }")
    box.press("Enter")
    expect(page.locator(BOT)).to_have_count(before + 1)
    expect(page.locator(BOT).last).not_to_contain_text("Something went wrong")
    expect(page.locator(BOT).last).to_contain_text("hippo")

    before = page.locator(BOT).count()
    box.fill("   ")
    box.press("Enter")  # an empty question adds nothing (issue 14)
    page.wait_for_timeout(1000)
    expect(page.locator(BOT)).to_have_count(before)
    after = ask(page, "What does the zebra paragraph contain written inside it?")  # still works
    expect(after).to_contain_text("<script>window.__pwned=1;alert('zebra')</script>")
    shot(page, "11_bad_questions_then_an_answer")
    assert page.evaluate("window.__pwned") is None
    page.watch.assert_clean()


# --- handlers and HTTP API --------------------------------------------------------------------------

BAD = {
    "empty": ("", "Please type a question."),
    "whitespace": ("  \t\n \u3000 ", "Please type a question."),
    "100 KB": ("x" * 100_000, "the limit is 2000"),
    "control only": ("\x00\x01\x02\x1b\x7f\u200b\u202e", "Please type a question."),
    "control mixed": ("\x00Who\x1b is \x07Matija\x00 Šerić?\x7f", None),  # cleaned, then answered
    "lone surrogate": ("\ud800", None),
    "surrogates mixed": ("\udfff Who is \ud800 Matija Šerić?", None),
    "100 KB of surrogates": ("\ud800" * 100_000, "the limit is 2000"),
}
NORMAL = ("When did Che Guevara visit Pyongyang?", "¶4")


def check_friendly(md: str, data: dict, expected: str | None, max_chars: int) -> None:
    """One bad question's /ask Markdown and /answer_json object."""
    assert isinstance(md, str) and md and md != GENERIC_ERROR and "Traceback" not in md
    assert isinstance(data, dict) and "Traceback" not in json.dumps(data)
    if expected is not None:
        assert expected in md and expected in data["error"]
    else:
        assert "error" not in data and {"found", "citations"} <= set(data)
    question = data["question"]
    assert len(question) <= max_chars  # never the 100 KB echoed back
    question.encode("utf-8")  # valid text: no lone surrogates in the reply


@pytest.mark.parametrize("name", list(BAD))
def test_bad_questions_get_a_friendly_message_from_the_handlers(fake_engine, name):
    question, expected = BAD[name]
    h = Handlers(fake_engine, fake_engine.settings)
    check_friendly(h.api_ask(question), h.api_answer_json(question), expected, fake_engine.settings.max_question_chars)
    turn = h.turn(question, [])  # the web chat: an empty question adds nothing, others a turn
    if expected == "Please type a question.":
        assert turn is None
    else:
        assert turn.message != GENERIC_ERROR and len(turn.question) <= fake_engine.settings.max_question_chars
        h.conversation([turn]).encode("utf-8")
        if expected:
            assert expected in turn.message and turn.answer is None
    # the conversation goes on: the bad turn is history now
    nxt = h.turn(NORMAL[0], [turn] if turn else [])
    assert NORMAL[1] in h.conversation([nxt])
    assert NORMAL[1] in h.api_ask(NORMAL[0], [question])


def test_the_question_is_echoed_literally_and_read_back_as_typed(fake_engine):
    """The chat shows the person's question escaped like document text (a typed image or URL must
    not load or link), and the next turn reads the question back exactly as typed."""
    question = "What is <b>x</b> *y* `z` ![i](http://example.invalid/i.png) & \\ \\* &lt; in www.x.invalid?"
    h = Handlers(fake_engine, fake_engine.settings)
    turn = h.turn(question, [])
    shown = h.conversation([turn])
    assert "<b>" not in shown and "<img" not in shown and "href='http" not in shown and "&lt;b&gt;" in shown
    assert turn.question == question  # read back exactly as typed (the next turn's history)
    for text in ["", "plain", "a\\b", "\\\\*", "&amp; &lt;b&gt; &#58;", "<>&\"'`*_{}[]()#+-.!|~$:", "x:y//z"]:
        assert unescape_markdown(escape_markdown(text)) == text


def _call(base: str, api: str, question: str, history: list | None = None):
    """One call through Gradio's HTTP API with the question JSON-escaped (\\ud800 survives,
    which gradio_client cannot send: it fails to UTF-8-encode a lone surrogate itself)."""
    body = json.dumps({"data": [question, history or []]}, ensure_ascii=True)
    with httpx.Client(base_url=base, timeout=30, trust_env=False) as http:
        r = http.post(f"/gradio_api/call/{api}", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
        stream = http.get(f"/gradio_api/call/{api}/{r.json()['event_id']}").text
    events = re.findall(r"^event: (\w+)\ndata: (.*)$", stream, re.MULTILINE)
    assert events and events[-1][0] == "complete", stream[:500]
    return json.loads(events[-1][1])[0]


def test_bad_questions_over_http_get_a_friendly_message(real_index, tmp_path):
    settings = real_index.with_(source_dir=tmp_path, port=free_port())
    with running_app(Engine(settings), settings) as url:
        client = Client(url, verbose=False)
        for name, (question, expected) in BAD.items():
            surrogates = any(0xD800 <= ord(c) <= 0xDFFF for c in question[:100])
            if surrogates:  # gradio_client cannot send these; raw HTTP can
                with pytest.raises(UnicodeEncodeError):
                    client.predict(question, api_name="/ask")
                md, data = _call(url, "ask", question), _call(url, "answer_json", question)
            else:
                md = client.predict(question, [], api_name="/ask")
                data = client.predict(question, [], api_name="/answer_json")
            check_friendly(md, data, expected, settings.max_question_chars)
            follow = client.predict(NORMAL[0], [question] if not surrogates else [], api_name="/answer_json")
            assert follow["found"] and follow["citations"][0]["paragraph"] == 4, name
        assert NORMAL[1] in _call(url, "ask", NORMAL[0], ["\ud800", "\x00"])
