"""Bytes -> str for plain text, Markdown and HTML files, with warnings a person should see.

Order of trust: a byte-order mark; strict UTF-8; BOM-less UTF-16/32 (charset-normalizer, or
every other byte NUL for ASCII-heavy text); then a single-byte code page chosen by
charset-normalizer. Text that is not UTF-8 is read with a warning naming the encoding used;
UTF-8 with some lines in another encoding is read line by line with a warning counting those
lines; UTF-8 that looks double-encoded ('Ã©' for 'é') gets a warning too. Binary data (NUL
bytes, many control characters) is refused with `InputError`.
"""

from __future__ import annotations

import re

from ..errors import InputError

_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
# Which single-byte code page wins when charset-normalizer sees no language evidence (coherence
# 0 for all candidates, typical of short Western text): Windows-1252, the common one, rather
# than its first guess (often cp1250, which reads 'naïve' as 'naďve').
_PREFERRED_8BIT = ("cp1252", "latin_1", "iso8859_15")
_MOJIBAKE = re.compile(r"Ã[\u0080-\u00bf]|â€[\u0080-\u00bf™œ“”˜]|Â[\u00a0-\u00bf]")
_NAMES = {"cp1252": "Windows-1252", "latin_1": "Latin-1", "utf_16_le": "UTF-16 (little-endian)",
          "utf_16_be": "UTF-16 (big-endian)", "utf-16-le": "UTF-16 (little-endian)",
          "utf-16-be": "UTF-16 (big-endian)"}
_DETECT_BYTES = 200_000  # charset-normalizer looks at this much (it samples; this bounds its time)


def decode(data: bytes, name: str = "input") -> tuple[str, tuple[str, ...]]:
    """Bytes -> (text, warnings).

    >>> decode("naïve".encode("utf-8"))
    ('naïve', ())
    >>> decode("Café, naïve señor".encode("cp1252"))[0]
    'Café, naïve señor'
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec), ()
            except UnicodeDecodeError:
                raise InputError(f"{name} starts with a {codec} byte-order mark but is not valid {codec}.") from None
    if b"\x00" in data[:8192]:  # UTF-16/32 without a BOM (ASCII in UTF-16 is valid UTF-8, with NULs)
        wide = _bomless_wide(data)
        if wide:
            try:
                return check_text(data.decode(wide), name), ()
            except UnicodeDecodeError:
                pass
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return check_text(text, name), _mojibake_warning(text, name)
    if b"\x00" in data[:8192]:
        raise InputError(f"{name} looks like a binary file, not text. Upload a .txt, .md, .html, .pdf or .docx file.")
    lines = data.split(b"\n")
    utf8_lines = sum(1 for line in lines if not line.isascii() and _is_utf8(line))
    if utf8_lines:
        return _mixed(lines, name)
    codec = _single_byte_codec(data)
    text = check_text(data.decode(codec, "replace"), name)
    return text, (f"{name} is not UTF-8: read as {_NAMES.get(codec, codec)} (detected). "
                  "If accented letters look wrong, save the file as UTF-8.",)


def check_text(text: str, name: str) -> str:
    """Refuse text with NULs or many control characters (a binary file or an unknown encoding)."""
    head = text[:65536]
    controls = sum(1 for ch in head if (ord(ch) < 32 and ch not in "\t\n\r\f") or 0x7F <= ord(ch) < 0xA0)
    if "\x00" in head or controls > max(2, len(head) // 100):
        raise InputError(f"{name} looks like a binary file or an unknown encoding. Save it as UTF-8 text.")
    return text


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _mixed(lines: list[bytes], name: str) -> tuple[str, tuple[str, ...]]:
    """UTF-8 with some lines in a single-byte code page: each line read in its own encoding."""
    bad = [i for i, line in enumerate(lines) if not _is_utf8(line)]
    codec = _single_byte_codec(b"\n".join(lines[i] for i in bad))
    bad_set = set(bad)
    text = "\n".join(line.decode(codec, "replace") if i in bad_set else line.decode("utf-8")
                     for i, line in enumerate(lines))
    where = ", ".join(str(i + 1) for i in bad[:5]) + (" ..." if len(bad) > 5 else "")
    return check_text(text, name), (
        f"{name} mixes encodings: {len(bad)} line(s) are not UTF-8 and were read as {_NAMES.get(codec, codec)} "
        f"(line {where}). Check them in the preview, or save the file as UTF-8.",)


def _single_byte_codec(data: bytes) -> str:
    from charset_normalizer import from_bytes

    matches = [m for m in from_bytes(data[:_DETECT_BYTES]) if not m.encoding.startswith(("utf", "ascii"))]
    if not matches:
        return "cp1252"
    calm = min(m.chaos for m in matches)
    matches = [m for m in matches if m.chaos <= calm + 0.01]  # the least garbled readings only
    best = max(matches, key=lambda m: m.coherence)
    if best.coherence > 0:
        return best.encoding
    for codec in _PREFERRED_8BIT:
        if any(m.encoding == codec for m in matches):
            return codec
    return best.encoding


def _bomless_wide(data: bytes) -> str | None:
    """'utf-16-le'/'utf-16-be' for UTF-16 without a byte-order mark: every other byte NUL
    (ASCII-heavy text), or charset-normalizer's verdict for other scripts."""
    head = data[:4096]
    if len(head) < 4 or len(data) % 2:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    from charset_normalizer import from_bytes

    best = from_bytes(data[:_DETECT_BYTES]).best()
    if best and best.encoding in ("utf_16_le", "utf_16_be") and best.chaos < 0.1:
        return best.encoding
    return None


def _mojibake_warning(text: str, name: str) -> tuple[str, ...]:
    found = _MOJIBAKE.findall(text[:200_000])
    if len(found) < 2:
        return ()
    return (f"{name} looks double-encoded: {len(found)} places such as {found[0]!r} were probably meant as "
            "one accented letter. Re-save the original as UTF-8 once.",)
