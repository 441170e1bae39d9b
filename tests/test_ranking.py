"""Ranking on tiny hand-checkable fixtures: a question parsed once, three sentences, a follow-up
that leans on the conversation's state, and a lead quote promoted because the best-scoring one
shares only the question's names. The hashing encoder throughout (one piece per word)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import HashEncoder

from qa.answer import compose
from qa.config import Settings
from qa.engine import Engine
from qa.errors import InputError
from qa.ranking import Conversation, Policy, Question, clean_question, rank, replay

TINY = """Wombat facts

Wombats dig long burrows with their strong claws.

The common wombat eats grass and roots at night.

Fidel Castro praised the Pyongyang parade.

Fidel Castro came to visit Pyongyang in 1986.
"""


class WordHashEncoder(HashEncoder):
    """The hashing encoder with each piece's word, so the names check (`tokens.name_mask`) applies."""

    def encode_pieces(self, texts):
        from qa.tokens import is_content

        vecs, parts = super().encode_pieces(texts)
        for i, t in enumerate(texts):
            ws = [w.strip(".,;:!?\"'()") for w in t.lower().split()]
            parts[i] = replace(parts[i], words=tuple(w for w in ws if w and is_content(w)))
        return vecs, parts


@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "source").mkdir()
    doc = tmp_path / "source" / "wombats.txt"
    doc.write_text(TINY, "utf-8")
    engine = Engine(Settings(index_dir=tmp_path / "index", source_dir=tmp_path / "source", model="hash-64"),
                    encoder=WordHashEncoder())
    engine.library.build([doc])
    return engine


def sentence_of(engine: Engine, row: int) -> str:
    return engine.snapshot().data.sentences[row].text


def test_a_question_is_parsed_once_into_what_every_step_reads():
    q = Question.of("When did Fidel Castro visit Pyongyang?")
    assert q.kind == "when" and q.tokens == ("fidel", "castro", "visit", "pyongyang")
    assert not q.leans and q.cased
    assert q.names(frozenset()) >= {"fidel", "castro", "pyongyang"} and "visit" not in q.names(frozenset())
    assert Question.of("What did he eat?").leans and not Question.of("What do wombats eat?").leans


def test_an_all_lower_case_question_takes_its_names_from_the_documents():
    q = Question.of("when did fidel castro visit pyongyang?")
    assert not q.cased
    assert q.names(frozenset({"castro", "pyongyang"})) >= {"castro", "pyongyang"}


@pytest.mark.parametrize("text, message", [("   ", "Please type"), ("x" * 9000, "limit is 2000")])
def test_empty_and_oversized_questions_are_refused(text, message):
    with pytest.raises(InputError, match=message):
        clean_question(text, 2000)


def test_the_sentence_sharing_the_rare_words_ranks_first(tiny):
    snap = tiny.snapshot()
    r = rank(snap, Question.of("What does the wombat eat?"), Conversation(), tiny._encode, tiny.policy)
    assert sentence_of(tiny, int(np.argmax(r.fused))) == "The common wombat eats grass and roots at night."
    assert r.fused.shape == (len(snap.data.sentences),)


def test_a_follow_up_leans_on_the_last_turn(tiny):
    snap, p, enc = tiny.snapshot(), tiny.policy, tiny._encode
    first = Question.of("Where do wombats dig burrows?")
    conv = Conversation().after(first, rank(snap, first, Conversation(), enc, p), snap)
    assert sentence_of(tiny, conv.last.shown) == "Wombats dig long burrows with their strong claws."
    follow = Question.of("What do they eat?")
    alone = rank(snap, follow, Conversation(), enc, p)
    leaning = rank(snap, follow, conv, enc, p)
    assert "dig" in leaning.tokens and "dig" not in alone.tokens  # borrowed from the last question


def test_replaying_the_questions_gives_the_state_a_chat_carries(tiny):
    snap, p, enc = tiny.snapshot(), tiny.policy, tiny._encode
    turns = [Question.of(t) for t in ("Where do wombats dig burrows?", "What do they eat?")]
    carried = Conversation()
    for q in turns:
        carried = carried.after(q, rank(snap, q, carried, enc, p), snap)
    assert replay(snap, turns, enc, p) == carried
    a1, state = tiny.chat(turns[0].text)
    a2, _ = tiny.chat(turns[1].text, state)
    assert tiny.ask(turns[1].text, [turns[0].text]) == a2


def test_a_self_contained_question_is_not_pulled_back_to_the_old_topic(tiny):
    _, state = tiny.chat("Where do wombats dig burrows?")
    a, _ = tiny.chat("When did Fidel Castro visit Pyongyang?", state)
    alone = tiny.ask("When did Fidel Castro visit Pyongyang?")
    # the conversation's context weighs `Policy.context_weight` (0.15): the scores move a little,
    # the answer does not
    assert (a.found, a.citations[0].quote) == (alone.found, alone.citations[0].quote)
    assert a == tiny.ask("When did Fidel Castro visit Pyongyang?", ["Where do wombats dig burrows?"])
    # without the context weight, exactly the answer asked alone
    plain = Engine(tiny.settings, encoder=tiny.encoder, policy=replace(tiny.policy, context_weight=0.0))
    _, state = plain.chat("Where do wombats dig burrows?")
    assert plain.chat("When did Fidel Castro visit Pyongyang?", state)[0].citations == alone.citations


def test_the_lead_gives_way_to_a_quote_that_meets_what_is_asked_beyond_the_names(tiny):
    """Make the sentence that shares only the names ("Fidel Castro ... Pyongyang") score highest
    by hand: the lead is still the one that also meets "visit"."""
    snap, p = tiny.snapshot(), replace(Policy(), quote_margin=0.0)
    q = Question.of("When did Fidel Castro visit Pyongyang?")
    r = rank(snap, q, Conversation(), tiny._encode, p)
    rows = {s.text: i for i, s in enumerate(snap.data.sentences)}
    names_only, visited = rows["Fidel Castro praised the Pyongyang parade."], rows[
        "Fidel Castro came to visit Pyongyang in 1986."]
    fused = r.fused.copy()
    fused[names_only] = fused.max() + 1.0
    a = compose(snap, q, replace(r, fused=fused), 3, p)
    assert a.citations[0].quote == "Fidel Castro came to visit Pyongyang in 1986."
    assert a.citations[1].quote == "Fidel Castro praised the Pyongyang parade." and visited != names_only


OTHER = """Kangaroo notes

The kangaroo hops across the plains at night.

Wombats and kangaroos both eat grass and roots.
"""


def _engine_over(tmp_path, texts: dict[str, str]) -> Engine:
    (tmp_path / "source").mkdir(parents=True)
    for name, text in texts.items():
        (tmp_path / "source" / name).write_text(text, "utf-8")
    engine = Engine(Settings(index_dir=tmp_path / "index", source_dir=tmp_path / "source", model="hash-64"),
                    encoder=WordHashEncoder())
    engine.library.build([tmp_path / "source"])
    return engine


def test_adding_a_document_leaves_another_documents_scores_unchanged(tmp_path, tiny):
    """Per-document idf and BM25 (issue 12, item 7): the wombat sentences score the same with a
    second document indexed beside them, which shares some of the question's words."""
    both = _engine_over(tmp_path / "both", {"wombats.txt": TINY, "kangaroos.txt": OTHER})
    for text in ("What does the wombat eat?", "When did Fidel Castro visit Pyongyang?", "Where do wombats dig?"):
        q = Question.of(text)
        alone = rank(tiny.snapshot(), q, Conversation(), tiny._encode, tiny.policy)
        more = rank(both.snapshot(), q, Conversation(), both._encode, both.policy)
        rows = [i for i, s in enumerate(both.snapshot().data.sentences) if s.doc == tiny.snapshot().data.sentences[0].doc]
        assert np.allclose(more.fused[rows], alone.fused, atol=1e-5)


def test_a_later_turn_keeps_to_the_last_answers_document(tmp_path):
    engine = _engine_over(tmp_path, {"wombats.txt": TINY, "kangaroos.txt": OTHER})
    snap, p, enc = engine.snapshot(), replace(engine.policy, context_weight=0.0), engine._encode
    first = Question.of("Where do wombats dig burrows?")
    conv = Conversation().after(first, rank(snap, first, Conversation(), enc, p), snap)
    q = Question.of("Who eats grass and roots?")  # self-contained: with no context weight, no borrowed words
    alone, later = rank(snap, q, Conversation(), enc, p), rank(snap, q, conv, enc, p)
    assert later.tokens == alone.tokens
    # as shipped, it borrows the earlier question's words (at `Policy.context_weight`)
    lighter = rank(snap, q, conv, enc, engine.policy)
    assert engine.policy.context_weight > 0 and set(lighter.tokens) - set(alone.tokens) == set(first.tokens)
    docs = np.array([s.doc for s in snap.data.sentences])
    same = docs == docs[conv.last.shown]
    assert np.allclose(later.fused[same], alone.fused[same])  # the last answer's document: unchanged
    assert np.allclose(alone.fused[~same] - later.fused[~same], p.followup_document)  # the others give way


def test_chat_and_ask_with_history_agree_when_the_document_rule_applies(tmp_path):
    """A self-contained later turn over two documents: `chat` (the state carried, as `qa chat`)
    and `ask` with the earlier questions (the web chat and the API) give the same answer."""
    engine = _engine_over(tmp_path, {"wombats.txt": TINY, "kangaroos.txt": OTHER})
    first, later = "Where do wombats dig burrows?", "Who eats grass and roots?"
    _, state = engine.chat(first)
    a, _ = engine.chat(later, state)
    assert a == engine.ask(later, [first])
