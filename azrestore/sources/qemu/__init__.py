"""Container images (qcow2, VMDK, VHDX, VHD, VDI) read through a qemu-nbd child each:
:mod:`.info` asks qemu-img what the image is, :mod:`.server` runs qemu-nbd, :mod:`.image`
is the source."""

from .image import CONTAINER_FORMATS, ContainerImage, open_container

__all__ = ["CONTAINER_FORMATS", "ContainerImage", "open_container"]
