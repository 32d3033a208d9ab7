"""The container and blob a blob URL names: split, checked against Azure's naming rules
before any request, and percent-encoded in the URL's path as azure-storage-blob does it.

Azure's rules (Microsoft's "Naming and Referencing Containers, Blobs, and Metadata", for an
account without a hierarchical namespace):

- a container name has 3 to 63 characters, lowercase letters, digits and hyphens, starts
  and ends with a letter or digit, and has no two hyphens in a row; ``$root``, ``$web`` and
  ``$logs`` are the system containers' names;
- a blob name has 1 to 1,024 characters, counted as the service counts them (UTF-16 code
  units: a character beyond U+FFFF counts twice), and at most 254 segments between ``/``;
  a blob of ``$root`` has no ``/`` in its name.

A URL may give the names as they are (``my disk.vhd``, ``日本.vhd``) or percent-encoded
(``my%20disk.vhd``): like the SDK's ``BlobClient.from_blob_url``, the path is decoded
(UTF-8) and then encoded again the SDK's way, ``quote(container)`` and
``quote(blob, safe="~/")``, so both spellings name the same blob and the same URL goes out.
``?`` and ``#`` end a URL's path: in a name they are written ``%3F`` and ``%23``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote, urlsplit

from ..errors import InputError
from ..redact import redact_url

MIN_CONTAINER_NAME: Final = 3
MAX_CONTAINER_NAME: Final = 63
MAX_BLOB_NAME: Final = 1024
MAX_BLOB_SEGMENTS: Final = 254
ROOT_CONTAINER: Final = "$root"
SYSTEM_CONTAINERS: Final = frozenset({ROOT_CONTAINER, "$web", "$logs"})

_ALNUM: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
#: How much of a long name a message quotes.
_QUOTED: Final = 32


@dataclass(frozen=True, slots=True)
class BlobUrl:
    """A blob's URL in parts: ``account_url`` (``https://ACCOUNT.blob.core.windows.net``,
    or ``http://127.0.0.1:10000/ACCOUNT`` path-style), the decoded ``container`` and
    ``blob`` names, and the URL's ``query`` (a SAS, or empty)."""

    account_url: str
    container: str
    blob: str
    query: str = ""

    @property
    def url(self) -> str:
        """The blob's URL without its query, the names percent-encoded as the SDK does."""
        return f"{self.account_url}/{quote(self.container)}/{quote(self.blob, safe='~/')}"


def name_length(name: str) -> int:
    """The length of ``name`` as Azure counts it: UTF-16 code units."""
    return sum(2 if ord(char) > 0xFFFF else 1 for char in name)


def container_name_problem(name: str) -> str | None:
    """Why Azure refuses a container called ``name``, or None when it takes it."""
    if name in SYSTEM_CONTAINERS:
        return None
    rule = (
        f"{MIN_CONTAINER_NAME}-{MAX_CONTAINER_NAME} lowercase letters, digits and single"
        " hyphens, starting and ending with a letter or digit"
    )
    if not MIN_CONTAINER_NAME <= len(name) <= MAX_CONTAINER_NAME:
        return f"container name {_quoted(name)} has {len(name)} characters (a name is {rule})"
    if (
        not set(name) <= _ALNUM | {"-"}
        or name[0] not in _ALNUM
        or name[-1] not in _ALNUM
        or "--" in name
    ):
        return f"container name {_quoted(name)} is not valid (a name is {rule})"
    return None


def blob_name_problem(name: str, container: str) -> str | None:
    """Why Azure refuses a blob called ``name`` in ``container``, or None when it takes it."""
    length = name_length(name)
    if not 1 <= length <= MAX_BLOB_NAME:
        return (
            f"blob name {_quoted(name)} has {length} characters"
            f" (Azure allows 1 to {MAX_BLOB_NAME:,}, counted in UTF-16 units)"
        )
    segments = name.count("/") + 1
    if segments > MAX_BLOB_SEGMENTS:
        return (
            f"blob name {_quoted(name)} has {segments} path segments"
            f" (Azure allows at most {MAX_BLOB_SEGMENTS})"
        )
    if container == ROOT_CONTAINER and "/" in name:
        return f"blob name {_quoted(name)}: a blob of {ROOT_CONTAINER} has no '/' in its name"
    return None


def parse_blob_url(url: str, account_url: str | None = None) -> BlobUrl:
    """The parts of blob URL ``url``, its names checked against Azure's rules: an
    :class:`InputError` (saying what is wrong and where) otherwise.

    Path-style URLs (Azurite's ``http://127.0.0.1:10000/devstoreaccount1/c/b``) are told
    apart by ``account_url`` when the URL starts with it, or by an IP address or
    ``localhost`` for a host.
    """
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:  # a malformed host, such as "[::1"
        raise InputError(f"{redact_url(url.partition('?')[0])}: not a URL ({exc})") from None
    where = _where(parts.scheme, parts.netloc, parts.path)
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        # urlsplit drops tabs and line breaks silently: the URL would name another blob.
        raise InputError(f"{where}: the URL holds a control character (write it percent-encoded)")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"{where}: not an http(s) blob URL")
    base = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.lstrip("/")
    given = account_url.rstrip("/") if account_url else None
    bare = f"{base}{parts.path}"
    if given and bare.startswith(given + "/"):
        base, path = given, bare[len(given) + 1 :]
    elif hostname and (hostname[0].isdigit() or hostname == "localhost"):
        account, _, path = path.partition("/")
        base = f"{base}/{account}"
    raw_container, _, raw_blob = path.partition("/")
    if not raw_container or not raw_blob:
        raise InputError(f"{where}: not a blob URL (expected .../CONTAINER/BLOB)")
    container, blob = _decoded(raw_container, where), _decoded(raw_blob, where)
    problem = container_name_problem(container) or blob_name_problem(blob, container)
    if problem is not None:
        raise InputError(f"{where}: {problem}")
    return BlobUrl(base, container, blob, parts.query)


def _decoded(part: str, where: str) -> str:
    try:
        name = unquote(part, encoding="utf-8", errors="strict")
        name.encode("utf-8")  # a name from undecodable bytes (surrogate escapes) cannot go out
    except UnicodeError:
        raise InputError(f"{where}: a name in the URL is not valid UTF-8") from None
    return name


def _where(scheme: str, netloc: str, path: str) -> str:
    """The URL for a message: no query (the SAS), and a long path shortened."""
    if len(path) > 3 * _QUOTED:
        path = f"{path[: 2 * _QUOTED]}...{path[-_QUOTED // 2 :]}"
    printable = path.encode("utf-8", "backslashreplace").decode("utf-8")
    return redact_url(f"{scheme}://{netloc}{printable}")


def _quoted(name: str) -> str:
    return repr(name if len(name) <= _QUOTED else f"{name[:_QUOTED]}...")
