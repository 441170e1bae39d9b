"""Issue 16, items 3-5 and the web half of 9: who may reach the app, what a read-only app
accepts, how fast an admin password can be guessed, and a start-up failure shown clearly.

The launched-app tests speak raw HTTP (http.client: Host and Origin exactly as given) to the
real `serve()`; the rest call the guard and the handlers directly.
"""

from __future__ import annotations

import http.client
from pathlib import Path

import gradio as gr
import pytest
from conftest import ARTICLE, PASTED, QUESTION, HashEncoder, free_port, hashing, served, wait_ready
from gradio_client import Client

from qa import guard, store
from qa.config import Settings
from qa.engine import Engine
from qa.errors import NotAllowed
from qa.ui import Handlers, build_app, launch_kwargs


def raw(port: int, method: str, path: str, host: str, origin: str | None = None, body: bytes = b"",
        headers: dict | None = None, address: str = "127.0.0.1") -> tuple[int, bytes]:
    """One HTTP request with exactly these Host/Origin headers; (status, body)."""
    conn = http.client.HTTPConnection(address, port, timeout=20)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        if origin is not None:
            conn.putheader("Origin", origin)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if method not in ("GET", "HEAD") and "Content-Length" not in (headers or {}):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _settings(tmp_path: Path, **kw) -> Settings:
    source = tmp_path / "source"
    source.mkdir(exist_ok=True)
    (source / ARTICLE.name).write_bytes(ARTICLE.read_bytes())
    return Settings(index_dir=tmp_path / "index", source_dir=source, model="hash-64", port=free_port(), **kw)


JOIN = "/gradio_api/queue/join"


def _rebuild_fn_index(demo: gr.Blocks) -> int:
    """The event id of the Documents tab's "Rebuild index" button (what an attacker would call)."""
    for i, dep in enumerate(demo.config["dependencies"]):
        if len(dep.get("inputs", [])) == 5:
            return i
    raise AssertionError("no rebuild event")


def test_dns_rebinding_forged_host_gets_403_before_any_handler_runs(tmp_path, monkeypatch):
    settings = _settings(tmp_path, allowed_hosts="qa.example.org")
    with served(settings, monkeypatch, hashing) as app:
        port = settings.port
        wait_ready(Client(app.url, verbose=False))
        before = store.current_version(settings.index_dir)
        fn = _rebuild_fn_index(app.demo)
        attack = (b'{"data": [null, "Attacker text replaces the index.", "Pwned", "Replace", ""], '
                  b'"fn_index": %d, "session_hash": "abc123"}' % fn)
        for host in ("evil.test", f"evil.test:{port}", f"127.0.0.1.evil.test:{port}", f"rebind.attacker.example:{port}",
                     "", f"localhost.:{port}x"):
            for method, path, body in (("GET", "/", b""), ("GET", "/gradio_api/info", b""),
                                       ("POST", JOIN, attack), ("POST", "/gradio_api/upload", b"x")):
                status, text = raw(port, method, path, host, body=body,
                                   headers={"Content-Type": "application/json"} if body else None)
                assert status == 403 and b"Host" in text, (host, method, path, status, text[:200])
        assert store.current_version(settings.index_dir) == before  # the rebuild handler never ran
        assert store.load(settings.index_dir).documents[0].id != "pwned"
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}",
                     f"qa.example.org:{port}", f"QA.Example.Org.:{port}"):  # its own names and QA_ALLOWED_HOSTS
            status, _ = raw(port, "GET", "/gradio_api/info", host)
            assert status == 200, (host, status)
        # a state-changing request with a foreign Origin (a page on another site) is refused too
        for origin in ("http://evil.test", f"http://evil.test:{port}", "null", "https://127.0.0.1.evil.test"):
            status, text = raw(port, "POST", JOIN, f"127.0.0.1:{port}", origin=origin, body=attack,
                               headers={"Content-Type": "application/json"})
            assert status == 403 and b"Origin" in text, (origin, status, text[:200])
        status, _ = raw(port, "GET", "/gradio_api/info", f"127.0.0.1:{port}", origin="http://evil.test")
        assert status == 200  # reading is not state-changing: Gradio's CORS rules apply as before
        assert store.current_version(settings.index_dir) == before
        # the app's own page (same origin) still works
        client = Client(app.url, verbose=False)
        assert client.predict(QUESTION, [], api_name="/answer_json")["found"] is True


def test_oversized_request_body_is_refused_with_413(tmp_path, monkeypatch):
    settings = _settings(tmp_path)
    with served(settings, monkeypatch, hashing) as app:
        port = settings.port
        wait_ready(Client(app.url, verbose=False))
        status, _ = raw(port, "POST", "/gradio_api/call/answer_json", f"127.0.0.1:{port}", body=b"{}",
                        headers={"Content-Type": "application/json",
                                 "Content-Length": str(guard.MAX_BODY_BYTES + 1)})
        assert status == 413


def test_a_read_only_public_app_accepts_no_uploads(tmp_path, monkeypatch):
    # 127.0.0.2 is loopback to the kernel but not one of Settings' loopback names: the app
    # treats itself as reachable by others (read-only without a password) and nothing is exposed
    settings = _settings(tmp_path, host="127.0.0.2")
    assert not settings.admin_password and settings.is_public
    upload_dir = Path(gr.utils.get_upload_folder())
    before = {p for p in upload_dir.rglob("*")} if upload_dir.exists() else set()
    with served(settings, monkeypatch, hashing):
        port = settings.port
        body = (b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"x.txt\"\r\n"
                b"Content-Type: text/plain\r\n\r\n" + b"anonymous upload " * 1000 + b"\r\n--b--\r\n")
        for _ in range(5):
            status, text = raw(port, "POST", "/gradio_api/upload", f"127.0.0.2:{port}", body=body,
                               headers={"Content-Type": "multipart/form-data; boundary=b"}, address="127.0.0.2")
            assert status == 403 and b"read-only" in text, (status, text[:200])
        status, _ = raw(port, "GET", "/gradio_api/info", f"127.0.0.2:{port}", address="127.0.0.2")
        assert status == 200
    after = {p for p in upload_dir.rglob("*")} if upload_dir.exists() else set()
    assert not [p for p in after - before if b"anonymous upload" in (p.read_bytes() if p.is_file() else b"")]


def test_uploaded_temporary_files_are_deleted_after_use_and_on_a_timer(fake_engine, tmp_path):
    h = Handlers(fake_engine, fake_engine.settings)
    upload_dir = Path(gr.utils.get_upload_folder()) / "qa-test-upload"
    upload_dir.mkdir(parents=True, exist_ok=True)
    uploaded = upload_dir / "kangaroo.txt"
    uploaded.write_text(PASTED)
    elsewhere = tmp_path / "mine.txt"  # a file outside Gradio's upload folder is never deleted
    elsewhere.write_text("Wombat notes\n\nThe wombat digs burrows.\n")
    message = h.rebuild([str(uploaded), str(elsewhere)], None, None, "Add", "")
    assert message.startswith("Added."), message
    assert not uploaded.exists() and elsewhere.exists()
    demo = build_app(fake_engine, fake_engine.settings)
    assert demo.delete_cache == guard.UPLOAD_CACHE  # and Gradio's timer removes abandoned ones


# --- admin password -------------------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_admin_password_guesses_back_off_per_client():
    clock = Clock()
    t = guard.PasswordThrottle(clock)
    for _ in range(guard.FREE_TRIES):  # a few typos cost nothing
        t.check("1.2.3.4")
        assert t.failed("1.2.3.4") == 0
    waits = []
    for _ in range(12):
        t.check("1.2.3.4")
        waits.append(t.failed("1.2.3.4"))
        with pytest.raises(NotAllowed, match="Too many wrong admin passwords"):
            t.check("1.2.3.4")  # refused before the password is even compared
        t.check("5.6.7.8")  # another client is not slowed down
        clock.now += waits[-1]
    assert waits[:4] == [2.0, 4.0, 8.0, 16.0] and waits[-1] == guard.MAX_WAIT_S
    # 300 guesses (issue 16: 37.6 s) now take hours
    assert sum(min(guard.FIRST_WAIT_S * 2 ** i, guard.MAX_WAIT_S) for i in range(300 - guard.FREE_TRIES)) > 20 * 3600
    t.succeeded("1.2.3.4")
    t.check("1.2.3.4")  # a right password clears the count


def test_admin_password_guessing_through_the_app_is_slowed(fake_engine):
    settings = fake_engine.settings.with_(host="0.0.0.0", admin_password="correct horse")
    h = Handlers(Engine(settings, encoder=HashEncoder()), settings)
    version = h.current_version()
    for i in range(guard.FREE_TRIES + 1):
        assert "Wrong or missing admin password" in h.rebuild(None, PASTED, "", "Add", f"guess{i}", client="6.6.6.6")
    refused = h.rebuild(None, PASTED, "", "Add", "correct horse", client="6.6.6.6")
    assert "Too many wrong admin passwords" in refused  # even the right one waits
    assert "Too many" in h.remove("x", "guess", client="6.6.6.6")
    assert h.rebuild(None, PASTED, "", "Add", "correct horse", client="7.7.7.7").startswith("Added.")
    assert h.current_version() != version


def test_admin_password_comparison_is_constant_time(monkeypatch):
    seen = []
    real = guard.hmac.compare_digest
    monkeypatch.setattr(guard.hmac, "compare_digest", lambda a, b: (seen.append((len(a), len(b))), real(a, b))[1])
    assert guard.same_password("s3cret", "s3cret") and not guard.same_password("s", "s3cret")
    assert not guard.same_password(None, "s3cret") and not guard.same_password("x" * 10_000, "s3cret")
    assert seen and all(a == b == 32 for a, b in seen)  # digests: equal length whatever was typed


# --- start-up failures in the web app -------------------------------------------------------------

def test_web_app_with_an_unreadable_index_folder_says_so(tmp_path, monkeypatch):
    settings = _settings(tmp_path)
    settings.index_dir.write_text("not a folder")  # the index path is a file: unreadable as an index
    with served(settings, monkeypatch, hashing) as app:
        data = wait_ready(Client(app.url, verbose=False))
    assert "went wrong" not in data["error"], data
    assert str(settings.index_dir) in data["error"] and "Check that the folder exists" in data["error"], data


def test_launch_kwargs_put_the_host_guard_in_front_of_every_route():
    kw = launch_kwargs(Settings())
    (mw,) = kw["app_kwargs"]["middleware"]
    assert mw.cls is guard.HostGuard and mw.kwargs["read_only"] is False
    assert launch_kwargs(Settings(host="0.0.0.0"))["app_kwargs"]["middleware"][0].kwargs["read_only"] is True
    assert launch_kwargs(Settings(host="0.0.0.0", admin_password="x"))["app_kwargs"]["middleware"][0].kwargs[
        "read_only"] is False


def test_when_bound_to_every_interface_an_ip_address_host_is_accepted_but_no_foreign_name():
    s = Settings(host="0.0.0.0")
    assert guard.host_allowed("192.168.1.20", s) and guard.host_allowed("fe80::1", s)
    assert not guard.host_allowed("evil.test", s) and not guard.host_allowed("", s)
    assert not guard.host_allowed("192.168.1.20", Settings())  # loopback app: only its own names
    assert guard.host_allowed("abc123.gradio.live", Settings(share=True))
    assert not guard.host_allowed("abc123.gradio.live", Settings())
