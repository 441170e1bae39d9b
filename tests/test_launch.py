"""Starting the app (issue 5): safe launch defaults, files outside the app refused, and failures
at start -- a missing or broken model, an unreadable index, a full disk -- giving one clear
message while the app stays up. `serve()` itself is run (only `launch` is told not to block).

Engine-level failure handling (corrupt versions published while serving, ENOSPC inside
`write_version`, killed builds) is in test_store.py / test_rebuild.py; here it is the start-up
path and what the person using the app or the CLI sees.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import (
    ARTICLE,
    PASTED,
    QUESTION,
    QUESTION_BOX,
    ROOT,
    HashEncoder,
    free_port,
    hashing,
    served,
    shot,
    wait_ready,
)
from gradio_client import Client
from playwright.sync_api import expect

from qa import cli, store
from qa import ui as qa_ui
from qa.config import Settings
from qa.engine import Engine
from qa.ui import GENERIC_ERROR, Handlers, launch_kwargs

# --- launch settings ------------------------------------------------------------------------------

def test_launch_kwargs_are_safe_by_default_and_follow_qa_settings(monkeypatch):
    for key in [k for k in os.environ if k.startswith("QA_")]:
        monkeypatch.delenv(key)
    kw = launch_kwargs(Settings.from_env())
    assert kw["server_name"] == "127.0.0.1" and kw["share"] is False
    assert kw["max_file_size"] == 5 * 1024 * 1024 and kw["enable_monitoring"] is False and kw["show_error"] is False
    assert "auth" not in kw and "allowed_paths" not in kw and not kw.get("mcp_server")
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"  # set before gradio is imported

    monkeypatch.setenv("QA_HOST", "0.0.0.0")
    monkeypatch.setenv("QA_MAX_FILE_MB", "1")
    wide = Settings.from_env()
    assert launch_kwargs(wide)["server_name"] == "0.0.0.0" and launch_kwargs(wide)["share"] is False
    assert launch_kwargs(wide)["max_file_size"] == 1024 * 1024
    assert qa_ui.access(wide) == "readonly"  # reachable by others without a password: no rebuilds
    monkeypatch.setenv("QA_SHARE", "1")
    assert launch_kwargs(Settings.from_env())["share"] is True  # only when asked for


def own_address() -> str | None:
    """This machine's address on its default route (no packet is sent), or None without one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ip.startswith("127.") else ip


def test_serve_binds_loopback_sets_limits_and_refuses_files_outside_the_app(tmp_path, monkeypatch):
    source = tmp_path / "source"
    source.mkdir()
    (source / ARTICLE.name).write_bytes(ARTICLE.read_bytes())
    settings = Settings(index_dir=tmp_path / "index", source_dir=source, model="hash-64", port=free_port(),
                        max_file_mb=0.1)  # 100 KB: the article fits, the test upload does not
    with served(settings, monkeypatch, hashing) as app:
        demo, kw, url = app.demo, app.kwargs, app.url
        assert kw["server_name"] == "127.0.0.1" and kw["share"] is False and kw["enable_monitoring"] is False
        assert kw["max_file_size"] == settings.max_file_bytes
        assert demo.local_url.startswith("http://127.0.0.1:") and not demo.share_url
        assert demo._queue.max_size == settings.queue_size and demo.analytics_enabled is False
        ip = own_address()
        if ip is not None:  # bound to loopback only: not reachable on the machine's own address
            with pytest.raises(OSError), socket.create_connection((ip, settings.port), timeout=3):
                pass

        client = Client(url, verbose=False)
        data = wait_ready(client)
        assert data.get("found") is True, data  # the background start-up built the missing index

        version = store.current_version(settings.index_dir)
        secrets = [Path("/etc/passwd"), settings.index_dir / "CURRENT", settings.index_dir / "versions" / version /
                   "manifest.json", source / ARTICLE.name, ROOT / "pyproject.toml", ROOT / "qa" / "config.py"]
        urls = [f"gradio_api/file={p}" for p in secrets] + [
            "gradio_api/file=../../../../../../etc/passwd",
            "gradio_api/file=..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
            "gradio_api/file=%2Fetc%2Fpasswd",
            "gradio_api/file=//etc/passwd",
            "gradio_api/file=pyproject.toml",  # relative to the working directory
            "gradio_api/file=qa/config.py",
            f"gradio_api/file={settings.index_dir}",
            "gradio_api/file=" + "/".join([".."] * 8) + str(settings.index_dir / "CURRENT"),
            "file=/etc/passwd",
            "monitoring",
            "gradio_api/monitoring",
        ]
        needles = [p.read_bytes()[:60] for p in secrets if p.is_file() and p.stat().st_size]
        with httpx.Client(base_url=url, timeout=10, trust_env=False) as http:
            for path in urls:
                r = http.get(path)
                assert r.status_code in (401, 403, 404), (path, r.status_code)
                assert not any(n in r.content for n in needles), path
            # uploads over max_file_size are refused by the server itself
            big = http.post("gradio_api/upload", files={"files": ("big.txt", b"x" * (settings.max_file_bytes + 1))})
            assert big.status_code in (400, 413), big.status_code
            small = http.post("gradio_api/upload", files={"files": ("small.txt", b"The kangaroo hops.")})
            assert small.status_code == 200


# --- failures at start ------------------------------------------------------------------------------



def broken_model(kind: str, tmp_path: Path) -> tuple[str, str]:
    """A QA_MODEL value that cannot load, and the words its message must contain."""
    folder = tmp_path / f"model-{kind}"
    if kind == "missing":
        return str(folder), "does not exist"
    folder.mkdir()
    if kind == "corrupt":
        (folder / "config.json").write_text("{ not json", "utf-8")
        (folder / "modules.json").write_text("garbage", "utf-8")
        (folder / "model.safetensors").write_bytes(os.urandom(256))
    return str(folder), "not a complete sentence-transformers model folder"


@pytest.mark.parametrize("kind", ["missing", "empty", "corrupt"])
def test_cli_ask_with_a_broken_model_prints_one_line_and_exits_2(kind, tmp_path, monkeypatch, capsys):
    model, words = broken_model(kind, tmp_path)
    source = tmp_path / "source"
    source.mkdir()
    (source / ARTICLE.name).write_bytes(ARTICLE.read_bytes())
    monkeypatch.setenv("QA_MODEL", model)
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("QA_SOURCE_DIR", str(source))
    assert cli.main(["ask", QUESTION]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("qa: ") and words in lines[0] and model in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "index" / "CURRENT").exists()  # nothing half-built was published


def test_cli_as_a_process_with_a_missing_model_and_an_existing_index(tmp_path):
    """The real command line (own process, real logging) on an index built with another model."""
    index = tmp_path / "index"
    Engine(Settings(index_dir=index, source_dir=tmp_path, model="hash-64"), encoder=HashEncoder()).library.build([ARTICLE])
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(QA_MODEL=str(tmp_path / "no-model"), QA_INDEX_DIR=str(index), QA_SOURCE_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "qa.cli", "ask", QUESTION], capture_output=True, text=True,
                          check=False, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "Traceback" not in proc.stderr
    # one clear line: no stale-index WARNING ("the model changed ... not rebuilt") repeating it first
    assert proc.stderr.splitlines() == [
        f"qa: Model folder '{tmp_path / 'no-model'}' does not exist. Check QA_MODEL / --model."], proc.stderr


def test_start_with_only_a_file_over_the_size_limit_names_it_and_the_limit(tmp_path, monkeypatch, capsys):
    """Not "Nothing to index" alone: which file was skipped and why, in the app and in the CLI."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "big.txt").write_text("A paragraph about kangaroos.\n\n" * 5000, "utf-8")  # ~150 KB
    settings = Settings(index_dir=tmp_path / "index", source_dir=source, model="hash-64", max_file_mb=0.125)
    startup = qa_ui.Startup()
    startup.run(hashing(settings))
    assert startup.error.startswith("Nothing to index"), startup.error
    assert "big.txt is 0.1 MB, over the 0.125 MB limit" in startup.error and "QA_MAX_FILE_MB" in startup.error
    assert startup.error in Handlers(hashing(settings), settings, startup).api_ask(QUESTION)
    monkeypatch.setattr("qa.embedding.shared_encoder", lambda *a, **k: HashEncoder())
    for name, value in (("QA_MODEL", "hash-64"), ("QA_MAX_FILE_MB", "0.125"), ("QA_INDEX_DIR", str(settings.index_dir)),
                        ("QA_SOURCE_DIR", str(source))):
        monkeypatch.setenv(name, value)
    assert cli.main(["ask", QUESTION]) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("qa: Nothing to index") and "big.txt is 0.1 MB, over the 0.125 MB limit" in last, last
    assert not (tmp_path / "index" / "CURRENT").exists()


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_serve_with_a_broken_model_stays_up_and_says_why(kind, tmp_path, monkeypatch):
    model, words = broken_model(kind, tmp_path)
    source = tmp_path / "source"
    source.mkdir()
    (source / ARTICLE.name).write_bytes(ARTICLE.read_bytes())
    settings = Settings(index_dir=tmp_path / "index", source_dir=source, model=model, port=free_port())
    with served(settings, monkeypatch) as app:
        url = app.url
        client = Client(url, verbose=False)
        data = wait_ready(client)
        assert data["error"].startswith("The index could not be built: ") and words in data["error"], data
        md = client.predict(QUESTION, api_name="/ask")
        assert md == data["error"] and "Traceback" not in md and GENERIC_ERROR not in md
        assert httpx.get(url, timeout=10, trust_env=False).status_code == 200  # the page still renders


@pytest.mark.browser
def test_the_page_shows_a_start_up_failure(tmp_path, monkeypatch, page):
    model, words = broken_model("missing", tmp_path)
    settings = Settings(index_dir=tmp_path / "index", source_dir=tmp_path / "source", model=model, port=free_port())
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / ARTICLE.name).write_bytes(ARTICLE.read_bytes())
    with served(settings, monkeypatch) as app:
        url = app.url
        wait_ready(Client(url, verbose=False))
        page.goto(url)
        expect(page.get_by_text("The index could not be built: Model folder")).to_be_visible()  # status line
        box = page.locator(QUESTION_BOX)
        box.fill(QUESTION)
        box.press("Enter")
        expect(page.locator("[data-testid='bot']").last).to_contain_text(f"The index could not be built: "
                                                                         f"Model folder '{model}' {words}")
        shot(page, "12_start_up_failure")
        page.watch.assert_clean()


def _corrupt(index_dir: Path) -> str:
    version = store.current_version(index_dir)
    folder = store.versions_dir(index_dir) / version
    for name in ("manifest.json", "chunk_vectors.npy"):
        if (folder / name).exists():
            (folder / name).write_bytes(b"\x00garbage\xff" * 10)
    return version


@pytest.mark.parametrize("sources_left", [True, False])
def test_serve_with_an_unreadable_index(sources_left, tmp_path, monkeypatch):
    source = tmp_path / "source"
    source.mkdir()
    (source / ARTICLE.name).write_bytes(ARTICLE.read_bytes())
    settings = Settings(index_dir=tmp_path / "index", source_dir=source, model="hash-64", port=free_port())
    hashing(settings).library.build([source])
    broken = _corrupt(settings.index_dir)
    if not sources_left:
        (source / ARTICLE.name).unlink()
    with served(settings, monkeypatch, hashing) as app:
        url = app.url
        data = wait_ready(Client(url, verbose=False))
        if sources_left:  # rebuilt at start from the sources, then served
            assert data["found"] is True and data["index_version"] != broken
        else:  # nothing to rebuild from: one clear message, not a traceback
            assert "error" in data and data["error"] != GENERIC_ERROR and "Traceback" not in data["error"]
            assert f"Index version {broken} has an unreadable" in data["error"] and "qa build" in data["error"], data
        assert httpx.get(url, timeout=10, trust_env=False).status_code == 200


def test_a_broken_version_published_while_serving_is_not_served(tmp_path, monkeypatch):
    source = tmp_path / "source"
    source.mkdir()
    (source / ARTICLE.name).write_bytes(ARTICLE.read_bytes())
    settings = Settings(index_dir=tmp_path / "index", source_dir=source, model="hash-64", port=free_port())
    with served(settings, monkeypatch, hashing) as app:
        url = app.url
        client = Client(url, verbose=False)
        good = wait_ready(client)["index_version"]
        other = hashing(settings.with_(index_dir=settings.index_dir))
        other.library.build([source])  # another process publishes a new version ...
        _corrupt(settings.index_dir)  # ... which is then damaged on disk
        data = client.predict(QUESTION, [], api_name="/answer_json")
        assert data["found"] is True and data["index_version"] == good  # the old version keeps serving


def test_full_disk_during_a_rebuild_from_the_app_keeps_the_old_index(fake_engine, settings, monkeypatch):
    h = Handlers(fake_engine, fake_engine.settings)
    old = h.current_version()
    before = sorted(p.name for p in settings.source_dir.iterdir())

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "write_version", full)
    for mode in ("Replace", "Add"):
        message = h.rebuild(None, PASTED, "", mode, "")
        assert message.startswith("**Not rebuilt:**") and "No space left on device" in message, message
        assert f"version {old} is still being served" in message.replace("\\", "")
        assert h.current_version() == old
        assert sorted(p.name for p in settings.source_dir.iterdir()) == before  # the saved upload was removed
    turn = h.turn(QUESTION, [])
    assert turn.answer.citations and turn.answer.index_version == old
    monkeypatch.undo()
    assert "Replaced." in h.rebuild(None, PASTED, "", "Replace", "")


def test_full_disk_at_the_first_build_shows_in_the_app(tmp_path, monkeypatch):
    source = tmp_path / "source"
    source.mkdir()
    (source / ARTICLE.name).write_bytes(ARTICLE.read_bytes())
    settings = Settings(index_dir=tmp_path / "index", source_dir=source, model="hash-64", port=free_port())

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "write_version", full)
    with served(settings, monkeypatch, hashing) as app:
        url = app.url
        data = wait_ready(Client(url, verbose=False))
        assert data["error"].startswith("The index could not be built: Could not write the new index version")
        assert "No space left on device" in data["error"] and "nothing was published" in data["error"]
