"""Trusted Launch in the simulator, through the real azure-mgmt-compute aio client: a
disk's security profile only on V2, getSecureVMGuestStateSAS only on a disk with one, and
a VM's securityProfile against its OS disk and size, with Azure's codes."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from tests.support.arm.disks import create_disk, upload_disk
from tests.support.arm.env import LOCATION, RG, ArmEnv, error_code
from tests.support.arm.network import make_network
from tests.support.arm.vms import create_vm, vm_attach

pytestmark = pytest.mark.anyio

_TL = {
    "securityType": "TrustedLaunch",
    "uefiSettings": {"secureBootEnabled": False, "vTpmEnabled": True},
}


def _upload_body(generation: str) -> dict[str, Any]:
    return {
        "location": LOCATION,
        "properties": {
            "osType": "Linux",
            "hyperVGeneration": generation,
            "securityProfile": {"securityType": "TrustedLaunch"},
            "creationData": {"createOption": "Upload", "uploadSizeBytes": 32 * 1024 * 1024 + 512},
        },
    }


async def test_disk_security_profile_needs_v2(env: ArmEnv) -> None:
    with pytest.raises(HttpResponseError) as refused:
        await create_disk(env, "gen1", _upload_body("V1"))
    assert refused.value.status_code == 400 and error_code(refused.value) == "BadRequest"
    assert "HyperVGeneration V2" in str(refused.value.message)
    disk = await create_disk(env, "gen2", _upload_body("V2"))
    assert disk.as_dict()["properties"]["securityProfile"] == {"securityType": "TrustedLaunch"}


async def test_guest_state_sas_needs_a_security_profile(env: ArmEnv) -> None:
    await upload_disk(env, "plain", revoke=False)
    with pytest.raises(HttpResponseError) as refused:
        await env.compute.disks.begin_grant_access(
            RG,
            "plain",
            {"access": "Write", "durationInSeconds": 600, "getSecureVMGuestStateSAS": True},
        )
    assert refused.value.status_code == 400 and error_code(refused.value) == "BadRequest"
    assert "GetSecureVMGuestStateSAS can be set only for disk with SecurityProfile" in str(
        refused.value.message
    )


async def test_vm_security_profile_against_disk_and_size(env: ArmEnv) -> None:
    _, nic = await make_network(env)
    plain = await upload_disk(env, "plain-v2")
    gen1 = await upload_disk(env, "plain-v1", generation="V1")

    async def refused(disk_id: str, profile: dict[str, Any], size: str = "Standard_D2s_v5") -> str:
        body = vm_attach(nic.id, disk_id, size)
        body["properties"]["securityProfile"] = profile
        with pytest.raises(HttpResponseError) as exc:
            await create_vm(env, "vm", body)
        assert exc.value.status_code == 400, exc.value
        return f"{error_code(exc.value)}: {exc.value.message}"

    assert "Use of TrustedLaunch setting is not supported" in await refused(gen1.id, _TL)
    size = await refused(plain.id, _TL, "Standard_D2_v2")
    assert "The VM size 'Standard_D2_v2' is not supported for" in size
    assert "has no security profile" in await refused(plain.id, _TL)
    uefi = {"uefiSettings": {"secureBootEnabled": True}}
    assert (await refused(plain.id, uefi)).startswith("InvalidParameter: ")
