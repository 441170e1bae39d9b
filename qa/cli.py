"""`qa build / ask / chat / eval / documents / serve`: parse, call the engine, print.

Errors from the package (`QAError`) are printed as one line and exit with status 2; a closed
pipe (`qa ask ... | head -1`) ends quietly; nothing here holds business rules.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

# One OpenBLAS thread, set before numpy loads: qa.embedding limits BLAS to one thread anyway
# (`quiet_threads`), and a pool of one starts ~0.05-0.1 s faster than one per core (`qa ask`).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from . import __version__  # noqa: E402 -- after the environment above
from .config import Settings  # noqa: E402
from .errors import QAError, describe_os_error  # noqa: E402
from .render import count, printable  # noqa: E402


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", type=Path, help="index folder (default: QA_INDEX_DIR or ./index)")
    p.add_argument("--model", help="embedding model id or folder (default: the embedded all-MiniLM-L6-v2)")
    p.add_argument("--reranker", help="optional cross-encoder folder or cached id that reorders the best sentences "
                                      "(default: QA_RERANKER, off)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="qa", description="Ask questions about a document; answers are verbatim "
                                 "quotes with paragraph citations.", epilog="`qa COMMAND --help` tells more.")
    ap.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    ap.add_argument("--version", action="version", version=f"qa {__version__}")
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND")

    b = sub.add_parser("build", help="build (or rebuild) the index from documents",
                       description="Build a new index version beside the one being served and publish it atomically. "
                                   "Without --add the index holds exactly the given sources (default: ./source). "
                                   "With --add the indexed documents are kept; a file named like an indexed one "
                                   "replaces it (same id). Files added to an index built from ./source are copied "
                                   "into ./source so a restart serves the same set. Files over QA_MAX_FILE_MB "
                                   "(default 5 MB) are refused.")
    b.add_argument("--source", type=Path, action="append", help="file or folder (.txt, .md, .html, .pdf, .docx); repeatable (default: ./source)")
    b.add_argument("--url", action="append", help="fetch a web page or document over http(s) into the source "
                   "folder and index it (size limit QA_MAX_FILE_MB, 20 s timeout); repeatable")
    b.add_argument("--add", action="store_true", help="add to the documents already indexed instead of replacing them")
    _common(b)

    a = sub.add_parser("ask", help="answer a question ('-' reads one question per line from stdin)",
                       description="Answer one question with a verbatim quote and its citation. Give '-' as the "
                                   "question to read questions from stdin, one per line (each answered on its own, "
                                   "without conversation; use `qa chat` for follow-ups).")
    a.add_argument("question", nargs="+", help="the question (quotes optional: the words are joined); or '-' to "
                                               "read one question per line from stdin")
    a.add_argument("--json", action="store_true", help="print the JSON answer object (one per line)")
    a.add_argument("-k", type=int, help="number of citations (default: QA_TOP_K or 4)")
    _common(a)

    c = sub.add_parser("chat", help="terminal chat (reads piped stdin too); '/reset' starts a new conversation")
    c.add_argument("--json", action="store_true", help="print one JSON answer object per question")
    c.add_argument("-k", type=int, help="number of citations")
    _common(c)

    e = sub.add_parser("eval", help="measure Hit@1/Hit@3/MRR@5 and abstention on a question set")
    e.add_argument("--qa", type=Path, action="append", required=True, help="JSONL question set; repeatable")
    e.add_argument("--source", type=Path, help="build a temporary index of this document and ask it")
    e.add_argument("--no-history", action="store_true", help="ask the last turn of conversations without its history")
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    _common(e)

    d = sub.add_parser("documents", help="list the documents in the index, or remove one")
    d.add_argument("--remove", metavar="ID", action="append",
                   help="rebuild the index without this document (its file in the source folder is moved to "
                        "source/.removed/, so a restart does not bring it back); repeatable")
    d.add_argument("--json", action="store_true", help="print the index's manifest entries as JSON")
    _common(d)

    s = sub.add_parser("serve", help="run the web app (same as python app.py)")
    s.add_argument("--host", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (default 7860)")
    _common(s)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.cmd is None:  # `qa` alone: what it can do
        ap.print_help()
        return 0
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        settings = Settings.from_env(index_dir=getattr(args, "index", None), model=getattr(args, "model", None),
                                     reranker=getattr(args, "reranker", None),
                                     host=getattr(args, "host", None), port=getattr(args, "port", None))
        status = COMMANDS[args.cmd](args, settings)
    except QAError as exc:
        print(f"qa: {printable(str(exc))}", file=sys.stderr)
        status = 2
    except OSError as exc:  # a start-up failure the package did not name (unreadable folder, ...): one line
        print(f"qa: {printable(describe_os_error(exc))}", file=sys.stderr)
        status = 2
    except KeyboardInterrupt:
        status = 130
    except BrokenPipeError:  # the reader went away (`| head -1`): stop quietly, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        status = 0
    if argv is None and args.cmd == "ask":  # from the command line, not called by a test or a tool
        _exit_now(status)
    return status


def _exit_now(status: int) -> None:
    """End `qa ask` without the interpreter's teardown of numpy, scipy, faiss and onnxruntime
    (~0.3 s measured, more than answering takes); atexit handlers still run, output is flushed."""
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _engine(settings: Settings, ensure: bool = True):
    from .engine import Engine

    engine = Engine(settings)
    if ensure:
        # every command that checks the index then asks, so load the model first: a model that
        # cannot load is then the one `qa:` error, not also a stale-index warning that repeats it
        engine.encoder.encode(["warm up"])
        # an index folder named with --index is never built from ./source behind the user's back
        reason = engine.library.ensure_index(build_missing=settings.index_dir == Settings.from_env().index_dir)
        if reason:
            print(f"qa: index (re)built because {reason}", file=sys.stderr)
    return engine


def cmd_build(args, settings: Settings) -> int:
    from .engine import Engine

    sources = args.source or [settings.source_dir]
    engine = Engine(settings)
    last = [0.0]

    def progress(frac: float, msg: str) -> None:
        if sys.stderr.isatty() or time.monotonic() - last[0] > 1 or frac >= 1:
            print(f"[{frac:4.0%}] {msg}", file=sys.stderr)
            last[0] = time.monotonic()

    if args.url:
        from .errors import InputError
        from .formats.fetch import fetch

        if args.source:
            raise InputError("Give --source or --url, not both (build from one, then --add the other).")
        report = engine.library.add_files([fetch(u, settings.max_file_bytes) for u in args.url], add=args.add,
                                          progress=progress)
        _print_report("Built.", report)
        for path in report.saved:
            print(f"  saved: {path}")
        return 0
    report = engine.library.build(sources, add=args.add, progress=progress)
    _print_report("Built.", report)
    _print_passed_over(sources)
    return 0


def _print_passed_over(sources) -> None:
    """Name the files a folder scan left out for their format: a user who built from
    /usr/share/doc/base-passwd was not told that its README, copyright and changelog.gz were not read."""
    from .document import SUPPORTED_SUFFIXES, passed_over

    for folder in (Path(s) for s in sources):
        left = passed_over(folder) if folder.is_dir() else []
        if left:
            names = ", ".join(printable(f.name) for f in left[:_NAMES_SHOWN])
            names += ", ..." if len(left) > _NAMES_SHOWN else ""
            print(f"  not read from {printable(str(folder))} ({len(left)} file(s) in other formats): {names}. "
                  f"Folders are scanned for {', '.join(SUPPORTED_SUFFIXES)}; give a plain-text file by name "
                  f"(--source FILE) to read it anyway.", file=sys.stderr)


_NAMES_SHOWN = 8  # files named in the "not read from" line


def _print_report(what: str, report) -> None:
    from .render import report_sentence

    print(printable(report_sentence(report, what)))
    for path in report.copied:
        print(f"  copied into the source folder: {printable(path)}")
    if report.moved_aside:
        print(f"  its file was moved to {printable(report.moved_aside)}")
    for path, info in report.skipped.items():
        print(f"  skipped {printable(path)}: {printable(info.get('reason', ''))}", file=sys.stderr)


def _print_answer(answer, as_json: bool, heading: bool = False) -> None:
    from .render import to_text

    if as_json:
        print(json.dumps(answer.to_json(), ensure_ascii=False), flush=True)
    else:
        print((f"Q: {printable(answer.question)}\n" if heading else "") + to_text(answer), flush=True)


def cmd_ask(args, settings: Settings) -> int:
    engine = _engine(settings)
    typed = " ".join(args.question)
    questions = [line for line in sys.stdin.read().splitlines() if line.strip()] if typed == "-" else [typed]
    status = 0
    for q in questions:
        try:
            _print_answer(engine.ask(q, k=args.k), args.json, heading=len(questions) > 1)
        except QAError as exc:
            status = 2
            if args.json:
                shown = q[: settings.max_question_chars]  # an oversized question is not echoed back whole
                print(json.dumps({"question": shown, "error": str(exc)}, ensure_ascii=False), flush=True)
            else:
                print(f"qa: {printable(str(exc))}", file=sys.stderr)
        if not args.json and len(questions) > 1:
            print()
    return status


def cmd_chat(args, settings: Settings) -> int:
    from .ranking import Conversation

    engine = _engine(settings)
    interactive = sys.stdin.isatty()
    if interactive:
        print("Ask about the document. '/reset' starts a new conversation, Ctrl-D quits.")
    conversation = Conversation()
    while True:
        if interactive:
            print("> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            return 0
        q = line.strip()
        if not q:
            continue
        if q == "/reset":
            conversation = Conversation()
            if not args.json:
                print("(new conversation)", flush=True)
            continue
        try:
            answer, conversation = engine.chat(q, conversation, k=args.k)
            _print_answer(answer, args.json, heading=not interactive)  # piped: say which question it answers
        except QAError as exc:
            shown = q[: settings.max_question_chars]
            msg = {"question": shown, "error": str(exc)} if args.json else f"qa: {printable(str(exc))}"
            print(json.dumps(msg, ensure_ascii=False) if args.json else msg, flush=True)
        if not args.json:
            print(flush=True)


def cmd_eval(args, settings: Settings) -> int:
    from . import evaluate
    from .engine import Engine

    records = [r for path in args.qa for r in evaluate.read_records(path)]
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp:
        if args.source:
            settings = settings.with_(index_dir=Path(tmp))
            engine = Engine(settings)
            engine.library.build([args.source])
        else:
            engine = _engine(settings)
        t0 = time.perf_counter()
        rows = evaluate.run(engine, records, use_history=not args.no_history)
        summary = evaluate.summarise(rows)
        elapsed = time.perf_counter() - t0
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(evaluate.format_table(summary))
        print(f"({len(records)} questions in {elapsed:.1f} s)")
    return 0


def cmd_documents(args, settings: Settings) -> int:
    from .engine import Engine

    engine = Engine(settings)
    if args.remove:
        for doc_id in args.remove:
            _print_report(f"Removed {doc_id!r}.", engine.library.remove(doc_id))
        return 0
    info = engine.documents()
    if args.json:
        print(json.dumps(info.to_json(), ensure_ascii=False, indent=2))
        return 0
    lines = ([f"Note: {info.note}"] if info.note else []) + [
             f"Index version {info.version} ({info.created}), model {info.model}",
             "Built from: " + (", ".join(info.sources) or "pasted text only")]
    lines += [f"- {d.id}: {d.title} — {count(d.paragraphs, 'paragraph')}, {count(d.sections, 'section')}"
              + (f" ({d.source})" if d.source else "") for d in info.documents]
    lines += [f"  (removed, left out of rebuilds: {path})" for path in info.excluded]
    lines += [f"  (skipped {path}: {v.get('reason', '')})" for path, v in info.skipped.items()]
    print(printable("\n".join(lines)))
    return 0


def cmd_serve(args, settings: Settings) -> int:
    from .ui_startup import serve  # the index and model start loading before gradio is imported

    serve(settings)
    return 0


COMMANDS = {"build": cmd_build, "ask": cmd_ask, "chat": cmd_chat, "eval": cmd_eval,
            "documents": cmd_documents, "serve": cmd_serve}


if __name__ == "__main__":
    sys.exit(main())
