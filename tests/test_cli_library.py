"""The CLI's build / documents / ask / chat over the library: with the hashing encoder, and one
end-to-end run with the real model."""

from __future__ import annotations

import io
import json
import sys

import pytest
from conftest import (
    ARTICLE,
    ARTICLE_ID,
    HashEncoder,
    doc_text,
)

from qa import cli, document, store

# --- CLI with the hashing encoder -------------------------------------------------------------------

@pytest.fixture
def cli_env(settings, monkeypatch):
    monkeypatch.setenv("QA_MODEL", "hash-64")
    monkeypatch.setenv("QA_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("QA_SOURCE_DIR", str(settings.source_dir))
    monkeypatch.setattr("qa.embedding.shared_encoder", lambda *a, **k: HashEncoder())
    return settings


def test_cli_build_add_documents_remove(cli_env, outside, capsys):
    s = cli_env
    assert cli.main(["build"]) == 0
    assert "Built. Now serving version" in capsys.readouterr().out
    assert cli.main(["build", "--add", "--source", str(outside / "normans.txt")]) == 0
    out = capsys.readouterr().out
    assert "copied into the source folder" in out and (s.source_dir / "normans.txt").exists()
    assert cli.main(["documents"]) == 0
    out = capsys.readouterr().out
    assert f"- {ARTICLE_ID}: The Unbreakable Alliance" in out and "- normans: Normans — 39 paragraphs" in out
    assert cli.main(["documents", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [d["id"] for d in listed["documents"]] == [ARTICLE_ID, "normans"]
    assert cli.main(["documents", "--remove", "normans"]) == 0
    assert "moved to" in capsys.readouterr().out
    assert not (s.source_dir / "normans.txt").exists() and (outside / "normans.txt").exists()
    assert cli.main(["documents", "--remove", "normans"]) == 2
    assert "No document 'normans'" in capsys.readouterr().err
    bad = outside / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4")
    assert cli.main(["build", "--add", "--source", str(bad)]) == 2
    assert "bad.pdf is not a readable PDF" in capsys.readouterr().err
    assert cli.main(["build", "--source", str(outside / "missing.txt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    cli.main(["documents"])
    assert "normans" not in capsys.readouterr().out


def test_cli_named_missing_index_is_not_built(cli_env, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert cli.main(["ask", "Who?", "--index", str(missing)]) == 2
    assert "qa build --index" in capsys.readouterr().err
    assert not (missing / "CURRENT").exists()
    assert cli.main(["documents", "--index", str(missing)]) == 2


# --- CLI with the real model ---------------------------------------------------------------------------

def test_cli_build_ask_and_chat_with_the_real_model(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("QA_MODEL", raising=False)
    monkeypatch.setenv("QA_SOURCE_DIR", str(tmp_path / "source"))
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "default-index"))
    article = document.load_file(ARTICLE, 5 << 20)
    excerpt = tmp_path / "excerpt.txt"  # a short part of the article keeps the real-model build quick
    excerpt.write_text(doc_text(article.title, article.paragraph(1).text, "Historical context",
                                article.paragraph(4).text, "Matija Šerić", article.paragraph(21).text), "utf-8")
    index = tmp_path / "D"
    assert cli.main(["build", "--source", str(excerpt), "--index", str(index)]) == 0
    assert "1 document, 3 paragraphs" in capsys.readouterr().out

    assert cli.main(["ask", "When did Che Guevara visit Pyongyang?", "--index", str(index), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["found"] is True and answer["index_version"] == store.current_version(index)
    top = answer["citations"][0]
    assert top["document"] == ARTICLE_ID and top["paragraph"] == 2 and top["section"] == "Historical context"
    assert "Che Guevara" in top["quote"] and answer["answer"] == top["quote"]
    text = document.load_file(excerpt, 5 << 20).text
    for c in answer["citations"]:
        assert text[c["start"]:c["end"]] == c["quote"]

    monkeypatch.setattr(sys, "stdin", io.StringIO("Who is Matija Šerić?\n\nWhat is the capital of France?\n"))
    assert cli.main(["ask", "-", "--index", str(index), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["question"] for x in lines] == ["Who is Matija Šerić?", "What is the capital of France?"]
    assert lines[0]["found"] and lines[0]["citations"][0]["paragraph"] == 3
    assert lines[1]["citations"] and (lines[1]["answer"] is None) == (lines[1]["found"] is False)

    monkeypatch.setattr(sys, "stdin", io.StringIO("When did Che Guevara visit Pyongyang?\n/reset\n\nWho is Matija Šerić?\n"))
    assert cli.main(["chat", "--index", str(index), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["question"] for x in lines] == ["When did Che Guevara visit Pyongyang?", "Who is Matija Šerić?"]
    assert [x["citations"][0]["paragraph"] for x in lines] == [2, 3]

    monkeypatch.setattr(sys, "stdin", io.StringIO("Who is Matija Šerić?\n/reset\n"))
    assert cli.main(["chat", "--index", str(index)]) == 0
    assert "(new conversation)" in capsys.readouterr().out
    assert not (tmp_path / "default-index").exists() and not (tmp_path / "source").exists()


def test_cli_documents_says_1_section_not_1_sections(cli_env, outside, capsys):
    # `qa documents` listed a one-section libffi page as "2 paragraphs, 1 sections".
    page = outside / "one-section.txt"
    page.write_text("Closure Example\n\nIntroduction\n\nA trivial example that binds fputs with stdout.\n", encoding="utf-8")
    assert cli.main(["build", "--source", str(page)]) == 0
    capsys.readouterr()
    assert cli.main(["documents"]) == 0
    assert "— 1 paragraph, 1 section (" in capsys.readouterr().out


def test_cli_build_from_a_folder_names_the_files_it_did_not_read(cli_env, tmp_path, capsys):
    # /usr/share/doc/base-passwd holds users-and-groups.html, README, copyright and changelog.gz:
    # only the HTML was indexed, and nothing said so.
    folder = tmp_path / "doc"
    folder.mkdir()
    (folder / "guide.txt").write_text("Guide\n\nThe daemon user runs daemons.\n", encoding="utf-8")
    (folder / "README").write_text("Read me first.\n", encoding="utf-8")
    (folder / "changelog.gz").write_bytes(b"\x1f\x8b\x08\x00")
    (folder / ".hidden.txt").write_text("secret\n", encoding="utf-8")
    assert cli.main(["build", "--source", str(folder)]) == 0
    err = capsys.readouterr().err
    assert f"not read from {folder} (2 file(s) in other formats): README, changelog.gz." in err
    assert ".hidden" not in err
    assert cli.main(["build", "--add", "--source", str(folder / "README")]) == 0  # by name, it is read
