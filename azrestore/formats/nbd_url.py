"""NBD URLs (the NBD URI standard, doc/uri.md of NetworkBlockDevice/nbd), parsed strictly:
``nbd://HOST[:PORT]/EXPORT`` (TCP; also spelt ``nbd+tcp://``) and
``nbd+unix:///EXPORT?socket=PATH`` (a Unix socket).

TLS (``nbds``), user names and unknown query parameters are refused rather than ignored,
so that a URL never means something else than it says.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

#: The NBD port a URL without one means.
DEFAULT_PORT = 10809
SCHEMES = ("nbd://", "nbd+unix://")


class NbdUrlError(ValueError):
    """A URL that is not a usable NBD URL (the message says why)."""


@dataclass(frozen=True, slots=True)
class NbdAddress:
    """Where an NBD export is: a TCP ``host`` and ``port``, or a Unix ``socket`` path; and
    the ``export`` name (may be empty: the server's default export)."""

    url: str
    export: str
    host: str | None = None
    port: int = DEFAULT_PORT
    socket: str | None = None


def is_nbd_url(location: str) -> bool:
    """Whether ``location`` names an NBD export (any nbd scheme) rather than a file."""
    scheme, sep, _ = location.partition("://")
    return bool(sep) and scheme.lower() in (
        "nbd", "nbd+tcp", "nbd+unix", "nbds", "nbds+tcp", "nbds+unix", "nbd+vsock", "nbds+vsock"
    )  # fmt: skip


def parse_nbd_url(url: str) -> NbdAddress:
    """The address of ``url``; raises :class:`NbdUrlError` saying what is wrong with it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise NbdUrlError(f"not a valid NBD URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme == "nbd+tcp":  # the NBD URI standard's other name for nbd://
        scheme = "nbd"
    if scheme.startswith("nbds"):
        raise NbdUrlError("NBD over TLS (nbds://) is not supported")
    if scheme not in ("nbd", "nbd+unix"):
        raise NbdUrlError(f"{parts.scheme}:// is not supported (nbd:// or nbd+unix://)")
    if parts.username is not None or parts.password is not None:
        raise NbdUrlError("an NBD URL takes no user name or password")
    if parts.fragment:
        raise NbdUrlError("an NBD URL takes no fragment (#...)")
    export = _export(parts)
    query = _query(parts.query)
    if scheme == "nbd":
        if query:
            raise NbdUrlError(f"nbd:// takes no query parameters ({', '.join(sorted(query))})")
        if not parts.hostname:
            raise NbdUrlError("nbd:// needs a host (nbd://HOST[:PORT]/EXPORT)")
        if port == 0:
            raise NbdUrlError("port 0 is not a port")
        return NbdAddress(url, export, host=parts.hostname, port=port or DEFAULT_PORT)
    if parts.netloc:
        raise NbdUrlError("nbd+unix:// takes no host: nbd+unix:///EXPORT?socket=PATH")
    unknown = sorted(set(query) - {"socket"})
    if unknown:
        raise NbdUrlError(f"unknown query parameter {unknown[0]!r} (only socket=PATH)")
    sockets = query.get("socket", [])
    if len(sockets) != 1 or not sockets[0]:
        raise NbdUrlError("nbd+unix:// needs one socket=PATH")
    return NbdAddress(url, export, socket=sockets[0])


def _export(parts: SplitResult) -> str:
    path = parts.path
    if path and not path.startswith("/"):
        raise NbdUrlError("the export name follows a '/'")
    try:
        export = unquote(path[1:], errors="strict") if path else ""
    except UnicodeDecodeError:
        raise NbdUrlError("the export name is not UTF-8") from None
    if "\x00" in export or len(export.encode()) > 4096:
        raise NbdUrlError("not a valid export name")
    return export


def _query(query: str) -> dict[str, list[str]]:
    if not query:
        return {}
    try:
        return parse_qs(query, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise NbdUrlError(f"not a valid query: {query!r}") from None
