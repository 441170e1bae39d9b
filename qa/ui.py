"""Gradio Blocks: the chat (answers first, a sources panel), the reader, the documents tab.
Calls `Engine` only; the HTML comes from qa/chatview.py and qa/reader.py, the stylesheet and
scripts from qa/webassets.py.

`Handlers` holds every callback as a plain method (strings, lists and `ChatTurn`s in, strings
out), so tests call them directly; `build_app` only lays out components and wires events;
`serve` starts the engine in the background, launches with safe defaults and prints one
"ready at" line when the app can answer.

API endpoints (gradio_client): `/ask` (question, history=[...]) -> the answer as plain text
(`render.to_text`: no Markdown escapes), and `/answer_json` (question, history=[...]) -> the
JSON answer object of docs/design.md §4.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported

import gradio as gr

from . import chatview, guard, webassets
from .config import Settings
from .engine import Engine
from .reader import EMPTY as READER_EMPTY
from .reader import Target
from .ui_handlers import (  # noqa: F401 (the names tests and callers import from qa.ui)
    BUILD_POLL_S,
    BUILDING,
    CHAT_PLACEHOLDER,
    EXAMPLES,
    EXAMPLES_DOCUMENT,
    GENERIC_ERROR,
    SOURCES_PLACEHOLDER,
    STARTUP_POLL_S,
    UPLOAD_TYPES,
    Handlers,
    access,
    check_admin,
    discard_uploads,
    friendly,
    message_html,
    previous_questions,
)
from .ui_startup import Startup, app_made_at_launch, progress_html, progress_text  # noqa: F401
from .webassets import CSS

log = logging.getLogger("qa.ui")


def build_app(engine: Engine, settings: Settings, startup: Startup | None = None) -> gr.Blocks:
    """The whole web app. Launch it with `launch_kwargs(settings)` (theme, css, safe defaults)."""
    h = Handlers(engine, settings, startup)
    mode = access(settings)
    with gr.Blocks(title="Ask the document", analytics_enabled=False, delete_cache=guard.UPLOAD_CACHE) as demo:
        gr.HTML("<h1 class='qa-title'>Ask the document</h1><p>Every answer is a verbatim quote from the document, "
                "with its paragraph number; the ¶ link opens the paragraph in the whole document. If the "
                "document does not say, you are told so.</p>", js_on_load=None)
        status = gr.HTML(js_on_load=None)
        turns = gr.State([])
        with gr.Tabs() as tabs:
            with gr.Tab("Chat", id="chat"):
                chat = _chat_tab(h, settings)
            with gr.Tab("Reader", id="reader"):
                reader = gr.HTML(READER_EMPTY, js_on_load=webassets.READER_JS, elem_id="qa-reader")
                back = gr.Button("Back to the chat", size="sm")
            with gr.Tab("Documents", id="documents"):
                docs = _documents_tab(h, mode, settings)
        _chat_events(h, chat, turns, status)
        _reader_events(h, chat, reader, back, tabs)

        def refresh(current_turns):
            return (h.status(), h.documents_html(), gr.update(choices=h.document_choices(), value=None),
                    gr.update(visible=h.examples_visible()), gr.update(placeholder=h.box_placeholder()),
                    h.within_choices(), h.conversation(current_turns or []))

        refreshed = [status, docs.table, docs.pick, chat.examples.dataset, chat.box, chat.within, chat.conversation]
        for event in docs.changed:
            event.then(refresh, [turns], refreshed, **QUIET)

        def on_load(request: gr.Request):
            target = Target.of(dict(request.query_params)) if request is not None else None
            opened = target is not None
            return (*refresh([])[:-1], h.read(target) if opened else READER_EMPTY,
                    gr.Tabs(selected="reader") if opened else gr.skip())

        demo.load(on_load, None, [*refreshed[:-1], reader, tabs], queue=False, **QUIET)
        gr.api(h.api_ask, api_name="ask")
        gr.api(h.api_answer_json, api_name="answer_json")
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency,
               status_update_rate=QUEUE_STATUS_S)
    return demo


#: How often, in seconds, Gradio tells waiting requests their place in the queue. Its default
#: ("auto") tells every waiting request each time one starts: with 50 clients and 32 answered at
#: once, ~18 messages per answer that nobody reads (the chat hides queue progress, `QUIET`).
QUEUE_STATUS_S = 1.0
QUIET = {"api_visibility": "private", "show_progress": "hidden"}  # no overlays, no untranslated toasts


def _chat_events(h: Handlers, chat: ChatTab, turns, status) -> None:
    """Asking (the box, the examples) and "New conversation"."""
    outputs = [chat.box, chat.conversation, chat.sources, turns, chat.export_md, chat.export_json]
    chat_io = {"fn": h.respond, "inputs": [chat.box, turns, chat.within], "outputs": outputs, **QUIET}
    chat.box.submit(**chat_io).then(h.status, None, status, queue=False, **QUIET)
    chat.examples.load_input_event.then(**chat_io)

    def reset():
        empty = []
        return ("", h.conversation(empty), h.sources(empty), empty,
                gr.update(value=None, interactive=False), gr.update(value=None, interactive=False))

    chat.clear.click(reset, None, outputs, queue=False, **QUIET)


def _reader_events(h: Handlers, chat: ChatTab, reader, back, tabs) -> None:
    """A ¶ link in the conversation or the sources opens the Reader tab; "Back" returns."""

    def open_citation(evt: gr.EventData):
        data = getattr(evt, "_data", None) or {}
        return h.read(Target.of(data)), gr.Tabs(selected="reader")

    chat.conversation.click(open_citation, None, [reader, tabs], queue=False, **QUIET)
    chat.sources.click(open_citation, None, [reader, tabs], queue=False, **QUIET)
    back.click(lambda: gr.Tabs(selected="chat"), None, tabs, queue=False, js=webassets.FORGET_READER_URL, **QUIET)


@dataclass
class ChatTab:
    conversation: Any
    within: Any
    box: Any
    clear: Any
    export_md: Any
    export_json: Any
    examples: Any
    sources: Any


def _chat_tab(h: Handlers, settings: Settings) -> ChatTab:
    """The chat tab's layout: the conversation, the question box and its buttons; the sources beside."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=300):
            conversation = gr.HTML(chatview.conversation_html([], None, None, CHAT_PLACEHOLDER),
                                   js_on_load=webassets.CONVERSATION_JS, elem_id="qa-conversation")
            within = gr.Dropdown(choices=h.document_choices(), value=[], multiselect=True,
                                 label="Ask within", info="Leave empty to ask all documents.",
                                 visible=len(h.document_choices()) > 1)
            box = gr.Textbox(placeholder=f"e.g. {EXAMPLES[0]}", label="Your question",
                             elem_id="qa-question", max_lines=4, autofocus=True, submit_btn="Ask",
                             max_length=settings.max_question_chars + 1)
            with gr.Row():
                clear = gr.Button("New conversation", variant="secondary", size="sm")
                export_md = gr.DownloadButton("Export Markdown", value=None, interactive=False,
                                              size="sm", elem_id="qa-export-md")
                export_json = gr.DownloadButton("Export JSON", value=None, interactive=False,
                                                size="sm", elem_id="qa-export-json")
            examples = gr.Examples(EXAMPLES, inputs=[box], label="Try")
        with gr.Column(scale=2, min_width=300, elem_id="qa-side"):
            sources = gr.HTML(h.sources([]), js_on_load=webassets.SOURCES_JS,
                              elem_classes=["qa-sources"], elem_id="qa-sources")
    return ChatTab(conversation, within, box, clear, export_md, export_json, examples, sources)


@dataclass
class DocumentsTab:
    table: Any
    pick: Any
    changed: list  # events after which the served index may have changed


def _documents_tab(h: Handlers, mode: str, settings: Settings) -> DocumentsTab:
    """The documents tab: the indexed documents; add/replace (with preview) and remove."""
    gr.HTML("<h2>Indexed documents</h2>", js_on_load=None)
    table = gr.HTML(js_on_load=None)
    if mode == "readonly":
        gr.HTML("<p>This app is reachable by others and no admin password is set (<code>QA_ADMIN_PASSWORD</code>), "
                "so documents cannot be changed here. Use <code>qa build</code> on the server instead.</p>",
                js_on_load=None)
        return DocumentsTab(table, gr.Dropdown(visible=False), [])
    gr.HTML("<h2>Add or replace documents</h2>", js_on_load=None)
    with gr.Row():
        with gr.Column():
            title = gr.Textbox(label="Title (optional, for pasted text)", max_lines=1)
            pasted = gr.Textbox(label="Paste text", lines=8, placeholder="Paragraphs separated by blank lines.")
        with gr.Column():
            files = gr.File(label="Upload files", file_count="multiple", file_types=UPLOAD_TYPES,
                            elem_id="qa-upload")
            gr.HTML(f"<p class='qa-hint'>.txt, .md, .html, .pdf or .docx, up to {settings.max_file_mb:g} MB each.</p>",
                    js_on_load=None)
            how = gr.Radio(["Replace", "Add"], value="Add", label="The new documents…",
                           info="Replace: index only these. Add: keep the indexed documents too.")
            password = gr.Textbox(label="Admin password", type="password", visible=(mode == "password"))
    with gr.Row():
        preview_btn = gr.Button("Preview")
        rebuild_btn = gr.Button("Rebuild index", variant="primary")
    progress = gr.HTML(js_on_load=None, elem_id="qa-build-progress")  # its own line: never over the form
    message = gr.HTML(js_on_load=None, elem_id="qa-documents-message")  # one message, replaced by the next
    gr.HTML("<h2>Remove a document</h2>", js_on_load=None)
    with gr.Row(equal_height=True):
        pick = gr.Dropdown(choices=h.document_choices(), value=None, label="Document to remove", scale=3)
        remove_btn = gr.Button("Remove…", variant="stop", scale=1)
    with gr.Row(visible=False) as confirm_row:
        confirm_text = gr.HTML(js_on_load=None)
        yes = gr.Button("Yes, remove it", variant="stop", size="sm")
        no = gr.Button("Cancel", size="sm")

    form = _DocumentsForm(files, pasted, title, how, password, preview_btn, rebuild_btn, progress, message,
                          pick, remove_btn, confirm_row, confirm_text, yes, no)
    return DocumentsTab(table, pick, _documents_events(h, form))


@dataclass
class _DocumentsForm:
    files: Any
    pasted: Any
    title: Any
    how: Any
    password: Any
    preview_btn: Any
    rebuild_btn: Any
    progress: Any
    message: Any
    pick: Any
    remove_btn: Any
    confirm_row: Any
    confirm_text: Any
    yes: Any
    no: Any


def _documents_events(h: Handlers, f: _DocumentsForm) -> list:
    """Wire the Documents form; returns the events after which the served index may have changed."""

    def do_rebuild(fs, p, t, m, pw, request: gr.Request):
        client = _client(request)
        for shown, result in h.in_background(lambda say: h._rebuild(fs, p, t, m, pw, say, client)):
            if result is None:
                yield shown, gr.skip(), gr.skip(), gr.skip(), gr.skip()
                continue
            done, lead, detail = result
            clear = (None, "", "") if done else (gr.skip(), gr.skip(), gr.skip())
            yield (shown, message_html(done, lead, detail), *clear)

    def do_remove(doc_id, pw, request: gr.Request):
        client = _client(request)
        yield gr.update(visible=False), "", gr.skip()
        for shown, result in h.in_background(lambda say: h._remove(doc_id, pw, say, client)):
            yield gr.skip(), shown, gr.skip() if result is None else message_html(*result)

    quiet = QUIET
    f.preview_btn.click(h.preview, [f.files, f.pasted, f.title], f.message, **quiet)
    rebuilt = f.rebuild_btn.click(do_rebuild, [f.files, f.pasted, f.title, f.how, f.password],
                                  [f.progress, f.message, f.files, f.pasted, f.title], concurrency_limit=1,
                                  concurrency_id="rebuild", **quiet)
    f.remove_btn.click(h.confirm_remove, [f.pick], [f.confirm_row, f.confirm_text, f.message], **quiet)
    f.no.click(lambda: gr.update(visible=False), None, f.confirm_row, **quiet)
    removed = f.yes.click(do_remove, [f.pick, f.password], [f.confirm_row, f.progress, f.message],
                          concurrency_limit=1, concurrency_id="rebuild", **quiet)
    return [rebuilt, removed]


def _client(request) -> str:
    """The address a request came from (the password back-off is per address)."""
    return str(getattr(getattr(request, "client", None), "host", "") or "")


def launch_kwargs(settings: Settings) -> dict:
    """Safe launch defaults (docs/design.md §6); theme and css go to launch() in Gradio 6."""
    return {"server_name": settings.host, "server_port": settings.port, "share": settings.share,
            "max_file_size": settings.max_file_bytes, "enable_monitoring": False, "show_error": False,
            "theme": gr.themes.Soft(font=("ui-sans-serif", "system-ui", "sans-serif")), "css": CSS,
            "footer_links": ["api"],
            # Host/Origin checked, read-only uploads and oversized bodies refused, before any route runs
            "app_kwargs": {"middleware": [guard.middleware(settings, read_only=access(settings) == "readonly")]}}


def serve(settings: Settings, engine: Engine, startup: Startup) -> None:
    """Build and launch the app for `qa serve` / `python app.py`, which start with
    qa.ui_startup.serve: it checks the port and starts `engine` and `startup` (the index check or
    build, the model) before Gradio is imported; the page renders at once while they run."""
    with app_made_at_launch():  # launch() below makes the one app served
        demo = build_app(engine, settings, startup)
    if settings.is_public and not settings.admin_password:
        log.warning("the app is reachable by others and QA_ADMIN_PASSWORD is unset: documents are read-only")
    t0 = time.perf_counter()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    log.info("starting on %s:%s; preparing the index, then printing 'ready at'", settings.host, settings.port)
    startup.announce(demo, lambda line: print(line, flush=True))
    demo.launch(**launch_kwargs(settings), quiet=True)  # quiet: the one URL line is printed when ready
    log.info("stopped after %.0f s", time.perf_counter() - t0)
