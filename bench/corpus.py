"""The benchmark corpus: the shipped article plus the two SQuAD articles (a few hundred
sentences/windows), and a pool of distinct real questions about them.

Questions are handed out without repeats (`Pool.take`), so the encoder's query cache never
answers a timed question from memory: every timed answer pays for its encode.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT / "eval"


def sources() -> list[Path]:
    """Absolute paths of the documents the bench index is built from."""
    out = sorted((ROOT / "source").glob("*.txt"))
    out += sorted((EVAL / "squad").glob("*.txt"))
    return [p.resolve() for p in out]


def questions() -> list[str]:
    """Every distinct question of the eval sets (single questions and conversation turns)."""
    seen: dict[str, None] = {}
    for path in sorted(EVAL.glob("*.jsonl")) + sorted((EVAL / "squad").glob("*_qa.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                for q in [rec.get("question")] + list(rec.get("turns") or []):
                    if q and q.strip():
                        seen.setdefault(q.strip(), None)
    if not seen:  # the eval sets are missing: fall back to a few questions about the article
        seen = dict.fromkeys(["What bodies of water surround Cuba?", "When did Che Guevara visit Pyongyang?",
                              "Who heads the Cuban government?", "What was the Chong Chon Gang?"])
    return list(seen)


def conversations() -> list[tuple[str, str]]:
    """(first question, follow-up) pairs from dev_chat.jsonl."""
    out = []
    path = EVAL / "dev_chat.jsonl"
    if path.exists():
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                turns = json.loads(line).get("turns") or []
                out += list(itertools.pairwise(turns))
    return out or [("What was the Chong Chon Gang?", "Where was it intercepted?")]


@dataclass
class Pool:
    """Distinct questions, handed out in order; wraps around (and says so) when exhausted."""

    items: list[str]
    pos: int = 0
    repeats: int = 0

    def take(self, n: int) -> list[str]:
        out = []
        for _ in range(n):
            if self.pos >= len(self.items):
                self.pos, self.repeats = 0, self.repeats + 1
            out.append(self.items[self.pos])
            self.pos += 1
        return out


def build(index_dir: Path, encoder=None):
    """Build the bench index in `index_dir` (fresh); returns (settings, engine, build report)."""
    from qa.config import Settings
    from qa.engine import Engine

    settings = Settings(index_dir=index_dir, source_dir=ROOT / "source")
    engine = Engine(settings, encoder=encoder)
    report = engine.library.build(sources())
    return settings, engine, report
