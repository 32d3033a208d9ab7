"""Blob service answers and connection failures as azrestore errors: aiohttp's and the
socket's exceptions, and error statuses, are translated here and nowhere else."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from time import time

import aiohttp

from ..errors import AuthenticationExpired, SinkError
from ..redact import redact_text

#: Statuses worth another try (with backoff): timeouts, throttling, server errors.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_MESSAGE = re.compile(rb"<Message>(.*?)</Message>", re.S)
#: What a 407 from the forward proxy adds to its message.
PROXY_AUTH_HINT = (
    " (the proxy refused its credentials: check the user:password of --proxy-url or"
    " HTTPS_PROXY/HTTP_PROXY)"
)


class CredentialsExpired(AuthenticationExpired):
    """AuthenticationExpired that remembers which credentials failed (their renewal
    ``generation``), so that a burst of failures in flight leads to one renewal."""

    def __init__(self, message: str, generation: int) -> None:
        super().__init__(message, retryable=False, status=403, code="AuthenticationFailed")
        self.generation = generation


@contextmanager
def connection_failures(where: str, what: str) -> Iterator[None]:
    """Turn a failed connection (refused, reset, timed out) while sending a request or
    reading its answer into a retryable :class:`SinkError`."""
    try:
        yield
    except aiohttp.ClientHttpProxyError as exc:
        # The forward proxy refused to open the tunnel (CONNECT) for an https:// target.
        status = exc.status
        message = f"{where}: {what}: the proxy answered {status} {redact_text(exc.message)}"
        raise SinkError(
            message + (PROXY_AUTH_HINT if status == 407 else ""),
            retryable=status in RETRYABLE_STATUSES,
            status=status,
        ) from None
    except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
        detail = redact_text(str(exc) or type(exc).__name__)
        raise SinkError(f"{where}: {what}: connection failed: {detail}", retryable=True) from None


async def raise_for_status(
    response: aiohttp.ClientResponse, where: str, what: str, generation: int = -1
) -> None:
    """Nothing for a success; else the error the answer means: :class:`CredentialsExpired`
    for 403 AuthenticationFailed (sent with credentials of ``generation``), else a
    :class:`SinkError` carrying the status, Azure's error code and message, and any
    Retry-After."""
    if response.status < 300:
        return
    code = response.headers.get("x-ms-error-code")
    body = await response.read() if response.method != "HEAD" else b""
    found = _MESSAGE.search(body)
    detail = found.group(1).decode(errors="replace").splitlines()[0] if found else ""
    message = f"{where}: {what}: {response.status} {code or response.reason}"
    if detail:
        message += f": {redact_text(detail)}"
    retry_after = retry_after_of(response.headers)
    if response.status == 407:  # from the forward proxy, for an http:// target
        message += PROXY_AUTH_HINT
    if response.status == 403 and code == "AuthenticationFailed":
        raise CredentialsExpired(message + " (the SAS may have expired)", generation)
    raise SinkError(
        message,
        retryable=response.status in RETRYABLE_STATUSES,
        status=response.status,
        code=code,
        retry_after=retry_after,
    )


def retry_after_of(headers: Mapping[str, str]) -> float | None:
    """The seconds an answer asks to wait: ``x-ms-retry-after-ms`` or ``retry-after-ms``
    (milliseconds, as azure-core reads them first), else ``Retry-After`` (whole seconds
    or an HTTP date)."""
    for name in ("x-ms-retry-after-ms", "retry-after-ms"):
        value = headers.get(name)
        if value:
            try:
                milliseconds = float(value)
            except ValueError:
                continue
            if math.isfinite(milliseconds):
                return max(0.0, milliseconds / 1000)
    return parse_retry_after(headers.get("Retry-After"))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError):
        return None
