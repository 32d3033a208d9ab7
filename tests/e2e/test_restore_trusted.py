"""Trusted Launch restores against the emulator: a Gen2 Linux disk whose loader is signed
(sbsign, a test key; checked by sbverify) restores as Trusted Launch with secure boot and
reaches agent Ready; the same disk with an unsigned loader restores with secure boot off
and the vTPM on under ``auto``, and is refused up front with ``secure_boot: true``; a Gen1
disk and a size without Trusted Launch are refused naming the field; and the emulator's
own firmware keeps a VM with secure boot on an unsigned loader from booting."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.mgmt.compute.models import VirtualMachine

from azrestore.azure.arm import ArmSettings
from azrestore.azure.mgmtclients import ManagementClients
from azrestore.emulator import Emulator
from azrestore.jobs.emulated import emulated_preparation
from azrestore.restore.plan import PlanError
from tests.support import plans
from tests.support.disks import needs_tools
from tests.support.efi import TOOLS, efi_application, signed, uefi_linux_disk
from tests.support.restore import TIME_FACTOR, resolve, run_plan
from tests.support.tools import needs

pytestmark = [pytest.mark.anyio, needs_tools, needs(*TOOLS)]


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(
        time_factor=TIME_FACTOR, run_command_rules=emulated_preparation()
    ) as local_azure:
        yield local_azure


def _plan(directory: Path, image: Path, **vm: Any) -> Path:
    plan: dict[str, Any] = {
        "target": plans.target(),
        "helpers": plans.helpers(),
        "vms": [
            {
                "name": "tl01",
                "size": "Standard_D2s_v5",
                "disks": [{"path": str(image), "role": "os"}],
                **vm,
            }
        ],
    }
    path = directory / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


@pytest.fixture
def loaders(tmp_path: Path) -> tuple[bytes, bytes]:
    """An unsigned EFI application and the same signed (sbverify checked it)."""
    plain = efi_application()
    return plain, signed(tmp_path, plain)


@asynccontextmanager
async def _compute(emulator: Emulator) -> AsyncIterator[Any]:
    """The SDK's compute client on the emulator (azure-mgmt-compute, not azrestore's code)."""
    settings = ArmSettings.from_env({k: str(v) for k, v in emulator.info()["env"].items()})
    async with ManagementClients(settings) as clients:
        yield await clients.compute(plans.SUB)


async def _arm_vm(emulator: Emulator, name: str) -> dict[str, Any]:
    """The VM as ARM answers it, with its instance view."""
    async with _compute(emulator) as compute:
        vm = await compute.virtual_machines.get("restored", name, expand="instanceView")
        body: dict[str, Any] = vm.as_dict()
        return body


async def _arm_put_vm(emulator: Emulator, name: str, body: dict[str, Any]) -> None:
    async with _compute(emulator) as compute:
        poller = await compute.virtual_machines.begin_create_or_update(
            "restored", name, VirtualMachine(body)
        )
        await poller.result()


async def _arm_delete_vm(emulator: Emulator, name: str) -> None:
    async with _compute(emulator) as compute:
        poller = await compute.virtual_machines.begin_delete("restored", name)
        await poller.result()


async def test_signed_loader_restores_as_trusted_launch_with_secure_boot(
    emulator: Emulator, tmp_path: Path, loaders: tuple[bytes, bytes]
) -> None:
    _, good = loaders
    image = uefi_linux_disk(
        tmp_path,
        "tl-signed.raw",
        {"EFI/BOOT/BOOTX64.EFI": good, "EFI/debian/shimx64.efi": good},
    )
    resolved = await resolve(_plan(tmp_path, image))
    vm = resolved.vms[0]
    assert vm.security.describe() == "Trusted Launch (secure boot on, vTPM on)"
    assert vm.os_disk.report.boot_chain.signed is True
    assert resolved.to_json()["vms"][0]["security"]["secure_boot"] is True
    report = await run_plan(emulator, resolved)
    assert report.succeeded, [v.error for v in report.vms]
    assert report.vms[0].to_json()["security"]["security_type"] == "TrustedLaunch"
    body = emulator.arm.state()
    restored = body.vm("tl01")
    assert restored.agent_status == "Ready"
    assert body.disk("tl01-osdisk").security_type == "TrustedLaunch"
    raw = await _arm_vm(emulator, "tl01")
    assert raw["properties"]["securityProfile"] == {
        "securityType": "TrustedLaunch",
        "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True},
    }
    assert "bootDiagnostics" not in raw["properties"]["instanceView"]


async def test_unsigned_loader_auto_turns_secure_boot_off(
    emulator: Emulator, tmp_path: Path, loaders: tuple[bytes, bytes]
) -> None:
    plain, _ = loaders
    image = uefi_linux_disk(tmp_path, "tl-unsigned.raw", {"EFI/BOOT/BOOTX64.EFI": plain})
    resolved = await resolve(_plan(tmp_path, image))
    vm = resolved.vms[0]
    assert vm.security.describe() == "Trusted Launch (secure boot off, vTPM on)"
    assert "unsigned: \\EFI\\BOOT\\BOOTX64.EFI" in vm.security.reason
    assert "secure boot is off" in vm.security.reason
    report = await run_plan(emulator, resolved)
    assert report.succeeded, [v.error for v in report.vms]
    assert emulator.arm.state().vm("tl01").agent_status == "Ready"
    raw = await _arm_vm(emulator, "tl01")
    assert raw["properties"]["securityProfile"]["uefiSettings"] == {
        "secureBootEnabled": False,
        "vTpmEnabled": True,
    }

    # Asking for secure boot on that disk is refused before anything is created.
    with pytest.raises(PlanError) as refused:
        await resolve(_plan(tmp_path, image, secure_boot=True))
    (line,) = refused.value.problems
    assert re.search(r"vms\[0\]\.secure_boot: VM tl01: secure_boot: true, but", line), line
    assert "unsigned: \\EFI\\BOOT\\BOOTX64.EFI" in line


async def test_emulator_firmware_refuses_an_unsigned_loader_with_secure_boot(
    emulator: Emulator, tmp_path: Path, loaders: tuple[bytes, bytes]
) -> None:
    """The emulator's own check, not azrestore's: a disk restored as Trusted Launch without
    secure boot, then a second VM asked straight through ARM with secure boot on it."""
    plain, _ = loaders
    image = uefi_linux_disk(tmp_path, "tl-bad.raw", {"EFI/BOOT/BOOTX64.EFI": plain})
    report = await run_plan(emulator, await resolve(_plan(tmp_path, image, power_on=False)))
    assert report.succeeded, [v.error for v in report.vms]
    raw = await _arm_vm(emulator, "tl01")
    await _arm_delete_vm(emulator, "tl01")
    body = {
        "location": raw["location"],
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
            "storageProfile": {
                "osDisk": {
                    "osType": "Linux",
                    "createOption": "Attach",
                    "managedDisk": {
                        "id": raw["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"]
                    },
                }
            },
            "networkProfile": raw["properties"]["networkProfile"],
            "securityProfile": {
                "securityType": "TrustedLaunch",
                "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True},
            },
        },
    }
    await _arm_put_vm(emulator, "tl02", body)
    view = (await _arm_vm(emulator, "tl02"))["properties"]["instanceView"]
    assert view["vmAgent"]["statuses"][0]["displayStatus"] == "Not Ready"
    message = view["bootDiagnostics"]["status"]["message"]
    assert "\\EFI\\BOOT\\BOOTX64.EFI carries no Authenticode signature" in message


async def test_gen1_disk_and_unsupported_size_are_refused(
    tmp_path: Path, loaders: tuple[bytes, bytes]
) -> None:
    from tests.support.disks import mkfs, new_disk, put, sfdisk

    bios = new_disk(tmp_path, 64 * 1024 * 1024, "bios.raw")
    sfdisk(bios, "label: dos\nstart=2048, type=83, bootable\n")
    put(bios, 1024 * 1024, mkfs(tmp_path, "ext4", 32 * 1024 * 1024))
    with pytest.raises(PlanError) as gen1:
        await resolve(_plan(tmp_path, bios, security="trusted_launch"))
    (line,) = gen1.value.problems
    assert "vms[0].security: VM tl01: Trusted Launch needs a generation V2" in line, line

    _, good = loaders
    image = uefi_linux_disk(tmp_path, "tl-size.raw", {"EFI/BOOT/BOOTX64.EFI": good})
    with pytest.raises(PlanError) as size:
        await resolve(_plan(tmp_path, image, size="Standard_A2_v2", security="TrustedLaunch"))
    (line,) = size.value.problems
    assert "vms[0].security: VM tl01: the VM size Standard_A2_v2 does not support" in line
    # auto on that size: Standard, said why
    resolved = await resolve(_plan(tmp_path, image, size="Standard_A2_v2"))
    assert resolved.vms[0].security.describe() == "Standard"
    assert "does not support Trusted Launch" in resolved.vms[0].security.reason
