"""A strict storage gateway in front of Azurite: Azure's rules, plus fault injection.

Azurite accepts requests that Azure refuses (Put Page over 4 MiB, writes past the blob's end,
a wrong Content-MD5, ...) and answers an expired SAS with a different code.  The gateway sits
between a client and Azurite, refuses what Azure refuses with Azure's status, ``x-ms-error-code``
and XML error body, and forwards everything else unchanged (headers and body bytes as they came,
so SharedKey and SAS signatures stay valid).  It can also inject faults by rule: error statuses
with ``Retry-After``, connection resets mid-request, delays, and expired-SAS answers.

Put Page bodies (at most 4 MiB) are buffered to check them; every other body is streamed in both
directions, so a multi-GiB Get Blob or Put Blob never sits in memory.

Error codes and statuses follow Azure's documentation and recorded Azure answers:

==========================================  ======  ===========================
Put Page body over 4 MiB                    413     RequestBodyTooLarge
range start/end not 512-aligned             400     InvalidHeaderValue
x-ms-range length != body length            400     InvalidHeaderValue
range past the blob's end                   416     InvalidPageRange
Content-MD5 not matching the body           400     Md5Mismatch
x-ms-content-crc64 not matching the body    400     Crc64Mismatch
malformed Content-MD5 / CRC64               400     InvalidMd5 / InvalidHeaderValue
missing x-ms-range                          400     MissingRequiredHeader
Put Page without Content-Length             411     MissingContentLengthHeader
SAS outside its validity (se / st)          403     AuthenticationFailed
==========================================  ======  ===========================
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import email.utils
import hashlib
import hmac
import json
import re
import signal
import socket
import struct
import sys
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Final, Literal, Self, TypeVar, get_args
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web
from azure.storage.extensions import checksums
from multidict import CIMultiDict
from yarl import URL

from azrestore.emulator.azurite import AZURITE_KEY
from azrestore.emulator.rules import RuleState, check_rule
from azrestore.errors import InputError

__all__ = [
    "OPERATIONS",
    "FaultAction",
    "FaultRule",
    "GatewayStats",
    "GatewayThread",
    "SasCheck",
    "SasRefusal",
    "StorageGateway",
    "classify_operation",
    "main",
]

_T = TypeVar("_T")

MAX_PUT_PAGE: Final = 4 * 1024 * 1024
PAGE: Final = 512
# The x-ms-version the gateway uses for its own requests (blob size look-ups).
_API_VERSION: Final = "2021-08-06"
_SERVER: Final = "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0"
# Bodies at least this big are hashed in a worker thread (hashlib and crc64 release the GIL).
_HASH_IN_THREAD: Final = 256 * 1024
# aiohttp warns when sending raw bytes bigger than this.
_SLICE: Final = 1 << 20
_Body = bytes | AsyncIterator[bytes] | None
# Hop-by-hop headers (RFC 9110 7.6.1) and those the transport sets itself.
_HOP_HEADERS: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "expect",
    }
)
# Let no automatic header change what the client signed (SharedKey signs Content-Type).
_SKIP_AUTO: Final = frozenset({"Content-Type", "Accept", "Accept-Encoding", "User-Agent"})

Operation = Literal[
    "PutBlob",
    "PutPage",
    "ClearPage",
    "GetPageRanges",
    "GetBlob",
    "GetBlobProperties",
    "DeleteBlob",
    "CreateContainer",
    "Other",
]
OPERATIONS: Final[tuple[str, ...]] = get_args(Operation)
FaultAction = Literal["status", "reset", "delay", "expire_sas"]
_ACTIONS: Final[tuple[str, ...]] = get_args(FaultAction)

# Default error code and message for an injected status.
_STATUS_ERRORS: Final[Mapping[int, tuple[str, str]]] = {
    400: ("InvalidInput", "One of the request inputs is not valid."),
    403: (
        "AuthenticationFailed",
        "Server failed to authenticate the request. Make sure the value of Authorization "
        "header is formed correctly including the signature.",
    ),
    404: ("BlobNotFound", "The specified blob does not exist."),
    408: ("RequestTimeout", "The request timed out."),
    409: ("Conflict", "The request conflicts with the current state of the resource."),
    412: (
        "ConditionNotMet",
        "The condition specified using HTTP conditional header(s) is not met.",
    ),
    413: (
        "RequestBodyTooLarge",
        "The request body is too large and exceeds the maximum permissible limit.",
    ),
    429: ("TooManyRequests", "The request rate is too high. Please retry your request."),
    500: ("InternalError", "The server encountered an internal error. Please retry the request."),
    502: ("BadGateway", "The server received an invalid response upstream."),
    503: (
        "ServerBusy",
        "The server is currently unable to receive requests. Please retry your request.",
    ),
    504: ("GatewayTimeout", "The operation could not be completed within the permitted time."),
}
_CODE_MESSAGES: Final[Mapping[str, str]] = {
    "OperationTimedOut": "The operation could not be completed within the permitted time.",
    "ServerBusy": _STATUS_ERRORS[503][1],
    "InternalError": _STATUS_ERRORS[500][1],
    "AuthenticationFailed": _STATUS_ERRORS[403][1],
}


# --------------------------------------------------------------------------------------------
# Operations


def classify_operation(method: str, query: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """The gateway's operation name for one request (one of :data:`OPERATIONS`).

    ``query`` and ``headers`` are looked up by lower-case query name and (case-insensitive)
    header name.
    """
    comp = query.get("comp")
    restype = query.get("restype")
    method = method.upper()
    if method == "PUT":
        if comp == "page":
            write = headers.get("x-ms-page-write", "update").lower()
            return "ClearPage" if write == "clear" else "PutPage"
        if restype == "container" and comp is None:
            return "CreateContainer"
        if comp is None and restype is None and "x-ms-blob-type" in headers:
            return "PutBlob"
        return "Other"
    if comp is None and restype is None:
        if method == "GET":
            return "GetBlob"
        if method == "HEAD":
            return "GetBlobProperties"
        if method == "DELETE":
            return "DeleteBlob"
    if method == "GET" and comp == "pagelist":
        return "GetPageRanges"
    return "Other"


# --------------------------------------------------------------------------------------------
# Fault rules


@dataclass(frozen=True)
class FaultRule:
    """One fault to inject into requests of ``operation`` (an operation name or ``"*"``).

    ``action``:

    - ``"status"``: answer ``status`` with Azure error ``code`` (default by status: 503
      ServerBusy, 500 InternalError, ...) and ``Retry-After`` if ``retry_after`` is set;
    - ``"reset"``: read part of the request body, then reset the connection (not forwarded);
    - ``"delay"``: wait ``delay`` seconds, then handle the request normally;
    - ``"expire_sas"``: answer 403 AuthenticationFailed as if the SAS had expired.

    When it fires: with ``nth`` from the Nth matching request on (1-based, counted per rule;
    at most once unless ``times`` says more), with ``rate`` at that probability per matching
    request (drawn from ``random.Random(seed)``, so runs repeat), at most ``times`` times.
    Without ``nth`` and ``rate`` it fires on every matching request.
    """

    operation: str = "*"
    action: FaultAction = "status"
    status: int = 503
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    delay: float = 0.0
    nth: int | None = None
    rate: float | None = None
    seed: int | None = None
    times: int | None = None

    def __post_init__(self) -> None:
        if self.operation != "*" and self.operation not in OPERATIONS:
            raise ValueError(
                f"unknown operation {self.operation!r}; one of {', '.join(OPERATIONS)} or *"
            )
        check_rule(
            action=self.action,
            actions=_ACTIONS,
            status=self.status,
            retry_after=self.retry_after,
            delay=self.delay,
            nth=self.nth,
            rate=self.rate,
            times=self.times,
        )

    @property
    def error_code(self) -> str:
        """The Azure error code this rule answers with."""
        if self.code is not None:
            return self.code
        if self.action == "expire_sas":
            return "AuthenticationFailed"
        default = _STATUS_ERRORS.get(self.status)
        if default is not None:
            return default[0]
        return "InternalError" if self.status >= 500 else "InvalidInput"

    @property
    def limit(self) -> int | None:
        """How many times the rule may fire (``nth`` alone means once)."""
        if self.times is not None:
            return self.times
        return 1 if self.nth is not None else None

    @classmethod
    def from_spec(cls, text: str) -> FaultRule:
        """Parse ``OPERATION:ACTION[,key=value...]``.

        Examples: ``PutPage:status=503,retry_after=1,nth=3``, ``PutPage:reset,rate=0.05,seed=7``,
        ``*:delay=0.5,times=2``, ``PutPage:expire_sas,nth=10``,
        ``GetBlob:status=500,code=OperationTimedOut``.  ``status=N`` and ``delay=S`` also set
        the action.  Raises :class:`azrestore.errors.InputError` for a malformed spec.
        """
        op_text, sep, rest = text.strip().partition(":")
        if not sep or not op_text or not rest:
            raise InputError(f"fault spec {text!r}: expected OPERATION:ACTION[,key=value...]")
        by_lower = {name.lower(): name for name in OPERATIONS}
        operation = "*" if op_text == "*" else by_lower.get(op_text.lower())
        if operation is None:
            raise InputError(f"fault spec {text!r}: unknown operation {op_text!r}")
        kwargs: dict[str, object] = {"operation": operation}
        action: str | None = None
        types = {f.name: f.type for f in fields(cls)}
        for item in rest.split(","):
            key, eq, value = (part.strip() for part in item.partition("="))
            key = key.lower().replace("-", "_")
            if not eq:
                if key not in _ACTIONS:
                    raise InputError(f"fault spec {text!r}: unknown action {key!r}")
                action = key
                continue
            if key in ("operation", "action") or key not in types:
                raise InputError(f"fault spec {text!r}: unknown key {key!r}")
            try:
                if key in ("code", "message"):
                    kwargs[key] = value
                elif key in ("retry_after", "delay", "rate"):
                    kwargs[key] = float(value)
                else:
                    kwargs[key] = int(value)
            except ValueError:
                raise InputError(f"fault spec {text!r}: bad value for {key}: {value!r}") from None
            if key in ("status", "delay") and action is None:
                action = key
        if action is None:
            raise InputError(
                f"fault spec {text!r}: no action (status=N, reset, delay=S, expire_sas)"
            )
        kwargs["action"] = action
        try:
            return cls(**kwargs)  # type: ignore[arg-type]
        except ValueError as exc:
            raise InputError(f"fault spec {text!r}: {exc}") from None


@dataclass(frozen=True)
class SasRefusal:
    """How to refuse a SAS request (see ``StorageGateway(sas_check=...)``)."""

    status: int = 403
    code: str = "AuthenticationFailed"
    message: str = _STATUS_ERRORS[403][1]
    detail: str | None = None
    """Sent as ``AuthenticationErrorDetail`` in the XML error body."""


#: ``sas_check(operation, path, query)``: called for each request carrying a SAS (``sig``),
#: with the gateway's operation name, the URL path and the lower-cased query; a
#: :class:`SasRefusal` refuses the request, None lets it through.  Used by the Resource Manager
#: simulator to end a managed disk's SAS when its access is revoked.
SasCheck = Callable[[str, str, Mapping[str, str]], "SasRefusal | None"]


@dataclass(frozen=True)
class GatewayStats:
    """A snapshot of what the gateway saw since the last reset.

    ``requests`` and ``forwarded`` count requests per operation name, ``bytes_received`` the
    request-body bytes read per operation, ``faults`` fired faults per rule index (into the
    current rules) and ``faults_by_action`` per action, ``rejections`` the requests refused by
    Azure's rules per error code.
    """

    requests: Mapping[str, int] = field(default_factory=dict)
    forwarded: Mapping[str, int] = field(default_factory=dict)
    bytes_received: Mapping[str, int] = field(default_factory=dict)
    faults: Mapping[int, int] = field(default_factory=dict)
    faults_by_action: Mapping[str, int] = field(default_factory=dict)
    rejections: Mapping[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Azure-style answers


class _Rejection(Exception):
    """An Azure error answer, raised inside request handling."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def _error_response(request: web.BaseRequest, error: _Rejection) -> web.Response:
    request_id = str(uuid.uuid4())
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    extra = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in error.details.items())
    # Azure starts its XML error bodies with a UTF-8 byte order mark.
    body = (
        '\ufeff<?xml version="1.0" encoding="utf-8"?><Error>'
        f"<Code>{error.code}</Code><Message>{escape(error.message)}\n"
        f"RequestId:{request_id}\nTime:{now}</Message>{extra}</Error>"
    ).encode()
    headers = {
        "Content-Type": "application/xml",
        "Server": _SERVER,
        "x-ms-error-code": error.code,
        "x-ms-request-id": request_id,
        "x-ms-version": request.headers.get("x-ms-version", _API_VERSION),
        **error.headers,
    }
    if "x-ms-client-request-id" in request.headers:
        headers["x-ms-client-request-id"] = request.headers["x-ms-client-request-id"]
    return web.Response(status=error.status, body=body, headers=headers)


def _retry_after_headers(seconds: float | None) -> dict[str, str]:
    """Retry-After as HTTP wants it (whole seconds, rounded up); fractions in milliseconds too.

    azure-core reads ``x-ms-retry-after-ms`` first, then ``Retry-After`` (as a float).
    """
    if seconds is None:
        return {}
    whole = int(-(-seconds // 1))
    headers = {"Retry-After": str(whole)}
    if whole != seconds:
        headers["x-ms-retry-after-ms"] = str(round(seconds * 1000))
    return headers


def _expired_sas_rejection(detail: str) -> _Rejection:
    return _Rejection(
        403,
        "AuthenticationFailed",
        _CODE_MESSAGES["AuthenticationFailed"],
        {"AuthenticationErrorDetail": detail},
    )


def _http_date(moment: datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)


def _parse_sas_time(value: str) -> datetime | None:
    """A SAS ``st``/``se`` value (ISO 8601 UTC, date or date and time) or None."""
    try:
        if "T" not in value:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_RANGE_RE: Final = re.compile(r"^\s*bytes\s*=\s*(\d+)\s*-\s*(\d+)\s*$")


def _check_sas(query: Mapping[str, str]) -> None:
    """Refuse a SAS outside its validity window as Azure does (Azurite: AuthorizationFailure)."""
    if "sig" not in query:
        return
    now = datetime.now(UTC)
    start = _parse_sas_time(query["st"]) if "st" in query else None
    expiry = _parse_sas_time(query["se"]) if "se" in query else None
    if (expiry is not None and now > expiry) or (start is not None and now < start):
        start_text = _http_date(start) if start else ""
        expiry_text = _http_date(expiry) if expiry else ""
        raise _expired_sas_rejection(
            f"Signed expiry time [{expiry_text}] must be after signed start time [{start_text}]"
            if expiry is not None and start is not None and expiry <= start
            else "Signature not valid in the specified time frame: "
            f"Start [{start_text}] - Expiry [{expiry_text}] - Current [{_http_date(now)}]"
        )


# --------------------------------------------------------------------------------------------
# The gateway


class StorageGateway:
    """An aiohttp server on 127.0.0.1 that checks requests as Azure would, then forwards them.

    ``upstream_account_url`` is Azurite's account URL (``http://127.0.0.1:P/devstoreaccount1``);
    the gateway's :attr:`account_url` has the same path on its own port.  ``account_key``
    signs the gateway's own blob-size look-ups (HEAD) on the upstream.  ``sas_check`` (see
    :data:`SasCheck`) may refuse SAS requests the upstream would accept (a revoked disk SAS).
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
    ) -> None:
        if host != "127.0.0.1":
            raise ValueError("the gateway only listens on 127.0.0.1")
        parts = urlsplit(upstream_account_url.rstrip("/"))
        if not parts.scheme or not parts.netloc:
            raise ValueError(f"not an account URL: {upstream_account_url!r}")
        self._upstream_origin = f"{parts.scheme}://{parts.netloc}"
        self._base_path = parts.path  # "/devstoreaccount1"
        self._account = parts.path.strip("/").split("/")[0] or parts.netloc.split(".")[0]
        self._key = base64.b64decode(account_key)
        self._sas_check = sas_check
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.ServerRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._rules: list[RuleState[FaultRule]] = []
        self.set_rules(rules)
        self._sizes: dict[str, int] = {}
        self._size_lookups: dict[str, asyncio.Future[int | None]] = {}
        self._requests: Counter[str] = Counter()
        self._forwarded: Counter[str] = Counter()
        self._bytes: Counter[str] = Counter()
        self._faults: Counter[int] = Counter()
        self._faults_by_action: Counter[str] = Counter()
        self._rejections: Counter[str] = Counter()

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
        return f"http://{self._host}:{self.port}{self._base_path}"

    def set_rules(self, rules: Sequence[FaultRule]) -> None:
        """Replace the fault rules (their counters start from zero)."""
        self._rules = [RuleState(rule) for rule in rules]

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        """The current fault rules."""
        return tuple(state.rule for state in self._rules)

    def statistics(self) -> GatewayStats:
        """A snapshot of the counters."""
        return GatewayStats(
            requests=dict(self._requests),
            forwarded=dict(self._forwarded),
            bytes_received=dict(self._bytes),
            faults=dict(self._faults),
            faults_by_action=dict(self._faults_by_action),
            rejections=dict(self._rejections),
        )

    def reset_statistics(self) -> None:
        """Zero the counters (rule counters are kept; :meth:`set_rules` resets those)."""
        for counter in (
            self._requests,
            self._forwarded,
            self._bytes,
            self._faults,
            self._faults_by_action,
            self._rejections,
        ):
            counter.clear()

    async def start(self) -> None:
        """Listen on the port and open the upstream connection pool."""
        if self._runner is not None:
            return
        # Azurite closes idle connections after 5 s: drop ours before it does.
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=2.0, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
            read_bufsize=1 << 20,
            skip_auto_headers=_SKIP_AUTO,
        )
        server = web.Server(
            self._handle,
            access_log=None,
            auto_decompress=False,  # forward bodies exactly as they came
            read_bufsize=1 << 20,
            lingering_time=30.0,
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
            await self._session.close()
            self._session = None
            raise
        self._runner = runner
        self._port = sock.getsockname()[1]

    async def aclose(self) -> None:
        """Stop listening, end open connections and close the upstream pool; idempotent."""
        runner, self._runner = self._runner, None
        session, self._session = self._session, None
        if runner is not None:
            await runner.cleanup()
        if session is not None:
            await session.close()
        self._port = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- request handling --------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        query = {k.lower(): v for k, v in parse_qsl(request.query_string, keep_blank_values=True)}
        op = classify_operation(request.method, query, request.headers)
        self._requests[op] += 1
        try:
            rule_index = self._pick_rule(op)
            if rule_index is not None:
                rule = self._rules[rule_index].rule
                if rule.action == "reset":
                    return await self._reset(request, op)
                if rule.action == "delay":
                    await asyncio.sleep(rule.delay)
                else:
                    await self._drain(request, op)
                    return _error_response(request, _fault_rejection(rule))
            try:
                _check_sas(query)
                if self._sas_check is not None and "sig" in query:
                    refusal = self._sas_check(op, request.path, query)
                    if refusal is not None:
                        raise _Rejection(
                            refusal.status,
                            refusal.code,
                            refusal.message,
                            {"AuthenticationErrorDetail": refusal.detail}
                            if refusal.detail
                            else None,
                        )
                body: list[bytes] | None = None
                if op == "PutPage":
                    body = await self._check_put_page(request)
                elif op == "ClearPage":
                    await self._check_clear_page(request)
            except _Rejection as rejection:
                self._rejections[rejection.code] += 1
                await self._drain(request, op)
                return _error_response(request, rejection)
            return await self._forward(request, op, body)
        except _Rejection as error:
            return _error_response(request, error)
        except (ConnectionError, asyncio.IncompleteReadError):
            # The client went away mid-request; aiohttp drops the connection quietly.
            return web.Response(status=400)

    def _pick_rule(self, op: str) -> int | None:
        chosen: int | None = None
        for index, state in enumerate(self._rules):
            if state.rule.operation not in ("*", op):
                continue
            if state.decide() and chosen is None:
                chosen = index
                state.fired += 1
        if chosen is not None:
            self._faults[chosen] += 1
            self._faults_by_action[self._rules[chosen].rule.action] += 1
        return chosen

    async def _drain(self, request: web.BaseRequest, op: str) -> None:
        """Read and discard what is left of the request body (so the client sees the answer)."""
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            async for chunk in request.content.iter_any():
                self._bytes[op] += len(chunk)

    async def _reset(self, request: web.BaseRequest, op: str) -> web.StreamResponse:
        """Read part of the body, then reset the connection without answering."""
        expected = request.content_length
        if request.body_exists:
            want = max(1, min(64 * 1024, (expected or 128 * 1024) // 2))
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                got = await request.content.read(want)
                self._bytes[op] += len(got)
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # SO_LINGER 0: close() sends RST, the client sees a reset, not a clean close.
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        # Writing to the aborted transport fails; aiohttp takes that as a client disconnect.
        return web.Response(status=500)

    # -- Azure's rules for Put Page ----------------------------------------------------------

    @staticmethod
    def _page_range(request: web.BaseRequest) -> tuple[int, int]:
        raw = request.headers.get("x-ms-range") or request.headers.get("Range")
        if raw is None:
            raise _Rejection(
                400,
                "MissingRequiredHeader",
                "An HTTP header that's mandatory for this request is not specified.",
                {"HeaderName": "x-ms-range"},
            )
        match = _RANGE_RE.match(raw)
        if match is None or int(match.group(2)) < int(match.group(1)):
            raise _invalid_header("x-ms-range", raw)
        return int(match.group(1)), int(match.group(2))

    async def _check_put_page(self, request: web.BaseRequest) -> list[bytes]:
        """Check a Put Page as Azure does; its body (at most 4 MiB) as the chunks that came.

        Header checks come first, so a refused request costs no buffering.  The chunks are
        not joined: digests and forwarding take them one by one (a copy saved per request).
        """
        start, end = self._page_range(request)
        declared = request.content_length
        if declared is None:
            raise _Rejection(
                411, "MissingContentLengthHeader", "The Content-Length header was not specified."
            )
        if declared > MAX_PUT_PAGE:
            raise _body_too_large()
        if start % PAGE or (end + 1) % PAGE:
            raise _invalid_header("x-ms-range", f"bytes={start}-{end}")
        if end - start + 1 != declared:
            raise _invalid_header("Content-Length", str(declared))
        await self._check_inside_blob(request, end)
        chunks: list[bytes] = []
        length = 0
        async for chunk in request.content.iter_any():
            chunks.append(chunk)
            length += len(chunk)
            self._bytes["PutPage"] += len(chunk)
        if length != declared:
            raise ConnectionResetError("the client sent less than its Content-Length")
        await self._check_digests(request, chunks, length)
        return chunks

    async def _check_clear_page(self, request: web.BaseRequest) -> None:
        start, end = self._page_range(request)
        if start % PAGE or (end + 1) % PAGE:
            raise _invalid_header("x-ms-range", f"bytes={start}-{end}")
        if request.content_length:
            raise _invalid_header("Content-Length", str(request.content_length))
        await self._check_inside_blob(request, end)

    async def _check_inside_blob(self, request: web.BaseRequest, end: int) -> None:
        key = request.path
        size = self._sizes.get(key)
        if size is None or end >= size:
            # Not known yet, or changed behind our back (written straight to Azurite).
            size = await self._blob_size(request)
        if size is not None and end >= size:
            raise _Rejection(416, "InvalidPageRange", "The page range specified is invalid.")

    async def _check_digests(
        self, request: web.BaseRequest, body: list[bytes], length: int
    ) -> None:
        md5_text = request.headers.get("Content-MD5")
        crc_text = request.headers.get("x-ms-content-crc64")
        if md5_text is None and crc_text is None:
            return
        md5 = _decode_digest(md5_text, 16, "Content-MD5") if md5_text is not None else None
        crc = _decode_digest(crc_text, 8, "x-ms-content-crc64") if crc_text is not None else None
        if length >= _HASH_IN_THREAD:
            got_md5, got_crc = await asyncio.to_thread(
                _digests, body, md5 is not None, crc is not None
            )
        else:
            got_md5, got_crc = _digests(body, md5 is not None, crc is not None)
        if md5 is not None and got_md5 != md5:
            raise _Rejection(
                400,
                "Md5Mismatch",
                "The MD5 value specified in the request did not match with the MD5 value "
                "calculated by the server.",
                {
                    "UserSpecifiedMd5": md5_text or "",
                    "ServerCalculatedMd5": base64.b64encode(got_md5 or b"").decode(),
                },
            )
        if crc is not None and got_crc != crc:
            raise _Rejection(
                400,
                "Crc64Mismatch",
                "The CRC64 value specified in the request did not match with the CRC64 value "
                "calculated by the server.",
                {
                    "UserSpecifiedCrc": crc_text or "",
                    "ServerCalculatedCrc": base64.b64encode(got_crc or b"").decode(),
                },
            )

    # -- blob sizes --------------------------------------------------------------------------

    async def _blob_size(self, request: web.BaseRequest) -> int | None:
        """The page blob's size by a HEAD on the upstream (shared by concurrent callers)."""
        key = request.path
        pending = self._size_lookups.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._size_lookups[key] = future
        try:
            size = await self._head_size(request.raw_path.split("?", 1)[0])
            if size is not None:
                self._sizes[key] = size
            future.set_result(size)
            return size
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: a lone caller must not leave it unobserved
            raise
        finally:
            del self._size_lookups[key]

    async def _head_size(self, raw_path: str) -> int | None:
        assert self._session is not None
        now = email.utils.formatdate(usegmt=True)
        ms_headers = {"x-ms-date": now, "x-ms-version": _API_VERSION}
        canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(ms_headers.items()))
        # SharedKey: VERB, 11 empty standard headers, x-ms-* headers, /account/path.
        to_sign = "HEAD\n" + "\n" * 11 + canonical_headers + f"/{self._account}{raw_path}"
        signature = base64.b64encode(
            hmac.new(self._key, to_sign.encode(), hashlib.sha256).digest()
        ).decode()
        headers = {**ms_headers, "Authorization": f"SharedKey {self._account}:{signature}"}
        url = URL(self._upstream_origin + raw_path, encoded=True)
        for attempt in range(2):
            try:
                async with self._session.head(url, headers=headers) as response:
                    if response.status != 200:
                        return None
                    if response.headers.get("x-ms-blob-type") != "PageBlob":
                        return None
                    return int(response.headers.get("Content-Length", "0"))
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                if attempt:
                    raise
        return None

    def _note_forwarded(
        self, request: web.BaseRequest, op: str, response: aiohttp.ClientResponse
    ) -> None:
        """Keep the size cache right after requests that create, resize or delete blobs."""
        key = request.path
        ok = 200 <= response.status < 300
        if op == "PutBlob":
            self._sizes.pop(key, None)
            length = request.headers.get("x-ms-blob-content-length")
            if ok and request.headers.get("x-ms-blob-type") == "PageBlob" and length:
                self._sizes[key] = int(length)
        elif op == "GetBlobProperties":
            if ok and response.headers.get("x-ms-blob-type") == "PageBlob":
                self._sizes[key] = int(response.headers.get("Content-Length", "0"))
        elif op == "DeleteBlob":
            self._sizes.pop(key, None)
        elif op == "Other" and request.method not in ("GET", "HEAD"):
            # Set Blob Properties (resize), Copy Blob, Delete Container, ...
            if request.path.rstrip("/").count("/") <= self._base_path.count("/") + 1:
                prefix = request.path.rstrip("/") + "/"
                for cached in [k for k in self._sizes if k.startswith(prefix)]:
                    del self._sizes[cached]
            self._sizes.pop(key, None)
            length = request.headers.get("x-ms-blob-content-length")
            if ok and length and request.query.get("comp") == "properties":
                self._sizes[key] = int(length)

    # -- forwarding --------------------------------------------------------------------------

    async def _counted(self, request: web.BaseRequest, op: str) -> AsyncIterator[bytes]:
        async for chunk in request.content.iter_any():
            self._bytes[op] += len(chunk)
            yield chunk

    async def _forward(
        self, request: web.BaseRequest, op: str, body: list[bytes] | None
    ) -> web.StreamResponse:
        session = self._session
        if session is None:
            raise _Rejection(503, "ServerBusy", _CODE_MESSAGES["ServerBusy"])
        headers = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS
        )
        # Only a buffered (or empty) body can be sent twice.
        attempts = 2 if body is not None or not request.body_exists else 1

        def make_data() -> _Body:
            if body is not None:
                return body[0] if len(body) == 1 and len(body[0]) <= _SLICE else _replay(body)
            return self._counted(request, op) if request.body_exists else None

        url = URL(self._upstream_origin + request.raw_path, encoded=True)
        self._forwarded[op] += 1
        upstream = await self._send(session, request.method, url, headers, make_data, attempts)
        async with upstream:
            self._note_forwarded(request, op, upstream)
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in _HOP_HEADERS:
                    response.headers.add(name, value)
            try:
                await response.prepare(request)
                if request.method != "HEAD":
                    async for chunk in upstream.content.iter_any():
                        await response.write(chunk)
                await response.write_eof()
            except (ConnectionError, aiohttp.ClientError):
                # Either side broke off mid-body.  If it was the upstream, the client must see
                # a broken response too; if it was the client, aborting costs nothing.
                if request.transport is not None:
                    request.transport.abort()
            return response

    @staticmethod
    async def _send(
        session: aiohttp.ClientSession,
        method: str,
        url: URL,
        headers: CIMultiDict[str],
        make_data: Callable[[], _Body],
        attempts: int,
    ) -> aiohttp.ClientResponse:
        for attempt in range(1, attempts + 1):
            try:
                return await session.request(
                    method, url, headers=headers, data=make_data(), allow_redirects=False
                )
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # A pooled connection the upstream closed meanwhile: try again if we can.
                if attempt < attempts:
                    continue
                raise _Rejection(500, "InternalError", _STATUS_ERRORS[500][1]) from exc
            except aiohttp.ClientError as exc:
                raise _Rejection(500, "InternalError", _STATUS_ERRORS[500][1]) from exc
        raise AssertionError("unreachable")


def _fault_rejection(rule: FaultRule) -> _Rejection:
    """The answer of a status or expire_sas rule."""
    if rule.action == "expire_sas":
        now = _http_date(datetime.now(UTC))
        error = _expired_sas_rejection(
            f"Signature not valid in the specified time frame: Start [] - Expiry [{now}] - "
            f"Current [{now}]"
        )
        error.code = rule.error_code
    else:
        code = rule.error_code
        message = rule.message or _CODE_MESSAGES.get(code)
        if message is None:
            message = _STATUS_ERRORS.get(rule.status, (code, "The request failed."))[1]
        error = _Rejection(rule.status, code, message)
    error.headers = _retry_after_headers(rule.retry_after)
    return error


async def _replay(chunks: list[bytes]) -> AsyncIterator[bytes]:
    """A buffered body as it came, chunk by chunk (aiohttp warns about raw bytes over 1 MiB)."""
    for chunk in chunks:
        yield chunk


def _invalid_header(name: str, value: str) -> _Rejection:
    return _Rejection(
        400,
        "InvalidHeaderValue",
        "The value for one of the HTTP headers is not in the correct format.",
        {"HeaderName": name, "HeaderValue": value},
    )


def _body_too_large() -> _Rejection:
    return _Rejection(413, "RequestBodyTooLarge", _STATUS_ERRORS[413][1])


def _decode_digest(text: str, size: int, header: str) -> bytes:
    try:
        value = base64.b64decode(text, validate=True)
    except ValueError:
        value = b""
    if len(value) != size:
        if header == "Content-MD5":
            raise _Rejection(
                400,
                "InvalidMd5",
                "The MD5 value specified in the request is invalid. The MD5 value must be "
                "128 bits and Base64-encoded.",
            )
        raise _invalid_header(header, text)
    return value


def _digests(chunks: list[bytes], md5: bool, crc: bool) -> tuple[bytes | None, bytes | None]:
    md5_state = hashlib.md5() if md5 else None
    crc_state = 0
    for chunk in chunks:
        if md5_state is not None:
            md5_state.update(chunk)
        if crc:
            crc_state = checksums.crc64.compute(chunk, crc_state)
    got_md5 = md5_state.digest() if md5_state is not None else None
    got_crc = crc_state.to_bytes(8, "little") if crc else None
    return got_md5, got_crc


# --------------------------------------------------------------------------------------------
# A gateway on its own thread


class GatewayThread:
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
    ) -> None:
        self._gateway = StorageGateway(
            upstream_account_url, host=host, port=port, rules=rules, account_key=account_key
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

    def statistics(self) -> GatewayStats:
        """A snapshot of the gateway's counters."""
        return self._call(self._gateway.statistics)

    def reset_statistics(self) -> None:
        """Zero the gateway's counters."""
        self._call(self._gateway.reset_statistics)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------
# Command line


async def _serve(upstream: str, port: int, rules: Sequence[FaultRule]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with StorageGateway(upstream, port=port, rules=rules) as gateway:
        print(json.dumps({"account_url": gateway.account_url}), flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m azrestore.emulator.gateway --upstream URL [--port N] [--rule SPEC ...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m azrestore.emulator.gateway",
        description="Run the strict storage gateway in front of Azurite until SIGINT/SIGTERM.",
    )
    parser.add_argument("--upstream", required=True, help="Azurite's account URL")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="SPEC",
        help="fault rule, e.g. PutPage:status=503,retry_after=1,nth=3 (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        rules = [FaultRule.from_spec(spec) for spec in args.rule]
    except InputError as exc:
        parser.error(str(exc))
    asyncio.run(_serve(args.upstream, args.port, rules))
    return 0


if __name__ == "__main__":
    sys.exit(main())
