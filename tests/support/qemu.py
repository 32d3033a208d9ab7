"""Container images made by qemu's own tools, and qemu's own view of them (the reference
every source is judged by): ``qemu-img convert -O raw`` for the bytes, ``qemu-img map``
for what holds data."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from azrestore.formats.sizes import KiB, MiB

#: An awkward virtual size: not a MiB multiple, an odd number of sectors.
AWKWARD_SIZE = 9 * MiB + 7 * 512

#: ``(offset, length, byte)`` written into every test disk: the first and last sector, a
#: run across a 64 KiB cluster boundary, one across a 1 MiB block boundary, one in the
#: middle of nothing.
PATTERN: tuple[tuple[int, int, int], ...] = (
    (0, 512, 0xAB),
    (64 * KiB - 1536, 4 * KiB, 0xC1),
    (2 * MiB - 512, 3 * 512, 0xC2),
    (5 * MiB + 12 * KiB, 200 * KiB, 0xC3),
    (AWKWARD_SIZE - 512, 512, 0xEF),
)


def run(*command: str | Path, cwd: Path | None = None) -> str:
    """Run a qemu tool (in ``cwd``); its stdout (fails the test with its stderr)."""
    done = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, timeout=120, cwd=cwd
    )
    assert done.returncode == 0, f"{command}: {done.stderr}"
    return done.stdout


def qemu_io(image: Path | str, fmt: str, *commands: str, cwd: Path | None = None) -> None:
    """Run qemu-io ``commands`` (``write -P 0xab 0 4k``, ``write -z ...``) on ``image``."""
    args: list[str | Path] = ["qemu-io", "-f", fmt]
    for command in commands:
        args += ["-c", command]
    run(*args, image, cwd=cwd)


def pattern_raw(path: Path, size: int = AWKWARD_SIZE) -> Path:
    """A sparse raw disk of ``size`` holding :data:`PATTERN`."""
    with path.open("wb") as handle:
        handle.truncate(size)
        for offset, length, value in PATTERN:
            if offset + length <= size:
                handle.seek(offset)
                handle.write(bytes([value]) * length)
    return path


def convert(source: Path, target: Path, fmt: str, *options: str, compress: bool = False) -> Path:
    """``qemu-img convert`` ``source`` (raw) into ``target`` of ``fmt`` with ``options``."""
    args: list[str | Path] = ["qemu-img", "convert", "-f", "raw", "-O", fmt]
    if compress:
        args.append("-c")
    if options:
        args += ["-o", ",".join(options)]
    run(*args, source, target)
    return target


def create(
    target: Path,
    fmt: str,
    size: int | None,
    *options: str,
    backing: Path | None = None,
    backing_format: str | None = None,
    cwd: Path | None = None,
) -> Path:
    """``qemu-img create`` an image (an overlay of ``backing`` when given), run in
    ``cwd`` (a relative ``data_file=`` is made there)."""
    args: list[str | Path] = ["qemu-img", "create", "-q", "-f", fmt]
    if backing is not None:
        args += ["-b", backing.name if backing.parent == target.parent else backing]
        args += ["-F", backing_format or fmt]
    if options:
        args += ["-o", ",".join(options)]
    args.append(target)
    if size is not None:
        args.append(str(size))
    run(*args, cwd=cwd)
    return target


def raw_view(image: Path, fmt: str) -> bytes:
    """The image's virtual disk as qemu reads it (``qemu-img convert -O raw``)."""
    out = image.with_name(image.name + ".reference.raw")
    run("qemu-img", "convert", "-f", fmt, "-O", "raw", image, out, cwd=image.parent)
    try:
        return out.read_bytes()
    finally:
        out.unlink()


def nonzero_map(image: Path, fmt: str) -> list[tuple[int, int]]:
    """``(offset, length)`` of what ``qemu-img map`` says does not read as zeros, merged."""
    entries = json.loads(
        run("qemu-img", "map", "--output=json", "-f", fmt, image, cwd=image.parent)
    )
    found: list[tuple[int, int]] = []
    for entry in entries:
        if entry["zero"]:
            continue
        start, length = int(entry["start"]), int(entry["length"])
        if found and found[-1][0] + found[-1][1] == start:
            found[-1] = (found[-1][0], found[-1][1] + length)
        else:
            found.append((start, length))
    return found


def encrypted_qcow2(path: Path, size: str = "16M") -> Path:
    """A LUKS-encrypted qcow2 made by qemu-img. Its key derivation times itself on the CPU
    and fails ("Unable to get accurate CPU usage") on a busy machine: tried a few times."""
    command = [
        *("qemu-img", "create", "-q", "-f", "qcow2", "--object", "secret,id=s0,data=pw"),
        *("-o", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10"),
        *(str(path), size),
    ]
    for attempt in range(10):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return path
        if "accurate CPU usage" not in done.stderr or attempt == 9:
            raise AssertionError(f"qemu-img create failed: {done.stderr.strip()}")
        time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")
