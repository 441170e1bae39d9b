"""Every web UI and API callback as a plain method of `Handlers` (strings, lists and `ChatTurn`s
in, strings out), so tests call them without a browser; the small pure helpers they share
(history parsing, who may change documents, error wording)."""

from __future__ import annotations

import html
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

import gradio as gr

from . import chatview, guard, limits, render
from .answer import Answer
from .chatview import ChatTurn
from .config import Settings
from .engine import Engine
from .errors import IndexMissing
from .limits import previous_questions  # noqa: F401 (re-exported for ui.py and the tests)
from .ranking import clean_question
from .reader import Target, open_reader
from .ui_documents import (  # noqa: F401 (re-exported for ui.py and the tests)
    BUILD_POLL_S,
    GENERIC_ERROR,
    UPLOAD_TYPES,
    DocumentHandlers,
    access,
    check_admin,
    discard_uploads,
    friendly,
    message_html,
)
from .ui_startup import Startup, progress_html, progress_text  # noqa: F401 (re-exported)

log = logging.getLogger("qa.ui")

EXAMPLES = [
    "When did Che Guevara visit Pyongyang?",
    "What did Raul Castro declare in 1968?",
    "What happened to the ship Chong Chon Gang in 2013?",
    "What is the capital of Australia?",
]
EXAMPLES_DOCUMENT = "unbreakable-alliance-cuba-north-korea"  # the shipped article EXAMPLES ask about
BUILDING = "The index is being built, try again in a moment."
SOURCES_PLACEHOLDER = "Ask a question: the cited paragraphs appear here, the quoted part highlighted."
CHAT_PLACEHOLDER = "Ask a question about the document: the answer is quoted from it, with its paragraph."
EXPORT_KEEP_S = 3600  # a conversation's export files are kept an hour after the answer (then re-made on the next)
STARTUP_POLL_S = 0.5  # how often a question waiting for the first index shows the build's progress

# --- small pure helpers --------------------------------------------------------------------

def sweep_exports(root: Path, keep_s: float) -> None:
    """Delete the export folders under `root` last changed more than `keep_s` seconds ago."""
    cutoff = time.time() - keep_s
    for folder in root.iterdir():
        try:
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


# --- the callbacks ---------------------------------------------------------------------------

class Handlers(DocumentHandlers):
    """Every UI/API callback, testable without a browser (the Documents tab's in `DocumentHandlers`)."""

    def __init__(self, engine: Engine, settings: Settings, startup: Startup | None = None):
        self.engine, self.settings, self.startup = engine, settings, startup
        self.throttle = guard.PasswordThrottle()
        self.export_root: Path | None = None  # made on the first export (`export_files`)

    # chat -------------------------------------------------------------------------------------
    def _error_text(self, exc: BaseException) -> str:
        if isinstance(exc, IndexMissing) and self.startup is not None and not self.startup.done.is_set():
            return BUILDING
        if isinstance(exc, IndexMissing) and self.startup is not None and self.startup.error:
            return f"The index could not be built: {self.startup.error}"
        return friendly(exc)

    def answer(self, question: str, history: Any = (), documents: Sequence[str] | None = None) -> Answer:
        """Ask the engine (the answer carries everything rendering needs)."""
        limits.check_question(question, self.settings.max_question_chars)  # sizes first, before any parsing
        history = limits.check_history(history, self.settings.max_question_chars)
        if documents:
            return self.engine.ask(question, previous_questions(history), documents=list(documents))
        return self.engine.ask(question, previous_questions(history))

    def current_version(self) -> str | None:
        try:
            return self.engine.snapshot().version
        except Exception:  # noqa: BLE001 - no index yet
            return None

    def turn(self, question: str, turns: Sequence[ChatTurn] = (), within: Sequence[str] | None = None
             ) -> ChatTurn | None:
        """One question of the web chat -> its `ChatTurn` (None for an empty question: nothing to add)."""
        text = clean_question(question, self.settings.max_question_chars, strict=False)
        if not text and len(question or "") <= self.settings.max_question_chars:
            return None
        shown = text or clean_question(question, 4 * self.settings.max_question_chars, strict=False)
        ids = tuple(within or ())
        titles = {i: t for t, i, *_ in self.documents_table()} if ids else {}
        named = tuple(titles.get(i, i) for i in ids)  # shown in the chat as titles
        try:
            a = self.answer(question, [t.question for t in turns], ids or None)
        except Exception as exc:  # noqa: BLE001 - every error becomes a message in the chat
            return ChatTurn(shown, None, self._error_text(exc), named)
        return ChatTurn(shown, a, None, named)

    def conversation(self, turns: Sequence[ChatTurn], pending: str | None = None) -> str:
        return chatview.conversation_html(turns, self.current_version(), pending, CHAT_PLACEHOLDER)

    def sources(self, turns: Sequence[ChatTurn]) -> str:
        return chatview.sources_panel(turns, SOURCES_PLACEHOLDER)

    def respond(self, message: str, turns: list | None, within: list | None = None):
        """The chat (a generator): -> (question box, conversation, sources, turns, export .md, export .json).

        While the index is still being built at first start, the question waits with a progress
        line in its place and is answered when the index is ready. An empty question adds nothing."""
        turns = list(turns or [])
        if not (message or "").strip():
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        if self.startup is not None and not self.startup.done.is_set():
            shown = clean_question(message, self.settings.max_question_chars, strict=False)
            while not self.startup.done.is_set():
                pending = chatview.pending_html(len(turns), shown, self.startup.fraction, self.startup.progress())
                yield "", self.conversation(turns, pending), gr.skip(), gr.skip(), gr.skip(), gr.skip()
                self.startup.done.wait(STARTUP_POLL_S)
        t = self.turn(message, turns, within)
        turns.append(t)
        md, js = self.export_files(turns)
        yield ("", self.conversation(turns), self.sources(turns), turns,
               gr.update(value=md, interactive=True), gr.update(value=js, interactive=True))

    def export_files(self, turns: Sequence[ChatTurn]) -> tuple[str, str]:
        """The conversation as conversation.md and conversation.json in a new folder of its own
        (one per answer, so two readers never download each other's), under one folder per app;
        folders older than EXPORT_KEEP_S are deleted as new ones are made."""
        if self.export_root is None:
            self.export_root = Path(tempfile.mkdtemp(prefix="qa-export-"))
        sweep_exports(self.export_root, EXPORT_KEEP_S)
        folder = Path(tempfile.mkdtemp(dir=self.export_root))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        md, js = folder / "conversation.md", folder / "conversation.json"
        md.write_text(render.export_markdown(turns, stamp), "utf-8")
        js.write_text(json.dumps(render.export_json(turns, stamp), ensure_ascii=False, indent=2), "utf-8")
        return str(md), str(js)

    def read(self, target: Target | None) -> str:
        """The reader view for a citation link or a `?doc=..&p=..` address."""
        try:
            docs = self.engine.snapshot().docs
        except Exception as exc:  # noqa: BLE001
            return f"<div class='qa-reader'><p role='alert'>{html.escape(self._error_text(exc))}</p></div>"
        return open_reader(docs, target)

    def api_ask(self, question: str, history: list[str] | None = None) -> str:
        """Plain text (`render.to_text`, no Markdown escapes): the quote, then '— ¶4 · Section',
        then "Also relevant:" quotes; or "Not in this document." and the closest passages; or
        the error message."""
        try:
            return render.to_text(self.answer(question, history or []))
        except Exception as exc:  # noqa: BLE001
            return self._error_text(exc)

    def api_answer_json(self, question: str, history: list[str] | None = None) -> dict:
        """The JSON answer object (docs/design.md §4); on failure {"question", "error"} like the CLI."""
        try:
            return self.answer(question, history or []).to_json()
        except Exception as exc:  # noqa: BLE001
            return {"question": clean_question(question, self.settings.max_question_chars, strict=False),
                    "error": self._error_text(exc)}

    def examples_visible(self) -> bool:
        """Show EXAMPLES only while the index serves the article they ask about (or while no
        index is loaded yet: at first start the shipped article is what is being built)."""
        try:
            return EXAMPLES_DOCUMENT in self.engine.snapshot().docs
        except Exception:  # noqa: BLE001 - no index yet
            return True

    def box_placeholder(self) -> str:
        """The question box's hint: an example question while the shipped article is served,
        else which document(s) the questions go to."""
        if self.examples_visible():
            return f"e.g. {EXAMPLES[0]}"
        titles = [t for t, *_ in self.documents_table()]
        if len(titles) == 1:
            return f"Ask a question about “{titles[0]}”."
        return f"Ask a question about the {render.count(len(titles), 'indexed document')}."

    def status(self) -> str:
        """One line under the title: what is indexed (full titles) and the version, as HTML."""
        try:
            snap = self.engine.snapshot()
        except Exception as exc:  # noqa: BLE001
            text = self.startup.progress() if self.startup is not None and not self.startup.done.is_set() \
                else self._error_text(exc)
            return f"<p class='qa-status'>{html.escape(text)}</p>"
        docs = snap.data.documents
        titles = "; ".join(f"<span title='{html.escape(d.id)}'>{html.escape(d.title)}</span>" for d in docs[:3])
        titles += f"; and {render.count(len(docs) - 3, 'more')}" if len(docs) > 3 else ""
        return (f"<p class='qa-status'>{render.count(len(docs), 'document')}: {titles} · "
                f"index version <code>{html.escape(snap.version)}</code></p>")

    def within_choices(self) -> dict:
        """The "Ask within" filter: shown when more than one document is indexed."""
        choices = self.document_choices()
        return gr.update(choices=choices, value=[], visible=len(choices) > 1)
