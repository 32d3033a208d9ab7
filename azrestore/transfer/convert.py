"""Raw image to fixed VHD file, locally: the data extents copied in the kernel
(copy_file_range), holes left as holes and never read, zero padding to the MiB boundary,
then the footer."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from ..errors import InputError, TransferError
from ..formats.sizes import MiB, blob_size, virtual_size
from ..formats.vhd import fixed_vhd_footer
from ..sources.raw import RawImage, open_raw_image

#: Bytes copied per worker-thread call; progress is reported between calls.
_STEP = 64 * MiB
#: Errors on which copy_file_range is not usable for this pair of files.
_NO_COPY_RANGE = frozenset({errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP})


@dataclass(frozen=True, slots=True)
class ConvertResult:
    output: str
    disk_size: int
    virtual_size: int
    blob_size: int
    bytes_copied: int
    seconds: float

    @property
    def throughput_mib_s(self) -> float:
        return self.disk_size / self.seconds / MiB if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "disk_size": self.disk_size,
            "virtual_size": self.virtual_size,
            "blob_size": self.blob_size,
            "bytes_copied": self.bytes_copied,
            "seconds": round(self.seconds, 3),
            "throughput_mib_s": round(self.throughput_mib_s, 2),
        }


async def convert_to_vhd(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> ConvertResult:
    """Write ``source`` (raw) to ``out`` as a fixed VHD; returns what was done.

    ``on_progress(done, total)`` is called on the event loop with bytes of data extents
    copied so far. A partly written output is removed on failure or cancellation.
    """
    started = time.monotonic()
    out_path = Path(out)
    image = await open_raw_image(source)
    try:
        out_fd = await anyio.to_thread.run_sync(_open_output, out_path, image.path, overwrite)
        completed = False
        try:
            copied = await _copy(image, out_fd, on_progress)
            completed = True
        finally:
            os.close(out_fd)
            if not completed:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(lambda: out_path.unlink(missing_ok=True))
    finally:
        image.close()
    return ConvertResult(
        output=str(out_path),
        disk_size=image.size,
        virtual_size=virtual_size(image.size),
        blob_size=blob_size(image.size),
        bytes_copied=copied,
        seconds=time.monotonic() - started,
    )


def _open_output(out_path: Path, image_path: Path, overwrite: bool) -> int:
    if out_path.exists():
        if out_path.resolve() == image_path.resolve():
            raise InputError(f"{out_path}: output is the input image")
        if not overwrite:
            raise InputError(f"{out_path}: already exists (use --overwrite to replace it)")
        if out_path.is_file():
            # Unlink rather than O_TRUNC: ext4 flushes a file truncated to zero and
            # rewritten when it is closed (auto_da_alloc), which tripled the time here.
            out_path.unlink()
    try:
        return os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise InputError(f"{out_path}: cannot create: {exc.strerror}") from None


async def _copy(
    image: RawImage, out_fd: int, on_progress: Callable[[int, int], None] | None
) -> int:
    size = virtual_size(image.size)
    try:
        extents = await anyio.to_thread.run_sync(image.data_extents)
        total = sum(length for _, length in extents)
        done = 0
        kernel_copy = [True]
        for offset, length in extents:
            position = offset
            while position < offset + length:
                step = min(_STEP, offset + length - position)
                await anyio.to_thread.run_sync(
                    _copy_range, image.fileno(), out_fd, position, step, kernel_copy
                )
                position += step
                done += step
                if on_progress is not None:
                    on_progress(done, total)
        # The footer at the virtual size sets the file's length: everything before it that
        # was not written stays a hole (no ftruncate first: ext4 wrote slower into a file
        # made 8 GiB long up front).
        footer = fixed_vhd_footer(size)
        await anyio.to_thread.run_sync(os.pwrite, out_fd, footer, size)
    except OSError as exc:
        raise TransferError(f"writing the VHD failed: {exc.strerror or exc}") from None
    return done


def _copy_range(src: int, dst: int, offset: int, length: int, kernel_copy: list[bool]) -> None:
    """Copy one range at the same offset; copy_file_range while the kernel allows it,
    else read and write only the non-zero blocks (so zeros stay holes)."""
    end = offset + length
    while offset < end and kernel_copy[0]:
        try:
            copied = os.copy_file_range(src, dst, end - offset, offset, offset)
        except OSError as exc:
            if exc.errno not in _NO_COPY_RANGE:
                raise
            kernel_copy[0] = False
            break
        if copied == 0:  # the source ended early (it shrank): the rest stays zero
            return
        offset += copied
    from ..formats.zeros import nonzero_runs  # numpy: loaded only when needed

    buffer = bytearray(4 * MiB)
    while offset < end:
        view = memoryview(buffer)[: min(len(buffer), end - offset)]
        got = os.preadv(src, [view], offset)
        if got == 0:
            return
        view = view[:got]
        padded = view if got % 512 == 0 else memoryview(bytes(view) + bytes(-got % 512))
        for start, stop in nonzero_runs(padded, 4096, 0):
            os.pwrite(dst, view[start : min(stop, got)], offset + start)
        offset += got
