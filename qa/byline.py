"""Questions about who wrote the document, and the lines that say so.

"Who wrote this article?", "Who is the author?", "Who is this piece written by?": the question
asks about the document itself, and the answer is its byline ("By Jane Doe") or its author's
note ("Matija Šerić is a geopolitical analyst and journalist from Croatia ..."), which sit in the
first or last few paragraphs. Without this a "who" question about writing takes any sentence
where somebody wrote something ("Fidel Castro later wrote that ...", issue 12).

    asks_author("Who wrote this article?")                        ->  True
    author_note("By Jane Doe")                                    ->  True
    author_note("Jane Doe is a journalist based in Vienna.")      ->  True

Both read words only, the same for every document. In the ranking the note counts as a
definition does for "What is X?" (`retrieval.Weights.form`, orders only): a document with no
byline or note is ranked as before.
"""

from __future__ import annotations

import re

from .definition import bare

#: a byline or author's note sits within this many paragraphs of its document's start or end
#: (the shipped article: the name and the note are its 3rd and 2nd paragraphs from the end)
EDGE_PARAGRAPHS = 5

_DOC = (r"(?:article|text|piece|post|blog\s+post|blog|essay|op-?ed|story|column|report|document|page|paper"
        r"|opinion\s+piece|commentary|analysis|editorial|book)")
_THE_DOC = rf"(?:this|the|that)(?:\s+{_DOC})?"
_WRITER = r"(?:author|authors|writer|writers|columnist|journalist)"
_ASKS = [re.compile(p, re.IGNORECASE) for p in (
    # "Who wrote this article?", "Who wrote this?", "Who has written the piece?"
    rf"^who\s+(?:wrote|writes|has\s+written|had\s+written|penned|authored|is\s+writing)\s+{_THE_DOC}$",
    # "Who is the author?", "Who is the article's author?", "Who's the writer of this post?"
    rf"^who(?:\s+is|\s+was|['’]s|\s+are)\s+(?:the|this)\s+(?:{_DOC}['’]s\s+)?{_WRITER}(?:\s+of\s+{_THE_DOC})?$",
    # "What is the name of the author?", "Name the author of this article"
    rf"^(?:what\s+is\s+the\s+name\s+of|name)\s+the\s+{_WRITER}(?:\s+of\s+{_THE_DOC})?$",
    # "What is the author's name?", "What's the writer's name?"
    rf"^what(?:\s+is|['’]s)\s+the\s+{_WRITER}['’]s\s+name$",
    # "Who is this article by?", "Who is the piece by?"
    rf"^who\s+(?:is|was)\s+{_THE_DOC}\s+by$",
    # "Who is this article written by?", "By whom was this written?"
    rf"^who\s+(?:is|was)\s+{_THE_DOC}\s+(?:written|authored|penned)\s+by$",
    rf"^by\s+whom\s+(?:is|was)\s+{_THE_DOC}\s+(?:written|authored|penned)$",
)]


def asks_author(question: str) -> bool:
    """Does the question ask who wrote the document itself (not who wrote something it
    mentions)?

    >>> asks_author("Who wrote this article?"), asks_author("Who is the author?")
    (True, True)
    >>> asks_author("Who wrote the Communist Manifesto?"), asks_author("Who is the author of Juche?")
    (False, False)
    """
    q = " ".join(bare(question).split())
    return any(a.match(q) for a in _ASKS)


# --- the sentence ----------------------------------------------------------------------------

_WORD = r"[^\W\d_][\w'’.-]*"  # a word starting with a letter; whether it is capitalised is checked apart
_BYLINE = re.compile(rf"^(?i:by|written\s+by|words\s+by|authors?\s*:)\s+(?P<name>{_WORD}(?:\s+{_WORD}){{0,3}})")
_BYLINE_WORDS = 12  # a byline line is short: "By Jane Doe, Vienna correspondent"
_BIO = re.compile(rf"^(?P<name>(?:{_WORD}\s+){{1,3}}{_WORD})\s*(?:\([^)]*\)\s*)?,?"  # a name, perhaps "(born 1970)"
                  r"\s+(?:is|was|has\s+been|works\s+as)\s+(?:a|an)\s+(?P<what>(?:\S+\s+){0,3}\S+)")
_NOT_NAMES = frozenset("the a an this that these those it there".split())  # noqa: SIM905 -- "The United Nations is a ..."
_PROFESSION = re.compile(
    r"\b(?:journalist|writer|author|analyst|editor|columnist|correspondent|reporter|contributor|professor"
    r"|lecturer|researcher|scholar|historian|economist|fellow|commentator|blogger|novelist|scientist"
    r"|expert|specialist|freelancer|freelance|student|doctoral|phd|consultant)s?\b", re.IGNORECASE)


def _a_name(words: str) -> bool:
    """Every word capitalised (any script: "Łukasz Nowak"), none an article or pronoun."""
    ws = words.split()
    return all(w[:1].isupper() for w in ws) and ws[0].lower() not in _NOT_NAMES


def author_note(sentence: str) -> bool:
    """Is the sentence a byline ("By Jane Doe") or an author's note ("Jane Doe is a journalist
    ...": a name, then is / was a ..., with a profession)?

    >>> author_note("Matija Šerić is a geopolitical analyst and journalist from Croatia and writes on foreign policy.")
    True
    >>> author_note("By Jane Doe")
    True
    >>> author_note("Fidel Castro later wrote that Kim Il-sung sent Cuba 100,000 rifles.")
    False
    >>> author_note("Kim Il-sung was a veteran and impeccable fighter.")
    False
    >>> author_note("By then it was over."), author_note("The United Nations is a body of experts.")
    (False, False)
    >>> author_note("Łukasz Nowak is a journalist in Warsaw.")
    True
    """
    text = sentence.strip()
    m = _BYLINE.match(text)
    if m and len(text.split()) <= _BYLINE_WORDS and _a_name(m.group("name").split(",")[0]):
        return True
    m = _BIO.match(text)  # the profession within the first words after "is a": "an analyst and journalist"
    return bool(m) and _a_name(m.group("name")) and bool(_PROFESSION.search(m.group("what")))
