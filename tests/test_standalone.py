"""The repository stands on its own: a clone with nothing beside it collects every test, and no
test, tool or doc reaches outside the repository for data."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import EVAL, ROOT

CHECKED = ["tests", "qa", "bench", "tools", "docs", "README.md", "eval/README.md"]


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode == 0 and out.stdout.strip():
        return [ROOT / line for line in out.stdout.splitlines()]
    skip = {".venv", ".git", "index", "artifacts", "__pycache__", ".pytest_cache"}
    return [p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]


OUTSIDE = re.compile(r"\.\./\w+/(eval|seed)\b|ROOT\.parent\s*/")  # a data folder beside the repository


def test_nothing_refers_to_a_folder_beside_the_repository():
    offenders = []
    for name in CHECKED:
        base = ROOT / name
        for path in [base] if base.is_file() else sorted(base.rglob("*")):
            if path.is_file() and path != Path(__file__) and path.suffix in {".py", ".md", ".txt", ".toml", ".cfg", ""}:
                if OUTSIDE.search(path.read_text(encoding="utf-8", errors="replace")):
                    offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_development_data_ships_with_its_licence():
    readme = (EVAL / "README.md").read_text(encoding="utf-8")
    assert "CC BY-SA 4.0" in readme and "CC BY 3.0" in readme
    for name in ["dev_qa.jsonl", "dev_chat.jsonl", "squad/normans.txt", "squad/normans_qa.jsonl",
                 "doc2dial/dev_dmv.jsonl", "doc2dial/README.md"]:
        assert (EVAL / name).is_file(), name


def test_a_copy_with_nothing_beside_it_collects_every_test(tmp_path):
    """Copy the tracked files into an empty folder (no data folder beside it) and collect the suite
    there: any module-level read of data outside the repository fails the collection."""
    copy = tmp_path / "alone" / "repo"
    for path in tracked_files():
        rel = path.relative_to(ROOT)
        if path.is_file():
            (copy / rel.parent).mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy / rel)
    assert list(copy.parent.iterdir()) == [copy]  # nothing beside it
    env = {**os.environ, "PYTHONPATH": str(copy)}
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                         cwd=copy, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "tests/test_quality.py" in run.stdout and "error" not in run.stdout.lower()
