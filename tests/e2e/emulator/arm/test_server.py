"""The simulator's server: bearer tokens, any token and api-version through the SDK, the
state endpoint, and the Emulator bundle."""

from __future__ import annotations

import json
import ssl
from typing import Any

import aiohttp
import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.compute import types as compute_types
from azure.mgmt.compute.aio import ComputeManagementClient

from azrestore.emulator import Emulator
from azrestore.emulator.arm import ArmFaultRule
from azrestore.emulator.azurite import EmulatorError, find_azurite
from azrestore.formats.sizes import MiB
from azrestore.formats.vhd import fixed_vhd_footer
from tests.support.arm.bodies import request_body
from tests.support.arm.disks import (
    read_tail,
    write_pages,
)
from tests.support.arm.env import LOCATION, RG, ArmEnv, StaticToken

pytestmark = pytest.mark.anyio


async def test_requests_need_a_bearer_token(env: ArmEnv) -> None:
    context = ssl.create_default_context(cafile=env.sim.ca_bundle)
    url = f"{env.sim.endpoint}/subscriptions/s/resourceGroups/{RG}/providers/Microsoft.Compute"
    url += "/disks/d"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, params={"api-version": "2024-03-02"}, ssl=context) as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")
            assert (await response.json())["error"]["code"] == "AuthenticationFailed"
        headers = {"Authorization": "Bearer anything"}
        async with session.get(url, headers=headers, ssl=context) as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "MissingApiVersionParameter"
        async with session.get(
            url, headers=headers, params={"api-version": "1999-01-01"}, ssl=context
        ) as response:
            assert response.status == 404
        async with session.get(f"{env.sim.endpoint}/_emulator/state", ssl=context) as response:
            state = await response.json()
            assert set(state) >= {"disks", "virtual_machines", "run_commands", "operations"}
        async with session.put(
            f"{env.sim.endpoint}/_emulator/faults",
            data=json.dumps({"rules": ["disks/read:status=503"]}),
            ssl=context,
        ) as response:
            assert response.status == 200
    assert env.sim.rules == (ArmFaultRule(operation="disks/read", status=503),)
    logged = [e for e in env.sim.log() if e.kind == "request"]
    assert [e.status for e in logged] == [401, 400, 404]
    assert logged[2].api_version == "1999-01-01"


async def test_sdk_with_any_token_and_api_version(env: ArmEnv) -> None:
    options: dict[str, Any] = {
        "base_url": env.sim.endpoint,
        "connection_verify": env.sim.ca_bundle,
    }
    async with ComputeManagementClient(StaticToken("other"), "another-sub", **options) as client:
        poller = await client.disks.begin_create_or_update(
            "rg2",
            "x",
            request_body(
                compute_types.Disk,
                {
                    "location": LOCATION,
                    "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1},
                },
            ),
            api_version="2023-04-02",
        )
        disk = await poller.result()
    assert disk.id is not None
    assert disk.id.startswith("/subscriptions/another-sub/resourceGroups/rg2/")
    assert {e.api_version for e in env.sim.log() if e.kind == "request"} == {"2023-04-02"}


async def test_emulator_bundle() -> None:
    try:
        find_azurite()
    except EmulatorError as missing:
        pytest.skip(str(missing))
    async with Emulator(time_factor=0.01) as emulator:
        info = emulator.info()
        env = info["env"]
        assert info["arm_endpoint"].startswith("https://127.0.0.1:")
        assert env["AZRESTORE_ARM_ENDPOINT"] == info["arm_endpoint"]
        assert env["AZRESTORE_CA_BUNDLE"] == info["ca_bundle"]
        assert env["AZURE_SUBSCRIPTION_ID"] == info["subscription_id"]
        assert info["blob_endpoint"] in env["AZURE_STORAGE_CONNECTION_STRING"]
        assert info["storage_account_id"].endswith("/storageAccounts/devstoreaccount1")
        azurite = emulator.azurite
        async with ComputeManagementClient(
            StaticToken(env["AZRESTORE_ARM_TOKEN"]),
            env["AZURE_SUBSCRIPTION_ID"],
            base_url=env["AZRESTORE_ARM_ENDPOINT"],
            connection_verify=env["AZRESTORE_CA_BUNDLE"],
        ) as compute:
            create = await compute.disks.begin_create_or_update(
                "rg",
                "d",
                request_body(
                    compute_types.Disk,
                    {
                        "location": LOCATION,
                        "properties": {
                            "creationData": {
                                "createOption": "Upload",
                                "uploadSizeBytes": 32 * MiB + 512,
                            }
                        },
                    },
                ),
            )
            await create.result()
            grant = await compute.disks.begin_grant_access(
                "rg", "d", {"access": "Write", "durationInSeconds": 60}
            )
            sas = (await grant.result()).access_sas
            assert sas is not None
            assert sas.startswith(info["blob_endpoint"])
            await write_pages(sas, 32 * MiB, fixed_vhd_footer(32 * MiB))
            revoke = await compute.disks.begin_revoke_access("rg", "d")
            await revoke.result()
            assert emulator.arm.state().disk("d").disk_state == "Unattached"
            # The gateway (on the emulator's loop) now refuses the revoked SAS.
            with pytest.raises(HttpResponseError) as exc:
                await read_tail(sas)
            # azure-storage sets error_code on its errors; azure-core's class does not declare it.
            assert exc.value.error_code == "AuthenticationFailed"  # type: ignore[attr-defined]
    assert not azurite.running
    with pytest.raises(RuntimeError):
        emulator.info()
