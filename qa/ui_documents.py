"""The Documents tab's callbacks (`DocumentHandlers`: list, preview, add or replace, remove,
with progress) and the rules they share with the chat: who may change documents, and the
message a person sees for an error."""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import gradio as gr

from . import guard, render
from .config import Settings
from .errors import BuildInProgress, InputError, NotAllowed, QAError, describe_os_error
from .records import BuildReport, Upload
from .ui_startup import BuildProgress

log = logging.getLogger("qa.ui")

GENERIC_ERROR = "Something went wrong; try again."
BUILD_POLL_S = 0.4  # how often the Documents tab shows a rebuild's progress
UPLOAD_TYPES = [".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"]


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


class DocumentHandlers:
    """The Documents tab's callbacks; `ui_handlers.Handlers` adds the chat's. Expects
    `self.engine`, `self.settings` and `self.throttle` (a `guard.PasswordThrottle`)."""

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
        progress = BuildProgress()
        box: dict = {}

        def run() -> None:
            box["result"] = work(progress.say)

        worker = threading.Thread(target=run, name="qa-ui-build", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(BUILD_POLL_S)
            if worker.is_alive():
                yield progress.html(), None
        yield "", box.get("result", (False, "Not rebuilt:", GENERIC_ERROR))


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
