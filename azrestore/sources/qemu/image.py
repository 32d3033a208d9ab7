"""A container image (qcow2, VMDK, VHDX, VHD, VDI) read through its own ``qemu-nbd``: the
source is an :class:`~azrestore.sources.nbd.NbdSource` on the child's Unix socket, whose
block status gives what the image (its whole backing chain) holds; closing it stops the
child. Blocking: :func:`open_container` runs in a worker thread.
"""

from __future__ import annotations

from ...errors import InputError, SourceError
from ...formats.nbd_url import NbdAddress
from ..nbd.pool import ConnectionPool
from ..nbd.source import MAX_CONNECTIONS, NbdSource, connect_pool
from .info import ImageInfo, inspect_image
from .server import QemuNbd
from .vhdx_map import vhdx_extents

#: The formats read through qemu-nbd (qemu's names; ``vpc`` is VHD).
CONTAINER_FORMATS = ("qcow2", "vmdk", "vhdx", "vpc", "vdi")


class ContainerImage(NbdSource):
    """A container image served by its own qemu-nbd. ``files`` is every host file it
    reads (the chain, data files, extents), for the journal's identity."""

    def __init__(self, path: str, info: ImageInfo, server: QemuNbd, pool: ConnectionPool) -> None:
        super().__init__(path, pool, info.size, format=info.format, chain=info.chain)
        self.files = info.files
        self._server = server
        if info.format == "vhdx" and len(info.chain) == 1:
            self._extents = vhdx_extents(info.chain[0].path)  # None: block status

    @property
    def server_pid(self) -> int | None:
        """The qemu-nbd child's process id while it runs."""
        return self._server.pid

    def _failed(self, what: str, exc: BaseException) -> SourceError:
        if not self._server.alive():
            return SourceError(f"{self.path}: {what}: qemu-nbd stopped: {self._server.log()}")
        return super()._failed(what, exc)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._server.stop()

    def __repr__(self) -> str:
        return f"ContainerImage({self.path!r}, size={self.size}, format={self.format!r})"


def open_container(path: str, fmt: str | None) -> ContainerImage:
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
        return ContainerImage(path, info, server, pool)
    except BaseException:
        server.stop()
        raise
