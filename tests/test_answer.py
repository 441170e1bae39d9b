"""The JSON answer contract (docs/design.md §4), verbatim quotes, escaping."""

from __future__ import annotations

import numpy as np

from qa.chatview import ChatTurn, sources_html, turn_html
from qa.render import escape_markdown


def test_json_answer_has_exactly_the_contract_fields(fake_engine):
    out = fake_engine.ask("When did Che Guevara visit Pyongyang?").to_json()
    assert set(out) == {"question", "found", "confidence", "answer", "citations", "index_version"}
    assert out["citations"]
    for c in out["citations"]:
        assert {"document", "title", "paragraph", "section", "quote", "start", "end", "score"} <= set(c)
        assert isinstance(c["paragraph"], int) and c["paragraph"] >= 1
        assert len(c["quote"].split(". ")) <= 3


def test_every_quote_is_verbatim_document_text(fake_engine):
    snap = fake_engine.snapshot()
    for q in ["Che Guevara Pyongyang", "Bay of Pigs", "sugar railway equipment", "Raul Castro 1968"]:
        for c in fake_engine.ask(q).citations:
            assert snap.docs[c.document].text[c.start:c.end] == c.quote


def test_one_citation_per_paragraph(fake_engine):
    cites = fake_engine.ask("Cuba North Korea relations", k=6).citations
    keys = [(c.document, c.paragraph) for c in cites]
    assert len(keys) == len(set(keys)) == 6


def test_quoted_script_tag_is_shown_as_text():
    md = escape_markdown('<script>alert("x")</script> **bold** [link](javascript:x) $$a$$')
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "\\*\\*bold\\*\\*" in md and "\\[link\\]" in md and "\\$\\$" in md


def test_not_found_answer_is_labelled_and_keeps_nearest_passages(fake_engine):
    from dataclasses import replace

    ans = fake_engine.ask("sourdough bread recipe")
    ans = replace(ans, found=False, answer=None)
    md = turn_html(0, ChatTurn(ans.question, ans), ans.index_version, selected=True)  # the web chat's answer
    assert "Not in this document" in md and "Closest passages, but not an answer" in md
    assert "not an answer" in sources_html(ans)


# --- quote spans ------------------------------------------------------------------------------

def _sents(*paras: list[str]):
    from qa.chunking import Sentence

    out, pos = [], 0
    for p, texts in enumerate(paras, 1):
        for i, t in enumerate(texts):
            out.append(Sentence("d", p, i, pos, pos + len(t), t))
            pos += len(t) + 1
    return out


def test_quote_grows_to_neighbours_within_the_margin_only():
    from qa.answer import quote_span

    s = _sents(["A one.", "B two.", "C three.", "D four."])
    assert quote_span(s, np.array([0.1, 1.0, 0.95, 0.2]), 1, 0.1) == (1, 2)
    assert quote_span(s, np.array([0.1, 1.0, 0.5, 0.2]), 1, 0.1) == (1, 1)


def test_a_quote_opening_with_a_pronoun_takes_the_sentence_that_names_whom():
    from qa.answer import quote_span

    s = _sents(["Edward the Confessor ruled.", "He made Ralph earl of Hereford.", "Later more."],
               ["It began again."])
    low = np.array([0.0, 1.0, 0.0, 0.0])
    assert quote_span(s, low, 1, 0.1) == (0, 1)
    assert quote_span(s, low, 1, 0.1, self_contained=False) == (1, 1)
    # never across a paragraph: "It began again." opens paragraph 2, nothing before it there
    assert quote_span(s, np.array([0.0, 0.0, 0.0, 1.0]), 3, 0.1) == (3, 3)


def test_a_quote_takes_the_sentence_that_continues_it():
    from qa.answer import quote_span

    s = _sents(["P models efficient computation.", "This hypothesis is called the Cobham thesis.", "Q is new."],
               ["Richard left Messina.", "But a storm dispersed the fleet.", "Thesis papers differ."])
    alone = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert quote_span(s, alone, 0, 0.1) == (0, 1)  # "This hypothesis ..." finishes the thought
    assert quote_span(s, alone, 0, 0.1, self_contained=False) == (0, 0)
    # a connective opening ("But ...") leans on the sentence before it, in both directions
    assert quote_span(s, np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0]), 3, 0.1) == (3, 4)
    assert quote_span(s, np.array([0.0, 0.0, 0.0, 0.0, 1.0, 0.0]), 4, 0.1) == (3, 4)
    # a sentence that merely starts like a pronoun ("Thesis ...") does not join; nor across paragraphs
    assert quote_span(s, np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0]), 5, 0.1) == (5, 5)
    assert quote_span(s, np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0]), 2, 0.1) == (2, 2)


def test_a_continuation_never_makes_a_quote_longer_than_three_sentences():
    from qa.answer import quote_span

    s = _sents(["A one.", "B two.", "C three.", "It goes on."])
    assert quote_span(s, np.array([0.99, 1.0, 0.98, 0.0]), 1, 0.1) == (0, 2)


def test_the_pronoun_rule_keeps_three_sentences_and_the_best_one():
    from qa.answer import quote_span

    s = _sents(["Castro spoke.", "They met him.", "It went well.", "Then all left."])
    # the margin alone would quote sentences 1-3 (opening with "They"); the sentence naming
    # whom replaces the last one, and the best sentence (1) stays
    lo, hi = quote_span(s, np.array([0.0, 1.0, 0.99, 0.98]), 1, 0.1)
    assert (lo, hi) == (0, 2) and lo <= 1 <= hi


def test_a_page_question_line_is_answered_by_the_sentences_after_it():
    from qa.answer import quote_span

    s = _sents(["Can I drive with a foreign license?", "Yes.", "Your license allows it.", "It is valid.",
                "What about trucks?"], ["Consider this: is there a route of 2000 km?", "It is hard."])
    best_is_question = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert quote_span(s, best_is_question, 0, 0.1) == (1, 3)  # the answer, not the question
    # a question inside prose is not a page's question line: it may hold the answer itself
    assert quote_span(s, np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]), 5, 0.1) == (5, 6)


def test_a_title_that_only_restates_the_question_is_answered_by_the_sentences_after_it():
    from qa.answer import quote_span

    s = _sents(["I received a letter that my insurance lapsed.", "The letter means it ended.", "Act now."])
    assert quote_span(s, np.array([1.0, 0.0, 0.0]), 0, 0.1) == (0, 0)
    assert quote_span(s, np.array([1.0, 0.0, 0.0]), 0, 0.1, restates=True) == (1, 2)


def test_a_quote_without_the_date_or_number_asked_for_takes_the_neighbour_holding_it():
    from qa.answer import quote_span

    s = _sents(["Havana and Pyongyang are not close.", "The distance is 12,500 km.", "Flights are rare."])
    scores = np.array([1.0, 0.0, 0.0])
    assert quote_span(s, scores, 0, 0.1) == (0, 0)
    assert quote_span(s, scores, 0, 0.1, wants=np.array([False, True, False])) == (0, 1)
    assert quote_span(s, scores, 0, 0.1, wants=np.array([True, True, False])) == (0, 0)  # it has one



def test_a_quote_dated_as_that_year_takes_the_sentence_that_names_the_year(real_engine):
    a = real_engine.ask("When did mass protests break out in Cuba?")
    assert a.found and a.answer.startswith("In the summer of 2021") and "On July 11 of that year" in a.answer


def test_a_question_line_that_is_a_paragraph_of_its_own_is_answered_by_the_next_paragraph():
    # a help page's FAQ title on its own line: the quote is what follows it, not the title
    from qa.answer import quote_span

    s = _sents(["Lost plates."], ["What if my plates are stolen?"], ["You must surrender the registration.", "Then apply."],
               ["Other topics."])
    scores = np.array([0.0, 1.0, 0.5, 0.4, 0.0])
    assert quote_span(s, scores, 1, 0.1) == (2, 3)
    assert quote_span(s, scores, 1, 0.1, self_contained=False) == (1, 1)
    # a last paragraph has no next one: it stays
    assert quote_span(_sents(["Intro."], ["What if my plates are stolen?"]), np.array([0.0, 1.0]), 1, 0.1) == (1, 1)
    # a statement of one sentence is no title, even when it restates the question: a news paragraph
    news = _sents(["Fidel Castro visited Pyongyang in 1986."], ["The visit lasted four days."])
    assert quote_span(news, np.array([1.0, 0.2]), 0, 0.1, restates=True) == (0, 0)


def test_citations_never_quote_the_same_passage_twice(tmp_path):
    from qa.config import Settings
    from qa.engine import Engine

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "plates.txt").write_text(
        "Plates\n\nWhat if my plates are stolen?\n\nYou must surrender the vehicle registration to the DMV. "
        "Then apply for new plates at any office.\n\nWhat if my plates are damaged?\n\nBring the damaged plates "
        "to an office and we replace them.\n\nPlates stay with the owner when a vehicle is sold.\n\n"
        "Lost plates are reported to the police before new plates are issued.\n\n"
        "Plate fees are paid at the office that issues the plates.\n", encoding="utf-8")
    engine = Engine(Settings(index_dir=tmp_path / "index", source_dir=tmp_path / "src"))
    engine.library.build([tmp_path / "src"])
    a = engine.ask("What should I do if my plates are stolen?", k=4)
    assert a.citations[0].quote.startswith("You must surrender the vehicle registration")
    places = [(c.document, c.paragraph) for c in a.citations]
    assert len(places) == len(set(places))  # one citation per paragraph
    assert len(a.citations) == 4  # as many as asked for, the page having more paragraphs


def test_a_sentence_restating_the_question_stays_when_what_follows_says_no_more(tmp_path):
    # studentaid: "Share Positive Feedback\nShare positive feedback about your financial aid
    # experience. Share Positive Feedback" (a heading, the answer, a button): the quote moved past the
    # answer, which restates the question, onto the button
    from qa.config import Settings
    from qa.engine import Engine

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "feedback.txt").write_text(
        "Feedback Center\n\nSubmit a complaint about a loan servicer or a school.\n\n"
        "Share Positive Feedback\nShare positive feedback about your financial aid experience. Share Positive Feedback\n\n"
        "Manage My Cases\nLog in to your account to view, track, or update your case.\n", encoding="utf-8")
    engine = Engine(Settings(index_dir=tmp_path / "index", source_dir=tmp_path / "src"))
    engine.library.build([tmp_path / "src"])
    a = engine.ask("Can I share positive feedback about my financial aid experience?")
    assert "Share positive feedback about your financial aid experience." in a.citations[0].quote
