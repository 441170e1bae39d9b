"""The web app's start-up: the background `ensure_index` run at launch (its progress shown in the
chat while a question waits) and the one "ready at" line; progress in words with an ETA.

`serve` (`qa serve`, `python app.py`) starts loading the index and the model before Gradio is
imported (~2-5 s of the start on this machine), and builds the page without the two FastAPI apps
Gradio makes and throws away before `launch` makes the one it serves (`app_made_at_launch`).
"""

from __future__ import annotations

import contextlib
import html
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from .config import Settings
from .engine import Engine

if TYPE_CHECKING:  # gradio is imported by qa.ui, after the engine has started loading (`serve`)
    import gradio as gr

log = logging.getLogger("qa.ui")

ETA_AFTER_S, ETA_AFTER_FRACTION = 3.0, 0.05  # a time-left estimate only once it means something


class BuildProgress:
    """A long job's progress as its `say(fraction, step)` callback reports it, in words with an
    ETA (`text`) or as a progress bar (`html`): the start-up build and the Documents tab's."""

    def __init__(self, step: str = "Starting") -> None:
        self.fraction: float | None = None
        self.step = step
        self.started = time.monotonic()

    def say(self, fraction: float, step: str) -> None:
        self.fraction, self.step = fraction, step

    def text(self) -> str:
        step = str(self.step)
        return progress_text(self.fraction, step[:1].upper() + step[1:], time.monotonic() - self.started)

    def html(self, text: str | None = None) -> str:
        return progress_html(self.fraction, self.text() if text is None else text)


class Startup(BuildProgress):
    """The background `ensure_index` run at launch: lets the chat show its progress meanwhile,
    and `announce` print one "ready at" line once the app can answer."""

    def __init__(self) -> None:
        super().__init__("Checking the index")
        self.done = threading.Event()
        self.error: str | None = None

    def run(self, engine: Engine) -> None:
        try:
            reason = engine.library.ensure_index(progress=self.say)
            log.warning("index (re)built because %s", reason) if reason else log.info("index is up to date")
            self.say(1.0, "Loading the model")
            engine.encoder.encode(["warm up"])  # load the model now, not on the first question
        except Exception as exc:  # noqa: BLE001 - logged, shown to users as a message
            from .ui_documents import friendly  # (ui_documents imports this module)

            self.error = friendly(exc)
            log.error("could not prepare the index: %s", self.error)
        finally:
            self.done.set()

    def start(self, engine: Engine) -> threading.Thread:
        t = threading.Thread(target=self.run, args=(engine,), name="qa-startup", daemon=True)
        t.start()
        return t

    def progress(self) -> str:
        """'Preparing the index (first start): embedding 40% · about 20 s left'."""
        return "Preparing the index; your question is answered as soon as it is ready. " + self.text()

    def announce(self, demo: gr.Blocks, out: Callable[[str], None] = print) -> threading.Thread:
        """Print one line when the server is up and the index ready (or why it cannot answer)."""
        def wait() -> None:
            while not getattr(demo, "local_url", None):
                time.sleep(0.1)
            self.done.wait()
            url = demo.local_url
            out(f"qa: the app is up at {url} but cannot answer: {self.error}" if self.error
                else f"qa: ready at {url}")

        t = threading.Thread(target=wait, name="qa-announce", daemon=True)
        t.start()
        return t


def progress_text(fraction: float | None, step: str, elapsed: float) -> str:
    """A build's progress in words, with an estimate of the time left once one can be made
    (after ETA_AFTER_S seconds and ETA_AFTER_FRACTION of the work).

    >>> progress_text(0.5, "Embedding passages", 20.0)
    'Embedding passages: 50% · about 20 s left'
    """
    if fraction is None:
        return f"{step}…"
    out = f"{step}: {round(100 * fraction)}%"
    if elapsed >= ETA_AFTER_S and ETA_AFTER_FRACTION <= fraction < 1:
        left = elapsed * (1 - fraction) / fraction
        out += f" · about {round(left)} s left" if left < 90 else f" · about {round(left / 60)} min left"
    return out


def progress_html(fraction: float | None, text: str) -> str:
    bar = "" if fraction is None else \
        f"<progress max='100' value='{round(100 * fraction)}' aria-label='Build progress'></progress>"
    return f"<div class='qa-build' role='status'>{bar}<p>{html.escape(text)}</p></div>"


def serve(settings: Settings) -> None:
    """`qa serve` / `python app.py`: check the port, start loading the index and the model in the
    background, and only then import Gradio and build and launch the app (qa.ui.serve)."""
    from . import guard

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    guard.check_port(settings.host, settings.port)  # a port already taken: one clear line, before any work
    engine = Engine(settings)
    startup = Startup()
    startup.start(engine)
    with no_stub_files():
        from .ui import serve as serve_app  # imports gradio: the engine loads meanwhile

    no_matplotlib_probe()
    serve_app(settings, engine, startup)


def no_matplotlib_probe() -> None:
    """Gradio sets matplotlib's backend around every event it runs (`MatplotlibBackendMananger`:
    `import matplotlib` on entry and on exit); without matplotlib installed each of those imports
    searches all of sys.path again, ~6% of the server's event loop under 50 clients (sampled).
    Marking it absent makes the failed import immediate. Nothing here uses matplotlib."""
    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None  # `import matplotlib` -> ModuleNotFoundError at once


def _no_stubs(module) -> None:
    if callable(getattr(module, "create_or_modify_pyi", None)):
        module.create_or_modify_pyi = lambda *args, **kwargs: None


def _plain_docs(module) -> None:
    listener = getattr(module, "EventListener", None)
    if listener is not None and callable(getattr(listener, "set_doc", None)):
        listener.set_doc = _set_doc


def _set_doc(self, component: str) -> None:
    """EventListener.set_doc without jinja: its docstrings' one placeholder is `{{ component }}`."""
    if self.listener.__doc__:
        self.listener.__doc__ = self.listener.__doc__.replace("{{ component }}", component)


class _LeanGradio(importlib.abc.MetaPathFinder):
    """Finds the Gradio modules below as usual and, once each has run, applies its patch
    (see `no_stub_files`)."""

    PATCHES = {"gradio.component_meta": _no_stubs, "gradio.events": _plain_docs}

    def find_spec(self, name, path, target=None):
        patch = self.PATCHES.get(name)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module) -> None:
            run(module)
            patch(module)

        spec.loader.exec_module = exec_module
        return spec


@contextlib.contextmanager
def no_stub_files() -> Iterator[None]:
    """Import Gradio without the work it does for its own developers. Gradio 6 regenerates the
    `.pyi` file of every component class each time it is imported
    (`component_meta.create_or_modify_pyi`: ast parsing and a jinja template per class, 81
    classes, writes into site-packages when they differ): about half of `import gradio`, 2.3 s
    -> 1.1 s measured here; the stubs are for type checkers only. And it renders each event
    listener's docstring as a jinja template (216 of them, ~0.15-0.3 s) to put the component's
    name in it: a plain replace gives the same text. Nothing the app runs reads either."""
    if "gradio" in sys.modules:  # already imported: nothing left to save
        yield
        return
    finder = _LeanGradio()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


@contextlib.contextmanager
def app_made_at_launch() -> Iterator[None]:
    """Gradio builds its FastAPI app (~85 routes, a pydantic model per parameter: 0.2-0.4 s each
    here) when a Blocks context closes, again in `queue()`, and a third time in `launch()`, which
    is the one served. Within this context the first two are skipped (Blocks.app stays None until
    launch): for a page that is launched at once, never for one mounted or tested without launch."""
    from gradio.routes import App

    made = App.__dict__["create_app"]
    App.create_app = staticmethod(lambda *args, **kwargs: None)
    try:
        yield
    finally:
        App.create_app = made
