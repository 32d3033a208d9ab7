"""Azure's naming rules for containers and blobs, applied to every request that names one.

Written from Microsoft's "Naming and Referencing Containers, Blobs, and Metadata" and
"Working with the root container", for a storage account WITHOUT a hierarchical namespace
(the account the gateway emulates; a hierarchical one allows only 63 path segments, counting
the account and container, and has directory rules: not modelled):

- A container name has 3 to 63 characters: lowercase letters, digits and hyphens; it starts
  and ends with a letter or digit, and every hyphen stands between two of them (so no
  ``--``).  The system containers ``$root``, ``$web`` and ``$logs`` are names too.
- A blob name has 1 to 1,024 characters and at most 254 path segments (the parts between
  ``/``).  Azure counts characters as the .NET service it is does: UTF-16 code units, so a
  character beyond U+FFFF counts twice (at most 512 emoji fit, as measured against Azure in
  Azure/azure-storage-cpp#291).  A blob in ``$root`` has no ``/`` in its name.
- Names travel percent-encoded in the URL path (UTF-8); they are decoded before counting.
  A path of one segment without ``restype=container`` names a blob of ``$root``
  (``https://account.blob.core.windows.net/name``).

Not modelled: the documentation's advice to avoid names ending in ``.`` or ``/`` (advice:
Azure stores such names); characters it says "may" fail (control characters, U+E000, ...:
it states neither a rule nor an answer); metadata names (headers, not URL names).

Azure's answers (recorded Azure responses, quoted in SDK test recordings and issue reports):

========================================  ======  =======================================
container name not 3-63 characters        400     OutOfRangeInput
container name with other characters      400     InvalidResourceName
blob name over 1,024 characters           400     OutOfRangeInput
blob name over 254 segments               400     OutOfRangeInput (*)
``/`` in the name of a blob of ``$root``  400     InvalidResourceName (*)
========================================  ======  =======================================

(*) The documentation gives the rule but no answer: these are the closest documented codes
(a count limit like the length's; a character the name may not hold).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

from azrestore.emulator.storage.errors import Rejection

__all__ = [
    "MAX_BLOB_NAME",
    "MAX_BLOB_SEGMENTS",
    "MAX_CONTAINER_NAME",
    "MIN_CONTAINER_NAME",
    "ROOT_CONTAINER",
    "SYSTEM_CONTAINERS",
    "NamedResource",
    "blob_name_rejection",
    "check_names",
    "container_name_rejection",
    "name_length",
    "named_resource",
]

MIN_CONTAINER_NAME: Final = 3
MAX_CONTAINER_NAME: Final = 63
MAX_BLOB_NAME: Final = 1024
MAX_BLOB_SEGMENTS: Final = 254
ROOT_CONTAINER: Final = "$root"
SYSTEM_CONTAINERS: Final = frozenset({ROOT_CONTAINER, "$web", "$logs"})

_LETTERS_AND_DIGITS: Final = frozenset(string.ascii_lowercase + string.digits)
_CONTAINER_CHARACTERS: Final = _LETTERS_AND_DIGITS | {"-"}
# Azure's own spelling ("specifed"), as its answers carry it.
_INVALID_CHARACTERS: Final = "The specifed resource name contains invalid characters."
_LENGTH_OUT_OF_RANGE: Final = (
    "The specified resource name length is not within the permissible limits."
)
_INPUT_OUT_OF_RANGE: Final = "One of the request inputs is out of range."


@dataclass(frozen=True)
class NamedResource:
    """The container and blob a request names (None where it names none)."""

    container: str | None = None
    blob: str | None = None


def name_length(name: str) -> int:
    """The length of ``name`` as Azure counts it: UTF-16 code units."""
    return len(name.encode("utf-16-le", "surrogatepass")) // 2


def named_resource(path: str, query: Mapping[str, str]) -> NamedResource:
    """What a request names: ``path`` is the URL path after the account (``/c/b``), still
    percent-encoded as it came; ``query`` has lower-case names.

    An empty blob part (``/c/``) names the container only.
    """
    container, slash, blob = path.removeprefix("/").partition("/")
    if not container:
        return NamedResource()  # the account itself (List Containers, service properties)
    if not slash and query.get("restype") != "container":
        return NamedResource(ROOT_CONTAINER, _decoded(container))
    return NamedResource(_decoded(container), _decoded(blob) or None)


def container_name_rejection(name: str) -> Rejection | None:
    """Azure's answer to a request naming container ``name``; None if the name is valid."""
    if name in SYSTEM_CONTAINERS:
        return None
    if not MIN_CONTAINER_NAME <= name_length(name) <= MAX_CONTAINER_NAME:
        return Rejection(400, "OutOfRangeInput", _LENGTH_OUT_OF_RANGE)
    if (
        not set(name) <= _CONTAINER_CHARACTERS
        or name[0] not in _LETTERS_AND_DIGITS
        or name[-1] not in _LETTERS_AND_DIGITS
        or "--" in name
    ):
        return Rejection(400, "InvalidResourceName", _INVALID_CHARACTERS)
    return None


def blob_name_rejection(name: str, container: str) -> Rejection | None:
    """Azure's answer to a request naming blob ``name`` of ``container``; None if valid."""
    if not 1 <= name_length(name) <= MAX_BLOB_NAME:
        return Rejection(400, "OutOfRangeInput", _INPUT_OUT_OF_RANGE)
    if name.count("/") + 1 > MAX_BLOB_SEGMENTS:
        return Rejection(400, "OutOfRangeInput", _INPUT_OUT_OF_RANGE)
    if container == ROOT_CONTAINER and "/" in name:
        return Rejection(400, "InvalidResourceName", _INVALID_CHARACTERS)
    return None


def check_names(path: str, query: Mapping[str, str]) -> None:
    """Raise Azure's :class:`Rejection` if the request (``path`` after the account, still
    encoded; lower-cased ``query``) names a container or blob Azure would refuse."""
    named = named_resource(path, query)
    if named.container is None:
        return
    rejection = container_name_rejection(named.container)
    if rejection is None and named.blob is not None:
        rejection = blob_name_rejection(named.blob, named.container)
    if rejection is not None:
        raise rejection


def _decoded(part: str) -> str:
    # UTF-8, as the documentation prefers and the SDKs send; a byte that is no UTF-8 counts
    # as one character (U+FFFD) rather than being refused with an answer Azure never gave.
    return unquote(part, encoding="utf-8", errors="replace")
