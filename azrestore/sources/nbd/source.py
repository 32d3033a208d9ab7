"""An NBD export as a :class:`~azrestore.sources.base.DiskSource`: its size from the
handshake, its data extents from block status (``base:allocation``: extents that read as
zeros are not data), reads over a pool of connections, one per worker thread.

:func:`open_nbd` opens an ``nbd://`` or ``nbd+unix://`` URL; :mod:`..qemu` serves
container images through the same class.
"""

from __future__ import annotations

import threading
from functools import partial

from ...errors import InputError, SourceError
from ...formats import nbd
from ...formats.nbd_url import NbdAddress, NbdUrlError, parse_nbd_url
from ..base import ChainLink
from ..closing import ClosedOnExit
from .client import NbdClient, NbdError
from .pool import ConnectionPool

TYPE_CHECKING = False
if TYPE_CHECKING:
    pass

#: Connections to one export at most: the pipeline's default concurrency.
MAX_CONNECTIONS = 16
#: Bytes asked about per block status request (the length field has 32 bits).
_STATUS_SPAN = 1 << 30


class NbdSource(ClosedOnExit):
    """A disk read from an NBD export. ``path`` is what the user named it by (the URL, or
    for a container image served by qemu-nbd, the image's path); ``format`` ``nbd`` or the
    image's format; ``chain`` the files behind it."""

    def __init__(
        self,
        path: str,
        pool: ConnectionPool,
        size: int,
        *,
        format: str = "nbd",
        chain: tuple[ChainLink, ...] | None = None,
    ) -> None:
        self.path = path
        self.size = size
        self.is_block_device = False
        self._format = format
        self._chain = chain if chain is not None else (ChainLink(path, format),)
        self._pool = pool
        self._extents: list[tuple[int, int]] | None = None
        self._extents_lock = threading.Lock()

    @property
    def format(self) -> str:
        return self._format

    @property
    def chain(self) -> tuple[ChainLink, ...]:
        return self._chain

    def data_extents(self) -> list[tuple[int, int]]:
        """``(offset, length)`` of what does not read as zeros, from block status (asked
        once; the whole export when the server has no ``base:allocation``)."""
        with self._extents_lock:
            if self._extents is None:
                self._extents = self._map()
            return list(self._extents)

    def _map(self) -> list[tuple[int, int]]:
        extents: list[tuple[int, int]] = []
        offset = 0
        try:
            with self._pool.client() as client:
                span = max(client.minimum, _STATUS_SPAN // client.minimum * client.minimum)
                while offset < self.size:
                    for length, flags in client.block_status(offset, min(span, self.size - offset)):
                        if not flags & nbd.STATE_ZERO:
                            if extents and extents[-1][0] + extents[-1][1] == offset:
                                extents[-1] = (extents[-1][0], extents[-1][1] + length)
                            else:
                                extents.append((offset, length))
                        offset += length
        except (NbdError, OSError) as exc:
            raise self._failed("cannot map its data (block status)", exc) from None
        return extents

    def allocated_bytes(self) -> int:
        return sum(length for _, length in self.data_extents())

    def read_into(self, buffer: memoryview, offset: int) -> int:
        """Fill ``buffer`` from ``offset``; bytes past the end are zeroed. Returns the
        number of bytes that came from the export."""
        want = max(0, min(len(buffer), self.size - offset))
        if want:
            try:
                with self._pool.client() as client:
                    client.read_into(buffer[:want], offset)
            except (NbdError, OSError) as exc:
                raise self._failed(f"cannot read {want} bytes at offset {offset}", exc) from None
        if want < len(buffer):
            buffer[want:] = bytes(len(buffer) - want)
        return want

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset`` (short at the end)."""
        data = bytearray(max(0, min(length, self.size - offset)))
        self.read_into(memoryview(data), offset)
        return bytes(data)

    def _failed(self, what: str, exc: BaseException) -> SourceError:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return SourceError(f"{self.path}: {what}: {reason or type(exc).__name__}")

    def close(self) -> None:
        self._pool.close()

    def __repr__(self) -> str:
        return f"NbdSource({self.path!r}, size={self.size}, format={self.format!r})"


def connect_pool(
    address: NbdAddress, *, name: str, limit: int = MAX_CONNECTIONS
) -> tuple[ConnectionPool, NbdClient]:
    """A pool of connections to ``address`` and its first connection (made now, so that a
    server that is not there or has no such export is an :class:`InputError`)."""
    try:
        first = NbdClient.connect(address)
    except NbdError as exc:
        raise InputError(f"{name}: {exc}") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot connect to the NBD server: {_reason(exc)}") from None
    connect = partial(_connect, address)
    return ConnectionPool(connect, first, limit=limit), first


def _connect(address: NbdAddress, timeout: float) -> NbdClient:
    return NbdClient.connect(address, timeout=timeout)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def open_nbd(url: str) -> NbdSource:
    """Open the export an NBD URL names (blocking). Raises :class:`InputError` for a URL
    that is not one, a server that is not there, or an export it does not have."""
    try:
        address = parse_nbd_url(url)
    except NbdUrlError as exc:
        raise InputError(f"{url}: {exc}") from None
    pool, first = connect_pool(address, name=url)
    if first.size == 0:
        pool.close()
        raise InputError(f"{url}: the export is empty")
    return NbdSource(url, pool, first.size)
