"""A real azure-mgmt-compute aio client on a running emulator, for tests that judge what
the emulator holds from outside (as Azure's own SDK reads it)."""

from __future__ import annotations

from azure.mgmt.compute.aio import ComputeManagementClient

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
