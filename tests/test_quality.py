"""Quality floors, measured with `qa eval` (README, "Quality"). Each floor sits a little below
what was measured, so a regression fails CI. Real model, real eval files."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from conftest import EVAL

from qa import evaluate
from qa.config import Settings
from qa.engine import Engine


@pytest.fixture(scope="module")
def article_summary(real_engine):
    return evaluate.summarise(evaluate.run(real_engine, evaluate.read_records(EVAL / "dev_qa.jsonl")))


def test_article_hit_rates_hold_their_floor(article_summary):
    fig = article_summary["all"]
    assert fig["hit@1"] >= 0.93  # measured 0.967
    assert fig["hit@3"] >= 0.99  # measured 1.000
    assert fig["mrr@5"] >= 0.95  # measured 0.983


def test_article_unanswerable_questions_are_refused(article_summary):
    # the learned refusal (qa/confidence.py); held out, 3 of 6 (docs/ranking.md)
    assert article_summary["unanswerable"]["abstention"] >= 0.6  # measured 4 of 6 (in-sample)
    assert article_summary["all"]["false_abstention"] <= 1 / 30  # measured 0 of 30


def test_quotes_stay_short(article_summary):
    assert article_summary["all"]["median_quote_words"] < 60  # measured 37.5


def test_followups_use_the_conversation(real_engine):
    records = evaluate.read_records(EVAL / "dev_chat.jsonl") + evaluate.read_records(EVAL / "dev_chat_more.jsonl")
    with_history = evaluate.summarise(evaluate.run(real_engine, records))["all"]
    without = evaluate.summarise(evaluate.run(real_engine, records, use_history=False))["all"]
    assert with_history["hit@1"] >= 0.8  # measured 13 of 15
    assert without["hit@1"] <= 0.6  # measured 8 of 15: the history is what answers


def test_a_follow_up_may_be_answered_by_the_quote_already_shown(real_engine):
    """"Who visited Pyongyang in 1960?" is answered with the sentence that also says what Che
    Guevara declared; the follow-up is answered from it again, not from another declaration."""
    first = "Who visited Pyongyang in 1960?"
    assert "Che Guevara" in real_engine.ask(first).citations[0].quote
    a = real_engine.ask("What did he declare?", [first])
    assert "declared that Cuba should follow the North Korean model" in a.citations[0].quote


def test_an_elliptic_follow_up_leans_on_the_conversation(real_engine):
    a = real_engine.ask("When?", ["What barter deal did Havana and Pyongyang set up?"])
    assert "In January 2016, Havana and Pyongyang established a barter trading system" in a.citations[0].quote


@pytest.mark.parametrize("question", ["What is it?", "it is", "🙂", "and the of"])
def test_a_question_of_stop_words_is_not_answered(real_engine, question):
    assert not real_engine.ask(question).found


def test_a_pronoun_follow_up_borrows_the_previous_question(real_engine):
    first = "What happened to the ship Chong Chon Gang in 2013?"
    a = real_engine.ask("What was on it?", [first])
    assert a.found and "Chong Chon Gang" in a.citations[0].quote


@pytest.mark.parametrize("typed", [str, str.lower, str.upper])
def test_a_quote_sharing_only_the_names_gives_way_to_one_that_meets_the_question(real_engine, typed):
    # The article has Fidel Castro and Pyongyang in the sentence about his funeral (the higher
    # fused score) and "In 1986, Fidel Castro visited ..." (the answer).
    a = real_engine.ask(typed("When did Fidel Castro visit Pyongyang?"))
    first = a.citations[0]
    assert a.found and first.score < max(c.score for c in a.citations)  # promoted past a higher score
    assert "visit" in first.quote.lower()
    # and "poisoned" meets nothing in any sentence that names the minister: refused, with the
    # same answer however the question is typed. ("Who founded the Workers' Party of Korea?",
    # which the hand rule refused, is answered since issue 12: docs/ranking.md.)
    poisoned, received = (real_engine.ask(typed(q)) for q in ("Who poisoned Ri Yong-ho?", "Who received Ri Yong-ho in Havana?"))
    assert not poisoned.found and received.found and poisoned.confidence < received.confidence


def test_an_encoder_without_word_pieces_is_refused_clearly(real_index):
    from qa.engine import Engine
    from qa.errors import ModelError

    class VectorsOnly:
        name, dim = "vectors-only", 384

        def encode(self, texts):
            import numpy as np

            return np.ones((len(texts), 384), dtype="float32") / 384 ** 0.5

    with pytest.raises(ModelError, match="no word pieces"):
        Engine(real_index, encoder=VectorsOnly()).ask("When did Che Guevara visit Pyongyang?")


@pytest.mark.slow
@pytest.mark.parametrize("name, hit1, hit3, false_refusals, refused", [
    ("normans", 0.85, 0.94, 0.03, 0.05),  # measured 0.865, 0.958, 0 of 96, 7 of 112 (0.063)
    ("computational_complexity_theory", 0.865, 0.94, 0.03, 0.015),  # measured 0.878, 0.954, 0 of 197, 5 of 221
])
def test_new_articles_hold_their_floors(name, hit1, hit3, false_refusals, refused):
    records = evaluate.read_records(EVAL / "squad" / f"{name}_qa.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(Settings(index_dir=Path(tmp)))
        engine.library.build([EVAL / "squad" / f"{name}.txt"])
        fig = evaluate.summarise(evaluate.run(engine, records))
    assert fig["squad"]["hit@1"] >= hit1
    assert fig["squad"]["hit@3"] >= hit3
    assert fig["squad"]["false_abstention"] <= false_refusals
    assert fig["squad-impossible"]["abstention"] >= refused
    assert fig["squad"]["median_quote_words"] < 60  # measured 35 and 36


def test_cli_eval_prints_every_figure(capsys, real_index):
    from qa.cli import main

    assert main(["eval", "--qa", str(EVAL / "dev_qa.jsonl"), "--index", str(real_index.index_dir), "--json"]) == 0
    fig = json.loads(capsys.readouterr().out)
    for key in ("hit@1", "hit@3", "mrr@5", "abstention", "false_abstention"):
        assert key in fig["all"]
    assert set(fig) == {"lexical", "paraphrase", "unanswerable", "all"}
