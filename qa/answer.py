"""`Answer` / `Citation`, quote selection, abstention, and rendering (JSON and escaped Markdown).

Every quote is `document.text[start:end]`; rendering checks that once more and refuses to show
a quote that fails (that would be a bug, never something a reader should see).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .chunking import MAX_WINDOW_CHARS, Sentence
from .document import Document


@dataclass(frozen=True)
class Evidence:
    """Why this passage: ranks among all sentences (1 = best) and the question words it contains."""

    dense_rank: int
    bm25_rank: int | None  # None when no question word occurs in the sentence's paragraph
    fused_score: float
    matched_terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Citation:
    document: str
    paragraph: int
    section: str
    quote: str
    start: int
    end: int
    score: float
    title: str = ""
    evidence: Evidence | None = None

    def to_json(self) -> dict:
        out = {"document": self.document, "paragraph": self.paragraph, "section": self.section,
               "quote": self.quote, "start": self.start, "end": self.end, "score": round(self.score, 4)}
        if self.evidence:
            out["evidence"] = asdict(self.evidence) | {"matched_terms": list(self.evidence.matched_terms)}
        return out


@dataclass(frozen=True)
class Answer:
    question: str
    found: bool
    answer: str | None
    citations: tuple[Citation, ...]
    index_version: str
    documents: int = 1  # how many documents the index holds (citations name them when > 1)
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict:
        return {"question": self.question, "found": self.found, "answer": self.answer,
                "citations": [c.to_json() for c in self.citations], "index_version": self.index_version}


# --- quote selection ---------------------------------------------------------------------

# A sentence that leans on the one before it: it opens with a pronoun or a demonstrative ("It
# in turn evolved ...", "Such problems are called ..."), possibly after a connective ("Indeed,
# this ..."), or with a connective alone ("But a storm dispersed the fleet.").
_CONTINUES = re.compile(
    r"^[\"'“‘(]?(?:(?:but|and|indeed|however|thus|hence|so|again|similarly|therefore|yet|also|in turn|in fact"
    r"|for instance|for example|as a result|consequently)\b,?\s*)?"
    r"(?:he|she|it|they|his|her|its|their|this|these|that|those|there|such|him|them)\b"
    r"|^[\"'“‘(]?(?:but|indeed|however|thus|hence|again|similarly|therefore|yet|in turn|in fact|consequently)\b",
    re.IGNORECASE)


def continues(text: str) -> bool:
    """Does this sentence lean on the one before it?

    >>> [continues(t) for t in ("Such problems are called NP-intermediate.", "Indeed, this works.",
    ...                         "But a storm dispersed the fleet.", "Thesis statements differ.")]
    [True, True, True, False]
    """
    return bool(_CONTINUES.match(text))


def quote_span(sentences: Sequence[Sentence], scores: np.ndarray, best: int, margin: float,
               max_sentences: int = 3, self_contained: bool = True) -> tuple[int, int]:
    """Grow the quote from sentence `best` to contiguous neighbours (same paragraph) that score
    within `margin` of it, up to `max_sentences`. With `self_contained` the quote neither starts
    nor stops in the middle of a thought (`continues`): one that would open with "He appointed
    ..." or "But ..." also takes the sentence before it, which says whom or what it means; and
    the sentence right after the quote joins it when it continues it ("... efficient algorithm.
    This hypothesis is called the Cobham-Edmonds thesis."), room permitting. A neighbour joins
    only while the quote stays within chunking.MAX_WINDOW_CHARS (issue 16: no quote is longer).
    Returns (first, last) sentence indices."""
    def same(i: int, lo: int | None = None, hi: int | None = None) -> bool:
        lo, hi = min(i, best if lo is None else lo), max(i, best if hi is None else hi)
        return 0 <= i < len(sentences) and sentences[i].para == sentences[best].para \
            and sentences[i].doc == sentences[best].doc \
            and sentences[hi].end - sentences[lo].start <= MAX_WINDOW_CHARS

    lo = hi = best
    floor = scores[best] - margin
    while hi - lo + 1 < max_sentences:
        cands = [i for i in (lo - 1, hi + 1) if same(i, lo, hi) and scores[i] >= floor]
        if not cands:
            break
        pick = max(cands, key=lambda i: scores[i])
        lo, hi = min(lo, pick), max(hi, pick)
    if not self_contained:
        return lo, hi
    if same(lo - 1, lo, best) and continues(sentences[lo].text):
        if hi - lo + 1 >= max_sentences or not same(lo - 1, lo, hi):
            hi -= 1 if hi > best else 0  # make room, never dropping the best sentence itself
        if hi - lo + 1 < max_sentences and same(lo - 1, lo, hi):
            lo -= 1
    if hi - lo + 1 < max_sentences and same(hi + 1, lo, hi) and continues(sentences[hi + 1].text):
        hi += 1
    return lo, hi


def make_citation(doc: Document, first: Sentence, last: Sentence, score: float, evidence: Evidence | None) -> Citation:
    para = doc.paragraph(first.para)
    return Citation(doc.id, para.number, para.section, doc.text[first.start:last.end], first.start, last.end,
                    float(score), doc.title, evidence)


def verify(citation: Citation, doc: Document) -> bool:
    return doc.text[citation.start:citation.end] == citation.quote


# --- rendering ---------------------------------------------------------------------------

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
    """'¶5 · Historical context' (or 'Normans ¶12 · Legacy' when several documents are indexed)."""
    where = f"¶{c.paragraph}"
    if multi_doc:
        where = f"{_short(c.title or c.document)} {where}"
    return f"{where} · {c.section}" if c.section else where


def _short(title: str, n: int = 40) -> str:
    return title if len(title) <= n else title[: n - 1].rstrip() + "…"


def to_markdown(ans: Answer, docs: dict[str, Document], stale: bool = False) -> str:
    """The chat message: the answer quoted and cited, then supporting quotes (all escaped)."""
    multi = ans.documents > 1
    cites = [c for c in ans.citations if c.document in docs and verify(c, docs[c.document])]
    lines = []
    if stale:
        lines.append("_From a previous index version; ask again for an answer from the current text._\n")
    if ans.found and cites:
        top, rest = cites[0], cites[1:]
        lines.append(f"> {escape_markdown(top.quote)}\n\n— **{escape_markdown(label(top, multi))}**")
        if rest:
            lines.append("\n**Also relevant:**")
            lines += [f"- “{escape_markdown(c.quote)}” — *{escape_markdown(label(c, multi))}*" for c in rest]
    else:
        lines.append("**Not in this document.** I could not find a passage that answers this question.")
        if cites:
            lines.append("\n**Closest passages, but not an answer:**")
            lines += [f"- “{escape_markdown(c.quote)}” — *{escape_markdown(label(c, multi))}*" for c in cites]
    return "\n".join(lines)


def to_text(ans: Answer) -> str:
    """Plain terminal rendering (no escaping needed: nothing interprets it)."""
    multi = ans.documents > 1
    out = []
    if ans.found and ans.citations:
        top = ans.citations[0]
        out += [f"{top.quote}", f"  — {label(top, multi)}"]
        if len(ans.citations) > 1:
            out.append("Also relevant:")
            out += [f"  • {c.quote}  — {label(c, multi)}" for c in ans.citations[1:]]
    else:
        out.append("Not in this document.")
        if ans.citations:
            out.append("Closest passages, but not an answer:")
            out += [f"  • {c.quote}  — {label(c, multi)}" for c in ans.citations]
    return "\n".join(out)


def sources_html(ans: Answer, docs: dict[str, Document]) -> str:
    """The sources panel: each cited paragraph in full, the quoted part highlighted, all escaped."""
    multi = ans.documents > 1
    parts = []
    heading = "Cited passages" if ans.found else "Closest passages (not an answer)"
    parts.append(f"<h3>{heading}</h3>")
    for i, c in enumerate(ans.citations):
        doc = docs.get(c.document)
        if doc is None or not verify(c, doc):
            continue
        p = doc.paragraph(c.paragraph)
        before, quote, after = doc.text[p.start:c.start], doc.text[c.start:c.end], doc.text[c.end:p.end]
        ev = ""
        if c.evidence:
            e = c.evidence
            terms = ", ".join(e.matched_terms) or "none"
            ev = (f"<div class='qa-evidence'>fused score {e.fused_score:.3f} · dense rank {e.dense_rank} · "
                  f"BM25 rank {e.bm25_rank if e.bm25_rank else '–'} · matched terms: {html.escape(terms)}</div>")
        open_attr = " open" if i == 0 else ""
        parts.append(
            f"<details class='qa-source'{open_attr}><summary><b>{html.escape(label(c, multi))}</b></summary>"
            f"<p>{html.escape(before)}<mark>{html.escape(quote)}</mark>{html.escape(after)}</p>{ev}</details>")
    if len(parts) == 1:
        parts.append("<p>No passages.</p>")
    return "\n".join(parts)
