"""The bearer-token check ARM makes before anything else: any token is accepted, a missing
or malformed one gets 401 with ``WWW-Authenticate`` as ARM answers it."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from azrestore.emulator.arm.errors import ArmError

__all__ = ["check_bearer_token"]

_LOGIN: Final = "https://login.microsoftonline.com/common"


def _unauthorized(code: str, message: str, description: str) -> ArmError:
    challenge = (
        f'Bearer authorization_uri="{_LOGIN}", error="invalid_token", '
        f'error_description="{description}"'
    )
    return ArmError(401, code, message, headers={"WWW-Authenticate": challenge})


def check_bearer_token(request: web.BaseRequest) -> None:
    """Refuse a request without ``Authorization: Bearer <token>`` (401)."""
    authorization = request.headers.get("Authorization")
    if authorization is None:
        raise _unauthorized(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
            "The authentication failed because of missing 'Authorization' header.",
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized(
            "InvalidAuthenticationToken",
            "The access token is invalid.",
            "The access token is invalid.",
        )
