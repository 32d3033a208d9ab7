"""The simulator's server: its bearer token (no other is accepted, its own endpoints too),
any subscription and api-version through the SDK, the state endpoint, and the Emulator
bundle."""

from __future__ import annotations

import json
import ssl
from typing import Any

import aiohttp
import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.pipeline.policies import SansIOHTTPPolicy
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
from tests.support.arm.env import LOCATION, RG, SUB, ArmEnv, StaticToken

pytestmark = pytest.mark.anyio


async def test_requests_need_a_bearer_token(env: ArmEnv) -> None:
    context = ssl.create_default_context(cafile=env.sim.ca_bundle)
    url = f"{env.sim.endpoint}/subscriptions/s/resourceGroups/{RG}/providers/Microsoft.Compute"
    url += "/disks/d"
    version = {"api-version": "2024-03-02"}
    refused = {
        None: "AuthenticationFailed",
        "Basic dXNlcjpwYXNz": "AuthenticationFailedInvalidHeader",
        "Bearer": "AuthenticationFailedInvalidHeader",
        "Bearer garbage": "InvalidAuthenticationToken",
        f"Bearer {env.sim.token}x": "InvalidAuthenticationToken",
    }
    async with aiohttp.ClientSession() as session:
        for authorization, code in refused.items():
            headers = {} if authorization is None else {"Authorization": authorization}
            for method in ("GET", "PUT"):
                async with session.request(
                    method, url, params=version, headers=headers, ssl=context, json={}
                ) as response:
                    assert response.status == 401, authorization
                    challenge = response.headers["WWW-Authenticate"]
                    assert challenge.startswith("Bearer authorization_uri=")
                    assert 'error="invalid_token"' in challenge
                    assert (await response.json())["error"]["code"] == code
        headers = {"Authorization": f"Bearer {env.sim.token}"}
        async with session.get(url, headers=headers, ssl=context) as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "MissingApiVersionParameter"
        async with session.get(
            url, headers=headers, params={"api-version": "1999-01-01"}, ssl=context
        ) as response:
            assert response.status == 404
        # The simulator's own endpoints need the token too.
        for what in ("state", "log", "info", "faults"):
            for bad in ({}, {"Authorization": "Bearer garbage"}):
                async with session.get(
                    f"{env.sim.endpoint}/_emulator/{what}", headers=bad, ssl=context
                ) as response:
                    assert response.status == 401, (what, bad)
                    assert "WWW-Authenticate" in response.headers
        async with session.put(
            f"{env.sim.endpoint}/_emulator/faults",
            data=json.dumps({"rules": ["disks/read:status=503"]}),
            ssl=context,
        ) as response:
            assert response.status == 401
        assert not env.sim.rules
        async with session.get(
            f"{env.sim.endpoint}/_emulator/state", headers=headers, ssl=context
        ) as response:
            state = await response.json()
            assert set(state) >= {"disks", "virtual_machines", "run_commands", "operations"}
        async with session.put(
            f"{env.sim.endpoint}/_emulator/faults",
            data=json.dumps({"rules": ["disks/read:status=503"]}),
            headers=headers,
            ssl=context,
        ) as response:
            assert response.status == 200
    assert env.sim.rules == (ArmFaultRule(operation="disks/read", status=503),)
    logged = [e for e in env.sim.log() if e.kind == "request"]
    assert [e.status for e in logged] == [401] * 10 + [400, 404]
    assert logged[-1].api_version == "1999-01-01"
    assert env.sim.state().disks == {}


def _options(env: ArmEnv) -> dict[str, Any]:
    return {"base_url": env.sim.endpoint, "connection_verify": env.sim.ca_bundle}


def _empty_disk() -> compute_types.Disk:
    return request_body(
        compute_types.Disk,
        {
            "location": LOCATION,
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1},
        },
    )


async def test_sdk_with_any_subscription_and_api_version(env: ArmEnv) -> None:
    async with ComputeManagementClient(
        StaticToken(env.sim.token), "another-sub", **_options(env)
    ) as client:
        poller = await client.disks.begin_create_or_update(
            "rg2", "x", _empty_disk(), api_version="2023-04-02"
        )
        disk = await poller.result()
    assert disk.id is not None
    assert disk.id.startswith("/subscriptions/another-sub/resourceGroups/rg2/")
    assert {e.api_version for e in env.sim.log() if e.kind == "request"} == {"2023-04-02"}


@pytest.mark.parametrize(
    ("token", "code"),
    [("garbage", "InvalidAuthenticationToken"), (None, "AuthenticationFailed")],
    ids=["wrong token", "no token"],
)
async def test_sdk_with_a_wrong_token_or_none_gets_arms_401(
    env: ArmEnv, token: str | None, code: str
) -> None:
    """The real aio client, sending a token the simulator did not hand out (or none: no
    authentication policy), gets ARM's 401 and creates nothing."""
    options = _options(env)
    if token is None:
        options["authentication_policy"] = SansIOHTTPPolicy()
    async with ComputeManagementClient(StaticToken(token or "unused"), SUB, **options) as client:
        with pytest.raises(ClientAuthenticationError) as refused:
            await client.disks.begin_create_or_update(RG, "x", _empty_disk())
        with pytest.raises(ClientAuthenticationError) as listing:
            await client.disks.get(RG, "x")
    for error in (refused.value, listing.value):
        assert error.status_code == 401
        assert error.error is not None and error.error.code == code
    assert env.sim.state().disks == {}
    assert {e.status for e in env.sim.log() if e.kind == "request"} == {401}


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
        # Each emulator has a token of its own, and accepts no other.
        assert env["AZRESTORE_ARM_TOKEN"] == info["token"] == emulator.arm.token
        assert len(info["token"]) >= 32
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
