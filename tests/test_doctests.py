"""The examples in qa's docstrings run (pytest does not collect doctests by itself here: no
--doctest-modules in pyproject.toml)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

QA = Path(__file__).resolve().parent.parent / "qa"
WITH_EXAMPLES = sorted(p.stem for p in QA.glob("*.py") if ">>>" in p.read_text("utf-8"))


def test_the_modules_that_must_have_examples_do():
    assert {"retrieval", "tokens"} <= set(WITH_EXAMPLES)


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples(name):
    module = importlib.import_module(f"qa.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in qa/{name}.py failed (see output)"
