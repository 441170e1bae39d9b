"""Definition questions and the sentences that define their term.

"What is the Corresponding Source?", "What does 'Contributor' mean?", "Define system user":
the question asks for a term's definition, and the sentence that gives it names the term as
its subject before a defining verb ('The "Corresponding Source" for a work ... means all the
source code ...'; '"Contributor" shall mean Licensor and ...'; 'System users are ...'), or as a
glossary line ("Magic rule: ..."), or names it last ("... is called a system user"). A sentence
that merely uses the term ("You may convey the Corresponding Source ...") does neither.

    term("What is the Corresponding Source?")  ->  Term(words=('corresponding', 'source'), head=...)
    defines(sentence, term)                      ->  True / False

Both read words only (no parser): simple, and the same for every document. Whether and how much
this counts in the ranking is `retrieval.Weights.form`, fitted held out by set
(tools/fit_defines.py; docs/ranking.md, "Definition questions").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .lexical import COMPOUND, fold, tokenize

# --- the question ----------------------------------------------------------------------------

_ASKS = [re.compile(p, re.IGNORECASE) for p in (
    r"^what\s+(?:is|are|'s)\s+meant\s+by\s+(?P<t>.+)$",
    r"^what\s+do(?:es)?\s+(?:you|they|we|it)\s+mean\s+by\s+(?P<t>.+)$",
    r"^what\s+(?:is|are|'s)\s+the\s+(?:meaning|definition)\s+of\s+(?P<t>.+)$",
    r"^what\s+(?:does|do)\s+(?P<t>.+?)\s+(?:mean|stand\s+for)$",
    r"^(?:define|definition\s+of|meaning\s+of)\s+(?P<t>.+)$",
    r"^what(?:\s+(?:is|are)|['’]s)\s+(?P<t>.+)$",
)]
_OPEN = 5  # the plain "What is X?" form: X at most this many words (a noun phrase, not a clause)
_DETERMINERS = frozenset("a an the your our their its his her my this these those such each every any".split())  # noqa: SIM905
_PREPOSITIONS = frozenset("of for in on at to from with by about under over between into as".split())  # noqa: SIM905
# "What is X?" where X is not a thing to define: a pronoun (a follow-up), a clause ("What is
# included in ...", "What is understood to be ..."), or a request for a name ("What is the term for")
_NOT_TERMS = frozenset("it this that these those they them he she there here".split())  # noqa: SIM905
_CLAUSE = frozenset("that which who whom whose when where why how what not if than so about "  # noqa: SIM905
                    "i you we he she they it".split())  # a clause ("the restrictions I face") or "what is good about"
_NAME_ASKS = frozenset("term name word phrase title".split())  # noqa: SIM905


@dataclass(frozen=True)
class Term:
    """The term a definition question asks about: its words as written (lower case, accents
    off) and the stems of its head, the content words before any preposition ("capital" of
    "capital of Australia"), which a defining sentence must name as its subject."""

    words: tuple[str, ...]
    head: frozenset[str]
    stems: frozenset[str]  # every content word's stem: all must be named
    size: int  # how many words the head has


def term(question: str) -> Term | None:
    """The term a definition question asks about, or None for any other question.

    >>> term("What is the Corresponding Source?").words
    ('corresponding', 'source')
    >>> sorted(term("What does 'Contributor' mean?").head)
    ['contributor']
    >>> term("What is included in the General References section?") is None
    True
    """
    q = bare(question)
    for i, ask in enumerate(_ASKS):
        m = ask.match(q)
        if m:
            return _term(m.group("t"), open_form=i == len(_ASKS) - 1)
    return None


def bare(question: str) -> str:
    """The question without a conversational opener ("and", "so", "ok, ...") or its closing
    punctuation: what a question's form is read from.

    >>> bare("Ok, what is a system user?")
    'what is a system user'
    """
    return re.sub(r"^(and|so|but|then|ok|okay)[,\s]+", "", question.strip(), flags=re.IGNORECASE).rstrip(" ?.!")


def _term(text: str, open_form: bool) -> Term | None:
    ws = _words(text)
    while ws and ws[0] in _DETERMINERS:
        ws = ws[1:]
    if not ws or ws[-1] in _PREPOSITIONS or ws[0] in _NOT_TERMS or any(w in _CLAUSE for w in ws):
        return None
    if open_form and (len(ws) > _OPEN or ws[0] in _NAME_ASKS or _participle(ws)):
        return None  # "What is involved in ...", "What is the name of ...", a long clause
    cut = next((i for i, w in enumerate(ws) if w in _PREPOSITIONS), len(ws))
    head = _stems(ws[:cut])
    return Term(tuple(ws), head, _stems(ws), cut) if head else None


def _participle(ws: tuple[str, ...]) -> bool:
    """'included in ...', 'understood to be ...': a verb, not a term ('randomized algorithms' is one)."""
    return (ws[0].endswith("ed") or ws[0] in _PARTICIPLES) and (len(ws) == 1 or ws[1] in _PREPOSITIONS)


_PARTICIPLES = frozenset("understood known done made meant given taken seen shown found thought read run built "  # noqa: SIM905
                         "kept held sent set put written chosen".split())


# --- the sentence ----------------------------------------------------------------------------

_SUBJECT = 12  # a defining sentence's subject (before its verb, after a determiner): at most this many words
_DEFINING = re.compile(r"\b(?:shall\s+mean|means|mean|refers?\s+to|(?:is|are)\s+defined\s+as|denotes?|is|are)\b")
_GLOSSARY = re.compile(r"\s*(?::|[-–—]\s)")  # "Magic rule: ...", "Magic rule - ...": right after the term
_NAMING = re.compile(r"\b(?:called|known\s+as|referred\s+to\s+as|termed|named|defined\s+as)\s+", re.IGNORECASE)
_NAMED_WITHIN = 3  # "... is called X": X within this many words after the naming verb


def defines(sentence: str, t: Term) -> bool:
    """Does the sentence define the term: the term is its subject, before a defining verb, or
    a glossary line opens with it, or the words after "called / known as" name it? Each line
    is read apart (a page's heading often opens the sentence that follows it); a question never
    defines.

    >>> t = term("What is the Corresponding Source?")
    >>> defines('The “Corresponding Source” for a work in object code form means all the source code.', t)
    True
    >>> defines("You may convey the Corresponding Source under the terms of this License.", t)
    False
    >>> defines("Such accounts are called system users.", term("What is a system user?"))
    True
    >>> defines("Magic rules: each gives an offset and a value.", term("What are magic rules?"))
    True
    """
    return any(_defines_line(line.strip(), t) for line in fold(sentence).splitlines())


def _defines_line(text: str, t: Term) -> bool:
    if not text or text.endswith("?"):
        return False
    low, need = text.lower(), t.stems
    m = _DEFINING.search(low)
    if m and _subject_is(_words(low[:m.start()]), t) and not _passive(m.group(0), low[m.end():]):
        return True
    lead = _words(low)[:len(t.words) + 1]  # the term, perhaps after an article
    for k in range(1, len(lead) + 1):
        if need <= _stems(lead[:k]):
            at = re.search(r"^\W*" + r"\W+".join(map(re.escape, lead[:k])) + r"[\"'”’)\]]*", low)
            if at and _GLOSSARY.match(low, at.end()):
                return True
            break
    for m in _NAMING.finditer(text):
        if need <= _stems(_words(text[m.end():])[: len(t.words) + _NAMED_WITHIN]):
            return True
    return False


def _subject_is(subject: tuple[str, ...], t: Term) -> bool:
    """Is the term the subject, not a word inside it: after any determiner the subject opens
    with the term's head ("The Corresponding Source for a work ...", not "An example of a
    decision problem", "An indefinite suspension"), holds all its words, and is no clause
    ("The EFC Formula guide shows how an EFC")."""
    while subject and subject[0] in _DETERMINERS:
        subject = subject[1:]
    if not subject or len(subject) > _SUBJECT or any(w in _CLAUSE for w in subject):
        return False
    return _stems(subject[:t.size]) == t.head and t.stems <= _stems(subject)


def _passive(verb: str, rest: str) -> bool:
    """'Magic rules are read before glob rules': a bare "is / are" before a participle says what
    is done to the term, not what it is."""
    after = _words(rest[:40])[:1]
    return verb in ("is", "are") and bool(after) and (after[0].endswith("ed") or after[0] in _PARTICIPLES)


def _stems(ws: tuple[str, ...]) -> frozenset[str]:
    return frozenset(tokenize(" ".join(ws)))


@lru_cache(maxsize=8192)
def _words(text: str) -> tuple[str, ...]:
    """Lower-case words, quotes and punctuation dropped (hyphenated words kept whole)."""
    return tuple(w for w in COMPOUND.findall(fold(text).lower()) if w not in ("s",))

