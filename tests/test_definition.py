"""Definition questions ("What is X?"): told by their form, and the sentence that defines X goes
first (qa/definition.py, `Weights.form`), with the real model; other questions unaffected."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from qa.config import Settings
from qa.definition import defines, term
from qa.engine import Engine
from qa.ranking import Policy
from qa.retrieval import Weights

TEXT = """Accounts and file types

Add the system user to the adm group so that the system user can read the logs of the system.

An account that exists only to run a daemon, with no person logging in to it, is called a system user.

Magic rules are read before glob rules, and among the magic rules of a type the magic rule with the higher priority is tried first.

A magic rule is a byte pattern that must appear at a given offset of a file for the file to have that type.

The licence ends automatically if you break its terms. Copies received from you keep their rights.
"""
DEFINES_USER = "An account that exists only to run a daemon"
DEFINES_MAGIC = "A magic rule is a byte pattern"


@pytest.mark.parametrize("question, words", [
    ("What is the Corresponding Source?", ("corresponding", "source")),
    ("What does 'Contributor' mean?", ("contributor",)),
    ("What is a system user?", ("system", "user")),
    ("What are magic rules?", ("magic", "rules")),
    ("Define system user", ("system", "user")),
    ("What is meant by a derivative work?", ("derivative", "work")),
    ("What do you mean by Legal Entity?", ("legal", "entity")),
    ("what's an EFC", ("efc",)),
    ("and what is loan simulator?", ("loan", "simulator")),
])
def test_definition_questions_are_told_by_their_form(question, words):
    assert term(question).words == words


@pytest.mark.parametrize("question", [
    "When did Che Guevara visit Pyongyang?",
    "Who is Ri Yong-ho?",
    "What is it?",
    "What are they?",
    "What is included in the General References section?",
    "What is understood to be a task that is in principle not amenable to being solved?",
    "What is the name of the ship?",
    "What is the feedback center for?",
    "What are the global restrictions I face?",
    "What did he declare?",
])
def test_other_questions_are_not_definition_questions(question):
    assert term(question) is None


@pytest.mark.parametrize("question, sentence", [
    ("What is the Corresponding Source?",
     "The “Corresponding Source” for a work in object code form means all the source code needed to generate it."),
    ("What does 'Contributor' mean?", "“Contributor” shall mean Licensor and any individual or Legal Entity."),
    ("What is a system user?", "Such accounts are called system users."),
    ("What are magic rules?", "Magic rules: each one gives an offset and a value."),
    ("What is a temporary visitor?", "A Temporary Visitor is defined as anyone who is not immigrating."),
    ("What is loan simulator?", "Try Loan Simulator\nLoan Simulator is a new tool to help you decide."),
    ("What is an EFC?", "Your EFC is an index number that financial aid staff use."),
])
def test_a_defining_sentence_defines(question, sentence):
    assert defines(sentence, term(question))


@pytest.mark.parametrize("question, sentence", [
    ("What is the Corresponding Source?", "You may convey the Corresponding Source under the terms of this License."),
    ("What are magic rules?", "Magic rules are read before glob rules."),  # passive: what is done to them
    ("What is a suspension?", "An indefinite suspension means you must answer a ticket."),  # a narrower term
    ("What is a decision problem?", "An example of a decision problem is the following."),  # a word in the subject
    ("What is an EFC?", "The EFC Formula guide shows exactly how an EFC is calculated."),  # a clause
    ("What is a system user?", "What is a system user?"),  # a page's own question line
    ("What is a system user?", "Call 1 - 800 - 555 for system user help."),  # a dash that is no glossary line
])
def test_a_sentence_that_uses_the_term_does_not_define_it(question, sentence):
    assert not defines(sentence, term(question))


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """The small text indexed with the real model; the shipped policy, and the same with the
    definition signal off."""
    root = tmp_path_factory.mktemp("define")
    (root / "src").mkdir()
    (root / "src" / "accounts.txt").write_text(TEXT, encoding="utf-8")
    settings = Settings(index_dir=root / "index", source_dir=root / "src")
    on = Engine(settings)
    on.library.build([root / "src"])
    off = Engine(settings, encoder=on.encoder, policy=replace(Policy(), weights=replace(Weights(), form=0.0)))
    return on, off


@pytest.mark.parametrize("question, defining", [
    ("What is a system user?", DEFINES_USER),
    ("What is a magic rule?", DEFINES_MAGIC),
    ("What are magic rules?", DEFINES_MAGIC),
])
def test_a_definition_question_quotes_the_defining_sentence_not_one_using_the_term(engines, question, defining):
    on, off = engines
    assert Policy().weights.form > 0
    assert on.ask(question).citations[0].quote.startswith(defining)
    # the signal is what puts it first: without it a sentence that only uses the term leads
    assert not off.ask(question).citations[0].quote.startswith(defining)


@pytest.mark.parametrize("question", [
    "When does the licence end?",
    "Which rules are read first?",
    "Who can read the logs?",
    "Why is the system user added to the adm group?",
])
def test_a_question_that_asks_no_definition_is_answered_as_without_the_signal(engines, question):
    on, off = engines
    a, b = on.ask(question), off.ask(question)
    assert term(question) is None
    assert (a.found, a.confidence, a.features) == (b.found, b.confidence, b.features)
    assert [(c.quote, c.score) for c in a.citations] == [(c.quote, c.score) for c in b.citations]


def test_the_boost_orders_only_quotes_and_refusal_read_the_scores_without_it(engines):
    on, off = engines
    a, b = on.ask("What is a system user?"), off.ask("What is a system user?")
    assert a.found == b.found
    shown = {c.quote: c.score for c in b.citations}
    for c in a.citations:  # each citation's score is the unboosted fused score
        if c.quote in shown:
            assert np.isclose(c.score, shown[c.quote])


def test_a_term_held_by_many_sentences_is_read_only_in_the_best_of_them(engines, monkeypatch):
    """On a book a common term is held by thousands of sentences; only `DEFINE_ROWS` of them,
    the best by the other signals, are read for a definition, and the answer stays the same
    while the defining sentence is among them."""
    from qa import ranking, retrieval

    on, _ = engines
    want = on.ask("What is a system user?").citations[0].quote
    read = []
    real = retrieval.definition_scores

    def counting(t, sentences, token_sets):
        read.append(len(sentences))
        return real(t, sentences, token_sets)

    monkeypatch.setattr(ranking, "definition_scores", counting)
    monkeypatch.setattr(ranking, "DEFINE_ROWS", 2)
    assert on.ask("What is a system user?").citations[0].quote == want
    assert read and max(read) <= 2
