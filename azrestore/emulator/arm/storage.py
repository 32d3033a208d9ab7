"""The page blobs behind managed disks, kept in the emulated storage account (Azurite).

Azure keeps an uploaded disk in a hidden ``md-impexp-*`` account as ``/<container>/abcd`` and
hands out SAS URLs to it; the simulator does the same in Azurite, one container per disk,
and gives SAS URLs on the strict gateway so that uploads meet Azure's Put Page rules.  The
simulator itself talks to Azurite directly with the account key.
"""

from __future__ import annotations

import contextlib
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobSasPermissions, BlobType, generate_blob_sas
from azure.storage.blob.aio import BlobServiceClient

from azrestore.emulator.azurite import AZURITE_ACCOUNT, AZURITE_KEY

__all__ = ["DiskStorage", "SourceBlob", "StorageConfig"]

#: Azure's name for the one blob of a managed disk's export/import container.
DISK_BLOB: Final = "abcd"
_FOOTER: Final = 512


@dataclass(frozen=True)
class StorageConfig:
    """Where disk blobs live.

    ``account_url`` reaches Azurite directly (the simulator's own requests);
    ``public_account_url`` is what SAS URLs point at (the strict gateway).
    """

    account_url: str
    public_account_url: str
    account_name: str = AZURITE_ACCOUNT
    account_key: str = AZURITE_KEY


@dataclass(frozen=True)
class SourceBlob:
    """A blob named by an Import's ``sourceUri``."""

    container: str
    name: str
    size: int
    is_page_blob: bool


def new_container_name() -> str:
    """A random 12-character container name, like Azure's disk export containers."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(12))


class DiskStorage:
    """Create, read, copy, sign and delete disk blobs in the storage account."""

    def __init__(self, config: StorageConfig) -> None:
        self.config = config
        self._service: BlobServiceClient | None = None

    async def open(self) -> None:
        """Open the connection pool to Azurite."""
        if self._service is None:
            self._service = BlobServiceClient(
                self.config.account_url,
                credential={
                    "account_name": self.config.account_name,
                    "account_key": self.config.account_key,
                },
            )

    async def close(self) -> None:
        """Close the connection pool."""
        service, self._service = self._service, None
        if service is not None:
            await service.close()

    @property
    def service(self) -> BlobServiceClient:
        """The open service client."""
        if self._service is None:
            raise RuntimeError("disk storage is not open")
        return self._service

    def blob_path(self, container: str) -> str:
        """The URL path of a disk's blob as the gateway sees it: ``/account/container/abcd``."""
        base = urlsplit(self.config.public_account_url).path.rstrip("/")
        return f"{base}/{container}/{DISK_BLOB}"

    def blob_url(self, container: str) -> str:
        """The disk blob's public (gateway) URL, without a SAS."""
        return f"{self.config.public_account_url.rstrip('/')}/{container}/{DISK_BLOB}"

    async def create_blob(self, container: str, size: int) -> None:
        """A new container holding an all-zero page blob of ``size`` bytes."""
        client = self.service.get_container_client(container)
        await client.create_container()
        await client.get_blob_client(DISK_BLOB).create_page_blob(size)

    async def write_tail(self, container: str, size: int, data: bytes) -> None:
        """Write ``data`` (512-byte multiple) at the end of the blob."""
        blob = self.service.get_blob_client(container, DISK_BLOB)
        await blob.upload_page(data, offset=size - len(data), length=len(data))

    async def resize(self, container: str, old_size: int, new_size: int, footer: bytes) -> None:
        """Grow a disk blob from ``old_size`` + footer to ``new_size`` + ``footer``: the old
        footer's pages become zeros (disk space), the new footer goes at the end."""
        blob = self.service.get_blob_client(container, DISK_BLOB)
        await blob.resize_blob(new_size + _FOOTER)
        await blob.clear_page(offset=old_size, length=_FOOTER)
        await blob.upload_page(footer, offset=new_size, length=_FOOTER)

    async def read_footer(self, container: str, name: str = DISK_BLOB) -> tuple[bytes, int]:
        """The last 512 bytes of a blob (fewer if it is smaller) and its size."""
        blob = self.service.get_blob_client(container, name)
        properties = await blob.get_blob_properties()
        size = int(properties.size)
        if size < _FOOTER:
            return b"", size
        downloader = await blob.download_blob(offset=size - _FOOTER, length=_FOOTER)
        return await downloader.readall(), size

    async def read_range(self, container: str, offset: int, length: int) -> bytes:
        """``length`` bytes of the disk blob at ``offset`` (zeros past its end)."""
        if length <= 0:
            return b""
        blob = self.service.get_blob_client(container, DISK_BLOB)
        downloader = await blob.download_blob(offset=offset, length=length)
        data: bytes = await downloader.readall()
        return data.ljust(length, b"\x00")

    async def delete(self, container: str) -> None:
        """Delete a disk's container (and blob); quiet if it is gone."""
        with contextlib.suppress(ResourceNotFoundError):
            await self.service.delete_container(container)

    def sas_url(self, container: str, *, write: bool, expiry: datetime) -> tuple[str, str]:
        """A SAS URL on the gateway for a disk blob, and its signature (``sig``)."""
        permission = BlobSasPermissions(read=True, write=write)
        sas = generate_blob_sas(
            self.config.account_name,
            container,
            DISK_BLOB,
            account_key=self.config.account_key,
            permission=permission,
            expiry=expiry,
        )
        signature = parse_qs(sas)["sig"][0]
        return f"{self.blob_url(container)}?{sas}", signature

    def parse_source(self, uri: str) -> tuple[str, str] | None:
        """``(container, blob)`` when ``uri`` names a blob of the emulated account, else None.

        Accepted: the account's gateway or direct URL, or the account's Azure-style host
        (``https://devstoreaccount1.blob.core.windows.net/container/blob``).
        """
        parts = urlsplit(uri)
        path = unquote(parts.path)
        azure_host = f"{self.config.account_name}.blob.core.windows.net"
        if parts.hostname and parts.hostname.lower() == azure_host:
            rest = path.lstrip("/")
        else:
            for account_url in (self.config.public_account_url, self.config.account_url):
                base = urlsplit(account_url)
                prefix = base.path.rstrip("/") + "/"
                if parts.netloc.lower() == base.netloc.lower() and path.startswith(prefix):
                    rest = path[len(prefix) :]
                    break
            else:
                return None
        container, _, blob = rest.partition("/")
        if not container or not blob:
            return None
        return container, blob

    async def source_blob(self, container: str, name: str) -> SourceBlob | None:
        """The properties of an Import source blob, or None when it does not exist."""
        blob = self.service.get_blob_client(container, name)
        try:
            properties = await blob.get_blob_properties()
        except ResourceNotFoundError:
            return None
        return SourceBlob(
            container=container,
            name=name,
            size=int(properties.size),
            is_page_blob=properties.blob_type == BlobType.PAGEBLOB,
        )

    async def copy(self, source: SourceBlob, container: str) -> None:
        """Copy ``source`` into a new disk container (a server-side copy within the account)."""
        client = self.service.get_container_client(container)
        await client.create_container()
        target = client.get_blob_client(DISK_BLOB)
        source_client = self.service.get_blob_client(source.container, source.name)
        # Azurite authorises the copy's source read by a SAS, as Azure does across accounts.
        sas = generate_blob_sas(
            self.config.account_name,
            source.container,
            source.name,
            account_key=self.config.account_key,
            permission=BlobSasPermissions(read=True),
            expiry=datetime.now(UTC) + timedelta(hours=1),
        )
        await target.start_copy_from_url(f"{source_client.url}?{sas}")
        properties = await target.get_blob_properties()
        if properties.copy.status not in (None, "success"):
            raise HttpResponseError(f"copy of {source.name} ended {properties.copy.status}")
