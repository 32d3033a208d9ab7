"""Resource Manager (the compute control plane) through the real azure-mgmt-compute aio
client, pointed at Azure or at azrestore's emulator by the environment.

Environment (all optional; the emulator prints them):
- ``AZRESTORE_ARM_ENDPOINT``: Resource Manager's URL (default: Azure's public cloud);
- ``AZRESTORE_CA_BUNDLE``: a CA bundle to verify it with;
- ``AZRESTORE_ARM_TOKEN``: a static bearer token (otherwise DefaultAzureCredential);
- ``AZURE_SUBSCRIPTION_ID``: the subscription when a command does not name one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ControlPlaneError
from ..redact import redact_text
from .proxy import ProxySettings

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken
    from azure.core.credentials_async import AsyncTokenCredential

T = TypeVar("T")

ENDPOINT_ENV = "AZRESTORE_ARM_ENDPOINT"
CA_BUNDLE_ENV = "AZRESTORE_CA_BUNDLE"
TOKEN_ENV = "AZRESTORE_ARM_TOKEN"
SUBSCRIPTION_ENV = "AZURE_SUBSCRIPTION_ID"
#: Resource Manager in Azure's public cloud (azure-mgmt-*'s default base_url).
PUBLIC_ENDPOINT = "https://management.azure.com"


class StaticTokenCredential:
    """An AsyncTokenCredential that hands out one fixed token (the emulator's)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StaticTokenCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


@dataclass(frozen=True, slots=True)
class ArmSettings:
    """Where Resource Manager is and how to authenticate to it."""

    endpoint: str | None = None
    ca_bundle: str | None = None
    token: str | None = None
    subscription_id: str | None = None
    #: the forward proxies to reach Resource Manager (and managed disks' upload URLs)
    #: through; None: directly. The environment's proxy variables are not read here.
    proxy: ProxySettings | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ArmSettings:
        """The settings the variables of ``environ`` name (the command line passes the
        process environment; the library reads none)."""
        return cls(
            endpoint=environ.get(ENDPOINT_ENV) or None,
            ca_bundle=environ.get(CA_BUNDLE_ENV) or None,
            token=environ.get(TOKEN_ENV) or None,
            subscription_id=environ.get(SUBSCRIPTION_ENV) or None,
        )

    def credential(self) -> AsyncTokenCredential:
        if self.token:
            return StaticTokenCredential(self.token)
        from azure.identity.aio import DefaultAzureCredential

        return DefaultAzureCredential()

    def client_kwargs(self) -> dict[str, Any]:
        # A bulk restore meets ARM throttling (429) and passing 5xx more than azure-core's
        # default 3 status retries allow for; Retry-After is honoured either way.
        kwargs: dict[str, Any] = {"retry_total": 12, "retry_status": 10}
        if self.endpoint:
            kwargs["base_url"] = self.endpoint
        if self.ca_bundle:
            kwargs["connection_verify"] = self.ca_bundle
        # azure-core would read HTTPS_PROXY/NO_PROXY itself: the command line decides.
        kwargs["use_env_settings"] = False
        proxies = (
            self.proxy.azure_core_proxies(self.endpoint or PUBLIC_ENDPOINT) if self.proxy else {}
        )
        if proxies:
            kwargs["proxies"] = proxies
        return kwargs


async def arm_call(what: str, operation: Awaitable[T]) -> T:
    """Await one SDK call, translating azure-core's errors into ControlPlaneError once,
    here at the edge. ``what`` names the operation and resource for the message."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

    try:
        return await operation
    except ClientAuthenticationError as exc:
        raise ControlPlaneError(
            f"{what}: authentication failed: {_first_line(exc)}", code="AuthenticationFailed"
        ) from None
    except HttpResponseError as exc:
        code = exc.error.code if exc.error is not None else None
        message = exc.error.message if exc.error is not None else _first_line(exc)
        status = exc.status_code
        # A long-running operation that ends Failed is reported with its monitor's 200.
        shown = f"{status} " if status and status >= 400 else ""
        raise ControlPlaneError(
            f"{what}: {shown}{code or 'error'}: {redact_text(message or '')}",
            code=code,
            status=status,
        ) from None
    except AzureError as exc:
        raise ControlPlaneError(f"{what}: {_first_line(exc)}") from None


async def lro(what: str, begin: Awaitable[Any]) -> Any:
    """Start a long-running operation and wait for its result, errors translated."""
    poller = await arm_call(what, begin)
    return await arm_call(what, poller.result())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact_text(text[0]) if text else type(exc).__name__
