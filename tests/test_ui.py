"""The web app: handler functions with the hashing encoder, then one real-model HTTP round trip."""

from __future__ import annotations

import html
import socket

import pytest

from qa.config import Settings
from qa.engine import Engine
from qa.errors import BuildInProgress, InputError, NotAllowed
from qa.reader import Target
from qa.ui import (
    BUILDING,
    GENERIC_ERROR,
    Handlers,
    Startup,
    access,
    build_app,
    check_admin,
    friendly,
    launch_kwargs,
    previous_questions,
    progress_text,
)

QUESTION = "When did Che Guevara visit Pyongyang?"
JSON_KEYS = {"question", "found", "confidence", "answer", "citations", "index_version"}
PASTED = "Kangaroo notes\n\nThe kangaroo lives in Australia and hops.\n\nFood\n\nKangaroos eat grass at night."


@pytest.fixture
def handlers(fake_engine, settings) -> Handlers:
    return Handlers(fake_engine, fake_engine.settings)


def test_previous_questions_reads_gradio6_messages_and_strings():
    history = [
        {"role": "user", "content": "Who visited?"},
        {"role": "assistant", "content": "Che."},
        {"role": "user", "content": [{"type": "text", "text": "When"}, {"type": "text", "text": "exactly?"}]},
        {"role": "user", "content": [{"type": "file", "file": {"path": "x.png"}}]},
        {"role": "user", "content": "   "},
        "And why?",
    ]
    assert previous_questions(history) == ["Who visited?", "When exactly?", "And why?"]
    assert previous_questions(None) == []


def test_respond_answers_with_citation_and_sources(handlers):
    *_, (box, conversation, sources, turns, export_md, export_json) = handlers.respond(QUESTION, [], [])
    assert box == "" and len(turns) == 1 and turns[0].answer.index_version == handlers.current_version()
    assert "¶" in conversation and "class='qa-quote'" in conversation and "?doc=" in conversation
    assert "<mark>" in sources and "Cited passages" in sources
    assert export_md["interactive"] and export_md["value"].endswith(".md") and export_json["value"].endswith(".json")


def test_respond_passes_previous_questions_as_history(handlers, monkeypatch):
    seen = []
    real_ask = handlers.engine.ask
    monkeypatch.setattr(handlers.engine, "ask", lambda q, h=(): seen.append(list(h)) or real_ask(q, h))
    *_, (_, _, _, turns, _, _) = handlers.respond(QUESTION, [], [])
    list(handlers.respond("Who received him?", turns, []))
    assert seen[0] == [] and seen[-1] == [QUESTION]


def test_empty_question_adds_nothing(handlers):
    assert handlers.turn("   ", []) is None
    (out,) = list(handlers.respond("  \n ", [], []))
    assert all(o == {"__type__": "update"} for o in out)  # gr.skip(): no bubble, no change
    assert "Please type a question." in handlers.api_answer_json("   ")["error"]


def test_overlong_question_becomes_friendly_message(handlers):
    t = handlers.turn("x" * 2001, [])
    assert t.answer is None and "limit is 2000" in t.message
    assert "error" in handlers.api_answer_json("x" * 2001) and "limit is 2000" in handlers.api_ask("x" * 2001)


def test_unexpected_error_shows_generic_message_not_traceback(handlers, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(handlers.engine, "ask", boom)
    assert handlers.turn(QUESTION, []).message == GENERIC_ERROR
    assert "secret" not in handlers.api_ask(QUESTION) and "Traceback" not in handlers.api_ask(QUESTION)


def test_index_still_building_at_startup(tmp_path, hash_encoder):
    engine = Engine(Settings(index_dir=tmp_path / "index", source_dir=tmp_path), encoder=hash_encoder)
    h = Handlers(engine, engine.settings, Startup())  # startup not done yet
    assert h.turn(QUESTION, []).message == BUILDING
    assert h.api_answer_json(QUESTION)["error"] == BUILDING


def test_question_asked_during_startup_waits_and_is_answered(settings, hash_encoder):
    """No "try again" loop: the chat shows the build's progress, then the answer."""
    engine = Engine(settings.with_(model="hash-64"), encoder=hash_encoder)
    startup = Startup()
    h = Handlers(engine, engine.settings, startup)
    steps = h.respond(QUESTION, [], [])
    box, waiting, *_ = next(steps)
    assert box == "" and "Preparing the index" in waiting and "aria-busy='true'" in waiting
    startup.say(0.5, "Embedding passages")
    assert "Embedding passages: 50%" in next(steps)[1]
    startup.start(engine).join(60)
    *_, last = steps
    assert len(last[3]) == 1 and last[3][0].answer is not None and "qa-quote" in last[1]


def test_progress_text_gives_time_left_once_it_means_something():
    assert progress_text(None, "Starting", 0) == "Starting…"
    assert progress_text(0.02, "Reading", 10) == "Reading: 2%"  # too early for an estimate
    assert progress_text(0.5, "Embedding", 1) == "Embedding: 50%"
    assert progress_text(0.25, "Embedding", 60) == "Embedding: 25% · about 3 min left"


def test_error_messages_in_the_chat_are_shown_literally(handlers, monkeypatch):
    """A path or a <tag> in an error message is escaped like document text, not rendered."""
    message = "Cannot read /srv/my_docs/*draft*.txt: it has <img src=x onerror=alert(1)> in [it](http://x.invalid)."

    def fail(*a, **k):
        raise InputError(message)

    monkeypatch.setattr(handlers.engine, "ask", fail)
    t = handlers.turn(QUESTION, [])
    shown = handlers.conversation([t])
    assert "<img" not in shown and "&lt;img src=x onerror=alert(1)&gt;" in shown and t.message == message


def test_build_in_progress_message():
    assert friendly(BuildInProgress("locked")) == "A rebuild is already in progress; try again when it has finished."


def test_quoted_script_tag_is_shown_as_text(tmp_path, hash_encoder):
    src = tmp_path / "src"
    src.mkdir()
    (src / "x.txt").write_text("Tags\n\nThe page had <script>alert(1)</script> inside the kangaroo body.\n\n"
                               "Another paragraph about nothing.", "utf-8")
    engine = Engine(Settings(index_dir=tmp_path / "index", source_dir=src, model="hash-64"), encoder=hash_encoder)
    engine.library.build([src])
    h = Handlers(engine, engine.settings)
    *_, (_, conversation, sources, turns, _, _) = h.respond("What did the page have inside the kangaroo body?", [], [])
    assert "&lt;script&gt;" in conversation and "<script" not in conversation
    assert "&lt;script&gt;" in sources and "<script" not in sources
    reader = h.read(Target(turns[0].answer.citations[0].document, 1))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in reader and "<script" not in reader


def test_earlier_answers_marked_stale_after_rebuild(handlers):
    *_, (_, _, _, turns, _, _) = handlers.respond(QUESTION, [], [])
    assert handlers.rebuild(None, PASTED, "", "Add", "").startswith("Added")
    *_, (_, conversation, sources, turns, _, _) = handlers.respond("Where does the kangaroo live?", turns, [])
    first, second = conversation.split("<article")[1:]
    assert "From a previous index version" in first and "From a previous" not in second
    assert "Sources for: <q>Where does the kangaroo" in sources  # the panel: the last answer's sources
    assert "qa-inline-sources" in first and "<mark>" in first  # the first keeps its own (copied there on select)


def test_preview_shows_counts_sections_and_clear_errors(handlers, tmp_path):
    text = handlers.preview(None, PASTED, "My kangaroos")
    assert "My kangaroos" in text and "2 paragraphs" in text and "Food" in text
    binary, pdf, empty = tmp_path / "b.txt", tmp_path / "c.pdf", tmp_path / "e.md"
    binary.write_bytes(b"\x00\x01\x02binary")
    pdf.write_bytes(b"%PDF-1.4")
    empty.write_text("  \n", "utf-8")
    text = html.unescape(handlers.preview([str(binary), str(pdf), str(empty)], "", ""))
    assert "binary" in text and "is not a readable PDF" in text and "no paragraphs" in text
    assert "Traceback" not in text
    assert "Paste some text" in handlers.preview(None, "", "")


def test_admin_gate():
    local = Settings(host="127.0.0.1")
    assert access(local) == "open" and access(Settings(host="0.0.0.0")) == "readonly"
    guarded = Settings(host="0.0.0.0", admin_password="s3cret")
    assert access(guarded) == "password" and access(Settings(share=True, admin_password="x")) == "password"
    check_admin(local, None)
    check_admin(guarded, "s3cret")
    for settings, password in ((guarded, "wrong"), (guarded, None), (Settings(host="0.0.0.0"), "anything")):
        with pytest.raises(NotAllowed):
            check_admin(settings, password)


def test_rebuild_refused_without_password_writes_nothing(fake_engine, settings):
    public = fake_engine.settings.with_(host="0.0.0.0", admin_password="s3cret")
    h = Handlers(fake_engine, public)
    before = sorted(p.name for p in settings.source_dir.iterdir())
    assert "Wrong or missing admin password" in h.rebuild(None, PASTED, "", "Replace", "nope")
    assert "Wrong or missing admin password" in h.remove("anything", "")
    assert sorted(p.name for p in settings.source_dir.iterdir()) == before
    assert "Replaced." in h.rebuild(None, PASTED, "", "Replace", "s3cret")


def test_add_then_replace_then_remove(handlers, settings, tmp_path):
    assert len(handlers.documents_table()) == 1
    report = handlers.rebuild(None, PASTED, "Kangaroo notes", "Add", "", progress=lambda f, m: None)
    assert "2 documents" in report
    assert (settings.source_dir / "Kangaroo-notes.txt").is_file()  # named by document.safe_filename
    upload = tmp_path / "My Wombat (v2).MD"
    upload.write_text("Wombats\n\nThe wombat digs burrows in the forest.\n", "utf-8")
    assert "1 document," in handlers.rebuild([str(upload)], "", "", "Replace", "")
    assert (settings.source_dir / "My-Wombat-v2.md").is_file()
    assert [row[0] for row in handlers.documents_table()] == ["Wombats"]
    assert "only document" in handlers.remove("wombats", "")
    handlers.rebuild(None, PASTED, "", "Add", "")
    assert "Removed" in handlers.remove("wombats", "")
    assert [row[1] for row in handlers.documents_table()] == ["kangaroo-notes"]
    # a restart serves the same set: the recorded sources are still there and unchanged
    assert handlers.engine.library.staleness() is None


def test_examples_are_shown_only_while_their_article_is_served(handlers):
    assert handlers.examples_visible()
    assert "Che Guevara" in handlers.box_placeholder()
    assert handlers.rebuild(None, PASTED, "", "Add", "").startswith("Added")
    assert handlers.examples_visible()  # the article is still there
    assert handlers.rebuild(None, PASTED, "", "Replace", "").startswith("Replaced")
    assert not handlers.examples_visible()  # questions about the article would all be "not found"
    hint = handlers.box_placeholder()  # nor does the question box suggest one any more
    assert "Che Guevara" not in hint and handlers.documents_table()[0][0] in hint
    empty = Engine(handlers.settings.with_(index_dir=handlers.settings.index_dir.parent / "none"),
                   encoder=handlers.engine.encoder)
    assert Handlers(empty, empty.settings).examples_visible()  # no index yet: the shipped article is built


def test_rebuild_saves_all_documents_in_one_version_and_removes_them_if_it_fails(handlers, settings, tmp_path,
                                                                                    monkeypatch):
    upload = tmp_path / "Wombats.md"
    upload.write_text("Wombats\n\nThe wombat digs burrows in the forest.\n", "utf-8")
    before = sorted(p.name for p in settings.source_dir.iterdir())
    old = handlers.current_version()

    def fail(*a, **k):
        raise OSError("disk on fire")

    monkeypatch.setattr("qa.store.write_version", fail)
    assert handlers.rebuild([str(upload)], PASTED, "", "Add", "").startswith("**Not rebuilt:**")
    assert sorted(p.name for p in settings.source_dir.iterdir()) == before and handlers.current_version() == old
    monkeypatch.undo()
    versions = []
    assert "3 documents" in handlers.rebuild([str(upload)], PASTED, "", "Add", "",
                                               progress=lambda f, m: versions.append(handlers.current_version()))
    assert set(versions[:-1]) == {old}  # one build: nothing was published before the end
    assert sorted(p.name for p in settings.source_dir.iterdir()) == sorted([*before, "Wombats.md", "pasted-text.txt"])


def test_rebuild_with_bad_file_changes_nothing(handlers, settings, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\x00\x00binary")
    version, before = handlers.current_version(), sorted(settings.source_dir.iterdir())
    assert "Nothing was changed" in handlers.rebuild([str(bad)], PASTED, "", "Replace", "")
    assert handlers.current_version() == version and sorted(settings.source_dir.iterdir()) == before


# --- integration: the real model over HTTP --------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_app(real_index, tmp_path_factory):
    from gradio_client import Client

    settings = real_index.with_(source_dir=tmp_path_factory.mktemp("ui-source"), port=_free_port())
    demo = build_app(Engine(settings), settings)
    demo.launch(**(launch_kwargs(settings) | {"prevent_thread_lock": True, "quiet": True}))
    try:
        yield Client(f"http://127.0.0.1:{settings.port}/", verbose=False)
    finally:
        demo.close()


@pytest.mark.slow
def test_http_api_with_real_model(live_app):
    md = live_app.predict(QUESTION, api_name="/ask")
    assert "Che Guevara" in md and "¶4" in md
    data = live_app.predict(QUESTION, [], api_name="/answer_json")
    assert JSON_KEYS <= set(data) and data["found"] and data["citations"][0]["paragraph"] == 4
    follow = live_app.predict("Who received him?", [QUESTION], api_name="/answer_json")
    assert JSON_KEYS <= set(follow)
    assert "error" in live_app.predict("   ", api_name="/answer_json")
    assert set(live_app.view_api(return_format="dict", print_info=False)["named_endpoints"]) == {"/ask", "/answer_json"}


def test_safe_launch_defaults_and_read_only_app(fake_engine):
    kw = launch_kwargs(Settings())
    assert kw["server_name"] == "127.0.0.1" and kw["share"] is False and kw["show_error"] is False
    assert kw["max_file_size"] == Settings().max_file_bytes and kw["enable_monitoring"] is False
    public = fake_engine.settings.with_(host="0.0.0.0")
    demo = build_app(fake_engine, public)  # read-only documents tab still builds
    assert demo.get_config_file()["analytics_enabled"] is False
    assert "no admin password is set" in Handlers(fake_engine, public).rebuild(None, PASTED, "", "Add", "")


def test_startup_builds_missing_index_and_reports_failure(settings, hash_encoder):
    engine = Engine(settings.with_(model="hash-64"), encoder=hash_encoder)
    startup = Startup()
    startup.start(engine).join(60)
    assert startup.done.is_set() and startup.error is None and Handlers(engine, engine.settings).current_version()
    broken = Engine(settings.with_(model="hash-64", source_dir=settings.source_dir / "missing",
                                   index_dir=settings.index_dir.parent / "other"), encoder=hash_encoder)
    failed = Startup()
    failed.run(broken)
    assert failed.error and "could not be built" in Handlers(broken, broken.settings, failed).api_ask(QUESTION)
