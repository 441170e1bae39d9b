"""One conversation, one answer, whichever door it comes through (issue 12, item 5): `qa chat`
(the CLI keeps an explicit `Conversation` state), the web chat (`Handlers.turn` with the
earlier turns) and the API (`/answer_json` with the earlier questions as history) give the
same found/not-found, the same first citation and the same confidence at every turn of every
development conversation about the shipped article. Real model."""

from __future__ import annotations

import io
import json

import pytest
from conftest import EVAL

from qa import cli, evaluate
from qa.ui_handlers import Handlers

CONVERSATIONS = [r["turns"] for path in ("dev_chat.jsonl", "dev_chat_more.jsonl")
                 for r in evaluate.read_records(EVAL / path) if len(r.get("turns") or ()) > 1]
# Three turns, the second and third leaning on the first; then a self-contained question.
CONVERSATIONS.append(["Who visited Pyongyang in 1960?", "What did he declare?", "Why was he impressed?",
                      "What is the population of Cuba?"])


def first(a: dict) -> tuple:
    c = a["citations"][0] if a["citations"] else {}
    return a["found"], c.get("document"), c.get("paragraph"), c.get("quote"), round(a["confidence"], 6)


@pytest.fixture(scope="module")
def cli_answers(real_index):
    """Every conversation through `qa chat --json` (one process state, /reset between them)."""
    typed = "\n/reset\n".join("\n".join(c) for c in CONVERSATIONS) + "\n"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QA_INDEX_DIR", str(real_index.index_dir))
        mp.setenv("QA_SOURCE_DIR", str(real_index.source_dir))
        mp.setattr("sys.stdin", io.StringIO(typed))
        mp.setattr("sys.stdout", stdout := io.StringIO())
        assert cli.main(["chat", "--json"]) == 0
    answers = [json.loads(line) for line in stdout.getvalue().splitlines() if line.strip()]
    assert len(answers) == sum(len(c) for c in CONVERSATIONS)
    out, i = [], 0
    for c in CONVERSATIONS:
        out.append(answers[i:i + len(c)])
        i += len(c)
    return out


@pytest.mark.parametrize("n", range(len(CONVERSATIONS)))
def test_cli_web_chat_and_api_give_the_same_answers_to_one_conversation(n, cli_answers, real_engine):
    turns_text = CONVERSATIONS[n]
    h = Handlers(real_engine, real_engine.settings)
    web_turns = []
    for i, question in enumerate(turns_text):
        via_cli = first(cli_answers[n][i])
        turn = h.turn(question, web_turns)
        web_turns.append(turn)
        via_web = first(turn.answer.to_json())
        via_api = first(h.api_answer_json(question, turns_text[:i]))
        assert via_cli == via_web == via_api, f"turn {i + 1}: {question!r}"
