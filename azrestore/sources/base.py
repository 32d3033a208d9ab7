"""The one interface every disk source implements (raw files and block devices, container
formats read through qemu-nbd, NBD exports), so that the pipeline, the journal, verify,
convert and the restore engine never care where the bytes come from.

Every method but :meth:`DiskSource.close` may block: call them in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing more (start-up time)
if TYPE_CHECKING:
    from types import TracebackType

#: The formats a source can be forced to with ``--format`` (or ``format:`` in a plan).
#: ``vpc`` is qemu's name for VHD; ``nbd`` is an export reached by URL.
FORMATS = ("raw", "qcow2", "vmdk", "vhdx", "vpc", "vdi", "nbd")


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One file of a source's backing chain (the top image first): its path or URL and
    its format."""

    path: str
    format: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format}


class DiskSource(Protocol):
    """A disk to read: its virtual size, where it holds data, and reads at any offset.

    ``path`` is what the user named it by (a file path, or an NBD URL with no secret in
    it); ``format`` one of :data:`FORMATS`; ``chain`` every file that makes it up, top
    first (a raw file: itself). Extents not in :meth:`data_extents` read as zeros and
    are never read.
    """

    @property
    def path(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def format(self) -> str: ...

    @property
    def chain(self) -> tuple[ChainLink, ...]: ...

    @property
    def is_block_device(self) -> bool: ...

    def data_extents(self) -> list[tuple[int, int]]:
        """``(offset, length)`` of the regions that may hold data, in order."""
        ...

    def allocated_bytes(self) -> int:
        """Bytes in :meth:`data_extents`: what a transfer reads at most."""
        ...

    def read_into(self, buffer: memoryview, offset: int) -> int:
        """Fill ``buffer`` from ``offset``; bytes past the end are zeroed. Returns the
        number of bytes that came from the source."""
        ...

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset`` (short at the end)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> DiskSource: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
