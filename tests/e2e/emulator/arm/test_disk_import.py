"""Importing a disk from a page blob holding a fixed VHD."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob.aio import BlobClient, BlobServiceClient

from azrestore.formats.sizes import MiB
from azrestore.formats.vhd import fixed_vhd_footer
from tests.support.arm.disks import create_disk
from tests.support.arm.env import LOCATION, RG, ArmEnv, error_code

pytestmark = pytest.mark.anyio


async def test_import_disk(env: ArmEnv) -> None:
    size = 24 * MiB
    async with BlobServiceClient.from_connection_string(env.azurite.connection_string) as service:
        container = service.get_container_client("imports")
        await container.create_container()
        try:
            good = container.get_blob_client("good.vhd")
            await good.create_page_blob(size + 512)
            await good.upload_page(b"\x11" * 512, offset=0, length=512)
            await good.upload_page(fixed_vhd_footer(size), offset=size, length=512)
            bad = container.get_blob_client("bad.vhd")
            await bad.create_page_blob(size + 512)
            block = container.get_blob_client("block.vhd")
            await block.upload_blob(b"x" * 1024)
            base = f"{env.gateway.account_url}/imports"

            async def import_disk(name: str, uri: str, account: str | None = None) -> Any:
                return await create_disk(
                    env,
                    name,
                    {
                        "location": LOCATION,
                        "properties": {
                            "osType": "Windows",
                            "creationData": {
                                "createOption": "Import",
                                "sourceUri": uri,
                                "storageAccountId": account or env.sim.storage_account_id,
                            },
                        },
                    },
                )

            disk = await import_disk("imported", f"{base}/good.vhd")
            assert disk.properties.disk_state == "Unattached"
            assert disk.properties.disk_size_bytes == size
            assert disk.properties.creation_data.source_uri == f"{base}/good.vhd"
            # The disk holds a copy: export it and compare.
            poller = await env.compute.disks.begin_grant_access(
                RG, "imported", {"access": "Read", "durationInSeconds": 60}
            )
            sas = (await poller.result()).access_sas
            assert sas is not None
            async with BlobClient.from_blob_url(sas) as exported:
                first = await (await exported.download_blob(offset=0, length=512)).readall()
            assert first == b"\x11" * 512

            with pytest.raises(HttpResponseError) as exc:
                await import_disk("bad", f"{base}/bad.vhd")
            assert error_code(exc.value) == "InvalidVhd"
            assert env.sim.state().disk("bad").provisioning_state == "Failed"
            for uri, account in [
                (f"{base}/missing.vhd", None),
                (f"{base}/block.vhd", None),
                ("https://elsewhere.example/c/b.vhd", None),
                (
                    f"{base}/good.vhd",
                    "/subscriptions/x/resourceGroups/y/providers/"
                    "Microsoft.Storage/storageAccounts/other",
                ),
            ]:
                with pytest.raises(HttpResponseError) as exc:
                    await import_disk("nope", uri, account)
                assert exc.value.status_code == 400, uri
                assert error_code(exc.value) == "InvalidParameter"
        finally:
            await container.delete_container()
