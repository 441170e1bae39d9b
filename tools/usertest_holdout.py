"""Ask eval/holdout/usertest_20261129.jsonl again: 60 questions a new user asked about 7 documents
found on a Debian system (GPL-3, Apache-2.0 made into a .docx, base-passwd's and libffi's HTML,
the shared-mime-info spec as PDF). Builds one index of all seven in a temporary folder, asks every
question (conversations turn by turn), prints each first citation and the counts: Hit@1 (the first
citation holds a gold string, or lies within one), answerable refused, unanswerable refused.

    PYTHONPATH=. .venv/bin/python tools/usertest_holdout.py [--out results.jsonl]

Needs the Debian files below (it says which is missing). A holdout: never fit anything on it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOLDOUT = ROOT / "eval" / "holdout" / "usertest_20261129.jsonl"
LIBFFI = Path("/usr/share/doc/libffi8/html")
FILES = [Path("/usr/share/common-licenses/GPL-3"), Path("/usr/share/doc/base-passwd/users-and-groups.html"),
         Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf"),
         *(LIBFFI / f"{n}.html" for n in ("Closure-Example", "Simple-Example", "Introduction"))]
APACHE = Path("/usr/share/common-licenses/Apache-2.0")
SHORT_LINE = 60  # an Apache block shorter than this without a full stop becomes a Word heading


def apache_docx(folder: Path) -> Path:
    """Apache-2.0 as a Word file: its blocks as paragraphs, short unpunctuated ones as headings."""
    import docx

    d = docx.Document()
    for block in (b.strip() for b in re.split(r"\n\s*\n", APACHE.read_text(encoding="utf-8")) if b.strip()):
        one = " ".join(line.strip() for line in block.splitlines())
        (d.add_heading(one, level=2) if len(one) < SHORT_LINE and not one.endswith(".") else d.add_paragraph(one))
    path = folder / "apache-2.0.docx"
    d.save(path)
    return path


def norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().lower()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="write each record with what came back (JSONL)")
    args = ap.parse_args()
    missing = [str(p) for p in [*FILES, APACHE] if not p.exists()]
    if missing:
        print(f"missing (install the Debian packages that ship them): {', '.join(missing)}", file=sys.stderr)
        return 2
    from qa.config import Settings
    from qa.engine import Engine
    from qa.ranking import Conversation

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        settings = Settings.from_env(index_dir=tmp / "index", source_dir=tmp / "source")
        engine = Engine(settings)
        engine.library.build([*(FILES), apache_docx(tmp)])
        stats = {"answerable": 0, "hit@1": 0, "answerable refused": 0, "unanswerable": 0, "unanswerable refused": 0}
        out = []
        for r in (json.loads(line) for line in HOLDOUT.read_text(encoding="utf-8").splitlines() if line.strip()):
            if "turns" in r:
                conv = Conversation()
                for turn in r["turns"]:
                    a, conv = engine.chat(turn, conv)
            else:
                a = engine.ask(r["question"])
            c = a.citations[0] if a.citations else None
            hit = bool(c and a.found and any(norm(g) in norm(c.quote) or norm(c.quote) in norm(g) for g in r["gold"]))
            kind = "answerable" if r["answerable"] else "unanswerable"
            stats[kind] += 1
            stats[f"{kind} refused"] += not a.found
            stats["hit@1"] += hit
            where = f"{c.document} ¶{c.paragraph}" if c else "-"
            print(f"{r['id']:5} found={a.found!s:5} conf={a.confidence or 0:.2f} hit={hit!s:5} {where}")
            out.append(dict(r, result={"found": a.found, "confidence": a.confidence, "hit1": hit,
                                       "first_citation": c and {"document": c.document, "paragraph": c.paragraph,
                                                                "section": c.section, "page": c.page,
                                                                "quote": c.quote}}))
    print(json.dumps(stats))
    if args.out:
        args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
