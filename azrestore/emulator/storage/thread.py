"""A :class:`~azrestore.emulator.storage.server.StorageGateway` on its own thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from azrestore.emulator.azurite import AZURITE_KEY
from azrestore.emulator.lifecycle import StartStop
from azrestore.emulator.storage.faults import FaultRule
from azrestore.emulator.storage.network import NetworkModel
from azrestore.emulator.storage.server import StorageGateway
from azrestore.emulator.storage.statistics import GatewayStats

__all__ = ["GatewayThread"]

_T = TypeVar("_T")


class GatewayThread(StartStop):
    """A :class:`StorageGateway` on its own event loop in a daemon thread.

    For tests and benchmarks whose own event loop must not carry the gateway's work.  All
    methods are thread-safe and synchronous.
    """

    def __init__(
        self,
        upstream_account_url: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rules: Sequence[FaultRule] = (),
        account_key: str = AZURITE_KEY,
        network: NetworkModel | None = None,
    ) -> None:
        self._gateway = StorageGateway(
            upstream_account_url,
            host=host,
            port=port,
            rules=rules,
            account_key=account_key,
            network=network,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def account_url(self) -> str:
        """The gateway's account URL."""
        return self._gateway.account_url

    @property
    def port(self) -> int:
        """The gateway's port."""
        return self._gateway.port

    def start(self) -> None:
        """Start the thread and the gateway on it; returns when it listens. Idempotent."""
        with self._lock:
            if self._thread is not None:
                return
            loop = asyncio.new_event_loop()
            ready: concurrent.futures.Future[None] = concurrent.futures.Future()

            def run() -> None:
                asyncio.set_event_loop(loop)
                try:
                    try:
                        loop.run_until_complete(self._gateway.start())
                    except BaseException as exc:
                        ready.set_exception(exc)
                        return
                    ready.set_result(None)
                    loop.run_forever()
                finally:
                    loop.run_until_complete(loop.shutdown_asyncgens())
                    loop.run_until_complete(loop.shutdown_default_executor())
                    loop.close()

            thread = threading.Thread(target=run, name="azrestore-gateway", daemon=True)
            thread.start()
            try:
                ready.result()
            except BaseException:
                thread.join()
                raise
            self._loop = loop
            self._thread = thread

    def stop(self) -> None:
        """Stop the gateway, its loop and thread; idempotent."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
            if loop is None or thread is None:
                return
            try:
                asyncio.run_coroutine_threadsafe(self._gateway.aclose(), loop).result(timeout=60)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout=60)

    def _call(self, func: Callable[[], _T]) -> _T:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the gateway thread is not started")

        async def run() -> _T:
            return func()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=60)

    def set_rules(self, rules: Sequence[FaultRule]) -> None:
        """Replace the fault rules."""
        rules = tuple(rules)
        self._call(lambda: self._gateway.set_rules(rules))

    def set_network(self, network: NetworkModel) -> None:
        """Put another link and targets in force."""
        self._call(lambda: self._gateway.set_network(network))

    def statistics(self) -> GatewayStats:
        """A snapshot of the gateway's counters."""
        return self._call(self._gateway.statistics)

    def reset_statistics(self) -> None:
        """Zero the gateway's counters."""
        self._call(self._gateway.reset_statistics)
