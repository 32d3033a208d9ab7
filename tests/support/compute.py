"""A real azure-mgmt-compute aio client on a running emulator, for tests that judge what
the emulator holds from outside (as Azure's own SDK reads it), and a disk's state and
bytes read through it."""

from __future__ import annotations

from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.compute.models import GrantAccessData
from azure.storage.blob.aio import BlobClient

from azrestore.azure.arm import StaticTokenCredential
from azrestore.emulator import Emulator
from tests.support.plans import SUB


def compute_client(emulator: Emulator) -> ComputeManagementClient:
    """A client for the emulator's Resource Manager, with its token and CA (use it with
    ``async with``)."""
    info = emulator.info()
    return ComputeManagementClient(
        StaticTokenCredential(info["token"]),
        SUB,
        base_url=info["arm_endpoint"],
        connection_verify=info["ca_bundle"],
    )


async def disk_state(emulator: Emulator, group: str, name: str) -> str:
    """A disk's state as azure-mgmt-compute reads it."""
    async with compute_client(emulator) as compute:
        disk = await compute.disks.get(group, name)
    state = disk.disk_state
    return str(getattr(state, "value", state))


async def read_disk(emulator: Emulator, group: str, name: str) -> bytes:
    """A disk's bytes, as a user reads them: a read grant (azure-mgmt-compute), a download
    through the gateway (azure-storage-blob), then access revoked."""
    async with compute_client(emulator) as compute:
        poller = await compute.disks.begin_grant_access(
            group, name, GrantAccessData(access="Read", duration_in_seconds=600)
        )
        sas = (await poller.result()).access_sas
        assert sas is not None
        try:
            async with BlobClient.from_blob_url(sas) as blob:
                return await (await blob.download_blob()).readall()
        finally:
            await (await compute.disks.begin_revoke_access(group, name)).result()
