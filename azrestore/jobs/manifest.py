"""The bulk upload's input: which disks it moves, as IMAGE=URL pairs or a manifest file.

A manifest is either a JSON or YAML list of mappings::

    - image: disks/web-os.raw
      to: https://ACCOUNT.blob.core.windows.net/vhds/web-os.vhd
      name: web-os            # optional label in progress and results

or plain lines of ``IMAGE URL`` (shell quoting allowed; ``#`` starts a comment line).
Relative image paths are taken from the manifest's directory.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, unreadable_file
from ..redact import redact_url

#: ``IMAGE=URL``; the URL may hold spaces (a blob name such as ``my disk.vhd``).
_PAIR = re.compile(r"^(?P<image>.+?)=(?P<url>https?://.+)$")


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One disk: its image, the blob URL it goes to, and an optional label."""

    image: Path
    url: str
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or str(self.image)


def parse_pair(text: str) -> ManifestEntry | None:
    """``IMAGE=URL`` as an entry, or None when ``text`` is not such a pair."""
    found = _PAIR.match(text)
    if found is None:
        return None
    return ManifestEntry(Path(found["image"]), found["url"])


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
        entries.append(ManifestEntry(base / words[0], words[1]))
    return entries


def _entry(path: Path, base: Path, index: int, item: Any) -> ManifestEntry:
    where = f"{path}: entry {index}"
    if not isinstance(item, dict):
        raise InputError(f"{where}: expected a mapping with 'image' and 'to'")
    image, url = item.get("image"), item.get("to", item.get("url"))
    if not isinstance(image, str) or not isinstance(url, str):
        raise InputError(f"{where}: needs 'image' and 'to' (strings)")
    unknown = set(item) - {"image", "to", "url", "name"}
    if unknown:
        raise InputError(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")
    if not url.startswith(("http://", "https://")):
        raise InputError(f"{where}: 'to' is not an http(s) URL: {redact_url(url)}")
    return ManifestEntry(base / image, url, str(item.get("name") or ""))
