"""Issue 16, item 9: every setting is validated with a message naming the variable and the
allowed range; start-up failures (a port taken, an unreadable index folder, `--port 99999`) are
one clear line and exit status 2 in the CLI (the web app's message is in test_safety_web.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from qa import cli
from qa.config import Settings
from qa.errors import QAError


@pytest.mark.parametrize("name, value, allowed", [
    ("QA_MAX_FILE_MB", "nan", "from 0.001 to 1024"),
    ("QA_MAX_FILE_MB", "inf", "from 0.001 to 1024"),
    ("QA_MAX_FILE_MB", "-5", "from 0.001 to 1024"),
    ("QA_CONCURRENCY", "0", "from 1 to 1024"),
    ("QA_QUEUE_SIZE", "0", "from 1 to 100000"),
    ("QA_PORT", "99999", "from 1 to 65535"),
    ("QA_PORT", "0", "from 1 to 65535"),
    ("QA_PORT", "http", "from 1 to 65535"),
    ("QA_TOP_K", "0", "from 1 to 10"),
    ("QA_MAX_QUESTION_CHARS", "0", "from 1 to 100000"),
    ("QA_BATCH_WAIT_MS", "nan", "from 0 to 1000"),
    ("QA_ANN_THRESHOLD", "-1", "from 0 to"),
    ("QA_SHARE", "maybe", "yes/no"),
    ("QA_HOST", " ", "empty"),
])
def test_a_setting_out_of_range_names_the_variable_and_the_allowed_range(name, value, allowed):
    with pytest.raises(QAError) as err:
        Settings.from_env({name: value})
    msg = str(err.value)
    assert msg.startswith(f"{name}=") and allowed in msg and "\n" not in msg, msg


def test_settings_made_in_code_are_validated_too():
    with pytest.raises(QAError, match="QA_CONCURRENCY=0 is out of range"):
        Settings(concurrency=0)
    with pytest.raises(QAError, match="QA_MAX_FILE_MB=nan"):
        Settings().with_(max_file_mb=float("nan"))
    assert Settings.from_env({"QA_SHARE": "off", "QA_PORT": " 8080 "}).port == 8080


def test_a_flag_out_of_range_is_named_as_the_flag():
    with pytest.raises(QAError, match=r"^--port=99999 is out of range: the port must be a whole number from 1 to 65535"):
        Settings.from_env({}, port=99999)


def run_cli(*args, env=None, timeout=120):
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], capture_output=True, text=True, env=environ,
                          timeout=timeout, cwd=ROOT, check=False)


def _one_line(proc) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qa: ") and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return lines[0]


def test_qa_serve_with_port_99999_is_one_line_and_exit_2(tmp_path):
    line = _one_line(run_cli("serve", "--port", "99999", env={"QA_INDEX_DIR": str(tmp_path / "i")}))
    assert "--port=99999 is out of range" in line


@pytest.mark.parametrize("name, value", [("QA_MAX_FILE_MB", "nan"), ("QA_MAX_FILE_MB", "inf"), ("QA_CONCURRENCY", "0")])
def test_qa_with_a_bad_setting_is_one_line_and_exit_2(tmp_path, name, value):
    line = _one_line(run_cli("ask", "Who?", "--index", str(tmp_path / "i"), env={name: value}))
    assert f"{name}={value}" in line


def test_qa_serve_on_a_port_already_taken_is_one_line_and_exit_2(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _one_line(run_cli("serve", "--port", str(port), env={"QA_INDEX_DIR": str(tmp_path / "i")}))
    assert f"127.0.0.1:{port}" in line and "using that port" in line and "--port" in line


def test_qa_with_an_unreadable_index_folder_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    """As root every folder is readable, so the operating system's refusal is injected."""
    index = tmp_path / "index"
    index.mkdir()
    (index / "CURRENT").write_text("20200101-000000-abcdef\n")
    real = Path.read_bytes

    def denied(self):
        if self.parent == index:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    for args in (["documents", "--index", str(index)], ["documents", "--index", str(index), "--json"]):
        assert cli.main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Permission denied" in err[0] and str(index) in err[0], err


def test_qa_with_an_index_path_that_is_a_file_is_one_line_and_exit_2(tmp_path):
    index = tmp_path / "index"
    index.write_text("not a folder")
    line = _one_line(run_cli("build", "--index", str(index), "--source", str(ROOT / "source")))
    assert str(index) in line
