"""Who may reach the web app and how hard they may try (issue 16, items 3-5).

`HostGuard` is an ASGI middleware put in front of every Gradio route (`launch(app_kwargs=...)`):

- a request whose `Host` is not one of this app's own names gets 403 before any handler runs:
  `localhost`, `127.0.0.1`, `[::1]`, the bound address, and names in `QA_ALLOWED_HOSTS`. That
  stops DNS rebinding: a web page whose name resolves to 127.0.0.1 still sends its own name as
  `Host`. When bound to every interface (0.0.0.0 or ::), an IP address as `Host` is accepted too
  (an address cannot be rebound); with `QA_SHARE`, the share link's `*.gradio.live`.
- a state-changing request (any method but GET/HEAD/OPTIONS, and WebSockets) that carries an
  `Origin` must come from one of those names too (`Origin: null` is refused): another site's
  page cannot drive the app from a visitor's browser.
- where documents cannot be changed (a public app without an admin password) uploads are
  refused, so nothing anonymous is stored; elsewhere a request body over MAX_BODY_BYTES is
  refused (uploads are bounded by Gradio's `max_file_size`).

`PasswordThrottle` slows admin-password guessing: after FREE_TRIES wrong passwords from one
client, each further try must wait, doubling from FIRST_WAIT_S up to MAX_WAIT_S; a right
password clears the count. `same_password` compares in constant time (digests, so the length
of the password does not leak either).
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import urlsplit

from .config import Settings
from .errors import NotAllowed

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})
SHARE_SUFFIX = ".gradio.live"  # Gradio's share links (https://<id>.gradio.live)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Largest request body other than an upload: a question is at most 4 x 2,000 characters and the
#: chat sends its history back with each question (a 1,000-turn chat is about 5 MB).
MAX_BODY_BYTES = 16 * 1024 * 1024
UPLOAD_PATH_END = "/upload"  # Gradio's upload route: /gradio_api/upload (and /upload behind a root path)
#: Gradio deletes uploaded temporary files this often, once they are this old (seconds):
#: uploads are read at once by a preview or rebuild, so an hour-old one is abandoned.
UPLOAD_CACHE = (900, 3600)

FREE_TRIES = 5  # wrong passwords per client before waiting starts (typos happen)
FIRST_WAIT_S = 2.0  # then 2, 4, 8, ... seconds between tries
MAX_WAIT_S = 300.0  # at most five minutes: ~300 guesses a day instead of 300 in 38 s (issue 16)
MAX_CLIENTS = 10_000  # clients remembered (oldest forgotten first), so the table stays small


# --- hosts ---------------------------------------------------------------------------------------

def allowed_hosts(settings: Settings) -> frozenset[str]:
    """The names a request may use to reach this app (lower case, no port, IPv6 without brackets)."""
    extra = {_bare(h) for h in settings.allowed_hosts.split(",") if h.strip()}
    return frozenset(LOOPBACK_NAMES | {_bare(settings.host)} | extra) - {""}


def host_of(value: str) -> str:
    """'Example.COM:7860' -> 'example.com'; '[::1]:7860' -> '::1'; 'http://x:1/p' -> 'x'.

    >>> [host_of(v) for v in ("Localhost:7860", "[::1]:7860", "127.0.0.1", "http://evil.test:7860", "a.b.", "localhost:1x")]
    ['localhost', '::1', '127.0.0.1', 'evil.test', 'a.b', '']
    """
    value = value.strip()
    if "://" in value:
        try:
            split = urlsplit(value)
            split.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            return ""
        return (split.hostname or "").rstrip(".").lower()
    port = ""
    if value.startswith("["):
        end = value.find("]")
        value, port = (value[1:end], value[end + 1:]) if end > 0 else ("", "")
        if port and not port.startswith(":"):
            return ""
        port = port[1:]
    elif value.count(":") == 1:
        value, port = value.split(":", 1)
    if port and not port.isdigit():
        return ""  # 'localhost:80x' is not this app
    return value.rstrip(".").lower()


def _bare(value: str) -> str:
    value = value.strip().lower()
    return value[1:-1] if value.startswith("[") and value.endswith("]") else value.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_allowed(name: str, settings: Settings, allowed: frozenset[str] | None = None) -> bool:
    """Is `name` (already through `host_of`) one of this app's own names?

    >>> s = Settings(allowed_hosts="qa.example.org, *.internal")
    >>> [host_allowed(n, s) for n in ("localhost", "::1", "qa.example.org", "x.internal", "evil.test", "10.0.0.5")]
    [True, True, True, True, False, False]
    """
    allowed = allowed_hosts(settings) if allowed is None else allowed
    if not name:
        return False
    if name in allowed:
        return True
    if any(a.startswith("*.") and name.endswith(a[1:]) for a in allowed):
        return True
    if settings.host.strip() in WILDCARD_BINDS and _is_ip(name):
        return True
    return settings.share and name.endswith(SHARE_SUFFIX)


class HostGuard:
    """ASGI middleware: refuse foreign Host/Origin, uploads where documents are read-only, and
    oversized bodies, before any route runs."""

    def __init__(self, app, settings: Settings, read_only: bool = False):
        self.app, self.settings, self.read_only = app, settings, read_only
        self.allowed = allowed_hosts(settings)

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        why = self.refusal(scope)
        if why is not None:
            status, text = why
            return await _refuse(scope, receive, send, status, text)
        if scope["type"] == "http" and scope.get("method", "GET") not in SAFE_METHODS:
            receive = _capped(receive, self.cap(scope))
        return await self.app(scope, receive, send)

    def cap(self, scope) -> int | None:
        return None if scope.get("path", "").endswith(UPLOAD_PATH_END) else MAX_BODY_BYTES

    def refusal(self, scope) -> tuple[int, str] | None:
        """(status, message) when this request is refused, else None. Pure: reads `scope` only."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if not host_allowed(host_of(headers.get("host", "")), self.settings, self.allowed):
            return 403, ("This app only answers under its own name (Host header refused). "
                         "To reach it under another name, add the name to QA_ALLOWED_HOSTS.")
        method = scope.get("method", "GET") if scope["type"] == "http" else "WEBSOCKET"
        if method in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and not host_allowed(host_of(origin) if origin != "null" else "", self.settings,
                                                   self.allowed):
            return 403, "Requests from another site's page are refused (Origin header)."
        if self.read_only and scope.get("path", "").endswith(UPLOAD_PATH_END):
            return 403, "This app is read-only: documents cannot be uploaded here."
        length = headers.get("content-length", "")
        if length.isdigit() and self.cap(scope) is not None and int(length) > MAX_BODY_BYTES:
            return 413, f"The request is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB."
        return None


def _capped(receive, cap: int | None):
    """A `receive` that ends the request (as a disconnect) once the body passes `cap` bytes:
    a body sent without Content-Length cannot grow without bound either."""
    if cap is None:
        return receive
    seen = 0

    async def wrapped():
        nonlocal seen
        message = await receive()
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > cap:
                return {"type": "http.disconnect"}
        return message

    return wrapped


async def _refuse(scope, receive, send, status: int, text: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = text.encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def middleware(settings: Settings, read_only: bool):
    """The starlette `Middleware` entry for `FastAPI(middleware=[...])` (Gradio's `app_kwargs`)."""
    from starlette.middleware import Middleware

    return Middleware(HostGuard, settings=settings, read_only=read_only)


# --- admin password ------------------------------------------------------------------------------

def same_password(given: str | None, expected: str) -> bool:
    """Constant-time comparison of SHA-256 digests (equal length whatever was typed)."""
    a = hashlib.sha256((given or "").encode("utf-8", "surrogatepass")).digest()
    b = hashlib.sha256(expected.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(a, b)


class PasswordThrottle:
    """Per-client back-off for wrong admin passwords. Thread-safe; `clock` is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._clients: OrderedDict[str, tuple[int, float]] = OrderedDict()  # client -> (failures, not before)

    def check(self, client: str) -> None:
        """NotAllowed while `client` must wait (the password is then not even compared)."""
        with self._lock:
            _, until = self._clients.get(client, (0, 0.0))
        wait = until - self.clock()
        if wait > 0:
            raise NotAllowed(f"Too many wrong admin passwords from this address; try again in {wait:.0f} s.")

    def failed(self, client: str) -> float:
        """Record a wrong password; returns how long this client must now wait (0 while tries are free)."""
        with self._lock:
            count = self._clients.pop(client, (0, 0.0))[0] + 1
            wait = 0.0 if count <= FREE_TRIES else min(FIRST_WAIT_S * 2 ** (count - FREE_TRIES - 1), MAX_WAIT_S)
            self._clients[client] = (count, self.clock() + wait)
            while len(self._clients) > MAX_CLIENTS:
                self._clients.popitem(last=False)
        return wait

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)


# --- start-up ------------------------------------------------------------------------------------

def check_port(host: str, port: int) -> None:
    """QAError (one line, what to do) when `host:port` cannot be listened on: checked before the
    app starts, so a port already taken is not a traceback from deep inside the web server."""
    import socket

    from .errors import QAError

    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        raise QAError(f"Cannot listen on {host}:{port}: the address does not resolve ({exc}); "
                      "check QA_HOST / --host.") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the web server does
        try:
            sock.bind(address)
        except OSError as exc:
            taken = exc.errno == errno.EADDRINUSE
            raise QAError(f"Cannot listen on {host}:{port}: " + (
                "another program (or another `qa serve`) is using that port; choose another with --port or QA_PORT."
                if taken else f"{exc.strerror or exc}; check QA_HOST / --host and QA_PORT / --port.")) from None
