"""Issue 16, item 6: terminal escape injection. A document holding ANSI/OSC escape codes (clear
screen, window title, hidden text) or bidi overrides must not drive the terminal through
`qa ask`, `qa chat` or `qa documents`: text output shows them visibly; JSON escapes them."""

from __future__ import annotations

import io
import json

import pytest
from conftest import HashEncoder

from qa import cli
from qa.config import Settings
from qa.engine import Engine
from qa.render import printable

FILLER = " ".join(f"The river trade of the old harbour town grew in year {1800 + i}." for i in range(40))
EVIL = ("Escapes \x1b]0;pwned\x07 title\n\n"
        "The harbour master said \x1b[2J\x1b[H the ship left at dawn \x1b[8mhidden words\x1b[0m and "
        "\u202eevil\u202c came back\r overwritten.\n\n" + FILLER + "\n")
QUESTION = "When did the ship leave according to the harbour master?"


@pytest.fixture
def index(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    (src / "escapes.txt").write_text(EVIL, "utf-8")
    settings = Settings(index_dir=tmp_path / "index", source_dir=src, model="hash-64")
    Engine(settings, encoder=HashEncoder()).library.build([src])
    monkeypatch.setattr(cli, "_engine", lambda s, ensure=True: Engine(s.with_(model="hash-64"), encoder=HashEncoder()))
    return settings


def _no_controls(text: str) -> None:
    bad = [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0 or c in "\u202e\u202c"]
    assert not bad, bad


def test_printable_shows_control_characters_and_keeps_text():
    assert printable("a\x1b[31mred\x1b[0m\tb\nc") == "a␛[31mred␛[0m\tb\nc"
    assert printable("x\x07\x9b\r\u202ey") == "x\\x07\\x9b\\x0d\\u202ey"
    assert printable("Zürich — 東京 👩‍👩‍👧") == "Zürich — 東京 👩‍👩‍👧"  # letters, dashes and emoji joiners untouched


def test_qa_ask_shows_escape_codes_from_a_document_instead_of_obeying_them(index, capsys):
    assert cli.main(["ask", QUESTION, "--index", str(index.index_dir)]) == 0
    out = capsys.readouterr().out
    _no_controls(out)
    assert "␛[2J" in out or "␛[8m" in out, out  # the quote is there, its escapes visible


def test_qa_ask_json_escapes_control_characters_as_json_does(index, capsys):
    assert cli.main(["ask", QUESTION, "--json", "--index", str(index.index_dir)]) == 0
    out = capsys.readouterr().out
    assert not [c for c in out if ord(c) < 32 and c != "\n"]  # JSON escapes C0 controls; nothing else is promised
    assert "\\u001b" in out
    quotes = " ".join(c["quote"] for c in json.loads(out)["citations"])
    assert "\x1b[" in quotes  # the data itself is verbatim


def test_qa_documents_shows_escape_codes_in_a_title_instead_of_obeying_them(index, capsys):
    assert cli.main(["documents", "--index", str(index.index_dir)]) == 0
    out = capsys.readouterr().out
    _no_controls(out)
    assert "␛]0;pwned\\x07" in out, out


def test_qa_chat_shows_escape_codes_instead_of_obeying_them(index, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(QUESTION + "\n\x1b[2J what about \x1b]0;x\x07 it?\n"))
    assert cli.main(["chat", "--index", str(index.index_dir)]) == 0
    captured = capsys.readouterr()
    _no_controls(captured.out + captured.err)
