"""Azure's error answers: the :class:`Rejection` that request handling raises, and the
response Azure would send for it (status, ``x-ms-error-code`` and XML error body)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final
from xml.sax.saxutils import escape

from aiohttp import web

__all__ = [
    "API_VERSION",
    "CODE_MESSAGES",
    "STATUS_ERRORS",
    "Rejection",
    "body_too_large",
    "error_response",
    "invalid_header",
    "retry_after_headers",
    "server_busy",
]

# The x-ms-version the gateway uses for its own requests (blob size look-ups) and answers.
API_VERSION: Final = "2021-08-06"
_SERVER: Final = "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0"

# Default error code and message for a status.
STATUS_ERRORS: Final[Mapping[int, tuple[str, str]]] = {
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
CODE_MESSAGES: Final[Mapping[str, str]] = {
    "OperationTimedOut": "The operation could not be completed within the permitted time.",
    "ServerBusy": STATUS_ERRORS[503][1],
    "InternalError": STATUS_ERRORS[500][1],
    "AuthenticationFailed": STATUS_ERRORS[403][1],
}


class Rejection(Exception):
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


def error_response(request: web.BaseRequest, error: Rejection) -> web.Response:
    """The answer Azure gives for ``error`` to ``request``."""
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
        "x-ms-version": request.headers.get("x-ms-version", API_VERSION),
        **error.headers,
    }
    if "x-ms-client-request-id" in request.headers:
        headers["x-ms-client-request-id"] = request.headers["x-ms-client-request-id"]
    return web.Response(status=error.status, body=body, headers=headers)


def invalid_header(name: str, value: str) -> Rejection:
    """400 InvalidHeaderValue naming the header and its value."""
    return Rejection(
        400,
        "InvalidHeaderValue",
        "The value for one of the HTTP headers is not in the correct format.",
        {"HeaderName": name, "HeaderValue": value},
    )


def body_too_large() -> Rejection:
    """413 RequestBodyTooLarge."""
    return Rejection(413, "RequestBodyTooLarge", STATUS_ERRORS[413][1])


def retry_after_headers(seconds: float | None) -> dict[str, str]:
    """Retry-After as HTTP wants it (whole seconds, rounded up); fractions in milliseconds too
    (rounded up: a client that waits that long finds the wait over).

    azure-core reads ``x-ms-retry-after-ms`` first, then ``Retry-After`` (as a float).
    """
    if seconds is None:
        return {}
    whole = int(-(-seconds // 1))
    headers = {"Retry-After": str(whole)}
    if whole != seconds:
        headers["x-ms-retry-after-ms"] = str(math.ceil(round(seconds * 1000, 6)))
    return headers


def server_busy(message: str, retry_after: float | None) -> Rejection:
    """503 ServerBusy, as Azure answers a request beyond its scalability targets."""
    return Rejection(503, "ServerBusy", message, headers=retry_after_headers(retry_after))
