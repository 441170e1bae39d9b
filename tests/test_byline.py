"""Questions about who wrote the document ("Who wrote this article?"): told by their form, and the
byline or author's note goes first (qa/byline.py), with the real model; other questions and
documents without a note unaffected (issue 12: the article's question got "Fidel Castro later
wrote ...")."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qa.byline import asks_author, author_note
from qa.config import Settings
from qa.engine import Engine
from qa.ranking import Policy
from qa.retrieval import Weights

NOTE = "Matija Šerić is a geopolitical analyst and journalist from Croatia"


@pytest.mark.parametrize("question", [
    "Who wrote this article?", "who wrote this", "Who is the author?", "Who's the author of this piece?",
    "Who is the article's author?", "Who is this op-ed written by?", "By whom was this written?",
    "What is the name of the author?", "And who wrote the article?", "What is the author's name?",
    "Who is this article by?",
])
def test_questions_about_the_documents_author_are_told_by_their_form(question):
    assert asks_author(question)


@pytest.mark.parametrize("question", [
    "Who wrote the Communist Manifesto?",  # something the document mentions, not the document
    "Who is the author of the Juche idea?",
    "Who wrote it?",  # a follow-up: "it" is whatever was asked before
    "What topics does the author write about?",  # about the author, answered by the ranking as it is
    "Who visited Pyongyang in 1960?",
])
def test_other_questions_do_not_ask_for_the_author(question):
    assert not asks_author(question)


@pytest.mark.parametrize("sentence", [
    NOTE + " and writes on foreign policy, history, economy, society, etc.",
    "By Jane Doe",
    "Written by Jane Doe, Vienna correspondent",
    "John Smith (born 1970) is a professor of history at Yale.",
    "Łukasz Nowak is a journalist in Warsaw.",  # any script's capitals
    "By ŁUKASZ NOWAK",
])
def test_a_byline_or_an_authors_note_is_one(sentence):
    assert author_note(sentence)


@pytest.mark.parametrize("sentence", [
    "Fidel Castro later wrote that Kim Il-sung sent Cuba 100,000 rifles.",
    "Kim Il-sung was a veteran and impeccable fighter.",  # a name and "was a", but no profession
    "By 1960 the two countries had opened embassies in each other's capitals and traded sugar for machines.",
    "The author is a journalist.",  # no name
    "By then the village had moved twice.",  # "By" and a lower-case word: no byline
    "By contrast, the two allies differ.",
    "The United Nations is a body of experts.",  # "The ...": no name
    "North Korea is a state that has few experts.",  # the profession is no part of what it is
])
def test_other_sentences_are_no_author_note(sentence):
    assert not author_note(sentence)


@pytest.fixture(scope="module")
def without_signal(real_index):
    return Engine(real_index, policy=replace(Policy(), weights=replace(Weights(), form=0.0)))


def test_who_wrote_this_article_quotes_the_authors_note(real_engine, without_signal):
    a = real_engine.ask("Who wrote this article?")
    assert a.found and a.citations[0].quote.startswith(NOTE)
    # the signal is what puts it first: without it a sentence where somebody wrote something leads
    assert not without_signal.ask("Who wrote this article?").citations[0].quote.startswith(NOTE)


@pytest.mark.parametrize("question", ["Who wrote the Communist Manifesto?", "Who visited Pyongyang in 1960?"])
def test_other_who_questions_are_answered_as_without_the_signal(real_engine, without_signal, question):
    a, b = real_engine.ask(question), without_signal.ask(question)
    assert (a.found, a.confidence, [c.quote for c in a.citations]) == (b.found, b.confidence, [c.quote for c in b.citations])


def test_a_document_without_an_authors_note_is_ranked_as_before(tmp_path, real_engine):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "notes.txt").write_text(
        "Field notes\n\nThe river floods every spring and the village moves its boats uphill.\n\n"
        "Anna Berg wrote the first survey of the valley in 1921.\n\nThe survey is kept in the town library.\n",
        encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "index", source_dir=tmp_path / "src")
    on = Engine(settings, encoder=real_engine.encoder)
    on.library.build([tmp_path / "src"])
    off = Engine(settings, encoder=real_engine.encoder, policy=replace(Policy(), weights=replace(Weights(), form=0.0)))
    a, b = on.ask("Who wrote this article?"), off.ask("Who wrote this article?")
    assert (a.found, a.confidence, [c.quote for c in a.citations]) == (b.found, b.confidence, [c.quote for c in b.citations])
