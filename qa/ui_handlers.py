"""Every web UI and API callback as a plain method of `Handlers` (strings, lists and `ChatTurn`s
in, strings out), so tests call them without a browser; the small pure helpers they share
(history parsing, who may change documents, error wording)."""

from __future__ import annotations

import html
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

import gradio as gr

from . import chatview, guard, limits, render
from .answer import Answer
from .chatview import ChatTurn
from .config import Settings
from .engine import Engine
from .errors import BuildInProgress, IndexMissing, InputError, NotAllowed, QAError, describe_os_error
from .ranking import clean_question
from .reader import Target, open_reader
from .records import BuildReport, Upload
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
GENERIC_ERROR = "Something went wrong; try again."
SOURCES_PLACEHOLDER = "Ask a question: the cited paragraphs appear here, the quoted part highlighted."
CHAT_PLACEHOLDER = "Ask a question about the document: the answer is quoted from it, with its paragraph."
STARTUP_POLL_S = 0.5  # how often a question waiting for the first index shows the build's progress
BUILD_POLL_S = 0.4  # how often the Documents tab shows a rebuild's progress
UPLOAD_TYPES = [".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"]

# --- small pure helpers --------------------------------------------------------------------

def previous_questions(history: Any) -> list[str]:
    """Earlier user questions from a chat history, oldest first. The one place that knows the format.

    Accepts Gradio 6 messages ({"role", "content"}, content a string or a list of blocks such
    as {"type": "text", "text": ...}), ChatMessage objects, or plain strings (API callers).

    >>> previous_questions([{"role": "user", "content": [{"type": "text", "text": "Who?"}]},
    ...                     {"role": "assistant", "content": "Him."}, "And when?"])
    ['Who?', 'And when?']
    """
    out = []
    for msg in history or []:
        if isinstance(msg, str):
            role, content = "user", msg
        elif isinstance(msg, dict):
            role, content = msg.get("role"), msg.get("content")
        else:
            role, content = getattr(msg, "role", None), getattr(msg, "content", None)
        if role != "user":
            continue
        blocks = content if isinstance(content, (list, tuple)) else [content]
        text = " ".join(b if isinstance(b, str) else str(b.get("text") or "") if isinstance(b, dict) else ""
                        for b in blocks).strip()
        if text:
            out.append(text)
    return out


def access(settings: Settings) -> str:
    """Who may change documents: 'open' on loopback, 'password' when public with a password set,
    'readonly' when public without one."""
    if not settings.is_public:
        return "open"
    return "password" if settings.admin_password else "readonly"


def check_admin(settings: Settings, password: str | None) -> None:
    """Raise NotAllowed unless this request may rebuild or remove documents."""
    mode = access(settings)
    if mode == "readonly":
        raise NotAllowed("This app is reachable by others and no admin password is set (QA_ADMIN_PASSWORD), "
                         "so documents are read-only here.")
    if mode == "password" and not guard.same_password(password, settings.admin_password):
        raise NotAllowed("Wrong or missing admin password.")


def friendly(exc: BaseException) -> str:
    """An exception -> the message a person sees (never a traceback)."""
    if isinstance(exc, BuildInProgress):
        return "A rebuild is already in progress; try again when it has finished."
    if isinstance(exc, QAError):
        return str(exc)
    if isinstance(exc, OSError):  # e.g. an unreadable index folder: say which and what to do
        log.error("operating-system error in the web app: %s", exc)
        return describe_os_error(exc)
    log.error("unexpected error in the web app", exc_info=exc)
    return GENERIC_ERROR


def message_html(ok: bool, lead: str, detail: str) -> str:
    """A Documents-tab message: plain text, escaped, no Markdown."""
    cls = "qa-msg" if ok else "qa-msg qa-bad"
    strong = f"<strong>{html.escape(lead)}</strong> " if lead else ""
    return f"<p class='{cls}' role='status'>{strong}{html.escape(detail)}</p>"


# --- the callbacks ---------------------------------------------------------------------------

class Handlers:
    """Every UI/API callback, testable without a browser."""

    def __init__(self, engine: Engine, settings: Settings, startup: Startup | None = None):
        self.engine, self.settings, self.startup = engine, settings, startup
        self.throttle = guard.PasswordThrottle()

    def _check_admin(self, password: str | None, client: str) -> None:
        """check_admin, with a per-client back-off after a few wrong passwords (guard.PasswordThrottle)."""
        if access(self.settings) != "password":
            return check_admin(self.settings, password)
        self.throttle.check(client)
        try:
            check_admin(self.settings, password)
        except NotAllowed:
            self.throttle.failed(client)
            raise
        self.throttle.succeeded(client)

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
        """The conversation as conversation.md and conversation.json in a new temporary folder."""
        folder = Path(tempfile.mkdtemp(prefix="qa-export-"))
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

    # documents --------------------------------------------------------------------------------
    def documents_table(self) -> list[list]:
        try:
            docs = self.engine.documents().documents
        except Exception:  # noqa: BLE001
            return []
        return [[d.title, d.id, d.paragraphs, d.sections, Path(d.source or "(pasted)").name] for d in docs]

    def documents_html(self) -> str:
        """The indexed documents as an escaped HTML table."""
        rows = self.documents_table()
        if not rows:
            return "<p class='qa-hint'>No documents are indexed yet.</p>"
        esc = html.escape
        body = "".join(f"<tr><td>{esc(t)}</td><td><code>{esc(i)}</code></td><td>{p}</td><td>{s}</td>"
                       f"<td>{esc(f)}</td></tr>" for t, i, p, s, f in rows)
        return ("<table class='qa-docs'><caption class='qa-sr'>Indexed documents</caption><thead><tr>"
                "<th scope='col'>Title</th><th scope='col'>ID</th><th scope='col'>Paragraphs</th>"
                f"<th scope='col'>Sections</th><th scope='col'>File</th></tr></thead><tbody>{body}</tbody></table>")

    def document_choices(self) -> list[tuple[str, str]]:
        return [(f"{title} ({doc_id})", doc_id) for title, doc_id, *_ in self.documents_table()]

    def _inputs(self, files: list | None, pasted: str | None, title: str | None) -> list[Upload]:
        """One `Upload` for each uploaded file and for the pasted text (its title as first line)."""
        items = []
        for f in files or []:
            path = Path(f if isinstance(f, (str, Path)) else getattr(f, "name", None) or f["path"])
            size = path.stat().st_size
            if size > self.settings.max_file_bytes:
                raise InputError(f"{path.name} is {size / 2**20:.1f} MB; the limit is {self.settings.max_file_mb:g} MB "
                                 "(QA_MAX_FILE_MB).")
            items.append(Upload.of(path.name, path.read_bytes()))
        if pasted and pasted.strip():
            items.append(Upload.pasted(pasted, title or ""))
        elif title and title.strip() and not files:
            raise InputError("A title was given but no text: paste the document's text too.")
        return items

    def preview(self, files: list | None, pasted: str | None, title: str | None) -> str:
        """HTML: per document its title, paragraphs, sections and warnings, or why it cannot be read."""
        esc = html.escape
        try:
            items = self._inputs(files, pasted, title)
        except Exception as exc:  # noqa: BLE001
            return message_html(False, "Cannot preview:", friendly(exc))
        if not items:
            return message_html(True, "", "Paste some text or upload .txt, .md, .html, .pdf or .docx files, "
                                          "then press Preview.")
        lines = []
        for p in self.engine.library.preview(items):
            if p.error:
                lines.append(f"<li><strong>Cannot use</strong> {esc(p.upload.name)}: {esc(p.error)}</li>")
                continue
            d = p.document
            sections = ", ".join(d.sections) or "none"
            pages = f", {render.count(d.pages, 'page')}" if d.pages else ""
            warnings = "".join(f"<li>warning: {esc(w)}</li>" for w in d.warnings)
            lines.append(f"<li><strong>{esc(d.title)}</strong> ({esc(d.id)}, from {esc(p.upload.name)}): "
                         f"{esc(d.format)}{pages}, {render.count(len(d.paragraphs), 'paragraph')}; "
                         f"sections: {esc(sections)}{f'<ul>{warnings}</ul>' if warnings else ''}</li>")
        return f"<div class='qa-msg' role='status'><p>Preview:</p><ul>{''.join(lines)}</ul></div>"

    def _rebuild(self, files, pasted, title, mode, password, progress=None, client: str = "") -> tuple[bool, str, str]:
        """(done, lead, detail): plain text, rendered by `rebuild` (Markdown) or `message_html`.
        The uploaded temporary files are deleted once indexed (and by Gradio's timer otherwise,
        guard.UPLOAD_CACHE)."""
        try:
            self._check_admin(password, client)
            items = self._inputs(files, pasted, title)
            if not items:
                return False, "", "Nothing to index: paste some text or upload files first."
            report = self.engine.library.add_files(items, add=(mode == "Add"), progress=progress)
        except InputError as exc:
            return False, "Nothing was changed.", str(exc)
        except Exception as exc:  # noqa: BLE001
            return False, "Not rebuilt:", friendly(exc)
        discard_uploads(files)
        return True, "", render.report_sentence(report, "Added." if mode == "Add" else "Replaced.")

    def rebuild(self, files: list | None, pasted: str | None, title: str | None, mode: str, password: str | None,
                progress: Callable[[float, str], None] | None = None, client: str = "") -> str:
        """Save the new documents under source_dir and rebuild (Replace) or extend (Add) the index
        (`Library.add_files`: nothing is written unless every document can be read, and saved
        files are removed again if the build fails). Returns Markdown (the CLI-style message)."""
        _, lead, detail = self._rebuild(files, pasted, title, mode, password, progress, client)
        return f"**{lead}** {render.escape_markdown(detail)}" if lead else detail

    def _remove(self, doc_id: str | None, password: str | None, progress=None, client: str = "") -> tuple[bool, str, str]:
        try:
            self._check_admin(password, client)
            if not doc_id:
                return False, "", "Choose a document to remove."
            report: BuildReport = self.engine.library.remove(doc_id, progress=progress)
        except Exception as exc:  # noqa: BLE001
            return False, "Not removed:", friendly(exc)
        return True, "", render.report_sentence(report, f"Removed {doc_id}.")

    def remove(self, doc_id: str | None, password: str | None,
               progress: Callable[[float, str], None] | None = None, client: str = "") -> str:
        """Remove one document (`Library.remove`); Markdown like `rebuild`."""
        _, lead, detail = self._remove(doc_id, password, progress, client)
        return f"**{lead}** {render.escape_markdown(detail)}" if lead else detail

    def confirm_remove(self, doc_id: str | None) -> tuple[dict, str, str]:
        """Remove asks first: (the confirmation row's visibility, its question, the message)."""
        if not doc_id:
            return gr.update(visible=False), "", message_html(False, "", "Choose a document to remove.")
        title = next((t for t, i, *_ in self.documents_table() if i == doc_id), doc_id)
        return gr.update(visible=True), (f"<p class='qa-msg' role='alert'>Remove “{html.escape(title)}” "
                                         f"({html.escape(doc_id)}) from the index? The index is rebuilt "
                                         "without it.</p>"), ""

    def in_background(self, work: Callable[[Callable[[float, str], None]], tuple[bool, str, str]]):
        """Run `work(progress)` in a thread; yield (progress html, None) while it runs, then
        ("", (done, lead, detail)). The progress is a line of its own, never over other content."""
        state = {"fraction": None, "step": "Starting"}
        box: dict = {}

        def say(fraction: float, step: str) -> None:
            state.update(fraction=fraction, step=step)

        def run() -> None:
            box["result"] = work(say)

        t0 = time.monotonic()
        worker = threading.Thread(target=run, name="qa-ui-build", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(BUILD_POLL_S)
            if worker.is_alive():
                text = progress_text(state["fraction"], str(state["step"]).capitalize(), time.monotonic() - t0)
                yield progress_html(state["fraction"], text), None
        yield "", box.get("result", (False, "Not rebuilt:", GENERIC_ERROR))


# --- layout ----------------------------------------------------------------------------------


def discard_uploads(files: list | None) -> None:
    """Delete uploaded temporary files (only those inside Gradio's upload folder) once used."""
    folder = Path(gr.utils.get_upload_folder()).resolve()
    for f in files or []:
        try:
            path = Path(f if isinstance(f, (str, Path)) else getattr(f, "name", None) or f["path"]).resolve()
            if folder in path.parents:
                path.unlink(missing_ok=True)
        except (OSError, KeyError, TypeError):
            log.warning("could not delete the uploaded file %r", f)
