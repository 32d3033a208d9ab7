"""The control-plane operations a restore needs (disks, VMs, NICs, run command), over the
real azure-mgmt-compute and azure-mgmt-network aio clients, with errors translated once.

Request bodies are Resource Manager's JSON shapes (``{"location": ..., "properties": ...}``),
which the SDK accepts as they are; answers are reduced to small typed records. Each kind
of resource has its module (:mod:`.disks`, :mod:`.virtualmachines`, :mod:`.networking`,
:mod:`.runcommand`); :class:`ControlPlane` puts them together for one run.
"""

from __future__ import annotations

from .arm import ArmSettings
from .disks import Disks
from .mgmtclients import ManagementClients
from .networking import Networking
from .runcommand import RunCommands
from .virtualmachines import VirtualMachines


class ControlPlane:
    """Every control-plane operation of one run, over one set of clients; use it as an
    async context manager (the clients are closed on the way out).

    Each operation is one of a part's (disks, VMs, networking, Run Command), here under
    the name the restore calls it by (``get_disk``, ``start_vm``, ``run_command``...).
    """

    def __init__(self, settings: ArmSettings) -> None:
        self._clients = ManagementClients(settings)
        #: the forward proxies of the run, for the storage its disks are written to as well
        self.proxy = settings.proxy
        self._disks = Disks(self._clients)
        self._networking = Networking(self._clients)
        self._vms = VirtualMachines(self._clients, self._networking)
        self._run_commands = RunCommands(self._clients)

        self.get_disk = self._disks.get
        self.create_upload_disk = self._disks.create_for_upload
        self.create_import_disk = self._disks.create_by_import
        self.grant_write = self._disks.grant_write
        self.revoke = self._disks.revoke
        self.delete_disk = self._disks.delete
        self.add_disk_tags = self._disks.add_tags

        self.get_vm = self._vms.get
        self.start_vm = self._vms.start
        self.deallocate_vm = self._vms.deallocate
        self.set_data_disks = self._vms.set_data_disks
        self.create_vm = self._vms.create
        self.create_appliance = self._vms.create_appliance
        self.delete_vm = self._vms.delete
        self.wait_agent_ready = self._vms.wait_agent_ready
        self.run_command = self._run_commands.run

        self.ensure_nic = self._networking.ensure_nic
        self.ensure_subnet = self._networking.ensure_subnet
        self.delete_nic = self._networking.delete_nic

    async def __aenter__(self) -> ControlPlane:
        await self._clients.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._clients.__aexit__(*exc)
