"""Container images (qcow2, VMDK, VHDX, VHD, VDI) read through a qemu-nbd child each:
:mod:`.info` asks qemu-img what the image is, :mod:`.server` runs qemu-nbd, :mod:`.image`
is the source; :mod:`.vmdk_stream` reads a streamOptimized VMDK without qemu-nbd."""

from .image import CONTAINER_FORMATS, ContainerImage, open_container
from .vmdk_stream import StreamVmdkImage

__all__ = ["CONTAINER_FORMATS", "ContainerImage", "StreamVmdkImage", "open_container"]
