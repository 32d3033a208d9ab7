"""A managed disk's upload SAS that expires midway (local Azure: Resource Manager simulator,
strict gateway, Azurite) is granted again through the sink's renewal hook, and the upload
goes on; Azure's check of the VHD at revoke then passes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from azrestore.azure.arm import ArmSettings
from azrestore.azure.controlplane import ControlPlane
from azrestore.azure.pageblob import open_page_blob
from azrestore.emulator import Emulator
from azrestore.emulator.azurite import EmulatorError, find_azurite
from azrestore.formats.sizes import MiB, blob_size
from azrestore.transfer.config import TransferConfig
from azrestore.transfer.pipeline import upload_disk
from azrestore.transfer.verify import verify_disk
from tests.support.images import make_sparse_image

pytestmark = [pytest.mark.anyio]


async def test_expired_managed_disk_sas_is_granted_again(tmp_path: Path) -> None:
    try:
        find_azurite()
    except EmulatorError as exc:
        pytest.skip(str(exc))
    size = 24 * MiB
    image = make_sparse_image(
        tmp_path / "disk.raw", size, [(0, os.urandom(20 * MiB)), (22 * MiB, os.urandom(4096))]
    )
    async with Emulator(time_factor=0.01) as emulator:
        env = emulator.info()["env"]
        disk_id = (
            f"/subscriptions/{env['AZURE_SUBSCRIPTION_ID']}/resourceGroups/rg"
            "/providers/Microsoft.Compute/disks/renewed"
        )
        async with ControlPlane(ArmSettings.from_env(env)) as control:
            await control.create_upload_disk(
                disk_id,
                location="westeurope",
                upload_size=blob_size(size),
                os_type=None,
                hyper_v_generation="V1",
                sku="Standard_LRS",
            )
            # Access for 2 seconds only; the upload is capped to take about 4.
            first = await control.grant_write(disk_id, 2)
            grants: list[str] = []

            async def grant_again() -> str:
                url = await control.grant_write(disk_id, 3600)
                grants.append(url)
                return url

            config = TransferConfig(concurrency=4, chunk_size=MiB, max_bandwidth=5 * MiB)
            async with open_page_blob(
                first, existing=True, concurrency=4, credential_refresher=grant_again
            ) as sink:
                result = await upload_disk(image, sink, config=config)
                checked = await verify_disk(image, sink, config=config)
            assert len(grants) == 1  # one renewal for every request refused together
            assert grants[0] != first
            assert result.stats.retries >= 1
            assert checked.identical
            await control.revoke(disk_id)  # Azure validates the footer here
            disk = await control.get_disk(disk_id)
    assert disk is not None and disk.state == "Unattached"
