"""VMs that a whole run shares: the Azure proxy and the helper appliances.

Each is started once, when the first user needs it. The proxy is deallocated when no
transfer has needed it for ``idle_timeout`` seconds; a helper as soon as no restore of the
run needs it any more (``pending`` users counted down). At the end of the run each is
always left deallocated, on failure and on Ctrl-C too (shielded).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc

from ..azure.controlplane import ControlPlane
from ..errors import AzRestoreError


class SharedVm:
    """Reference-counted use of one VM within a run's task group."""

    def __init__(
        self,
        control: ControlPlane,
        vm_id: str,
        *,
        idle_timeout: float,
        task_group: anyio.abc.TaskGroup,
        pending: int | None = None,
        on_change: Callable[[str, str], None] | None = None,
        on_done: Callable[[str], Awaitable[str]] | None = None,
    ) -> None:
        self.control = control
        self.vm_id = vm_id
        self.idle_timeout = idle_timeout
        self._tasks = task_group
        self._on_change = on_change
        #: called (shielded) instead of deallocating once no user is to come: a helper
        #: the run created is deleted
        self._on_done = on_done
        self._done_started = False
        #: started by :meth:`warm_up` and not running yet
        self.warming = False
        self._lock = anyio.Lock()
        self._users = 0
        self._running = False
        self._touched = False
        self._idle_scope: anyio.CancelScope | None = None
        #: users still to come (helpers); None: stop after ``idle_timeout`` instead (proxy)
        self._pending = pending
        #: the order of power changes, for the report and tests
        self.history: list[str] = []

    def _note(self, what: str) -> None:
        self.history.append(what)
        if self._on_change is not None:
            self._on_change(self.vm_id, what)

    @asynccontextmanager
    async def use(self) -> AsyncIterator[None]:
        """Hold the VM running for the body of the ``async with``."""
        try:
            await self._acquire()
        except BaseException:
            # A start that failed (or was cancelled) holds the VM for no one.
            with anyio.CancelScope(shield=True):
                await self._release()
            raise
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                await self._release()

    def warm_up(self, on_ready: Callable[[], None] | None = None) -> None:
        """Start the VM in the background (if it is not running) ahead of its use, so
        that its start overlaps other work; ``on_ready`` is called when it has started
        (or failed to). :attr:`warming` says whether it is still starting."""
        self.warming = True
        self._tasks.start_soon(self._warm, on_ready)

    async def _warm(self, on_ready: Callable[[], None] | None) -> None:
        try:
            async with self.use():
                self.warming = False
                if on_ready is not None:
                    on_ready()
        except AzRestoreError as exc:
            # The use that needs it will try again and fail with the reason.
            self.history.append(f"could not start: {exc}")
        finally:
            if self.warming:
                self.warming = False
                if on_ready is not None:
                    on_ready()

    async def _acquire(self) -> None:
        async with self._lock:
            self._users += 1
            if self._idle_scope is not None:
                self._idle_scope.cancel()
                self._idle_scope = None
            if not self._running:
                self._touched = True
                info = await self.control.get_vm(self.vm_id)
                if info is None or info.power_state != "running":
                    await self.control.start_vm(self.vm_id)
                    self._note("started")
                self._running = True

    async def _release(self) -> None:
        async with self._lock:
            self._users -= 1
            self._schedule_stop()

    async def finished_with(self) -> None:
        """One of the ``pending`` users will not need the VM any more (done or failed)."""
        async with self._lock:
            if self._pending is not None:
                self._pending -= 1
            self._schedule_stop()

    def _schedule_stop(self) -> None:
        if self._users or (self._pending or 0) > 0:
            return
        if self._on_done is not None and self._pending is not None:
            if not self._done_started:
                self._done_started = True
                self._tasks.start_soon(self._finish)
            return
        if not self._running:
            return
        if self._idle_scope is None:
            scope = anyio.CancelScope()
            self._idle_scope = scope
            self._tasks.start_soon(self._stop_when_idle, scope)

    async def _stop_when_idle(self, scope: anyio.CancelScope) -> None:
        with scope:
            await anyio.sleep(self.idle_timeout)
            async with self._lock:
                if self._users == 0 and self._idle_scope is scope:
                    self._idle_scope = None
                    # Once decided, the stop is not interrupted half-way.
                    with anyio.CancelScope(shield=True):
                        await self.control.deallocate_vm(self.vm_id)
                        self._running = False
                        self._note("deallocated (idle)")

    async def _finish(self) -> None:
        assert self._on_done is not None
        with anyio.CancelScope(shield=True):
            async with self._lock:
                self._note(await self._on_done(self.vm_id))
                self._running = False

    async def shutdown(self) -> None:
        """Leave the VM deallocated: the end of the run, whatever happened (shielded);
        also when this run did not use it but found it running, as a run killed midway
        (kill -9) leaves it. A VM with ``on_done`` (a helper the run created) is handed
        to it instead (deleted)."""
        with anyio.CancelScope(shield=True):
            if self._idle_scope is not None:
                self._idle_scope.cancel()
                self._idle_scope = None
            if self._on_done is not None:
                if not self._done_started:
                    self._done_started = True
                    await self._finish()
                return
            async with self._lock:
                info = await self.control.get_vm(self.vm_id)
                if info is not None and info.power_state != "deallocated":
                    await self.control.deallocate_vm(self.vm_id)
                    why = "end of run" if self._touched else "left running by an earlier run"
                    self._note(f"deallocated ({why})")
                self._running = False
