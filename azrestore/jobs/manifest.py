"""The bulk upload's input: which disks it moves, as IMAGE=URL pairs or a manifest file.

A manifest is either a JSON or YAML list of mappings::

    - image: disks/web-os.qcow2
      to: https://ACCOUNT.blob.core.windows.net/vhds/web-os.vhd
      name: web-os            # optional label in progress and results
      format: qcow2           # optional: force the image's format (else found from it)

or plain lines of ``IMAGE URL`` (shell quoting allowed; ``#`` starts a comment line).
Relative image paths are taken from the manifest's directory; an image may also be an NBD
URL (``nbd://HOST[:PORT]/EXPORT``, ``nbd+unix:///EXPORT?socket=PATH``).

No two entries may name one blob (:func:`check_distinct_targets`), however the URL is
spelled: :func:`canonical_target` is the rule.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import InputError, unreadable_file
from ..redact import redact_url
from ..sources.locations import check_format, join_location

#: ``IMAGE=URL``; the URL may hold spaces (a blob name such as ``my disk.vhd``).
_PAIR = re.compile(r"^(?P<image>.+?)=(?P<url>https?://.+)$")


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One disk: its image (a path or an NBD URL), the blob URL it goes to, an optional
    label and the image's format (None: found from the image)."""

    image: str
    url: str
    name: str = ""
    format: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.image


def parse_pair(text: str) -> ManifestEntry | None:
    """``IMAGE=URL`` as an entry, or None when ``text`` is not such a pair."""
    found = _PAIR.match(text)
    if found is None:
        return None
    return ManifestEntry(found["image"], found["url"])


def read_manifest(path: Path) -> list[ManifestEntry]:
    """The entries of a manifest file; :class:`InputError` naming the file (and line)
    when it cannot be read or understood."""
    # Only manifests need YAML: imported here, to keep other commands' start-up short.
    import yaml

    from ..yamlfile import LimitError, load, read_limited  # bounded: bombs are refused

    try:
        text = read_limited(path, what="a manifest").decode("utf-8")
    except OSError as exc:
        raise unreadable_file(path, exc, action="read the manifest") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    base = path.parent
    try:
        data: Any = load(text)
    except LimitError as exc:
        raise InputError(exc.describe(path)) from None
    except yaml.YAMLError:
        data = None
    if isinstance(data, list):
        return [_entry(path, base, index, item) for index, item in enumerate(data, 1)]
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise InputError(f"{path}:{number}: {exc}") from None
        if len(words) != 2:
            raise InputError(f"{path}:{number}: expected 'IMAGE URL', got {len(words)} words")
        if not words[1].startswith(("http://", "https://")):
            shown = redact_url(words[1])
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            raise InputError(f"{path}:{number}: not an http(s) URL: {shown}")
        entries.append(ManifestEntry(join_location(base, words[0]), words[1]))
    return entries


def _entry(path: Path, base: Path, index: int, item: Any) -> ManifestEntry:
    where = f"{path}: entry {index}"
    if not isinstance(item, dict):
        raise InputError(f"{where}: expected a mapping with 'image' and 'to'")
    image, url = item.get("image"), item.get("to", item.get("url"))
    if not isinstance(image, str) or not isinstance(url, str):
        raise InputError(f"{where}: needs 'image' and 'to' (strings)")
    unknown = set(item) - {"image", "to", "url", "name", "format"}
    if unknown:
        raise InputError(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")
    if not url.startswith(("http://", "https://")):
        raise InputError(f"{where}: 'to' is not an http(s) URL: {redact_url(url)}")
    image_format = item.get("format")
    if image_format is not None and not isinstance(image_format, str):
        raise InputError(f"{where}: 'format' is not a string")
    check_format(image_format, what=f"{where}: format")
    return ManifestEntry(join_location(base, image), url, str(item.get("name") or ""), image_format)


_DEFAULT_PORTS = {"http": 80, "https": 443}
_SLASHES = re.compile(r"/+")


def canonical_target(url: str) -> tuple[str, str, int, str]:
    """What a blob URL names, however it is spelled: ``(scheme, host, port, path)``.

    The rule: scheme and host in lower case (a host's trailing dot dropped); the port
    explicit (80 for http, 443 for https); the path percent-decoded, runs of slashes made
    one and trailing slashes dropped (blob names keep their case); query and fragment
    (the SAS) ignored. Loopback hosts (``localhost``, ``*.localhost``, 127.0.0.0/8,
    ``::1``) are all one host, ``loopback``: they reach the same local server; other IP
    literals are compared as addresses. No name is looked up in DNS: two different names
    of one account (a custom domain) are not recognised.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
    except ValueError:
        raise InputError(f"{redact_url(url)}: the port is not a number") from None
    if host == "localhost" or host.endswith(".localhost"):
        host = "loopback"
    else:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            mapped = getattr(address, "ipv4_mapped", None) or address
            host = "loopback" if mapped.is_loopback else str(mapped)
    path = _SLASHES.sub("/", unquote(parts.path)).rstrip("/")
    return scheme, host, port, path


def check_distinct_targets(entries: Iterable[ManifestEntry]) -> None:
    """:class:`InputError` when two entries name one blob (see :func:`canonical_target`):
    two uploads into one blob would overwrite each other, so none starts."""
    seen: dict[tuple[str, str, int, str], ManifestEntry] = {}
    for entry in entries:
        first = seen.setdefault(canonical_target(entry.url), entry)
        if first is not entry:
            raise InputError(
                f"{entry.label}: {redact_url(entry.url)} is the same blob as {first.label}'s"
                f" ({redact_url(first.url)}): give every disk its own blob"
            )
