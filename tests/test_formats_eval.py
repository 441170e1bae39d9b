"""The shipped article as PDF and as .docx answers the development questions as well as the
.txt (Hit@1 within 0.02, real model), and PDF citations name the page their paragraph starts on."""

from __future__ import annotations

import pytest
from conftest import EVAL
from formats_fixtures import article_docx, article_html, print_pdf

from qa import evaluate
from qa.config import Settings
from qa.engine import Engine
from qa.render import label

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def records():
    return evaluate.read_records(EVAL / "dev_qa.jsonl")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    folder = tmp_path_factory.mktemp("formats-eval")
    return {"pdf": print_pdf(article_html(), folder, "article", header_footer=True),
            "docx": article_docx(folder / "article.docx")}


@pytest.fixture(scope="module")
def engines(made, tmp_path_factory):
    """One real-model engine per format, built when first asked for."""
    built = {}

    def get(kind: str) -> Engine:
        if kind not in built:
            root = tmp_path_factory.mktemp(f"index-{kind}")
            built[kind] = Engine(Settings(index_dir=root / "index", source_dir=made[kind].parent))
            built[kind].library.build([made[kind]])
        return built[kind]
    return get


@pytest.fixture(scope="module")
def txt_hit1(real_engine, records):
    return hit1(real_engine, records)


def hit1(engine, records) -> float:
    return evaluate.summarise(evaluate.run(engine, records))["all"]["hit@1"]


@pytest.mark.parametrize("kind", ["pdf", "docx"])
def test_article_as_pdf_and_docx_answers_as_well_as_the_text(kind, engines, records, txt_hit1):
    assert abs(hit1(engines(kind), records) - txt_hit1) <= 0.02


def test_pdf_citations_name_the_page_their_paragraph_starts_on(made, engines, records):
    from pdfminer.high_level import extract_text

    engine = engines("pdf")
    ligatures = str.maketrans({"ﬁ": "fi", "ﬂ": "fl", "ﬀ": "ff", "ﬃ": "ffi", "ﬄ": "ffl"})
    page_text = {n: " ".join(extract_text(str(made["pdf"]), page_numbers=[n - 1]).translate(ligatures).split())
                 for n in range(1, 6)}
    answer = engine.ask("When did Che Guevara visit Pyongyang?", [], k=5)
    top = answer.citations[0]
    assert label(top, False) == "¶4 · p. 1 · Historical context"
    assert answer.to_json()["citations"][0]["page"] == 1
    docs = engine.snapshot().docs
    checked = 0
    for r in records:
        for c in engine.ask(r["question"], [], k=3).citations:
            start = " ".join(docs[c.document].paragraph(c.paragraph).text.split())[:60]
            assert start in page_text[c.page], (c.paragraph, c.page)
            checked += 1
    assert checked >= 30
