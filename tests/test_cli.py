"""The command line's manners: version, help, quiet pipes, labelled chat output, `python -m qa`,
and terminal-safe text."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, HashEncoder

from qa import cli
from qa.config import Settings


@pytest.fixture
def hashed_cli(tmp_path, monkeypatch):
    """`qa` commands in-process on a tiny index built with the hashing encoder."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "notes.txt").write_text("Wombat notes\n\nWombats dig burrows at night.\n\n"
                                      "They eat grass and roots.\n\nA wombat can run at 40 km/h.", "utf-8")
    monkeypatch.setenv("QA_MODEL", "hash-64")
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("QA_SOURCE_DIR", str(source))
    monkeypatch.setattr("qa.embedding.shared_encoder", lambda *a, **k: HashEncoder())
    assert cli.main(["build"]) == 0
    return Settings.from_env()


def test_version_is_printed(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("qa ")


def test_qa_alone_prints_the_help(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "usage: qa" in out and "ask" in out and "chat" in out


def test_ask_help_explains_reading_questions_from_stdin(capsys):
    with pytest.raises(SystemExit):
        cli.main(["ask", "--help"])
    out = capsys.readouterr().out
    assert "'-'" in out and "stdin" in out


def test_python_dash_m_qa_runs_the_cli():
    run = subprocess.run([sys.executable, "-m", "qa", "--version"], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert run.returncode == 0 and run.stdout.startswith("qa ")


def test_an_unquoted_question_is_one_question(hashed_cli, capsys):
    assert cli.main(["ask", "How", "fast", "can", "a", "wombat", "run?"]) == 0
    out = capsys.readouterr().out
    assert "40 km/h" in out and out.count("¶") >= 1


def test_piped_chat_says_which_question_each_answer_belongs_to(hashed_cli, monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("Where do wombats dig?\nWhat do they eat?\n"))
    assert cli.main(["chat"]) == 0
    out = capsys.readouterr().out
    assert "Q: Where do wombats dig?" in out and "Q: What do they eat?" in out
    assert out.index("Q: Where") < out.index("burrows") < out.index("Q: What do they eat?")


def test_chat_json_gives_one_object_per_question(hashed_cli, monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("Where do wombats dig?\n/reset\nHow fast can a wombat run?\n"))
    assert cli.main(["chat", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [a["question"] for a in lines] == ["Where do wombats dig?", "How fast can a wombat run?"]


def test_terminal_output_shows_control_characters_instead_of_obeying_them(tmp_path, monkeypatch, capsys):
    source = tmp_path / "source"
    source.mkdir()
    filler = "Wombats are marsupials that live in Australia and dig long tunnels. " * 6
    (source / "evil.txt").write_text("Evil notes\n\nThe burrow \x1b[2J\x1b]0;owned\x07is deep and dark.\n\n"
                                     + filler, "utf-8")  # few control characters in enough text: accepted
    monkeypatch.setenv("QA_MODEL", "hash-64")
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("QA_SOURCE_DIR", str(source))
    monkeypatch.setattr("qa.embedding.shared_encoder", lambda *a, **k: HashEncoder())
    assert cli.main(["build"]) == 0
    capsys.readouterr()
    assert cli.main(["ask", "How deep is the burrow?"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "␛[2J" in out
    assert cli.main(["ask", "--json", "How deep is the burrow?"]) == 0
    assert "\\u001b" in capsys.readouterr().out  # JSON escapes it as JSON does


def test_ask_piped_into_head_ends_quietly(real_index):
    """`qa ask - < questions | head -1`: the reader goes away; no BrokenPipe traceback."""
    questions = "\n".join(["When did Che Guevara visit Pyongyang?"] * 30) + "\n"
    cmd = f"{sys.executable} -m qa ask - --index {real_index.index_dir} | head -1"
    run = subprocess.run(["sh", "-c", cmd], input=questions, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0
    assert "Traceback" not in run.stderr and "BrokenPipe" not in run.stderr, run.stderr[-2000:]
    assert run.stdout.count("\n") == 1


def test_hard_wrapped_supporting_quotes_are_indented_under_their_bullet():
    # GPL-3 is wrapped at 72 columns: a supporting quote's later lines started at the margin,
    # where they read as part of the answer rather than of their bullet.
    from qa.answer import Answer, Citation
    from qa.render import to_text

    first = Citation("gpl-3", 66, "8. Termination", "Moreover, your license is\nreinstated permanently.", 0, 50, 0.9)
    other = Citation("gpl-3", 50, "6. Conveying Non-Source Forms", "Access to a\nnetwork may be denied.", 0, 33, 0.5)
    text = to_text(Answer("Can it be reinstated?", True, first.quote, (first, other), "v1"))
    assert text.splitlines() == [
        "Moreover, your license is", "reinstated permanently.", "  — ¶66 · 8. Termination", "Also relevant:",
        "  • Access to a", "    network may be denied.  — ¶50 · 6. Conveying Non-Source Forms"]


def test_a_found_answer_of_low_confidence_says_so_above_its_quote_everywhere():
    # issue 12: "What is the population of Vietnam?" quotes Cuba's population at confidence 0.07;
    # the terminal, the web chat and the Markdown export all say how little that is
    from qa.answer import Answer, Citation
    from qa.chatview import ChatTurn, turn_html
    from qa.confidence import LOW
    from qa.render import export_markdown, to_text

    c = Citation("article", 12, "Economy", "Cuba has a population of 11 million.", 0, 36, 0.9, context=
                 "Cuba has a population of 11 million.")
    low = Answer("What is the population of Vietnam?", True, c.quote, (c,), "v1", confidence=LOW / 3)
    sure = Answer("What is the population of Cuba?", True, c.quote, (c,), "v1", confidence=0.6)
    refused = Answer("What is the population of Vietnam?", False, None, (c,), "v1", confidence=LOW / 3)
    assert to_text(low).splitlines()[0] == \
        "Low confidence (7%): this passage may not answer the question. Check it in the source."
    assert "Low confidence" not in to_text(sure) and "Low confidence" not in to_text(refused)
    html_low = turn_html(0, ChatTurn(low.question, low), "v1", True)
    assert html_low.index("qa-low") < html_low.index("qa-quote")
    assert "qa-low" not in turn_html(0, ChatTurn(sure.question, sure), "v1", True)
    assert "Low confidence (7%)" in export_markdown([ChatTurn(low.question, low)], "today")
