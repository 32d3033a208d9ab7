"""A container image (qcow2, VMDK, VHDX, VHD, VDI) read through its own ``qemu-nbd``: the
source is an :class:`~azrestore.sources.nbd.NbdSource` on the child's Unix socket, whose
block status gives what the image (its whole backing chain) holds; closing it stops the
child. A streamOptimized VMDK in one file is decompressed in-process instead
(:mod:`.vmdk_stream`), with no qemu-nbd. Blocking: :func:`open_container` runs in a
worker thread.
"""

from __future__ import annotations

import os

from ...errors import InputError, SourceError
from ...formats.nbd_url import NbdAddress
from ..nbd.pool import ConnectionPool
from ..nbd.source import MAX_CONNECTIONS, NbdSource, connect_pool
from .hostmap import HostMap, host_map, pread_full
from .info import ImageInfo, inspect_image, qemu_tool
from .server import QemuNbd
from .vhdx_map import vhdx_extents, vhdx_host_map
from .vmdk_stream import StreamVmdkImage, open_stream_vmdk

#: The formats read through qemu-nbd (qemu's names; ``vpc`` is VHD).
CONTAINER_FORMATS = ("qcow2", "vmdk", "vhdx", "vpc", "vdi")
#: Seconds a failed read waits to see whether qemu-nbd is exiting (then it says so).
_EXIT_WAIT = 1.0


class ContainerImage(NbdSource):
    """A container image served by its own qemu-nbd. ``files`` is every host file it
    reads (the chain, data files, extents), for the journal's identity."""

    def __init__(
        self,
        path: str,
        info: ImageInfo,
        server: QemuNbd,
        pool: ConnectionPool,
        direct: HostMap | None = None,
    ) -> None:
        super().__init__(path, pool, info.size, format=info.format, chain=info.chain)
        self.files = info.files
        self._server = server
        if info.format == "vhdx" and len(info.chain) == 1:
            self._extents = vhdx_extents(info.chain[0].path)  # None: block status
        self._direct = direct
        self._fd = -1
        if direct is not None:
            try:
                self._fd = os.open(info.files[0], os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                self._direct = None

    @property
    def direct_bytes(self) -> int:
        """Bytes of the disk read straight from the image file (see :mod:`.hostmap`)."""
        return self._direct.mapped_bytes if self._direct is not None else 0

    def read_into(self, buffer: memoryview, offset: int) -> int:
        """Fill ``buffer`` from ``offset`` as :meth:`NbdSource.read_into` does: mapped
        ranges by preadv from the image file, the rest through qemu-nbd."""
        if self._direct is None:
            return super().read_into(buffer, offset)
        want = max(0, min(len(buffer), self.size - offset))
        for start, length, host in self._direct.segments(offset, want):
            view = buffer[start - offset : start - offset + length]
            if host < 0:
                super().read_into(view, start)
                continue
            try:
                pread_full(self._fd, view, host)
            except OSError as exc:
                raise self._failed(f"cannot read {length} bytes at offset {start}", exc) from None
        if want < len(buffer):
            buffer[want:] = bytes(len(buffer) - want)
        return want

    @property
    def server_pid(self) -> int | None:
        """The qemu-nbd child's process id while it runs."""
        return self._server.pid

    def _failed(self, what: str, exc: BaseException) -> SourceError:
        # A failed read is the moment to ask: the wait is short, and only on this path.
        if self._server.exited(within=_EXIT_WAIT):
            return SourceError(f"{self.path}: {what}: qemu-nbd stopped: {self._server.log()}")
        return super()._failed(what, exc)

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._server.stop()

    def __repr__(self) -> str:
        return f"ContainerImage({self.path!r}, size={self.size}, format={self.format!r})"


def open_container(path: str, fmt: str | None) -> ContainerImage | StreamVmdkImage:
    """Inspect the image at ``path`` (``fmt``: its qemu format, or None) and serve it with
    qemu-nbd. Raises InputError for what cannot be read; nothing is left running then."""
    info = inspect_image(path, fmt)
    if info.format not in CONTAINER_FORMATS:
        raise InputError(
            f"{path}: is a {info.format} image, which azrestore does not read"
            f" (one of: {', '.join(CONTAINER_FORMATS)}; or convert it to raw)"
        )
    if info.size % 512:
        raise InputError(f"{path}: virtual size {info.size} is not a whole number of sectors")
    if info.format == "vmdk" and len(info.chain) == 1 and len(info.files) == 1:
        stream = open_stream_vmdk(path, info)  # compressed grains: decompressed here
        if stream is not None:
            return stream
    server = QemuNbd(path, info.format, shared=MAX_CONNECTIONS, shown=path)
    server.start()
    try:
        address = NbdAddress(
            f"nbd+unix:///?socket={server.socket_path}", "", socket=server.socket_path
        )
        pool, first = connect_pool(address, name=path)
        if first.size != info.size:
            pool.close()
            raise InputError(
                f"{path}: qemu-nbd serves {first.size} bytes, qemu-img said {info.size}"
            )
        direct = None
        if len(info.chain) == 1 and len(info.files) == 1:  # one file: offsets are into it
            if info.format == "vhdx":  # qemu's vhdx driver maps nothing: its BAT does
                direct = vhdx_host_map(info.files[0])
            else:
                direct = host_map(qemu_tool("qemu-img"), info.files[0], info.format)
        return ContainerImage(path, info, server, pool, direct)
    except BaseException:
        server.stop()
        raise
