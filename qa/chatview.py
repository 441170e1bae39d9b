"""The web chat as HTML: one `ChatTurn` per question, the answer first (its quote, a ¶ link that
opens the reader, "Copy citation"), supporting passages smaller and mostly collapsed, and each
answer's sources (the cited paragraphs, the quote highlighted, "Why this passage?").

Every piece of document text and every question goes through `html.escape`; links carry only
ids and numbers (`reader_href`). The browser side (qa/webassets.py) opens links in the reader,
copies citations and shows the selected answer's sources.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from .answer import Answer, Citation
from .render import caution, copy_citation

SUPPORT_SHOWN = 2  # supporting passages shown before "More passages" (issue 14: one or two)


@dataclass(frozen=True)
class ChatTurn:
    """One question of the web chat and what came back: an answer, or a message saying why not."""

    question: str
    answer: Answer | None = None
    message: str | None = None
    within: tuple[str, ...] = ()  # titles of the documents the question was restricted to ("ask within")


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def reader_href(c: Citation) -> str:
    """The shareable address of a citation in the reader: '?doc=ID&p=N&s=START&e=END'."""
    return "?" + urlencode({"doc": c.document, "p": c.paragraph, "s": c.start, "e": c.end})


def where(c: Citation, multi: bool) -> str:
    """'¶4 · Historical context', '¶12 · p. 4 · Methods'; with several documents the full title first."""
    out = f"¶{c.paragraph}" + (f" · p. {c.page}" if c.page is not None else "")
    out = f"{out} · {c.section}" if c.section else out
    return f"{c.title or c.document}, {out}" if multi else out


def cite_link(c: Citation, multi: bool, turn: int, rank: int) -> str:
    """The ¶ label as a link to the reader (its full text also as a tooltip)."""
    label = where(c, multi)
    return (f"<a class='qa-open' href='{esc(reader_href(c))}' data-turn='{turn}' data-rank='{rank}' "
            f"title='{esc('Open in the document: ' + (c.title or c.document) + ', ' + where(c, False))}'>"
            f"{esc(label)}</a>")


def copy_button(c: Citation) -> str:
    return (f"<button type='button' class='qa-copy' data-copy='{esc(copy_citation(c))}'>Copy citation</button>"
            "<span class='qa-copied' role='status' aria-live='polite'></span>")


def why(c: Citation) -> str:
    """'Why this passage?': the engine's reasons in plain words, behind a disclosure."""
    e = c.evidence
    if e is None:
        return ""
    words = ", ".join(e.matched_terms)
    shared = f"It shares these words with the question: {words}." if words else \
        "It shares no important word with the question; it was chosen for its meaning."
    lexical = f"{_ordinal(e.bm25_rank)} by shared words" if e.bm25_rank else "not ranked by shared words"
    return (f"<details class='qa-why'><summary>Why this passage?</summary><p>{esc(shared)} Among all "
            f"passages it is {_ordinal(e.dense_rank)} closest in meaning and {lexical} "
            f"(combined score {e.fused_score:.2f}).</p></details>")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _support_item(c: Citation, multi: bool, turn: int, rank: int) -> str:
    return f"<li><q>{esc(c.quote)}</q> — {cite_link(c, multi, turn, rank)}</li>"


def turn_html(i: int, t: ChatTurn, current: str | None, selected: bool) -> str:
    """One question and its answer (or message); `current` is the served index version."""
    q = f"<h2 class='qa-q' id='qa-q-{i}'><span class='qa-sr'>Question: </span>{esc(t.question)}</h2>"
    cls = "qa-turn qa-selected" if selected else "qa-turn"
    head = f"<article class='{cls}' data-turn='{i}' aria-labelledby='qa-q-{i}'>{q}"
    a = t.answer
    if a is None:
        return f"{head}<div class='qa-answer qa-message' data-testid='bot'><p>{esc(t.message or '')}</p></div></article>"
    multi = a.documents > 1
    cites = [c for c in a.citations if c.verified]
    body = []
    if current and a.index_version != current:
        body.append(f"<p class='qa-stale'>From a previous index version ({esc(a.index_version)}); "
                    "ask again for an answer from the current text.</p>")
    if t.within:
        body.append(f"<p class='qa-within'>Asked within: {esc('; '.join(t.within))}</p>")
    inline = f"<div class='qa-inline-sources'>{sources_html(a, i, inline=True)}</div>"  # phones: right after the answer
    if a.found and cites:
        top, rest = cites[0], cites[1:]
        warn = caution(a)
        if warn:
            body.append(f"<p class='qa-low'>{esc(warn)}</p>")
        body.append(f"<blockquote class='qa-quote'>{esc(top.quote)}</blockquote>"
                    f"<p class='qa-cite'>— {cite_link(top, multi, i, 0)} {copy_button(top)}</p>{inline}")
        heading = "Also relevant"
    else:
        body.append("<p class='qa-refusal'><strong>Not in this document.</strong> "
                    f"I could not find a passage that answers this question.</p>{inline}")
        rest, heading = cites, "Closest passages, but not an answer"
    if rest:
        first = rest[:SUPPORT_SHOWN]
        more = rest[SUPPORT_SHOWN:]
        offset = len(cites) - len(rest)
        items = "".join(_support_item(c, multi, i, offset + j) for j, c in enumerate(first))
        extra = ""
        if more:
            hidden = "".join(_support_item(c, multi, i, offset + SUPPORT_SHOWN + j) for j, c in enumerate(more))
            extra = (f"<details class='qa-more'><summary>More passages ({len(more)})</summary>"
                     f"<ul>{hidden}</ul></details>")
        body.append(f"<div class='qa-support'><h3>{heading}</h3><ul>{items}</ul>{extra}</div>")
    body.append(f"<button type='button' class='qa-show' data-turn='{i}' aria-controls='qa-sources-panel'>"
                "Show sources</button>")
    return f"{head}<div class='qa-answer' data-testid='bot'>{''.join(body)}</div></article>"


def conversation_html(turns: Sequence[ChatTurn], current: str | None, pending: str | None = None,
                      placeholder: str = "") -> str:
    """The whole conversation, oldest first; `pending` is a question still waiting (start-up)."""
    if not turns and pending is None:
        return f"<div class='qa-conv qa-empty'><p>{esc(placeholder)}</p></div>"
    last = len(turns) - 1
    parts = [turn_html(i, t, current, i == last) for i, t in enumerate(turns)]
    if pending is not None:
        parts.append(pending)
    return f"<div class='qa-conv'>{''.join(parts)}</div>"


def pending_html(i: int, question: str, fraction: float | None, text: str) -> str:
    """A question waiting for the index: what is happening, with a progress bar."""
    bar = "" if fraction is None else \
        f"<progress max='100' value='{round(100 * fraction)}' aria-label='Index build progress'></progress> "
    return (f"<article class='qa-turn qa-selected' data-turn='{i}' aria-labelledby='qa-q-{i}' aria-busy='true'>"
            f"<h2 class='qa-q' id='qa-q-{i}'><span class='qa-sr'>Question: </span>{esc(question)}</h2>"
            f"<div class='qa-answer qa-pending' data-testid='bot'><p role='status'>{bar}{esc(text)}</p></div></article>")


def sources_html(a: Answer, turn: int = 0, inline: bool = False) -> str:
    """One answer's sources: each cited paragraph in full, the quote highlighted, a link to the
    reader and "Why this passage?" (the first open, the others collapsed)."""
    multi = a.documents > 1
    heading = "Cited passages" if a.found else "Closest passages (not an answer)"
    tag = "h4" if inline else "h3"
    parts = [f"<{tag} class='qa-sources-h'>{heading}</{tag}>"]
    for rank, c in enumerate(a.citations):
        if not c.verified:
            continue
        lo, hi = c.start - c.context_start, c.end - c.context_start
        before, quote, after = c.context[:lo], c.context[lo:hi], c.context[hi:]
        opened = " open" if rank == 0 else ""
        parts.append(
            f"<details class='qa-source'{opened}><summary>{esc(where(c, multi))}</summary>"
            f"<p>{esc(before)}<mark>{esc(quote)}</mark>{esc(after)}</p>"
            f"<p class='qa-source-links'><a class='qa-open' href='{esc(reader_href(c))}' data-turn='{turn}' "
            f"data-rank='{rank}'>Read ¶{c.paragraph} in the document</a></p>{why(c)}</details>")
    if len(parts) == 1:
        parts.append("<p>No passages.</p>")
    return "".join(parts)


def sources_panel(turns: Sequence[ChatTurn], placeholder: str) -> str:
    """The side panel: the sources of the last answer. Each answer also carries its own sources
    (`turn_html`, shown inline on a phone); selecting an earlier answer copies them here in the
    browser (webassets.CLICKS), so the page never holds every answer's sources twice."""
    shown = [(i, t) for i, t in enumerate(turns) if t.answer is not None]
    if not shown:
        return f"<div id='qa-sources-panel'><p class='qa-hint'>{esc(placeholder)}</p></div>"
    i, t = shown[-1]
    return (f"<div id='qa-sources-panel'><section class='qa-turn-sources' data-turn='{i}' "
            f"aria-label='Sources of question {i + 1}'><p class='qa-for'>Sources for: <q>{esc(t.question)}</q></p>"
            f"{sources_html(t.answer, i)}</section></div>")
