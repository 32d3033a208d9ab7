"""What ``qemu-img info`` says of a container image and its backing chain: the format and
virtual size of the top image, every file of the chain (top first, each with its format)
and every other host file the image reads (a qcow2's external data file, a VMDK's
extents), with one clear :class:`~azrestore.errors.InputError` for what cannot be read.

The chain is walked one image at a time (``qemu-img info`` without ``--backing-chain``
opens no backing file), so that a missing backing file is named with the file that names
it, and a loop is found before qemu follows it. Blocking: call in a worker thread.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from ...errors import InputError
from ..base import ChainLink

#: Formats ``qemu-img check`` checks (the others it says it cannot).
CHECKED_FORMATS = ("qcow2", "vmdk", "vhdx", "vdi")
#: Formats ``qemu-img check`` does not check, whose data all lies in the image file: their
#: map must not point past its end.
MAPPED_FORMATS = ("vdi", "vpc")
_CHECK_TIMEOUT = 600.0
#: Deepest backing chain followed (qemu itself has no smaller limit worth relying on).
MAX_CHAIN = 256
_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """A container image as qemu reads it: ``format`` and ``size`` of the top image,
    ``chain`` (absolute paths, top first) and ``files``: every host file it reads."""

    format: str
    size: int
    chain: tuple[ChainLink, ...]
    files: tuple[str, ...]


def qemu_tool(name: str) -> str:
    """The path of a qemu tool, or an InputError saying how to get it."""
    found = shutil.which(name)
    if found is None:
        raise InputError(
            f"{name} is not installed: container images are read through it (install qemu-utils)"
        )
    return found


def _info(path: str, fmt: str | None, *, shown: str) -> dict[str, Any]:
    command = [qemu_tool("qemu-img"), "info", "--output=json"]
    if fmt is not None:
        command += ["-f", fmt]
    try:
        done = subprocess.run(
            [*command, "--", path],
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
            cwd=image_directory(path),
        )
    except subprocess.TimeoutExpired:
        raise InputError(f"{shown}: qemu-img info took more than {_TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        message = _qemu_message(done.stderr, path)
        if not message.startswith("Could not open"):
            message = f"qemu-img cannot open it: {message}"
        raise InputError(f"{shown}: {message}")
    try:
        data = json.loads(done.stdout)
    except ValueError:
        raise InputError(f"{shown}: qemu-img info said what is not JSON") from None
    if not isinstance(data, dict):
        raise InputError(f"{shown}: qemu-img info said what is not an image")
    return data


def image_directory(path: str) -> str:
    """The folder qemu is run in for the image at ``path`` (absolute): qemu opens a qcow2's
    relative external data file against its working directory, not beside the image as
    it does a backing file, so it is run beside the image, as users mean the name."""
    return os.path.dirname(path)


def _qemu_message(stderr: bytes, path: str) -> str:
    """qemu's error as one line, without its prefixes and the repeated file name."""
    text = stderr.decode("utf-8", "replace")
    lines = [line.strip().removeprefix("qemu-img: ") for line in text.splitlines()]
    text = "; ".join(line for line in lines if line) or "qemu-img cannot read it"
    for prefix in (f"Could not open '{path}': ",) * 2:
        text = text.removeprefix(prefix)
    return text


def _run_check(command: list[str], path: str) -> subprocess.CompletedProcess[bytes] | None:
    """A qemu-img check of the image at ``path``, beside it; None when it takes too long."""
    try:
        return subprocess.run(
            command,
            capture_output=True,
            timeout=_CHECK_TIMEOUT,
            check=False,
            cwd=image_directory(path),
        )
    except subprocess.TimeoutExpired:
        return None


def check_image(path: str, fmt: str, *, shown: str) -> None:
    """Refuse an image ``qemu-img check`` finds damaged (a truncated file, a table entry
    pointing past its end): qemu would read the missing data as zeros."""
    options: dict[str, Any] = {"driver": fmt, "file": {"driver": "file", "filename": path}}
    if fmt in ("qcow2", "vmdk"):
        options["backing"] = None  # this file alone: its backing file is checked on its own
    command = [qemu_tool("qemu-img"), "check", "--output=json", "json:" + json.dumps(options)]
    done = _run_check(command, path)
    if done is None:
        return  # no verdict in time: qemu's own checks at open and on reads remain
    if done.returncode in (0, 3, 63):  # clean, leaked clusters only, or not checkable
        return
    try:
        report = json.loads(done.stdout)
        corruptions = int(report.get("corruptions", 0))
    except (ValueError, TypeError, AttributeError):
        corruptions = 0
    if done.returncode == 2 or corruptions:
        raise InputError(
            f"{shown}: is damaged: qemu-img check finds {corruptions or 'some'} corrupt"
            " entries (a truncated file, or a table pointing past its end)"
        )
    raise InputError(f"{shown}: is damaged: qemu-img check: {_qemu_message(done.stderr, path)}")


def check_map(path: str, fmt: str, *, shown: str) -> None:
    """Refuse an image whose allocation map points past the end of its file (truncated):
    for the formats qemu-img check does not check."""
    command = [qemu_tool("qemu-img"), "map", "--output=json", "-f", fmt, "--", path]
    done = _run_check(command, path)
    if done is None:
        return
    if done.returncode != 0:
        raise InputError(f"{shown}: {_qemu_message(done.stderr, path)}")
    try:
        entries = json.loads(done.stdout)
        end = max(
            (int(e["offset"]) + int(e["length"]) for e in entries if "offset" in e and e["data"]),
            default=0,
        )
    except (ValueError, TypeError, KeyError):
        raise InputError(f"{shown}: qemu-img map said what is not a map") from None
    size = os.path.getsize(path)
    if end > size:
        raise InputError(
            f"{shown}: is truncated: its map holds data up to byte {end}, but the file"
            f" ends at {size}"
        )


def inspect_image(path: str, fmt: str | None) -> ImageInfo:
    """The format, size, chain and files of the image at ``path`` (``fmt``: its format,
    or None to have qemu-img tell). Raises InputError naming the file at fault."""
    chain: list[ChainLink] = []
    files: list[str] = []
    seen: dict[str, str] = {}
    current, current_format, named_by = os.path.abspath(path), fmt, None
    top: dict[str, Any] | None = None
    checks: list[tuple[str, str, str]] = []
    while True:
        shown = path if named_by is None else current
        real = os.path.realpath(current)
        if real in seen:
            raise InputError(
                f"{path}: its backing chain loops: {named_by} names {current},"
                " which is already in the chain"
            )
        if not os.path.exists(current):
            assert named_by is not None
            raise InputError(f"{path}: backing file {current} (named by {named_by}) is missing")
        seen[real] = current
        info = _info(current, current_format, shown=shown)
        top = top or info
        found = str(info.get("format", ""))
        if info.get("encrypted"):
            raise InputError(
                f"{shown}: is an encrypted {found} image; azrestore does not read encrypted"
                " images (decrypt it first, e.g. with qemu-img convert --object secret,...)"
            )
        checks.append((current, found, shown))
        chain.append(ChainLink(shown, found))
        files.append(current)
        files.extend(_extra_files(info, current, top_directory=image_directory(files[0])))
        backing = info.get("full-backing-filename") or info.get("backing-filename")
        if not backing:
            break
        if len(chain) >= MAX_CHAIN:
            raise InputError(f"{path}: its backing chain is deeper than {MAX_CHAIN} images")
        named_by = current
        current = os.path.join(os.path.dirname(current), str(backing))
        current_format = info.get("backing-filename-format")
    # Each file on its own, once the chain is known to be whole and loop-free.
    for name, found, shown in checks:
        if found in CHECKED_FORMATS:
            check_image(name, found, shown=shown)
        if found in MAPPED_FORMATS:
            check_map(name, found, shown=shown)
    size = top.get("virtual-size")
    if not isinstance(size, int) or size <= 0:
        raise InputError(f"{path}: has no virtual size (qemu-img info)")
    return ImageInfo(str(top["format"]), size, tuple(chain), tuple(dict.fromkeys(files)))


def _extra_files(info: dict[str, Any], image: str, *, top_directory: str) -> list[str]:
    """A qcow2's external data file and a VMDK's extents, as absolute paths. A relative
    data file of a backing file in another folder is refused: qemu, run beside the top
    image, would open it there (or not find it)."""
    specific = info.get("format-specific")
    data = specific.get("data") if isinstance(specific, dict) else None
    if not isinstance(data, dict):
        return []
    directory = os.path.dirname(image)
    found: list[str] = []
    data_file = data.get("data-file")
    if isinstance(data_file, str):
        if not os.path.isabs(data_file) and directory != top_directory:
            raise InputError(
                f"{image}: its external data file {data_file!r} is a relative name, which"
                " qemu resolves in the folder it runs in, the top image's, not this file's:"
                " give it an absolute one (qemu-img amend -o data_file=/full/path)"
            )
        found.append(os.path.join(directory, data_file))
    extents = data.get("extents")
    if isinstance(extents, list):
        for extent in extents:
            name = extent.get("filename") if isinstance(extent, dict) else None
            if isinstance(name, str):
                found.append(os.path.join(directory, name))
    return [name for name in found if name != image]
