"""Write the shipped article as PDF (headless Chromium, with its running header and footer) and
as .docx (python-docx, with a page header and footer) into a folder, for

    python tools/article_formats.py /tmp/article-formats
    qa eval --qa eval/dev_qa.jsonl --source /tmp/article-formats/article.pdf
    qa eval --qa eval/dev_qa.jsonl --source /tmp/article-formats/article.docx

(the figures in docs/formats.md). The same fixtures the tests make (tests/formats_fixtures.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from formats_fixtures import article_docx, article_html, print_pdf  # noqa: E402


def main(folder: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    print(print_pdf(article_html(), out, "article", header_footer=True))
    print(article_docx(out / "article.docx"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "article-formats")
