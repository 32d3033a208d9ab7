"""The bearer-token check ARM makes before anything else: only the simulator's own token is
accepted; anything else gets 401 with ``WWW-Authenticate``, as ARM answers.

ARM's answers (recorded in the Azure SDKs' issue reports and Microsoft's troubleshooting
pages for Resource Manager authentication):

============================================  ======  ==================================
no ``Authorization`` header                   401     AuthenticationFailed
a header that is not ``Bearer <token>``       401     AuthenticationFailedInvalidHeader
a token ARM does not accept                   401     InvalidAuthenticationToken
============================================  ======  ==================================
"""

from __future__ import annotations

import hmac
import secrets
from typing import Final

from aiohttp import web

from azrestore.emulator.arm.errors import ArmError

__all__ = ["BearerTokenCheck", "new_token"]

_LOGIN: Final = "https://login.microsoftonline.com/common"


def new_token() -> str:
    """A fresh random token (what a simulator accepts when it is given none)."""
    return secrets.token_urlsafe(32)


def _unauthorized(code: str, message: str, description: str) -> ArmError:
    challenge = (
        f'Bearer authorization_uri="{_LOGIN}", error="invalid_token", '
        f'error_description="{description}"'
    )
    return ArmError(401, code, message, headers={"WWW-Authenticate": challenge})


class BearerTokenCheck:
    """Accepts requests that carry ``Authorization: Bearer <token>`` with this one token."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the ARM simulator needs a token to accept")
        self._token = token.encode()

    def check(self, request: web.BaseRequest) -> None:
        """Refuse (401 :class:`ArmError`) a request without the token."""
        authorization = request.headers.get("Authorization")
        if authorization is None:
            raise _unauthorized(
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                "The authentication failed because of missing 'Authorization' header.",
            )
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized(
                "AuthenticationFailedInvalidHeader",
                "Authentication failed. The 'Authorization' header is provided in an invalid"
                " format.",
                "The authentication failed because of invalid 'Authorization' header.",
            )
        if not hmac.compare_digest(token.encode("utf-8", "surrogatepass"), self._token):
            raise _unauthorized(
                "InvalidAuthenticationToken",
                "The access token is invalid.",
                "The access token is invalid.",
            )
