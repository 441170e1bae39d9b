"""The web app's start-up: the background `ensure_index` run at launch (its progress shown in the
chat while a question waits) and the one "ready at" line; progress in words with an ETA."""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable

import gradio as gr

from .engine import Engine

log = logging.getLogger("qa.ui")

ETA_AFTER_S, ETA_AFTER_FRACTION = 3.0, 0.05  # a time-left estimate only once it means something


class Startup:
    """The background `ensure_index` run at launch: lets the chat show its progress meanwhile,
    and `announce` print one "ready at" line once the app can answer."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: str | None = None
        self.fraction: float | None = None
        self.step = "Checking the index"
        self.started = time.monotonic()

    def say(self, fraction: float, step: str) -> None:
        self.fraction, self.step = fraction, step

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
        return "Preparing the index; your question is answered as soon as it is ready. " + \
            progress_text(self.fraction, self.step, time.monotonic() - self.started)

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
