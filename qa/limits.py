"""Refusing oversized questions and histories at the edge, before any text is cleaned or tokenised.

Every entry point (CLI `ask`/`chat`, the chat, the `/ask` and `/answer_json` API) reaches the
engine through `check_history` and `clean_question`, which look at lengths first: a 20 MB
question costs a `len()`, not a pass of Unicode cleaning and tokenising over 20 MB (issue 16:
27 s of CPU and +475 MB before).
"""

from __future__ import annotations

from typing import Any

from .errors import InputError

#: Raw text may be this many times the question limit before it is refused (or, for text that is
#: only shown, cut) without being looked at: cleaning collapses whitespace runs, and a question
#: shown in the chat comes back Markdown-escaped (at most two characters per character).
EDGE_FACTOR = 4
#: Messages accepted in one history: a 5,000-turn chat (user + assistant per turn). Only the
#: last few questions are used (engine: 3), so more is never useful.
MAX_HISTORY_ITEMS = 10_000
#: Messages of a history looked at after the checks: enough to hold the last 3 questions of a
#: chat even when every question got an error and a retry in between.
HISTORY_TAIL = 32


def edge(max_chars: int) -> int:
    """Longest raw text looked at for a question limit of `max_chars` characters."""
    return EDGE_FACTOR * max_chars + 64


def too_long(length: int, max_chars: int, what: str = "That question") -> InputError:
    return InputError(f"{what} is {length} characters long; the limit is {max_chars}. Ask something shorter.")


def check_question(text: Any, max_chars: int) -> None:
    """InputError when `text` is so long that it is refused without cleaning it.

    >>> check_question("x" * 9000, 2000)
    Traceback (most recent call last):
    ...
    qa.errors.InputError: That question is 9000 characters long; the limit is 2000. Ask something shorter.
    """
    if isinstance(text, str) and len(text) > edge(max_chars):
        raise too_long(len(text), max_chars)


def check_history(history: Any, max_chars: int) -> list:
    """The last HISTORY_TAIL messages of `history` (a list of strings or chat messages), each
    user question cut to `edge(max_chars)` characters -- after refusing a history of more than
    MAX_HISTORY_ITEMS messages. Only lengths are read before the cut; assistant messages are
    passed through untouched. An oversized earlier question is cut, not refused: the
    conversation goes on after a bad turn.

    >>> check_history(["a", "b"], 2000)
    ['a', 'b']
    >>> [len(h) for h in check_history(["ok", "y" * 90_000], 2000)]
    [2, 8064]
    >>> check_history(["?"] * 20_000, 2000)
    Traceback (most recent call last):
    ...
    qa.errors.InputError: The conversation has 20,000 messages; the limit is 10,000. Start a new conversation.
    """
    if history is None:
        return []
    if isinstance(history, (str, bytes)) or not hasattr(history, "__len__"):
        history = [history] if isinstance(history, str) else list(history or [])
    if len(history) > MAX_HISTORY_ITEMS:
        raise InputError(f"The conversation has {len(history):,} messages; the limit is {MAX_HISTORY_ITEMS:,}. "
                         "Start a new conversation.")
    n = edge(max_chars)
    return [_cut(msg, n) if _user_length(msg) > n else msg for msg in list(history)[-HISTORY_TAIL:]]


def user_text(msg: Any) -> str | None:
    """The text of a user message, None for any other role: the one place that knows the shapes
    a chat history comes in -- plain strings (API callers: each one a question), Gradio 6
    messages ({"role", "content"}, content a string or a list of blocks such as
    {"type": "text", "text": ...}), or objects with .role/.content (ChatMessage).

    >>> user_text({"role": "user", "content": [{"type": "text", "text": "Who?"}, "Why?"]})
    'Who? Why?'
    >>> user_text({"role": "assistant", "content": "Him."}) is None
    True
    """
    if isinstance(msg, str):
        return msg
    role = msg.get("role") if isinstance(msg, dict) else getattr(msg, "role", None)
    if role != "user":
        return None
    content = msg.get("content") if isinstance(msg, dict) else getattr(msg, "content", None)
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        texts = (b if isinstance(b, str) else b.get("text") if isinstance(b, dict) else None for b in content)
        return " ".join(t for t in texts if isinstance(t, str) and t)
    return ""


def previous_questions(history: Any) -> list[str]:
    """Earlier user questions from a chat history, oldest first (empty ones left out).

    >>> previous_questions([{"role": "user", "content": [{"type": "text", "text": "Who?"}]},
    ...                     {"role": "assistant", "content": "Him."}, "And when?"])
    ['Who?', 'And when?']
    """
    texts = (user_text(msg) for msg in history or [])
    return [t.strip() for t in texts if t and t.strip()]


def _cut(msg: Any, n: int) -> Any:
    """A user message with its text cut to `n` characters (a string stays a string)."""
    text = user_text(msg) or ""
    return text[:n] if isinstance(msg, str) else {"role": "user", "content": text[:n]}


def _user_length(msg: Any) -> int:
    """Characters of a user message's text (0 for other roles)."""
    return len(user_text(msg) or "")
