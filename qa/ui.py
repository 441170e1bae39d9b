"""Gradio Blocks: the chat (with a sources panel) and the documents tab. Calls `Engine` only.

`Handlers` holds every callback as a plain method (strings and lists in, strings and lists
out), so tests call them directly; `build_app` only lays out components and wires events;
`serve` starts the engine in the background and launches with safe defaults.

API endpoints (gradio_client): `/ask` (question, history=[...]) -> Markdown answer, and
`/answer_json` (question, history=[...]) -> the JSON answer object of DESIGN.md §4.
"""

from __future__ import annotations

import html
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported

import gradio as gr

from . import answer as ans
from . import document, guard, limits
from .config import Settings
from .engine import Engine, clean_question
from .errors import BuildInProgress, IndexMissing, InputError, NotAllowed, QAError, describe_os_error

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
SOURCES_PLACEHOLDER = ("<p class='qa-muted'>Ask a question: the cited paragraphs appear here, "
                       "the quoted part highlighted.</p>")
UPLOAD_TYPES = [".txt", ".md", ".markdown", ".html", ".htm"]

CSS = """
.qa-sources mark { background: #fde68a; color: inherit; padding: 0 1px; }
.qa-source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 6px 10px; margin: 8px 0; }
.qa-source summary { cursor: pointer; }
.qa-source p { margin: 6px 0; line-height: 1.5; }
.qa-docs { width: 100%; border-collapse: collapse; }
.qa-docs th, .qa-docs td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--border-color-primary); }
.qa-evidence, .qa-muted { color: var(--body-text-color-subdued); font-size: 0.85em; }
"""


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
        if not isinstance(msg, str):  # a chat message shows the question escaped (see `respond`)
            text = ans.unescape_markdown(text)
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


class Startup:
    """The background `ensure_index` run at launch: lets handlers say 'being built' meanwhile."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: str | None = None

    def run(self, engine: Engine) -> None:
        try:
            reason = engine.ensure_index()
            log.warning("index rebuilt because %s", reason) if reason else log.info("index is up to date")
            engine.encoder.encode(["warm up"])  # load the model now, not on the first question
        except Exception as exc:  # noqa: BLE001 - logged, shown to users as a message
            self.error = friendly(exc)
            log.error("could not prepare the index: %s", self.error)
        finally:
            self.done.set()

    def start(self, engine: Engine) -> threading.Thread:
        t = threading.Thread(target=self.run, args=(engine,), name="qa-startup", daemon=True)
        t.start()
        return t


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

    def answer(self, question: str, history: Any = ()) -> tuple[ans.Answer, dict]:
        """Ask the engine; returns the answer and the documents of the version that answered it."""
        limits.check_question(question, self.settings.max_question_chars)  # sizes first (issue 16)
        history = limits.check_history(history, self.settings.max_question_chars)
        a = self.engine.ask(question, previous_questions(history))
        snap = self.engine.snapshot()
        if snap.version != a.index_version:  # a rebuild landed in between: ask the new version
            a = self.engine.ask(question, previous_questions(history))
            snap = self.engine.snapshot()
        return a, snap.docs

    def current_version(self) -> str | None:
        try:
            return self.engine.snapshot().version
        except Exception:  # noqa: BLE001 - no index yet
            return None

    def respond(self, message: str, chat: list, versions: list) -> tuple[str, list, list, str]:
        """The chat: (textbox, chat messages, per-answer versions) -> ('', messages, versions, sources html).

        `versions[i]` describes the i-th assistant message: {"version", "md", "stale_md"} or None
        for error messages; earlier answers are re-rendered as stale when the version changed.
        """
        chat, versions = list(chat or []), list(versions or [])
        text = message if isinstance(message, str) else str(message or "")
        try:
            a, docs = self.answer(text, chat)
            md = ans.to_markdown(a, docs)
            record = {"version": a.index_version, "md": md, "stale_md": ans.to_markdown(a, docs, stale=True)}
            sources = ans.sources_html(a, docs)
        except Exception as exc:  # noqa: BLE001 - every error becomes a chat message
            md, record, sources = ans.escape_markdown(self._error_text(exc)), None, SOURCES_PLACEHOLDER
        shown = ans.escape_markdown(clean_question(text, self.settings.max_question_chars, strict=False))
        chat += [{"role": "user", "content": shown or "(empty question)"},  # literally, like document text
                 {"role": "assistant", "content": md}]
        versions.append(record)
        return "", mark_stale(chat, versions, self.current_version()), versions, sources

    def api_ask(self, question: str, history: list[str] | None = None) -> str:
        """Markdown answer (escaped document text) for one question; `history` = earlier questions."""
        try:
            a, docs = self.answer(question, history or [])
            return ans.to_markdown(a, docs)
        except Exception as exc:  # noqa: BLE001
            return self._error_text(exc)

    def api_answer_json(self, question: str, history: list[str] | None = None) -> dict:
        """The JSON answer object (DESIGN.md §4); on failure {"question", "error"} like the CLI."""
        try:
            a, _ = self.answer(question, history or [])
            return a.to_json()
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
            return f"Ask a question about “{titles[0][:60]}”."
        return f"Ask a question about the {len(titles)} indexed documents."

    def status(self) -> str:
        try:
            snap = self.engine.snapshot()
        except Exception as exc:  # noqa: BLE001
            return f"<span class='qa-muted'>{ans.escape_markdown(self._error_text(exc))}</span>"
        n = len(snap.data.documents)
        titles = ", ".join(ans.escape_markdown(_short(d.title)) for d in snap.data.documents[:3])
        titles += " …" if n > 3 else ""
        return f"<span class='qa-muted'>{n} document(s): {titles} · index version `{snap.version}`</span>"

    # documents --------------------------------------------------------------------------------
    def documents_table(self) -> list[list]:
        try:
            docs = self.engine.snapshot().data.manifest.get("documents", [])
        except Exception:  # noqa: BLE001
            return []
        return [[d.get("title", ""), d.get("id", ""), d.get("paragraphs", 0), d.get("sections", 0),
                 Path(d.get("source") or "(pasted)").name] for d in docs]

    def documents_html(self) -> str:
        """The indexed documents as an escaped HTML table."""
        rows = self.documents_table()
        if not rows:
            return "<p class='qa-muted'>No documents are indexed yet.</p>"
        esc = html.escape
        body = "".join(f"<tr><td>{esc(t)}</td><td><code>{esc(i)}</code></td><td>{p}</td><td>{s}</td>"
                       f"<td>{esc(f)}</td></tr>" for t, i, p, s, f in rows)
        return ("<table class='qa-docs'><thead><tr><th>Title</th><th>ID</th><th>Paragraphs</th><th>Sections</th>"
                f"<th>File</th></tr></thead><tbody>{body}</tbody></table>")

    def document_choices(self) -> list[tuple[str, str]]:
        return [(f"{title} ({doc_id})", doc_id) for title, doc_id, *_ in self.documents_table()]

    def _inputs(self, files: list | None, pasted: str | None, title: str | None) -> list[tuple[str, bytes | str]]:
        """(file name, content) for each upload and for the pasted text (title as its first line)."""
        items: list[tuple[str, bytes | str]] = []
        for f in files or []:
            path = Path(f if isinstance(f, (str, Path)) else getattr(f, "name", None) or f["path"])
            items.append((path.name, document.read_bytes(path, self.settings.max_file_bytes)))
        if pasted and pasted.strip():
            head = " ".join((title or "").split()).rstrip(".!?;:,")
            name = document.safe_filename((head or "pasted text") + ".txt")
            items.append((name, f"{head}\n\n{pasted}" if head else pasted))
        elif title and title.strip() and not files:
            raise InputError("A title was given but no text: paste the document's text too.")
        return items

    def _load(self, items: list[tuple[str, bytes | str]]) -> tuple[list, list[str]]:
        docs, errors = [], []
        for name, data in items:
            try:
                docs.append((name, data, document.load(data, name, self.settings.max_file_bytes)))
            except InputError as exc:
                errors.append(f"{name}: {exc}")
        return docs, errors

    def preview(self, files: list | None, pasted: str | None, title: str | None) -> str:
        """Markdown: per document its title, paragraphs, sections and warnings, or why it cannot be read."""
        try:
            items = self._inputs(files, pasted, title)
        except Exception as exc:  # noqa: BLE001
            return f"**Cannot preview:** {ans.escape_markdown(friendly(exc))}"
        if not items:
            return "Paste some text or upload `.txt`, `.md` or `.html` files, then press Preview."
        docs, errors = self._load(items)
        lines = []
        for name, _, d in docs:
            sections = ", ".join(ans.escape_markdown(s) for s in d.sections) or "none"
            lines.append(f"**{ans.escape_markdown(d.title)}** (`{d.id}`, from {ans.escape_markdown(name)}): "
                         f"{len(d.paragraphs)} paragraph(s); sections: {sections}")
            lines += [f"  - warning: {ans.escape_markdown(w)}" for w in d.warnings]
        lines += [f"**Cannot use** {ans.escape_markdown(e)}" for e in errors]
        return "\n\n".join(lines)

    def rebuild(self, files: list | None, pasted: str | None, title: str | None, mode: str, password: str | None,
                progress: Callable[[float, str], None] | None = None, client: str = "") -> str:
        """Save the new documents under source_dir and rebuild (Replace) or extend (Add) the index
        (`Engine.add_files`: saved files are removed again if the build fails). The uploaded
        temporary files are deleted once indexed (and by Gradio's timer otherwise, guard.UPLOAD_CACHE)."""
        try:
            self._check_admin(password, client)
            items = self._inputs(files, pasted, title)
            if not items:
                return "Nothing to index: paste some text or upload files first."
            _, errors = self._load(items)
            if errors:
                return "**Nothing was changed.** " + " ".join(ans.escape_markdown(e) for e in errors)
            report = self.engine.add_files(items, add=(mode == "Add"), progress=progress)
        except Exception as exc:  # noqa: BLE001
            return f"**Not rebuilt:** {ans.escape_markdown(friendly(exc))}"
        discard_uploads(files)
        return self._report(report, "Added." if mode == "Add" else "Replaced.")

    def remove(self, doc_id: str | None, password: str | None,
               progress: Callable[[float, str], None] | None = None, client: str = "") -> str:
        """Remove one document (`Engine.remove_document`)."""
        try:
            self._check_admin(password, client)
            if not doc_id:
                return "Choose a document to remove."
            report = self.engine.remove_document(doc_id, progress=progress)
        except Exception as exc:  # noqa: BLE001
            return f"**Not removed:** {ans.escape_markdown(friendly(exc))}"
        return self._report(report, f"Removed `{ans.escape_markdown(doc_id)}`.")

    @staticmethod
    def _report(r: dict, what: str) -> str:
        if not r.get("version"):
            return f"{what} Done."
        return (f"{what} Now serving version `{r['version']}`: {r.get('documents', '?')} document(s), "
                f"{r.get('paragraphs', '?')} paragraphs, {r.get('chunks', '?')} chunks "
                f"({r.get('encoded', '?')} passages embedded, {r.get('reused', '?')} reused) "
                f"in {float(r.get('seconds', 0)):.1f} s.")


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


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def mark_stale(chat: list, versions: list, current: str | None) -> list:
    """Re-render assistant messages whose answer came from another index version than `current`."""
    out, i = [], 0
    for msg in chat:
        role = msg.get("role") if isinstance(msg, dict) else getattr(msg, "role", None)
        if role == "assistant":
            rec = versions[i] if i < len(versions) else None
            i += 1
            if rec and current:
                content = rec["stale_md"] if rec["version"] != current else rec["md"]
                msg = {"role": "assistant", "content": content}
        out.append(msg)
    return out


# --- layout ----------------------------------------------------------------------------------

def build_app(engine: Engine, settings: Settings, startup: Startup | None = None) -> gr.Blocks:
    """The whole web app. Launch it with `launch_kwargs(settings)` (theme, css, safe defaults)."""
    h = Handlers(engine, settings, startup)
    mode = access(settings)
    with gr.Blocks(title="Ask the document", analytics_enabled=False, delete_cache=guard.UPLOAD_CACHE) as demo:
        gr.Markdown("## Ask the document\nEvery answer is a verbatim quote from the document, with its paragraph "
                    "number. If the document does not say, you are told so.")
        status = gr.Markdown()
        with gr.Tab("Chat"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(label="Conversation", show_label=False, height=520, latex_delimiters=[],
                                         sanitize_html=True, buttons=["copy"],
                                         placeholder="Ask a question about the document.")
                    with gr.Row():
                        box = gr.Textbox(placeholder=f"e.g. {EXAMPLES[0]}", show_label=False, elem_id="qa-question",
                                         scale=5, max_lines=4, autofocus=True, submit_btn="Ask",
                                         max_length=settings.max_question_chars + 1)
                    clear = gr.Button("New conversation", variant="secondary", size="sm")
                    examples = gr.Examples(EXAMPLES, inputs=[box], label="Try")
                with gr.Column(scale=2):
                    sources = gr.HTML(SOURCES_PLACEHOLDER, label="Sources", elem_classes=["qa-sources"],
                                      js_on_load=None)
            versions = gr.State([])
            chat_io = {"fn": h.respond, "inputs": [box, chatbot, versions],
                       "outputs": [box, chatbot, versions, sources], "api_visibility": "private",
                       "show_progress": "minimal"}
            box.submit(**chat_io).then(h.status, None, status, api_visibility="private", queue=False)
            examples.load_input_event.then(**chat_io)
            reset = {"fn": lambda: ("", [], [], SOURCES_PLACEHOLDER), "inputs": None,
                     "outputs": [box, chatbot, versions, sources], "api_visibility": "private", "queue": False}
            clear.click(**reset)
            chatbot.clear(**reset)  # the chatbot's own trash button
        with gr.Tab("Documents"):
            table, pick = _documents_tab(h, mode, settings, status, chatbot, versions, examples.dataset, box)
        gr.api(h.api_ask, api_name="ask")
        gr.api(h.api_answer_json, api_name="answer_json")
        demo.load(lambda: (h.status(), h.documents_html(), gr.update(choices=h.document_choices(), value=None),
                           gr.update(visible=h.examples_visible()), gr.update(placeholder=h.box_placeholder())),
                  None, [status, table, pick, examples.dataset, box], api_visibility="private", queue=False)
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency)
    return demo


def _documents_tab(h: Handlers, mode: str, settings: Settings, status, chatbot, versions, examples, box):
    """The documents tab; returns the table and the removal dropdown (hidden when read-only)."""
    gr.Markdown("### Indexed documents")
    table = gr.HTML(js_on_load=None)
    if mode == "readonly":
        gr.Markdown("This app is reachable by others and no admin password is set (`QA_ADMIN_PASSWORD`), "
                    "so documents cannot be changed here. Use `qa build` on the server instead.")
        return table, gr.Dropdown(visible=False)
    with gr.Row():
        with gr.Column():
            title = gr.Textbox(label="Title (optional, for pasted text)", max_lines=1)
            pasted = gr.Textbox(label="Paste text", lines=8, placeholder="Paragraphs separated by blank lines.")
        with gr.Column():
            files = gr.File(label=f"Or upload .txt / .md / .html (up to {settings.max_file_mb:g} MB each)",
                            file_count="multiple", file_types=UPLOAD_TYPES)
            how = gr.Radio(["Replace", "Add"], value="Add", label="The new documents…",
                           info="Replace: index only these. Add: keep the indexed documents too.")
            password = gr.Textbox(label="Admin password", type="password", visible=(mode == "password"))
    with gr.Row():
        preview_btn = gr.Button("Preview")
        rebuild_btn = gr.Button("Rebuild index", variant="primary")
    result = gr.Markdown()
    gr.Markdown("### Remove a document")
    with gr.Row(equal_height=True):
        pick = gr.Dropdown(choices=h.document_choices(), value=None, show_label=False, scale=3)
        remove_btn = gr.Button("Remove", variant="stop", scale=1)
    removed = gr.Markdown()

    def refresh(chat, vers):
        current = h.current_version()
        return h.documents_html(), gr.update(choices=h.document_choices(), value=None), h.status(), \
            mark_stale(chat, vers, current), gr.update(visible=h.examples_visible()), \
            gr.update(placeholder=h.box_placeholder())

    def do_rebuild(f, p, t, m, pw, request: gr.Request, progress=gr.Progress()):  # noqa: B008 - Gradio's idiom
        message = h.rebuild(f, p, t, m, pw, progress=lambda frac, msg: progress(frac, desc=msg), client=_client(request))
        done = not message.startswith("**")  # indexed: its uploads were deleted, so empty the file box
        return message, (gr.update(value=None) if done else gr.update())

    def do_remove(doc_id, pw, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        return h.remove(doc_id, pw, progress=lambda frac, msg: progress(frac, desc=msg), client=_client(request))

    after = {"fn": refresh, "inputs": [chatbot, versions], "outputs": [table, pick, status, chatbot, examples, box],
             "api_visibility": "private"}
    preview_btn.click(h.preview, [files, pasted, title], result, api_visibility="private")
    rebuild_btn.click(do_rebuild, [files, pasted, title, how, password], [result, files], api_visibility="private",
                      concurrency_limit=1, concurrency_id="rebuild").then(**after)
    remove_btn.click(do_remove, [pick, password], removed, api_visibility="private",
                     concurrency_limit=1, concurrency_id="rebuild").then(**after)
    return table, pick


def _client(request) -> str:
    """The address a request came from (the password back-off is per address)."""
    return str(getattr(getattr(request, "client", None), "host", "") or "")


def launch_kwargs(settings: Settings) -> dict:
    """Safe launch defaults (DESIGN.md §6); theme and css go to launch() in Gradio 6."""
    return {"server_name": settings.host, "server_port": settings.port, "share": settings.share,
            "max_file_size": settings.max_file_bytes, "enable_monitoring": False, "show_error": False,
            "theme": gr.themes.Soft(font=("ui-sans-serif", "system-ui", "sans-serif")), "css": CSS,
            "footer_links": ["api"],
            # Host/Origin checked, read-only uploads and oversized bodies refused, before any route runs
            "app_kwargs": {"middleware": [guard.middleware(settings, read_only=access(settings) == "readonly")]}}


def serve(settings: Settings) -> None:
    """`qa serve` / `python app.py`: the page renders at once while the index is checked/built."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    guard.check_port(settings.host, settings.port)  # a port already taken: one clear line, before any work
    engine = Engine(settings)
    startup = Startup()
    startup.start(engine)
    demo = build_app(engine, settings, startup)
    if settings.is_public and not settings.admin_password:
        log.warning("the app is reachable by others and QA_ADMIN_PASSWORD is unset: documents are read-only")
    t0 = time.perf_counter()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    log.info("launching on http://%s:%s", settings.host, settings.port)
    demo.launch(**launch_kwargs(settings))
    log.info("stopped after %.0f s", time.perf_counter() - t0)
