"""Disk source to fixed VHD file, locally: the data extents copied, holes left as holes
and never read, zero padding to the MiB boundary, then the footer.

A raw file or device is copied as below, reflinked where the file system can; any other
source (a container format, an NBD export) is read through its ``read_into`` into the
same 2 MiB blocks.

The copy is qemu-img's: 2 MiB preads and pwrites, two in flight on worker threads, into
an output whose data extents are allocated first. On ext4 that was faster than the same
copy without the preallocation, than os.splice through pipes (one copy less, but writes
into one file queue on its inode lock, while parallel reads overlap), than
copy_file_range, which splices through a small pipe there, and than pwrite from a mapping
of the source (page faults); figures in docs/benchmarks.md.
"""

from __future__ import annotations

import _thread  # threading's low level: threading itself costs 2 ms of the quick start
import os
import stat
import time

from ..errors import AzRestoreError, InputError, TransferError
from ..formats.limits import vhd_file_problem
from ..formats.sizes import MiB, blob_size, virtual_size
from ..formats.vhd_footer import fixed_vhd_footer
from ..sources.raw import RawImage
from . import copypieces
from .fileblocks import clone_extents, preallocate

# What ``azrestore convert`` imports is kept light: its quick start (cli/entry.py) runs a
# sparse conversion in 0.08 s, where dataclasses, pathlib, re and threading would add 15 ms.
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable
    from typing import Any

    from ..sources.base import DiskSource

#: Bytes per read and write (qemu-img's size; 4 MiB was slower on one thread here).
_BLOCK = 2 * MiB
#: Copies in flight by default.
DEFAULT_WORKERS = 2


class ConvertCancelled(AzRestoreError):
    """:func:`convert_file` stopped because its ``cancel`` event was set."""

    exit_code = 130


class ConvertResult:
    """What a conversion did: sizes in bytes, ``seconds`` of wall time.

    A plain class rather than a dataclass, for the quick start (see the imports)."""

    __slots__ = (
        "blob_size",
        "bytes_cloned",
        "bytes_copied",
        "disk_size",
        "output",
        "seconds",
        "virtual_size",
    )

    def __init__(
        self,
        *,
        output: str,
        disk_size: int,
        virtual_size: int,
        blob_size: int,
        bytes_copied: int,
        seconds: float,
        bytes_cloned: int = 0,
    ) -> None:
        self.output = output
        self.disk_size = disk_size
        self.virtual_size = virtual_size
        self.blob_size = blob_size
        #: Bytes of data put in the output: read and written, or cloned.
        self.bytes_copied = bytes_copied
        #: Of those, bytes cloned (reflinked: sharing the image's blocks, nothing read).
        self.bytes_cloned = bytes_cloned
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"ConvertResult({self.to_json()})"

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
            "bytes_cloned": self.bytes_cloned,
            "seconds": round(self.seconds, 3),
            "throughput_mib_s": round(self.throughput_mib_s, 2),
        }


def convert_file(
    source: str | os.PathLike[str] | DiskSource,
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    workers: int = DEFAULT_WORKERS,
    cancel: threading.Event | None = None,
) -> ConvertResult:
    """Write ``source`` to ``out`` as a fixed VHD, blocking; returns what was done.

    ``source`` is an open :class:`~azrestore.sources.base.DiskSource` (left open), or the
    path of a raw image (opened here: other formats need :func:`convert_to_vhd`, which
    opens any source). A disk larger than Azure takes (32 TiB) is refused before the
    output is created.

    ``workers`` threads copy at once (the calling thread is one; each holds one 2 MiB
    buffer). ``on_progress(done, total)`` is called from them, one call at a time, with
    bytes of data extents copied so far. Setting ``cancel`` stops the copy within a piece
    (:class:`ConvertCancelled`). A partly written output is removed on any failure.
    """
    started = time.monotonic()
    out_path = os.fspath(out)
    owned = isinstance(source, (str, os.PathLike))
    image: DiskSource = RawImage.open(source) if isinstance(source, (str, os.PathLike)) else source
    try:
        problem = vhd_file_problem(image.size)
        if problem is not None:
            raise InputError(f"{image.path}: {problem}")
        out_fd = _open_output(out_path, image, overwrite)
        completed = False
        try:
            copied, cloned = _copy(image, out_fd, on_progress, max(1, workers), cancel)
            completed = True
        finally:
            os.close(out_fd)
            if not completed:
                _remove(out_path)
    finally:
        if owned:
            image.close()
    return ConvertResult(
        output=out_path,
        disk_size=image.size,
        virtual_size=virtual_size(image.size),
        blob_size=blob_size(image.size),
        bytes_copied=copied,
        bytes_cloned=cloned,
        seconds=time.monotonic() - started,
    )


async def convert_to_vhd(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    workers: int = DEFAULT_WORKERS,
    image_format: str | None = None,
) -> ConvertResult:
    """Write ``source`` (a file of any format, or an NBD URL; ``image_format`` forces its
    format) to ``out`` as a fixed VHD; returns what was done.

    The source is opened with :func:`~azrestore.sources.open.open_source`, then
    :func:`convert_file` runs on worker threads. ``on_progress(done, total)`` is called on
    the event loop with bytes of data extents copied so far. On cancellation the copy
    stops within a piece and the partly written output is removed before this returns.
    """
    from ..sources.open import open_source

    image = await open_source(source, image_format=image_format)
    try:
        return await _convert_open(image, out, overwrite, on_progress, workers)
    finally:
        image.close()


async def _convert_open(
    image: DiskSource,
    out: str | os.PathLike[str],
    overwrite: bool,
    on_progress: Callable[[int, int], None] | None,
    workers: int,
) -> ConvertResult:
    import threading

    import anyio.from_thread
    import anyio.lowlevel
    import anyio.to_thread

    token = anyio.lowlevel.current_token()
    cancel = threading.Event()
    finished = threading.Event()

    def report(done: int, total: int) -> None:
        assert on_progress is not None
        anyio.from_thread.run_sync(on_progress, done, total, token=token)

    def work() -> ConvertResult:
        try:
            return convert_file(
                image,
                out,
                overwrite=overwrite,
                on_progress=report if on_progress is not None else None,
                workers=workers,
                cancel=cancel,
            )
        finally:
            finished.set()

    try:
        return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        cancel.set()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(finished.wait)
        raise


def _open_output(out_path: str, image: DiskSource, overwrite: bool) -> int:
    if os.path.exists(out_path):
        real = os.path.realpath(out_path)
        if any(real == os.path.realpath(link.path) for link in image.chain):
            raise InputError(f"{out_path}: output is the input image (or a file of its chain)")
        if not overwrite:
            raise InputError(f"{out_path}: already exists (use --overwrite to replace it)")
        if stat.S_ISFIFO(mode := os.stat(out_path).st_mode) or stat.S_ISSOCK(mode):
            raise InputError(f"{out_path}: is a FIFO or a socket, not a file to write a VHD to")
        if os.path.isfile(out_path):
            # Unlink rather than O_TRUNC: ext4 flushes a file truncated to zero and
            # rewritten when it is closed (auto_da_alloc), which tripled the time here.
            os.unlink(out_path)
    try:
        return os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise InputError(f"{out_path}: cannot create: {exc.strerror}") from None


def _remove(path: str) -> None:
    try:  # noqa: SIM105 - contextlib.suppress would load contextlib (start-up time)
        os.unlink(path)
    except FileNotFoundError:
        pass


def _copy(
    image: DiskSource,
    out_fd: int,
    on_progress: Callable[[int, int], None] | None,
    workers: int,
    cancel: threading.Event | None,
) -> tuple[int, int]:
    """Clone the image's data extents where the file system can, copy the rest on
    ``workers`` threads, then write the footer; returns bytes put and bytes cloned."""

    def stopped() -> bool:
        return cancel is not None and cancel.is_set()

    try:
        extents = image.data_extents()
        total = sum(length for _, length in extents)
        lock = _thread.allocate_lock()
        write_lock = _thread.allocate_lock()
        copy_piece: Callable[[int, int, bytearray], None]
        if isinstance(image, RawImage):  # the fast path: its blocks shared, else preadv
            source_fd = image.fileno()
            cloned, extents = clone_extents(source_fd, out_fd, extents)

            def copy_piece(offset: int, length: int, buffer: bytearray) -> None:
                copypieces.copy_piece(source_fd, out_fd, offset, length, buffer, write_lock)

        else:  # any other source: through its read_into
            cloned = 0

            def copy_piece(offset: int, length: int, buffer: bytearray) -> None:
                copypieces.read_piece(image, out_fd, offset, length, buffer, write_lock)

        preallocate(out_fd, extents)
        pieces = copypieces.pieces(extents)
        done = cloned
        if cloned and on_progress is not None:
            on_progress(done, total)
        errors: list[BaseException] = []

        def worker() -> None:
            nonlocal done
            buffer = bytearray(_BLOCK)
            try:
                while not stopped() and not errors:
                    with lock:
                        piece = next(pieces, None)
                    if piece is None:
                        return
                    copy_piece(*piece, buffer)
                    with lock:
                        done += piece[1]
                        if on_progress is not None:
                            on_progress(done, total)
            except BaseException as exc:  # re-raised below, in the calling thread
                errors.append(exc)

        copypieces.run_on_threads(worker, workers, errors)
        if errors:
            raise errors[0]
        if stopped():
            raise ConvertCancelled("conversion cancelled")
        # The footer at the virtual size sets the file's length: everything before it that
        # was not written stays a hole (no ftruncate first: ext4 wrote slower into a file
        # made 8 GiB long up front).
        size = virtual_size(image.size)
        os.pwrite(out_fd, fixed_vhd_footer(size), size)
    except OSError as exc:
        raise TransferError(f"writing the VHD failed: {exc.strerror or exc}") from None
    return done, cloned
