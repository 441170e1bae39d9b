"""Rendering: an `Answer` as plain text (terminal, `/ask`, copy), exports of a conversation,
Markdown escaping for messages, and a build report as one sentence, the same in the CLI and the
web app (the web chat's HTML is `qa/chatview.py`).

Document text is shown literally everywhere: Markdown and HTML are escaped, and terminal text
has control characters made visible (`printable`), so a document cannot move the cursor, clear
the screen or retitle the window. A quote that is not exactly its paragraph's text is not shown
(that would be a bug, never something a reader should see).
"""

from __future__ import annotations

import html
import re

from .answer import Answer, Citation
from .confidence import LOW
from .records import BuildReport

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>$<&])")


def escape_markdown(text: str) -> str:
    """Document text -> Markdown that shows it literally: HTML escaped, Markdown syntax escaped,
    and ':' as an entity so that no URL is auto-linked (an autolink would show the backslashes).

    >>> escape_markdown("<b>x</b> *y* $z$ http://a")
    '&lt;b&gt;x&lt;/b&gt; \\\\*y\\\\* \\\\$z\\\\$ http&#58;//a'
    """
    text = " ".join(text.split())
    out = []
    for ch in text:
        if ch in "<>&\"'":
            out.append(html.escape(ch))
        elif ch == ":":
            out.append("&#58;")
        elif _MD_SPECIAL.match(ch):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


_MD_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~>$<&])")


def unescape_markdown(text: str) -> str:
    """The inverse of `escape_markdown` (up to its whitespace collapsing).

    >>> unescape_markdown(escape_markdown("<b>x</b> *y* $z$ &lt; \\\\"))
    '<b>x</b> *y* $z$ &lt; \\\\'
    """
    return html.unescape(_MD_ESCAPED.sub(r"\1", text))


def label(c: Citation, multi_doc: bool) -> str:
    """'¶5 · Historical context', '¶12 · p. 4 · Methods' for a paged document (or 'Normans ¶12 ·
    Legacy' when several documents are indexed)."""
    where = f"¶{c.paragraph}" + (f" · p. {c.page}" if c.page is not None else "")
    if multi_doc:
        where = f"{_short(c.title or c.document)} {where}"
    return f"{where} · {c.section}" if c.section else where


def _short(title: str, n: int = 40) -> str:
    return title if len(title) <= n else title[: n - 1].rstrip() + "…"


def caution(ans: Answer) -> str | None:
    """What a found answer of low confidence says above its quote (`confidence.LOW`), else None.

    >>> caution(Answer("q", True, "a", (), "v1", confidence=0.07))
    'Low confidence (7%): this passage may not answer the question. Check it in the source.'
    >>> caution(Answer("q", True, "a", (), "v1", confidence=0.6)) is None
    True
    """
    if not ans.found or ans.confidence is None or ans.confidence >= LOW:
        return None
    return f"Low confidence ({ans.confidence:.0%}): this passage may not answer the question. Check it in the source."


def to_text(ans: Answer) -> str:
    """Plain terminal rendering, control characters made visible (`printable`)."""
    multi = ans.documents > 1
    out = []
    if ans.found and ans.citations:
        top = ans.citations[0]
        warn = caution(ans)
        out += ([warn] if warn else []) + [f"{top.quote}", f"  — {label(top, multi)}"]
        if len(ans.citations) > 1:
            out.append("Also relevant:")
            out += [f"  • {_hang(c.quote)}  — {label(c, multi)}" for c in ans.citations[1:]]
    else:
        out.append("Not in this document.")
        if ans.citations:
            out.append("Closest passages, but not an answer:")
            out += [f"  • {_hang(c.quote)}  — {label(c, multi)}" for c in ans.citations]
    return printable("\n".join(out))


def _hang(quote: str) -> str:
    """A quote's own line breaks (a hard-wrapped text file's) indented under its bullet, so each
    supporting quote reads as one item, not as lines at the margin mixed with the next one.

    >>> print("  • " + _hang("Access to a\\nnetwork may be denied."))
      • Access to a
        network may be denied.
    """
    return quote.replace("\n", "\n    ")


# C0 controls except tab and newline (so CR, which overwrites a line, too), DEL, C1 controls
# (0x80-0x9f; 0x9b is a one-byte CSI), and the bidi controls that reorder what is shown
# ("Trojan Source"). Zero-width joiners are left alone: emoji and several scripts need them.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _show(m: re.Match) -> str:
    ch = m.group()
    code = ord(ch)
    if code == 0x1B:
        return "␛"  # the commonest: ESC of an ANSI/OSC sequence, shown as U+241B
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control or invisible formatting character made visible (newline and tab kept).

    >>> printable("ok\\x1b[2J\\x1b]0;pwned\\x07 \\u202eevil\\r\\nnext\\tline")
    'ok␛[2J␛]0;pwned\\\\x07 \\\\u202eevil\\\\x0d\\nnext\\tline'
    """
    if not isinstance(text, str):
        text = str(text)
    return _UNSAFE.sub(_show, text)


def count(n: int, one: str, many: str | None = None) -> str:
    """'1 document', '2 documents'."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def report_sentence(r: BuildReport, what: str) -> str:
    """One sentence for a finished build: 'Replaced. Now serving version v..: 2 documents, ...'."""
    return (f"{what} Now serving version {r.version}: {count(r.documents, 'document')}, "
            f"{count(r.paragraphs, 'paragraph')}, {count(r.chunks, 'chunk')} "
            f"({count(r.encoded, 'passage')} embedded, {r.reused} reused) in {r.seconds:.1f} s.")


# --- the web chat: copy and export ----------------------------------------------------------

def copy_citation(c: Citation) -> str:
    """What "Copy citation" puts on the clipboard: “quote” — Title, ¶N (Section), plain text.

    >>> copy_citation(Citation("d", 4, "History", "He came.", 0, 8, 1.0, "The Alliance"))
    '“He came.” — The Alliance, ¶4 (History)'
    """
    return f"“{' '.join(c.quote.split())}” — {cited_where(c)}"


def cited_where(c: Citation) -> str:
    """Where a citation points, as copied and exported: Title, ¶N[, p. P][ (Section)].

    >>> cited_where(Citation("d", 4, "History", "He came — and left.", 0, 19, 1.0, "The Alliance"))
    'The Alliance, ¶4 (History)'
    """
    where = f"{c.title or c.document}, ¶{c.paragraph}" + (f", p. {c.page}" if c.page is not None else "")
    return where + (f" ({c.section})" if c.section else "")


_MD_FILE_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~$&])")


def _md(text: str) -> str:
    """Text for a Markdown file: whitespace collapsed, the characters that would format escaped
    with a backslash (readable as plain text too).

    >>> _md("a *b* <i>")
    'a \\\\*b\\\\* \\\\<i\\\\>'
    """
    return _MD_FILE_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def export_markdown(turns, exported: str) -> str:
    """The conversation as a Markdown file: per question the answer quoted (or why there is
    none), its citations and the index version. `turns` hold `.question`, `.answer`, `.message`."""
    out = [f"# Conversation exported {exported}", ""]
    for t in turns:
        out += [f"## {_md(t.question)}", ""]
        a = t.answer
        if a is None:
            out += [_md(t.message or ""), ""]
            continue
        cites = [c for c in a.citations if c.verified]
        if a.found and cites:
            warn = caution(a)
            out += ([f"_{_md(warn)}_", ""] if warn else []) + [f"> {_md(cites[0].quote)}", "",
                                                               f"— {_md(cited_where(cites[0]))}", ""]
            rest, heading = cites[1:], "Also relevant"
        else:
            out += ["**Not in this document.**", ""]
            rest, heading = cites, "Closest passages, but not an answer"
        if rest:
            out += [f"{heading}:", ""] + [f"- {_md(copy_citation(c))}" for c in rest] + [""]
        out += [f"_Index version {a.index_version}_", ""]
    return "\n".join(out)


def export_json(turns, exported: str) -> dict:
    """The conversation as JSON: {"exported", "turns": [{"question", "answer": <the JSON answer
    of docs/design.md §4, with its citations and index version> | null, "message"}]}."""
    return {"exported": exported,
            "turns": [{"question": t.question, "answer": None if t.answer is None else _answer_json(t.answer),
                       "message": t.message} for t in turns]}


def _answer_json(a: Answer) -> dict:
    out = a.to_json()
    for c, j in zip(a.citations, out["citations"], strict=True):
        j["title"] = c.title
    return out
