"""`qa build --url`: fetch one web page or document over http(s), within a size limit and a
timeout, and name it for the source folder by its URL and content type.

Only http and https, also after redirects (never file:, ftp: or data:); at most `max_bytes`
(QA_MAX_FILE_MB) read, whatever Content-Length claims; `TIMEOUT_S` per connection and read.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from pathlib import PurePosixPath

from ..errors import InputError

TIMEOUT_S = 20
_SUFFIX = {"text/html": ".html", "application/xhtml+xml": ".html", "text/plain": ".txt", "text/markdown": ".md",
           "application/pdf": ".pdf",
           "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx"}


class _HttpOnly(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise InputError(f"{req.full_url} redirects to {newurl}: only http and https addresses are fetched.")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch(url: str, max_bytes: int, timeout: float = TIMEOUT_S) -> tuple[str, bytes]:
    """URL -> (file name, content bytes); InputError for another scheme, an HTTP error, a
    timeout, or content over `max_bytes`."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"{url!r} is not an http(s) address. Give a URL starting with http:// or https://.")
    opener = urllib.request.build_opener(_HttpOnly())
    request = urllib.request.Request(url, headers={"User-Agent": "qa-document-reader"})
    try:
        with opener.open(request, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise _too_big(url, int(length), max_bytes)
            data = resp.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise _too_big(url, len(data), max_bytes)
            ctype = resp.headers.get_content_type()
            final = resp.geturl()
    except InputError:
        raise
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:  # urllib itself refuses a redirect to file: and the like
            raise InputError(f"{url} redirects to an address that is not http(s): only http and https "
                             "addresses are fetched.") from None
        raise InputError(f"{url} answered HTTP {exc.code} ({exc.reason}). Check the address.") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"{url} could not be fetched ({reason}); nothing was changed. "
                         f"Check the address and the network (timeout {timeout:g} s).") from None
    return _name(final, ctype), data


def _name(url: str, ctype: str) -> str:
    """The file name to save under: the URL's last segment, with the suffix its content type
    says (else its own, when a known one; else .html).

    >>> _name("https://x.org/a/report.pdf", "application/octet-stream"), _name("https://x.org/news/?p=1", "text/html")
    ('report.pdf', 'news.html')
    """
    parts = urllib.parse.urlsplit(url)
    path = PurePosixPath(urllib.parse.unquote(parts.path).rstrip("/"))
    stem, ext = (path.stem, path.suffix.lower()) if path.name else (parts.hostname or "page", "")
    return stem + (_SUFFIX.get(ctype) or (ext if ext in _SUFFIX.values() else ".html"))


def _too_big(url: str, size: int, max_bytes: int) -> InputError:
    mb = 1024 * 1024
    return InputError(f"{url} is {size / mb:.1f} MB or more, over the {max_bytes / mb:g} MB limit "
                      "(set QA_MAX_FILE_MB to allow bigger files).")
