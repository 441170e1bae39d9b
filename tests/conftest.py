"""Shared fixtures: a deterministic hashing encoder for fast unit tests, the real model for
integration tests (always available offline, never skipped), and tmp index folders."""

from __future__ import annotations

import hashlib
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client
from playwright.sync_api import expect

from qa import store, ui_startup, versionfiles
from qa.config import Settings
from qa.engine import Engine
from qa.ui import BUILDING, build_app, launch_kwargs

ROOT = Path(__file__).resolve().parent.parent
ARTICLE = ROOT / "source" / "000_81a114a99364fef0.txt"
QUESTION = "When did Che Guevara visit Pyongyang?"
PASTED = "Kangaroo notes\n\nThe kangaroo lives in Australia and hops.\n"
EVAL = ROOT / "eval"  # development data, copied into the repository (eval/README.md)


class HashEncoder:
    """Bag-of-words hashed into 64 dims, L2-normalised: similar words -> similar vectors, no model."""

    name = "hash-64"
    dim = 64

    def encode(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                h = int(hashlib.md5(w.strip(".,;:!?\"'()").encode()).hexdigest(), 16)
                out[i, h % self.dim] += 1.0
            out[i] /= max(np.linalg.norm(out[i]), 1e-9)
        return out

    def encode_pieces(self, texts):
        """Vectors plus word pieces: one piece per content word, a one-hot vector of its hash."""
        from qa.tokens import Pieces, is_content

        parts = []
        for t in texts:
            ws = [w.strip(".,;:!?\"'()") for w in t.lower().split()]
            hs = [int(hashlib.md5(w.encode()).hexdigest(), 16) for w in ws if w and is_content(w)]
            vecs = np.zeros((len(hs), self.dim), dtype=np.float32)
            vecs[np.arange(len(hs)), [h % self.dim for h in hs]] = 1.0
            parts.append(Pieces(np.array([h % 30000 for h in hs], dtype=np.int32), vecs))
        return self.encode(texts), parts


def disk_fills_on_save(monkeypatch, n: int = 2) -> None:
    """Make the store's n-th `np.save` fail with ENOSPC, as a full disk would mid-write."""
    import errno

    real_save, calls = np.save, []

    def save(path, arr, *a, **k):
        calls.append(path)
        if len(calls) == n:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(path, arr, *a, **k)

    monkeypatch.setattr(versionfiles.np, "save", save)


def publish_version(index_dir, docs, previous=None):
    """Build `docs` with the HashEncoder and publish them as index_dir's served version (no Engine)."""
    from qa import store
    from qa.build import build_index

    data, manifest = build_index(docs, HashEncoder(), "hash-64", ["/x"], previous)
    store.write_version(index_dir, data, manifest)
    store.publish(index_dir, data.version)
    return data


@pytest.fixture
def hash_encoder():
    return HashEncoder()


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Settings whose index and source folders live in tmp_path (never the working tree)."""
    src = tmp_path / "source"
    src.mkdir()
    shutil.copy(ARTICLE, src / ARTICLE.name)
    return Settings(index_dir=tmp_path / "index", source_dir=src)


@pytest.fixture
def fake_engine(settings, hash_encoder) -> Engine:
    engine = Engine(settings.with_(model="hash-64"), encoder=hash_encoder)
    engine.library.build([settings.source_dir])
    return engine


@pytest.fixture(scope="session")
def real_index(tmp_path_factory) -> Settings:
    """One real-model index of the shipped article, built once per test session."""
    root = tmp_path_factory.mktemp("real")
    settings = Settings(index_dir=root / "index", source_dir=ARTICLE.parent)
    Engine(settings).library.build([ARTICLE])
    return settings


@pytest.fixture(scope="session")
def real_engine(real_index) -> Engine:
    return Engine(real_index)


def qa_ask_in_a_fresh_process(index_dir, modules: tuple[str, ...], **env: str):
    """Run `qa ask` on `index_dir` in a new interpreter; its last line of output is the exit
    status and which of `modules` were imported ("0 []": answered, none of them loaded)."""
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from qa.cli import main\n"
        f"status = main(['ask', '--index', {str(index_dir)!r}, 'When did Che Guevara visit Pyongyang?'])\n"
        f"print(status, sorted(m for m in {modules!r} if m in sys.modules))\n"
    )
    return subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env})


# --- real browser (headless Debian Chromium) and the app on a loopback port ----------------------

SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PLACEHOLDER = "e.g. When did Che Guevara visit Pyongyang?"  # while the shipped article is served
QUESTION_BOX = "#qa-question textarea"
TURN = "#qa-conversation article.qa-turn"
BOT = "#qa-conversation [data-testid='bot']"  # an answer (or message) in the conversation
USER = "#qa-conversation h2.qa-q"  # a question in the conversation
SOURCES = "#qa-sources-panel"
TIMEOUT = 30_000  # ms, for every wait on the page
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
expect.set_options(timeout=TIMEOUT)  # assertions wait as long as page actions (the machine is shared)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(engine: Engine, settings: Settings):
    """The app as `serve` launches it (same launch kwargs), in-process, on a free loopback port."""
    demo = build_app(engine, settings)
    demo.launch(**(launch_kwargs(settings) | {"prevent_thread_lock": True, "quiet": True}))
    try:
        yield f"http://127.0.0.1:{settings.port}/"
    finally:
        demo.close()


class Watch:
    """Everything on a page that must not happen: dialogs, requests off loopback, uncaught JS errors."""

    def __init__(self, page):
        self.dialogs: list[str] = []
        self.remote: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("request", self._request)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _request(self, request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss", "ftp") and parts.hostname not in LOOPBACK:
            self.remote.append(request.url)

    def assert_clean(self) -> None:
        assert self.dialogs == [], "a script ran and opened a dialog"
        assert self.remote == [], "the page sent a request off the machine"
        assert self.errors == [], "uncaught JavaScript errors"


@contextmanager
def chromium():
    """Debian's Chromium, headless, no sandbox (containers), nothing that phones home."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@contextmanager
def new_page(browser, viewport: dict | None = None, **options):
    """A fresh page (own cookies and storage) with a `Watch` attached as `page.watch`."""
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900}, **options)
    context.set_default_timeout(TIMEOUT)
    pg = context.new_page()
    pg.watch = Watch(pg)
    try:
        yield pg
    finally:
        context.close()




def shot(page, name: str, element=None) -> Path:
    """Save a screenshot of the page (or of one element) as artifacts/screenshots/<name>.png."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    (element or page).screenshot(path=str(path), **({} if element else {"full_page": True}))
    return path


def ask(page, question: str):
    """Type a question, press Enter, wait for the answer; returns the new answer."""
    before = page.locator(BOT).count()
    box = page.locator(QUESTION_BOX)
    box.fill(question)
    box.press("Enter")
    expect(page.locator(BOT)).to_have_count(before + 1)
    expect(box).to_have_value("")
    return page.locator(BOT).last



@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser):
    with new_page(browser) as pg:
        yield pg


# --- library test helpers (builds with the hashing encoder) ---------------------------------------

NORMANS = EVAL / "squad" / "normans.txt"
ARTICLE_ID = "unbreakable-alliance-cuba-north-korea"


class CountingEncoder(HashEncoder):
    def __init__(self, fail_on_call: int | None = None, gate: threading.Event | None = None):
        self.calls: list[list[str]] = []
        self.fail_on_call = fail_on_call
        self.gate = gate
        self.started = threading.Event()

    @property
    def texts(self) -> list[str]:
        return [t for call in self.calls for t in call]

    def encode(self, texts):
        self.calls.append(list(texts))
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise RuntimeError("encoder crashed")
        return super().encode(texts)


def doc_text(title: str, *paragraphs: str) -> str:
    return "\n\n".join([title, *paragraphs]) + "\n"


def make_engine(settings, encoder=None) -> Engine:
    return Engine(settings.with_(model="hash-64"), encoder=encoder or HashEncoder())


def ids(engine: Engine) -> list[str]:
    return [d.id for d in engine.snapshot().data.documents]


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def state(settings) -> tuple:
    """What must not change when a build fails: CURRENT, the versions and the source folder."""
    root = store.versions_dir(settings.index_dir)
    return (store.current_version(settings.index_dir), listing(root),
            {p.name: p.read_bytes() for p in settings.source_dir.iterdir() if p.is_file()})


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder outside source_dir holding a second document."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "normans.txt").write_bytes(NORMANS.read_bytes())
    return folder


MB = 1024 * 1024


def offsets_hold(doc) -> None:
    """The paragraph contract: each paragraph is its document's text at its offsets, numbered 1..n."""
    for p in doc.paragraphs:
        assert doc.text[p.start:p.end] == p.text
    assert [p.number for p in doc.paragraphs] == list(range(1, len(doc.paragraphs) + 1))


KANGAROO = "Kangaroo notes\n\nThe kangaroo lives in Australia and hops.\n\nKangaroos eat grass at night.\n"


def kangaroo_app(tmp_path, port: int, build: bool = True) -> tuple[Settings, Engine]:
    """Settings and an engine (real model) for an app over one small kangaroo note in
    tmp_path/source, indexed unless `build` is False (a first start)."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "kangaroo.txt").write_text(KANGAROO, "utf-8")
    settings = Settings(index_dir=tmp_path / "index", source_dir=source, port=port)
    engine = Engine(settings)
    if build:
        engine.library.build([source])
    return settings, engine


# --- the launched app (qa serve) -----------------------------------------------------------------

@contextmanager
def served(settings: Settings, monkeypatch, engine_factory=None):
    """Run the real `qa serve` path (`ui_startup.serve(settings)`); `launch` is made non-blocking
    and quiet, and `engine_factory(settings)` makes the engine when given.
    Yields the app: `.demo` (the Blocks), `.kwargs` (what serve passed to launch), `.url`."""
    seen: dict = {}
    real_launch = gr.Blocks.launch

    def launch(self, **kwargs):
        seen.update(demo=self, kwargs=kwargs)
        return real_launch(self, **(kwargs | {"prevent_thread_lock": True, "quiet": True}))

    monkeypatch.setattr(gr.Blocks, "launch", launch)
    if engine_factory is not None:
        monkeypatch.setattr(ui_startup, "Engine", engine_factory)
    ui_startup.serve(settings)  # returns once the server is up (the index is checked in the background)
    try:
        yield SimpleNamespace(demo=seen["demo"], kwargs=seen["kwargs"], url=f"http://127.0.0.1:{settings.port}/")
    finally:
        seen["demo"].close()


def hashing(settings: Settings) -> Engine:
    return Engine(settings, encoder=HashEncoder())


def wait_ready(client: Client, seconds: float = 60) -> dict:
    """Ask QUESTION until the background start-up has finished (bounded); returns the last JSON answer."""
    end = time.monotonic() + seconds
    while True:
        data = client.predict(QUESTION, [], api_name="/answer_json")
        if data.get("error") != BUILDING or time.monotonic() > end:
            return data
        time.sleep(0.2)
