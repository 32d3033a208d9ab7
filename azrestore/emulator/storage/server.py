"""The strict storage gateway's server: it listens on 127.0.0.1 and takes each request
through its stages (the network link and Azure's scalability targets, faults, Azure's
checks of names and requests, forwarding to Azurite).

The stages run one after the other in :meth:`StorageGateway._handle`; a new one goes in
there, between the two it belongs between.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping, Sequence
from typing import Final
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from azrestore.emulator.azurite import AZURITE_KEY
from azrestore.emulator.lifecycle import AsyncStartStop
from azrestore.emulator.storage.bodies import drain
from azrestore.emulator.storage.checks import RequestChecks
from azrestore.emulator.storage.errors import Rejection, error_response
from azrestore.emulator.storage.faults import FaultInjector, FaultRule
from azrestore.emulator.storage.network import NetworkModel, NetworkStage
from azrestore.emulator.storage.operations import classify_operation
from azrestore.emulator.storage.sas import SasCheck, check_sas_window
from azrestore.emulator.storage.sizes import BlobSizes
from azrestore.emulator.storage.statistics import GatewayCounters, GatewayStats
from azrestore.emulator.storage.upstream import Upstream

__all__ = ["StorageGateway"]

_MAX_LINE: Final = 16 * 1024


class StorageGateway(AsyncStartStop):
    """An aiohttp server on 127.0.0.1 that checks requests as Azure would, then forwards them.

    ``upstream_account_url`` is Azurite's account URL (``http://127.0.0.1:P/devstoreaccount1``);
    the gateway's :attr:`account_url` has the same path on its own port.  ``account_key``
    signs the gateway's own blob-size look-ups (HEAD) on the upstream.  ``sas_check`` (see
    :data:`~azrestore.emulator.storage.sas.SasCheck`) may refuse SAS requests the upstream
    would accept (a revoked disk SAS).  ``network`` models the link between client and
    gateway and Azure's scalability targets (:mod:`~azrestore.emulator.storage.network`;
    the default is loopback, no targets).
    """

    def __init__(
        self,
        upstream_account_url: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rules: Sequence[FaultRule] = (),
        account_key: str = AZURITE_KEY,
        sas_check: SasCheck | None = None,
        network: NetworkModel | None = None,
    ) -> None:
        if host != "127.0.0.1":
            raise ValueError("the gateway only listens on 127.0.0.1")
        self._counters = GatewayCounters()
        self._upstream = Upstream(upstream_account_url, self._counters)
        self._sizes = BlobSizes(self._upstream, account_key)
        self._checks = RequestChecks(
            self._sizes, self._counters.bytes_received, sas_check, self._upstream.base_path
        )
        self._faults = FaultInjector(rules, self._counters)
        self._network = NetworkStage(
            network or NetworkModel(),
            self._upstream.base_path,
            self._counters.link,
            self._counters.targets,
        )
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.ServerRunner | None = None

    # -- public API --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the gateway listens on (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("the gateway is not started")
        return self._port

    @property
    def account_url(self) -> str:
        """The gateway's account URL: ``http://127.0.0.1:PORT`` + the upstream's path."""
        return f"http://{self._host}:{self.port}{self._upstream.base_path}"

    def set_rules(self, rules: Sequence[FaultRule]) -> None:
        """Replace the fault rules (their counters start from zero)."""
        self._faults.set_rules(rules)

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        """The current fault rules."""
        return self._faults.rules

    @property
    def network(self) -> NetworkModel:
        """The link and targets in force."""
        return self._network.model

    def set_network(self, network: NetworkModel) -> None:
        """Put another link and targets in force (the link idle, the targets' buckets full)."""
        self._network.set_model(network)

    def statistics(self) -> GatewayStats:
        """A snapshot of the counters."""
        return self._counters.snapshot()

    def reset_statistics(self) -> None:
        """Zero the counters (rule counters are kept; :meth:`set_rules` resets those)."""
        self._counters.reset()

    async def start(self) -> None:
        """Listen on the port and open the upstream connection pool."""
        if self._runner is not None:
            return
        self._upstream.open()
        server = web.Server(
            self._handle,
            access_log=None,
            auto_decompress=False,  # forward bodies exactly as they came
            read_bufsize=1 << 20,
            lingering_time=30.0,
            # A name Azure accepts must reach the checks: 1,024 characters of 3-byte UTF-8,
            # percent-encoded, are 9,216 bytes (aiohttp's default line is 8,190).  16 KiB is
            # Node's (so Azurite's) limit.
            max_line_size=_MAX_LINE,
            max_field_size=_MAX_LINE,
        )
        runner = web.ServerRunner(server, shutdown_timeout=5.0)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._requested_port))
            await runner.setup()
            site = web.SockSite(runner, sock, backlog=1024)
            await site.start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            await self._upstream.close()
            raise
        self._runner = runner
        self._port = sock.getsockname()[1]

    async def aclose(self) -> None:
        """Stop listening, end open connections and close the upstream pool; idempotent."""
        runner, self._runner = self._runner, None
        # Forwarding stops first: requests still in flight while the server shuts down are
        # answered ServerBusy.
        session = self._upstream.release()
        if runner is not None:
            await runner.cleanup()
        if session is not None:
            await session.close()
        self._port = None

    # -- the request flow --------------------------------------------------------------------

    def _observe(
        self,
        request: web.BaseRequest,
        op: str,
        query: Mapping[str, str],
        upstream: aiohttp.ClientResponse,
    ) -> None:
        """Note what Azurite answered and, where Azure would have answered otherwise, raise
        Azure's answer in its place (before anything is sent back)."""
        self._sizes.note_forwarded(request, op, upstream)
        if upstream.status == 403 and upstream.headers.get("x-ms-error-code") == (
            "AuthorizationFailure"
        ):
            # Azurite judges a SAS's time window again, after the gateway did: one that ran
            # out in between (while the body was read) gets Azurite's code. Azure judges
            # once and says AuthenticationFailed, the answer clients renew a SAS on.
            try:
                check_sas_window(query)
            except Rejection as rejection:
                self._counters.rejections[rejection.code] += 1
                raise

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """One request, stage by stage; a stage may answer in place of the ones after it."""
        query = {k.lower(): v for k, v in parse_qsl(request.query_string, keep_blank_values=True)}
        op = classify_operation(request.method, query, request.headers)
        self._counters.requests[op] += 1
        try:
            busy = await self._network.cross(request)
            if busy is not None:
                await drain(request, op, self._counters.bytes_received)
                return error_response(request, busy)
            injected = await self._faults.inject(request, op)
            if injected is not None:
                return injected
            try:
                body = await self._checks.check(request, op, query)
            except Rejection as rejection:
                self._counters.rejections[rejection.code] += 1
                await drain(request, op, self._counters.bytes_received)
                return error_response(request, rejection)
            return await self._upstream.forward(
                request, op, body, lambda upstream: self._observe(request, op, query, upstream)
            )
        except Rejection as error:
            return error_response(request, error)
        except (ConnectionError, asyncio.IncompleteReadError):
            # The client went away mid-request; aiohttp drops the connection quietly.
            return web.Response(status=400)
