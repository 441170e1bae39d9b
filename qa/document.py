"""Source text -> `Document` of numbered `Paragraph`s; reading files (txt, md, html, pdf, docx) safely.

Numbering rule (docs/design.md §4): blocks are separated by blank lines; body paragraphs are
numbered 1..n in source order. The first block is the title when it looks like one (a single
line without sentence-ending punctuation); later heading-like blocks (a short single line, or
a Markdown `#` line, a line underlined with `===`/`---`, or a numbered clause heading such as
"0. Definitions.") become the `section` of the paragraphs under them; in a document whose
sections are numbered, a paragraph that opens with its own numbered heading ("2. Grant of
Copyright License. Subject to ...") starts that section and stays a paragraph. A Markdown `#`
line directly above text (no blank line) is split off as a heading too. Comment-form boilerplate
("Leave a Reply", ...) and blocks without a letter or digit (`---`, `***`) are dropped; a
paragraph repeated word for word is kept once (with a warning). Everything else is a citable
paragraph, and every paragraph's `text == document.text[start:end]`.

Structured formats (`qa.formats`: HTML through trafilatura, PDF through pdfminer.six, Word
through python-docx) give blocks whose kind (title, heading, paragraph) the format says;
`from_blocks` numbers them by the same rule, and PDF paragraphs carry the page they start on.

Input checks (`load`, `load_file`): empty or whitespace-only text, binary data, undecodable
bytes, files over the size limit (QA_MAX_FILE_MB, default 5 MB), unsupported formats, and
unreadable, encrypted, scanned or hostile PDFs and .docx files are refused with `InputError` and
a message saying what to do. Encodings: see `qa.formats.text` (doubtful ones are read with a
warning in `Document.warnings`, which the preview shows).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from . import formats
from .errors import InputError
from .formats import text as _text

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
_BINARY_FORMATS = {".pdf": "pdf", ".docx": "docx"}

_BLOCK = re.compile(r"[^\n]*\S[^\n]*(?:\n[^\n]*\S[^\n]*)*")
_MD_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
# A heading underlined with "===" or "---" on the next line (Markdown's setext form, and plain-text
# READMEs): "base-passwd for Debian\n----------------------".
_SETEXT = re.compile(r"^([^\n]*\S[^\n]*)\n[ \t]*(?:={3,}|-{3,})[ \t]*$")
_BOILERPLATE = re.compile(
    r"^(leave a (reply|comment)|cancel reply|post comment|submit comment"
    r"|your email address will not be published.*|required fields are marked.*"
    r"|save my name, email,? and website.*"
    r"|(?:©|\(c\)|copyright)[^\n]{0,120}all rights reserved\.?"
    r"|(?:this (?:web)?site|we) uses? cookies[^\n]{0,200}|accept (?:all )?cookies\.?)$",
    re.IGNORECASE,
)
# A numbered heading such as GPL-3's "0. Definitions." or "13. Use with the GNU Affero General
# Public License.": a number (1, 2.3, IV.), then one short clause whose longer words are
# capitalised, ending with at most a full stop. Its full stop would otherwise make it a paragraph.
_NUMBERED_HEADING = re.compile(r"^(?:\d{1,3}(?:\.\d{1,3})*\.?|[IVX]{1,5}\.)\s+([^\n]{1,80}?)\.?$")
_NUMBERED_HEADING_MAX_WORDS = 10
_SMALL_WORDS = frozenset({"a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "of", "on", "or",
                          "the", "this", "to", "with", "without"})
_INLINE_NUMBERED = re.compile(r"^((?:\d{1,3}(?:\.\d{1,3})*\.?|[IVX]{1,5}\.)\s+[^.!?;:\n]{1,80})\.\s+\S")
_SENTENCE_END = tuple(".!?;:,…")
_CLOSERS = "\"'”’»)]*_ \t"
_FORMAT_SUFFIX = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,4}")


@dataclass(frozen=True)
class Paragraph:
    number: int  # 1-based, body paragraphs only
    section: str  # heading above it ("" before the first heading)
    start: int  # offsets into Document.text
    end: int
    text: str
    page: int | None = None  # 1-based page it starts on (paged formats: PDF)


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str
    paragraphs: tuple[Paragraph, ...]
    source: str = ""  # file path it was read from ("" for pasted text)
    warnings: tuple[str, ...] = ()
    format: str = "text"  # text, markdown, html, pdf, docx
    pages: int | None = None  # page count (paged formats)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def sections(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.section for p in self.paragraphs if p.section))

    def paragraph(self, number: int) -> Paragraph:
        return self.paragraphs[number - 1]


def parse(text: str, doc_id: str = "", source: str = "", fallback_title: str = "") -> Document:
    """Split text into numbered paragraphs.

    >>> d = parse("Title\\n\\nFirst para.\\n\\nA heading\\n\\nSecond para.")
    >>> [(p.number, p.section, p.text) for p in d.paragraphs]
    [(1, '', 'First para.'), (2, 'A heading', 'Second para.')]
    """
    text = normalise_newlines(text)
    blocks = [_trim(text, m.start(), m.end()) for m in _BLOCK.finditer(text)]
    blocks = [b for s, e in blocks for b in _split_md_heading(text, s, e)]
    blocks = [(s, e) for s, e in blocks if e > s and _has_content(text[s:e])
              and not _BOILERPLATE.match(text[s:e].strip())]
    if not blocks:
        raise InputError("The text has no paragraphs: it is empty or whitespace only. Paste or upload some text.")
    title = ""
    if len(blocks) > 1 and _is_title(text[blocks[0][0] : blocks[0][1]]):
        title = _heading_text(text[blocks[0][0] : blocks[0][1]])
        blocks = blocks[1:]
    paragraphs: list[Paragraph] = []
    section = ""
    seen: dict[str, int] = {}
    duplicates = 0
    for i, (s, e) in enumerate(blocks):
        block = text[s:e]
        is_last = i == len(blocks) - 1
        if not is_last and _is_heading(block):
            section = _heading_text(block)
            continue
        section = _inline_numbered_heading(block, section) or section
        key = " ".join(block.split()).lower()
        if key in seen:
            duplicates += 1
            continue
        seen[key] = len(paragraphs) + 1
        paragraphs.append(Paragraph(len(paragraphs) + 1, section, s, e, block))
    title = title or fallback_title or _first_words(paragraphs[0].text)
    warnings = (f"{duplicates} duplicate paragraph(s) merged",) if duplicates else ()
    return Document(doc_id or slugify(title), title, text, tuple(paragraphs), source, warnings)


def from_blocks(ext: formats.Extracted, doc_id: str = "", source: str = "", fallback_title: str = "") -> Document:
    """Blocks whose kind the format gave -> Document: the title and headings are not numbered
    (a heading is the `section` of the paragraphs under it), boilerplate and repeated
    paragraphs are dropped as in `parse`, and `text` is the blocks joined by blank lines.

    >>> from qa.formats import Block, Extracted
    >>> d = from_blocks(Extracted("pdf", (Block("title", "T", 1), Block("para", "One.", 1),
    ...     Block("heading", "Methods", 2), Block("para", "Two.", 2)), "T", 2))
    >>> [(p.number, p.section, p.page, p.text) for p in d.paragraphs], d.title, d.pages
    ([(1, '', 1, 'One.'), (2, 'Methods', 2, 'Two.')], 'T', 2)
    """
    parts: list[str] = []
    paragraphs: list[Paragraph] = []
    pos, section, seen, duplicates = 0, "", set(), 0
    blocks = [b for b in ext.blocks if _has_content(b.text) and not _BOILERPLATE.match(b.text)]
    if not any(b.kind == formats.PARA for b in blocks):
        raise InputError("The document has no paragraphs of text: it is empty, or holds only headings or "
                         "boilerplate. Check that the right file was chosen.")
    for b in blocks:
        start = pos + (2 if parts else 0)
        parts.append(b.text)
        pos = start + len(b.text)
        if b.kind == formats.HEADING:
            section = b.text
        elif b.kind == formats.PARA and _is_numbered_heading(b.text):
            section = _heading_text(b.text)
        elif b.kind == formats.PARA:
            section = _inline_numbered_heading(b.text, section) or section
            key = " ".join(b.text.split()).lower()
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            paragraphs.append(Paragraph(len(paragraphs) + 1, section, start, pos, b.text, b.page))
    if not paragraphs:  # every text block was a numbered heading
        raise InputError("The document has no paragraphs of text: it is empty, or holds only headings or "
                         "boilerplate. Check that the right file was chosen.")
    text = "\n\n".join(parts)
    title = ext.title or fallback_title or _first_words(paragraphs[0].text)
    warnings = ext.warnings + ((f"{duplicates} duplicate paragraph(s) merged",) if duplicates else ())
    return Document(doc_id or slugify(title), title, text, tuple(paragraphs), source, warnings, ext.format, ext.pages)


def normalise_newlines(text: str) -> str:
    return text.replace("\ufeff", "").replace("\r\n", "\n").replace("\r", "\n")


_SLUG_STOP = {"the", "a", "an", "of", "and", "or", "in", "on", "to", "for", "by", "with", "at", "from",
              "how", "is", "are", "was", "were"}


def slugify(title: str, max_len: int = 40) -> str:
    """'The Normans: a history' -> 'normans-history' (stopwords dropped, cut at a word boundary)."""
    words = [w for w in re.findall(r"[a-z0-9]+", title.lower()) if w not in _SLUG_STOP]
    slug = ""
    for w in words:
        if len(slug) + len(w) + 1 > max_len and slug:
            break
        slug = f"{slug}-{w}" if slug else w
    return slug or "document"


def _trim(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def _split_md_heading(text: str, s: int, e: int) -> list[tuple[int, int]]:
    """A block whose first line is a Markdown heading with text right below it -> two blocks."""
    nl = text.find("\n", s, e)
    if nl < 0 or not _MD_HEADING.match(text[s:nl]):
        return [(s, e)]
    return [_trim(text, s, nl), *_split_md_heading(text, *_trim(text, nl + 1, e))]


def _has_content(block: str) -> bool:
    return any(ch.isalnum() for ch in block)


def _ends_sentence(block: str) -> bool:
    """'He said “no.”' ends a sentence (closing quotes and brackets are looked through)."""
    return block.rstrip(_CLOSERS).endswith(_SENTENCE_END)


def _is_title(block: str) -> bool:
    if _MD_HEADING.match(block) and "\n" not in block:
        return True
    if (m := _SETEXT.match(block)) and len(m.group(1)) <= 300:
        return True
    return "\n" not in block and len(block) <= 300 and not _ends_sentence(block)


def _is_heading(block: str) -> bool:
    if _MD_HEADING.match(block) and "\n" not in block:
        return True
    if (m := _SETEXT.match(block)) and len(m.group(1).split()) <= 15:
        return True
    return "\n" not in block and (len(block.split()) <= 15 and not _ends_sentence(block)
                                   or _is_numbered_heading(block))


def _is_numbered_heading(block: str) -> bool:
    """'1. Source Code.' is a heading; '1. Install it. Then run it.' and '2. run the tests.' are not.

    >>> [_is_numbered_heading(b) for b in ("0. Definitions.", "2.1 Directory Layout", "IV. Results",
    ...     "1. Install it. Then run it.", "2. run the tests.", "2021 was a good year.")]
    [True, True, True, False, False, False]
    """
    m = _NUMBERED_HEADING.match(block.strip())
    if not m or "\n" in block:
        return False
    words = m.group(1).split()
    if len(words) > _NUMBERED_HEADING_MAX_WORDS or any(ch in m.group(1) for ch in ".!?;:"):
        return False
    return words[0][0].isupper() and all(w[0].isupper() or w[0].isdigit() for w in words if len(w) > 4)


def _inline_numbered_heading(block: str, section: str) -> str:
    """The heading a paragraph opens with, in a document whose sections are numbered: Apache-2.0's
    "2. Grant of Copyright License. Subject to ..." follows the heading "1. Definitions." and
    starts section 2 (the paragraph keeps its text and number). '' when it opens with none.

    >>> _inline_numbered_heading("2. Grant of Copyright License. Subject to the terms, you may.", "1. Definitions")
    '2. Grant of Copyright License'
    >>> _inline_numbered_heading("2. Grant of Copyright License. Subject to the terms, you may.", "Preface")
    ''
    """
    m = _INLINE_NUMBERED.match(block)
    if not m or not _NUMBERED_HEADING.match(section) or not _is_numbered_heading(m.group(1) + "."):
        return ""
    words = m.group(1).split()[1:]  # every word capitalised but the small ones: not "1. Install it"
    return m.group(1) if all(w[0].isupper() or w[0].isdigit() or w in _SMALL_WORDS for w in words) else ""


def _heading_text(block: str) -> str:
    m = _MD_HEADING.match(block) or _SETEXT.match(block)
    text = (m.group(1) if m else block).strip()
    return text.rstrip(".") if _is_numbered_heading(text) else text  # "0. Definitions." -> "0. Definitions"


def _first_words(text: str, n: int = 8) -> str:
    words = text.split()
    return " ".join(words[:n]) + ("…" if len(words) > n else "")


# --- reading files -------------------------------------------------------------------------

def decode(data: bytes, name: str = "input") -> str:
    """Bytes -> str (see `qa.formats.text.decode`, which also returns warnings)."""
    return _text.decode(data, name)[0]


def _check_text(text: str, name: str) -> str:
    return _text.check_text(text, name)


def _too_big(name: str, size: int, max_bytes: int) -> InputError:
    mb = 1024 * 1024
    return InputError(f"{name} is {size / mb:.1f} MB, over the {max_bytes / mb:g} MB limit "
                      "(set QA_MAX_FILE_MB to allow bigger files).")


def read_bytes(path: Path, max_bytes: int) -> bytes:
    if not path.is_file():
        raise InputError(f"{path} is not a file. Give a .txt, .md, .html, .pdf or .docx file or a folder of them.")
    size = path.stat().st_size
    if size > max_bytes:
        raise _too_big(path.name, size, max_bytes)
    return path.read_bytes()


def check_format(name: str) -> str:
    """The format suffix of `name` ('' for none); refuses unsupported formats such as .pdf or .docx."""
    suffix = Path(name).suffix.lower()
    if suffix and suffix not in SUPPORTED_SUFFIXES and _FORMAT_SUFFIX.fullmatch(suffix):
        raise InputError(f"{Path(name).name}: unsupported format {suffix!r}. Use one of {', '.join(SUPPORTED_SUFFIXES)} "
                         "(save other formats as plain text first).")
    return suffix if suffix in SUPPORTED_SUFFIXES else ""


def load(data: bytes | str, name: str, max_bytes: int, doc_id: str = "", source: str = "") -> Document:
    """Read one document from bytes (a file's content) or str (pasted text) named `name`;
    its suffix picks the format (none: sniffed from the content, else plain text)."""
    suffix = check_format(name)
    size = len(data.encode("utf-8", "surrogatepass")) if isinstance(data, str) else len(data)
    if size > max_bytes:
        raise _too_big(name, size, max_bytes)
    stem = Path(name).stem if suffix else Path(name).name
    kind = _BINARY_FORMATS.get(suffix) or (_sniff(data) if not suffix and isinstance(data, bytes) else "")
    if kind:
        if isinstance(data, str):
            raise InputError(f"{name}: a {kind.upper()} file must be uploaded as a file, not pasted as text.")
        reader = formats.pdf if kind == "pdf" else formats.docx
        return from_blocks(reader.extract(bytes(data), Path(name).name), doc_id, source, stem)
    if isinstance(data, str):
        text, warnings = _text.check_text(data, name), ()
    else:
        text, warnings = _text.decode(bytes(data), name)
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates -> "?"
    if suffix in (".html", ".htm") or (not suffix and _looks_like_html(text)):
        ext = formats.html.extract(text)
        ext = formats.Extracted(ext.format, ext.blocks, ext.title, ext.pages, warnings + ext.warnings)
        return from_blocks(ext, doc_id, source, stem)
    doc = parse(text, doc_id=doc_id, source=source, fallback_title=stem)
    fmt = "markdown" if suffix in (".md", ".markdown") else "text"
    return Document(doc.id, doc.title, doc.text, doc.paragraphs, doc.source, warnings + doc.warnings, fmt)


def _sniff(data: bytes) -> str:
    """'pdf' / 'docx' for content that is one, whatever it is called ('' otherwise)."""
    if data[:1024].lstrip().startswith(b"%PDF-"):
        return "pdf"
    if data[:4] == b"PK\x03\x04" and b"word/" in data[:65536]:
        return "docx"
    return ""


def load_file(path: Path, max_bytes: int, doc_id: str = "") -> Document:
    return load(read_bytes(path, max_bytes), path.name, max_bytes, doc_id=doc_id, source=str(path))


def safe_filename(name: str, default_suffix: str = ".txt", content: bytes | str | None = None) -> str:
    """A file name that is safe to create in the source folder.

    >>> safe_filename("../My Notes (v2).MD")
    'My-Notes-v2.md'
    >>> safe_filename("Report 1.0")
    'Report-1.0.txt'

    No folders, no leading dot, only letters, digits, '.', '-' and '_' (others become '-'),
    at most 80 characters, and a supported suffix: when it has none, `.html` if `content`
    looks like an HTML page, else `default_suffix`. An unsupported format suffix (.pptx) is
    refused with InputError.
    """
    import unicodedata

    base = Path(str(name).replace("\\", "/")).name
    suffix = check_format(base)
    stem = base[: -len(suffix)] if suffix else base
    stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip(".-_ ")
    stem = re.sub(r"-{2,}", "-", stem)[:76].rstrip(".-_") or "document"
    if not suffix and content is not None:
        kind = _sniff(content) if isinstance(content, bytes) else ""
        head = content[:2000].decode("utf-8", "ignore") if isinstance(content, bytes) else content[:2000]
        default_suffix = f".{kind}" if kind else ".html" if _looks_like_html(head) else default_suffix
    return stem + (suffix or default_suffix)


def is_candidate(path: Path) -> bool:
    """Would a folder scan pick this file up? (supported suffix; not hidden, not a backup)"""
    return (path.suffix.lower() in SUPPORTED_SUFFIXES and not path.name.startswith((".", "~"))
            and not path.name.endswith("~"))


def passed_over(folder: Path) -> list[Path]:
    """The files a scan of `folder` leaves out for their format (README, changelog.gz, ...), so a
    build can say so; hidden files and editors' backups are left out silently."""
    return sorted(f for f in folder.iterdir() if f.is_file() and not is_candidate(f)
                  and not f.name.startswith((".", "~")) and not f.name.endswith("~"))


def expand_sources(paths: list[Path]) -> list[Path]:
    """Files and folders -> sorted list of supported files (folders are not recursed into;
    hidden files such as editors' temporaries and `.removed/` are skipped)."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.is_file() and is_candidate(f)))
        elif p.exists():
            files.append(p)
        else:
            raise InputError(f"{p} does not exist. Check the path given to --source.")
    return files


def _looks_like_html(text: str) -> bool:
    head = text[:2000].lower()
    return "<html" in head or "<!doctype html" in head or "<body" in head


def html_to_text(markup: str) -> str:
    """A page's main text (trafilatura, `qa.formats.html`): its blocks joined by blank lines.

    >>> html_to_text("<html><body><h1>T</h1><p>a <b>b</b></p><script>x</script></body></html>")
    'T\\n\\na b'
    """
    ext = formats.html.extract(markup)
    texts = [b.text for b in ext.blocks]
    return "\n\n".join(texts if not ext.title or ext.title in texts[:1] else [ext.title, *texts])
