"""Rendering text for a terminal: `printable` makes control characters visible.

Document text is printed by `qa ask`, `qa chat` and `qa documents`; a document holding ANSI or
OSC escape sequences (clear screen, set the window title, hide text) would otherwise drive the
terminal. JSON output needs none of this: `json.dumps` escapes control characters itself.
"""

from __future__ import annotations

import re

# C0 controls except tab and newline (so CR, which overwrites a line, too), DEL, C1 controls
# (0x80-0x9f; 0x9b is a one-byte CSI), and the bidi controls that reorder what is shown
# ("Trojan Source"). Zero-width joiners are left alone: emoji and several scripts need them.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _show(m: re.Match) -> str:
    ch = m.group()
    code = ord(ch)
    if code == 0x1B:
        return "␛"  # the commonest: ESC of an ANSI/OSC sequence, shown as U+241B
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control or invisible formatting character made visible (newline and tab kept).

    >>> printable("ok\\x1b[2J\\x1b]0;pwned\\x07 \\u202eevil\\r\\nnext\\tline")
    'ok␛[2J␛]0;pwned\\\\x07 \\\\u202eevil\\\\x0d\\nnext\\tline'
    """
    if not isinstance(text, str):
        text = str(text)
    return _UNSAFE.sub(_show, text)

