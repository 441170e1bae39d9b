"""The values the library hands to the adapters (CLI, web app): what a build published
(`BuildReport`), a document given as content (`Upload`), how it would be indexed (`Preview`),
and what the served index holds (`IndexInfo`). Frozen, plain, rendered by `qa/render.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import document
from .document import Document
from .errors import InputError


@dataclass(frozen=True)
class BuildReport:
    """What a finished build published, the same for the CLI and the web app (`render.report_sentence`)."""

    version: str
    documents: int
    paragraphs: int
    sentences: int
    chunks: int
    encoded: int  # passages embedded now
    reused: int  # passages whose vectors came from the previous version
    titles: tuple[str, ...] = ()
    skipped: dict[str, dict] = field(default_factory=dict)  # file -> {"sha256", "reason"}
    seconds: float = 0.0
    copied: tuple[str, ...] = ()  # files copied into the source folder
    saved: tuple[str, ...] = ()  # uploads saved in the source folder, in the order given
    removed: str | None = None  # the document id removed
    moved_aside: str | None = None  # where its file went


@dataclass(frozen=True)
class Upload:
    """A document given as content (an upload, or pasted text): a sanitised file name and bytes."""

    name: str
    data: bytes

    @classmethod
    def of(cls, name: str, content: str | bytes) -> Upload:
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        try:
            return cls(document.safe_filename(name or "pasted", content=data), data)
        except InputError:  # an unsupported format: kept as named, so that `preview` says why
            return cls(Path(str(name).replace("\\", "/")).name, data)

    @classmethod
    def pasted(cls, text: str, title: str = "") -> Upload:
        """Pasted text, its title (if any) as its first line and its file name."""
        head = " ".join((title or "").split()).rstrip(".!?;:,")
        return cls.of((head or "pasted text") + ".txt", f"{head}\n\n{text}" if head else text)


@dataclass(frozen=True)
class Preview:
    """One upload as it would be indexed: its parsed document, or why it cannot be."""

    upload: Upload
    document: Document | None = None
    error: str | None = None


@dataclass(frozen=True)
class DocumentInfo:
    id: str
    title: str
    source: str | None
    paragraphs: int
    sections: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class IndexInfo:
    """What the served index holds (`qa documents`, the Documents tab)."""

    version: str
    created: str
    model: str
    sources: tuple[str, ...]
    documents: tuple[DocumentInfo, ...]
    excluded: tuple[str, ...] = ()
    skipped: dict[str, dict] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    note: str | None = None  # why this is not the published version (CURRENT unreadable), when it is not

    @classmethod
    def of(cls, manifest: dict) -> IndexInfo:
        docs = tuple(DocumentInfo(d.get("id", ""), d.get("title", ""), d.get("source") or None,
                                  int(d.get("paragraphs", 0)), int(d.get("sections", 0)), tuple(d.get("warnings", ())))
                     for d in manifest.get("documents", []))
        return cls(manifest.get("version", ""), manifest.get("created", ""), manifest.get("model", ""),
                   tuple(manifest.get("sources") or ()), docs, tuple(manifest.get("excluded") or ()),
                   dict(manifest.get("skipped") or {}), dict(manifest.get("counts") or {}))

    def to_json(self) -> dict:
        return {"version": self.version, "note": self.note, "created": self.created, "model": self.model, "sources": list(self.sources),
                "excluded": list(self.excluded), "skipped": self.skipped, "counts": self.counts,
                "documents": [{"id": d.id, "title": d.title, "source": d.source, "paragraphs": d.paragraphs,
                               "sections": d.sections, "warnings": list(d.warnings)} for d in self.documents]}
