"""Documentation checked by tests: every Settings field is in the README's settings table, and the
README's opening example is what the tool answers."""

from dataclasses import fields

from conftest import ROOT

from qa.config import DOCS, Settings


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text("utf-8")
    for f in fields(Settings):
        assert f"`QA_{f.name.upper()}`" in readme, f"QA_{f.name.upper()} missing from README settings table"
        assert f.name in DOCS


def test_readme_opens_with_the_two_commands():
    readme = (ROOT / "README.md").read_text("utf-8")
    head = readme[:1500]
    assert "make run" in head and "make test" in head
    assert "make test" in (ROOT / ".ci" / "run").read_text("utf-8")


def test_the_readmes_example_answer_is_what_the_tool_answers(real_engine):
    import re

    readme = (ROOT / "README.md").read_text("utf-8")
    block = re.search(r'Ask "([^"]+)" and get, word for word from the article:\n\n((?:> .*\n)+)', readme)
    question, quoted = block.group(1), " ".join(line[2:] for line in block.group(2).splitlines())
    quote, label = quoted.split(" — ")
    first = real_engine.ask(question).citations[0]
    assert " ".join(first.quote.split()) == quote
    assert label == f"**¶{first.paragraph} · {first.section}**"
