"""`qa build --url` against an HTTP server the test starts on 127.0.0.1: pages and PDFs are
fetched, saved in the source folder and indexed; other schemes, redirects away from http(s),
HTTP errors, oversize bodies and slow servers are refused with a clear message. Also runs the
docstring examples of qa/formats/."""

from __future__ import annotations

import doctest
import importlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import HashEncoder
from formats_fixtures import one_page_pdf

from qa import cli
from qa.errors import InputError
from qa.formats import fetch

PAGE = (b"<html><head><title>Wombats</title></head><body><nav>Home | About</nav><article><h1>Wombats</h1>"
        b"<p>Wombats dig burrows with their strong claws and live in Australia.</p>"
        b"<p>Their droppings are cube-shaped, which stops them rolling away.</p></article>"
        b"<footer>&copy; 2024 Animal Blog. All rights reserved.</footer></body></html>")
PDF = one_page_pdf(b"BT /F1 12 Tf 72 700 Td (Echidnas lay eggs.) Tj ET")


class Handler(BaseHTTPRequestHandler):
    routes = {
        "/wombats/": (200, "text/html; charset=utf-8", PAGE),
        "/papers/echidna.pdf": (200, "application/pdf", PDF),
        "/big": (200, "text/plain", b"x" * 3000),
    }

    def do_GET(self):  # noqa: N802
        if self.path == "/slow":
            time.sleep(2)
        if self.path == "/to-file":
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.end_headers()
            return
        status, ctype, body = self.routes.get(self.path, (404, "text/plain", b"not here"))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if self.path != "/big":  # the oversize body does not announce its length
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading at its size limit

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_names_pages_and_documents_by_url_and_type(server):
    assert fetch.fetch(f"{server}/wombats/", 1 << 20) == ("wombats.html", PAGE)
    assert fetch.fetch(f"{server}/papers/echidna.pdf", 1 << 20) == ("echidna.pdf", PDF)


def test_build_url_saves_and_indexes_pages_and_pdfs(server, settings, monkeypatch, capsys):
    monkeypatch.setenv("QA_MODEL", "hash-64")
    monkeypatch.setenv("QA_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("QA_SOURCE_DIR", str(settings.source_dir))
    monkeypatch.setattr("qa.embedding.shared_encoder", lambda *a, **k: HashEncoder())
    assert cli.main(["build"]) == 0
    assert cli.main(["build", "--add", "--url", f"{server}/wombats/", "--url", f"{server}/papers/echidna.pdf"]) == 0
    out = capsys.readouterr().out
    assert "3 documents" in out and "saved: " in out
    assert (settings.source_dir / "wombats.html").read_bytes() == PAGE
    assert (settings.source_dir / "echidna.pdf").read_bytes() == PDF
    assert cli.main(["ask", "--json", "Do echidnas lay eggs?"]) == 0
    answer = json.loads(capsys.readouterr().out)
    echidna = next(c for c in answer["citations"] if c["quote"] == "Echidnas lay eggs.")
    assert echidna["page"] == 1


@pytest.mark.parametrize("path,match", [
    ("/missing", "answered HTTP 404"),
    ("/to-file", "only http and https addresses are fetched"),
    ("/big", "MB or more, over the"),
], ids=["http-404", "redirect-to-file", "oversize-body"])
def test_bad_urls_are_refused(server, path, match):
    with pytest.raises(InputError, match=match):
        fetch.fetch(f"{server}{path}", 2048)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x.txt", "javascript:alert(1)", "example.org"])
def test_non_http_addresses_are_refused(url):
    with pytest.raises(InputError, match="is not an http\\(s\\) address"):
        fetch.fetch(url, 1 << 20)


def test_slow_server_is_refused_after_the_timeout(server):
    t = time.monotonic()
    with pytest.raises(InputError, match="could not be fetched .*timeout 0.5 s"):
        fetch.fetch(f"{server}/slow", 1 << 20, timeout=0.5)
    assert time.monotonic() - t < 2


def test_cli_refuses_url_with_source(tmp_path, capsys):
    assert cli.main(["build", "--url", "http://127.0.0.1:9/x", "--source", str(tmp_path)]) == 2
    assert "Give --source or --url, not both" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["qa.formats", "qa.formats.html", "qa.formats.text", "qa.formats.fetch"])
def test_formats_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
