"""The Resource Manager simulator: an HTTPS server on 127.0.0.1 that the real azure-mgmt-compute
and azure-mgmt-network clients drive unchanged.

This module wires the parts together and runs the server: a throwaway CA, the disk storage,
the task group long-running operations run in (cancelled when the simulator closes), and
the listening socket.  Requests go through :class:`~.pipeline.RequestPipeline`: bearer-token
check (:mod:`.auth`), ``api-version`` check (any value is accepted and logged), routing
(:mod:`.routing`), fault rules, then the resource handlers (:mod:`.disks`, :mod:`.vms`,
:mod:`.network`); the simulator's own endpoints are :mod:`.emulator_endpoints`.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import anyio
import anyio.abc
import trustme
from aiohttp import web

from azrestore.emulator.arm.auth import BearerTokenCheck, new_token
from azrestore.emulator.arm.clock import Clock
from azrestore.emulator.arm.core import Core, ScriptsMode
from azrestore.emulator.arm.disks.routes import DiskHandlers
from azrestore.emulator.arm.emulator_endpoints import EmulatorEndpoints
from azrestore.emulator.arm.faults import ArmFaultRule, ArmFaultRules
from azrestore.emulator.arm.log import LogEntry
from azrestore.emulator.arm.network.routes import NetworkHandlers
from azrestore.emulator.arm.pipeline import RequestPipeline
from azrestore.emulator.arm.resource_groups import ResourceGroupHandlers
from azrestore.emulator.arm.routing import ArmRouter
from azrestore.emulator.arm.run_command_rules import RunCommandRule
from azrestore.emulator.arm.state.snapshot import SimulatorState
from azrestore.emulator.arm.storage import DiskStorage, StorageConfig
from azrestore.emulator.arm.vms.routes import VmHandlers
from azrestore.emulator.azurite import AZURITE_ACCOUNT
from azrestore.emulator.guest.availability import sandbox_unavailable
from azrestore.emulator.lifecycle import AsyncStartStop
from azrestore.emulator.storage import SasRefusal

__all__ = ["DEFAULT_SUBSCRIPTION", "ArmSimulator"]

DEFAULT_SUBSCRIPTION: Final = "00000000-0000-0000-0000-000000000000"
#: The resource group the emulated storage account lives in.
STORAGE_RESOURCE_GROUP: Final = "emulator"
_CLOSE_TIMEOUT: Final = 10.0


class ArmSimulator(AsyncStartStop):
    """An Azure Resource Manager simulator (async context manager).

    ``time_factor`` scales every simulated duration (0.01 in tests, 1.0 for a realistic
    demo).  ``storage`` says where managed disks' page blobs live (Azurite directly, and the
    gateway URL SAS URLs point at); without it disk blobs are unavailable (uploads, Import
    and grants fail with InternalExecutionError).  ``rules`` are :class:`ArmFaultRule`
    fault rules, ``run_command_rules`` script run commands, ``durations`` override simulated
    durations by operation name (see :data:`~azrestore.emulator.arm.clock.DEFAULT_DURATIONS`).
    Any subscription id is accepted; ``subscription_id`` names the emulated storage
    account's subscription (:attr:`storage_account_id`). Only requests with the bearer
    token ``token`` are (a random one when not given: :attr:`token`), the simulator's own
    ``/_emulator`` endpoints too; others get ARM's 401. ``scripts`` says how Linux run
    command scripts no rule matches are answered (:data:`~.core.ScriptsMode`; ``record``
    by default here, as the simulator alone is used with disks that are not real).

    Operations run in a task group the simulator enters on start: use it as an async context
    manager (or call :meth:`start` and :meth:`aclose` from the same task).
    """

    def __init__(
        self,
        *,
        time_factor: float = 1.0,
        subscription_id: str = DEFAULT_SUBSCRIPTION,
        storage: StorageConfig | None = None,
        rules: Sequence[ArmFaultRule] = (),
        run_command_rules: Sequence[RunCommandRule] = (),
        durations: Mapping[str, float] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        delete_blobs_on_close: bool = True,
        token: str | None = None,
        scripts: ScriptsMode = "record",
    ) -> None:
        if host != "127.0.0.1":
            raise ValueError("the ARM simulator only listens on 127.0.0.1")
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self.subscription_id = subscription_id
        #: the bearer token requests must carry
        self.token = token if token is not None else new_token()
        account = storage.account_name if storage is not None else AZURITE_ACCOUNT
        self.storage_account_id = (
            f"/subscriptions/{subscription_id}/resourceGroups/{STORAGE_RESOURCE_GROUP}/providers/"
            f"Microsoft.Storage/storageAccounts/{account}"
        )
        self._storage = DiskStorage(storage) if storage is not None else None
        self._core = Core(
            clock=Clock(time_factor, durations),
            storage=self._storage,
            storage_account_id=self.storage_account_id,
            run_command_rules=tuple(run_command_rules),
            scripts=scripts,
        )
        self._disks = DiskHandlers(self._core)
        self._fault_rules = ArmFaultRules(rules)
        self._pipeline = RequestPipeline(
            core=self._core,
            router=ArmRouter(
                operations=self._core.operations,
                disks=self._disks,
                vms=VmHandlers(self._core),
                network=NetworkHandlers(self._core),
                resource_groups=ResourceGroupHandlers(self._core.registry),
            ),
            fault_rules=self._fault_rules,
            endpoints=EmulatorEndpoints(self),
            default_host=lambda: f"{self._host}:{self.port}",
            auth=BearerTokenCheck(self.token),
        )
        self._delete_blobs = delete_blobs_on_close
        self._tmp: str | None = None
        self._ca_path: Path | None = None
        self._runner: web.ServerRunner | None = None
        self._task_group: anyio.abc.TaskGroup | None = None

    # -- properties --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The HTTPS port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("the ARM simulator is not started")
        return self._port

    @property
    def endpoint(self) -> str:
        """``https://127.0.0.1:PORT``: the ``base_url`` of the management clients."""
        return f"https://{self._host}:{self.port}"

    @property
    def ca_bundle(self) -> str:
        """The path of the throwaway CA's PEM (clients pass it as ``connection_verify``)."""
        if self._ca_path is None:
            raise RuntimeError("the ARM simulator is not started")
        return str(self._ca_path)

    @property
    def time_factor(self) -> float:
        """The factor simulated durations are scaled by."""
        return self._core.clock.time_factor

    # -- state, log, rules -------------------------------------------------------------------

    def state(self) -> SimulatorState:
        """A snapshot of all resources, run commands and operations."""
        return self._core.registry.snapshot()

    def log(self, *, polls: bool = True) -> tuple[LogEntry, ...]:
        """Requests served and operations ended, in order (``polls=False`` leaves out polls
        of operation monitors)."""
        entries = self._core.log.entries()
        return entries if polls else tuple(e for e in entries if not e.is_poll)

    @property
    def rules(self) -> tuple[ArmFaultRule, ...]:
        """The current fault rules."""
        return self._fault_rules.rules

    def set_rules(self, rules: Sequence[ArmFaultRule]) -> None:
        """Replace the fault rules (their counters start from zero)."""
        self._fault_rules.replace(rules)

    def add_rule(self, rule: ArmFaultRule) -> None:
        """Add one fault rule after the others."""
        self._fault_rules.add(rule)

    def set_run_command_rules(self, rules: Sequence[RunCommandRule]) -> None:
        """Replace the run command rules."""
        self._core.run_command_rules.replace(rules)

    def add_run_command_rule(self, rule: RunCommandRule) -> None:
        """Add a run command rule before the others (so it wins)."""
        self._core.run_command_rules.add_first(rule)

    def sas_check(self, operation: str, path: str, query: Mapping[str, str]) -> SasRefusal | None:
        """The gateway hook (:data:`~azrestore.emulator.storage.SasCheck`): refuse SAS
        requests to disk blobs whose access was revoked or that a disk SAS does not allow."""
        return self._disks.access.sas_refusal(operation, path, query)

    async def wait_idle(self) -> None:
        """Wait until no long-running operation is in progress."""
        while self._core.operations.any_running:
            changed = self._core.changed
            with anyio.move_on_after(0.05):
                await changed.wait()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Make the CA, open storage, start the task group and listen."""
        if self._runner is not None:
            return
        if self._core.scripts != "record":
            # Whether guest scripts can run is probed once, here, off the event loop.
            await anyio.to_thread.run_sync(sandbox_unavailable)
        self._tmp = tempfile.mkdtemp(prefix="azrestore-arm-")
        try:
            ca = trustme.CA(organization_name="azrestore emulator")
            cert = ca.issue_cert(self._host, "localhost")
            self._ca_path = Path(self._tmp) / "ca.pem"
            ca.cert_pem.write_to_path(str(self._ca_path))
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(context)
            if self._storage is not None:
                await self._storage.open()
            task_group = anyio.create_task_group()
            await task_group.__aenter__()
            self._task_group = task_group
            self._core.operations.attach(task_group)
            server = web.Server(self._pipeline.handle, access_log=None)
            runner = web.ServerRunner(server, shutdown_timeout=2.0)
            await runner.setup()
            self._runner = runner
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self._host, self._requested_port))
                site = web.SockSite(runner, sock, ssl_context=context, backlog=256)
                await site.start()
            except BaseException:
                sock.close()
                raise
            self._port = sock.getsockname()[1]
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop listening, cancel running operations, delete disk blobs, remove the CA."""
        self._core.operations.attach(None)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        task_group, self._task_group = self._task_group, None
        if task_group is not None:
            task_group.cancel_scope.cancel()
            await task_group.__aexit__(None, None, None)
        if self._storage is not None:
            if self._delete_blobs:
                with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
                    for disk in list(self._core.registry.disks.values()):
                        if disk.container is not None:
                            with contextlib.suppress(Exception):
                                await self._storage.delete(disk.container)
            with anyio.CancelScope(shield=True):
                await self._storage.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._ca_path = None
        self._port = None
