"""Documentation checked by tests: every Settings field is in the README's settings table."""

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
