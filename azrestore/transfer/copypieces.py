"""The worker side of ``convert``: ranges cut into pieces and copied, in blocks through one
buffer per thread, from a raw file (preadv) or any other source (its ``read_into``) to the
same offsets of the output, writes taking turns; and running that work on threads.

Only ``os`` and ``_thread``: the quick convert start imports this.
"""

from __future__ import annotations

import _thread  # threading's low level: threading itself costs 2 ms of the quick start
import os

from ..formats.sizes import MiB

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ..sources.base import DiskSource

#: Bytes a worker copies between two looks at the cancel flag and two progress calls.
PIECE = 32 * MiB


def run_on_threads(work: Callable[[], None], count: int, errors: list[BaseException]) -> None:
    """Run ``work`` on ``count`` threads, this one among them, and return when all are done,
    even through an interrupt or a thread that would not start (``work`` stops at its next
    piece once ``errors`` holds one): none may write to the output after it is closed."""
    finished = []
    try:
        for _ in range(count - 1):
            signal = _thread.allocate_lock()
            signal.acquire()
            _thread.start_new_thread(_then_release, (work, signal))
            finished.append(signal)
        work()
    except BaseException as exc:
        errors.append(exc)
    finally:
        for signal in finished:
            while True:
                try:
                    signal.acquire()
                    break
                except BaseException as exc:
                    errors.append(exc)


def _then_release(work: Callable[[], None], signal: _thread.LockType) -> None:
    try:
        work()
    finally:
        signal.release()


def pieces(extents: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """The extents cut into ``(offset, length)`` pieces of at most PIECE bytes."""
    for offset, length in extents:
        for start in range(offset, offset + length, PIECE):
            yield start, min(PIECE, offset + length - start)


def copy_piece(
    src: int,
    dst: int,
    offset: int,
    length: int,
    buffer: bytearray,
    write_lock: _thread.LockType,
) -> None:
    """Worker thread: copy one range to the same offset, in blocks through ``buffer``.

    Reads overlap; writes take turns under ``write_lock``, as qemu-img's in-order writes
    do. Writes into one file queue on its inode lock anyway, and the kernel spins there:
    this lock about halved the CPU time of dense conversions, and sparse ones were no
    slower (docs/benchmarks.md)."""
    view = memoryview(buffer)
    end = offset + length
    while offset < end:
        got = os.preadv(src, [view[: min(len(view), end - offset)]], offset)
        if got == 0:  # the source ended early (it shrank): the rest stays zero
            return
        written = 0
        with write_lock:
            while written < got:
                written += os.pwrite(dst, view[written:got], offset + written)
        offset += got


def read_piece(
    image: DiskSource,
    dst: int,
    offset: int,
    length: int,
    buffer: bytearray,
    write_lock: _thread.LockType,
) -> None:
    """Worker thread: :func:`copy_piece` for a source that is not a raw file, read with
    its ``read_into`` (which may itself block on its reader: a qemu-nbd child, a server)."""
    view = memoryview(buffer)
    end = offset + length
    while offset < end:
        want = min(len(view), end - offset)
        got = image.read_into(view[:want], offset)
        if got == 0:  # past the source's end: the rest stays zero
            return
        written = 0
        with write_lock:
            while written < want:
                written += os.pwrite(dst, view[written:want], offset + written)
        offset += want
