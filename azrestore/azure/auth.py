"""How a blob URL is authorised: its own SAS, an account key, or Azure AD."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from ..errors import InputError
from .blobnames import BlobUrl, parse_blob_url

STORAGE_SCOPE = "https://storage.azure.com/.default"
#: Lifetime of a SAS we sign ourselves from an account key.
_SIGNED_SAS_LIFETIME = timedelta(days=7)


class BlobAuth(Protocol):
    """Adds credentials to a request: a SAS query string or an Authorization header."""

    query: str

    async def headers(self) -> dict[str, str]: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class SasAuth:
    """The SAS token travels in the query string; nothing in the headers."""

    query: str

    async def headers(self) -> dict[str, str]:
        return {}

    async def aclose(self) -> None:
        return None


class BearerAuth:
    """Azure AD through DefaultAzureCredential; the token is cached until near expiry."""

    query = ""

    def __init__(self) -> None:
        from azure.identity.aio import DefaultAzureCredential

        self._credential = DefaultAzureCredential()
        self._token = ""
        self._expires = 0.0

    async def headers(self) -> dict[str, str]:
        if time.time() > self._expires - 300:
            from azure.core.exceptions import ClientAuthenticationError

            try:
                token = await self._credential.get_token(STORAGE_SCOPE)
            except ClientAuthenticationError as exc:
                raise InputError(
                    "no SAS token in the URL, no account key, and Azure AD sign-in failed:"
                    f" {str(exc).splitlines()[0]}"
                ) from None
            self._token, self._expires = token.token, float(token.expires_on)
        return {"Authorization": f"Bearer {self._token}"}

    async def aclose(self) -> None:
        await self._credential.close()


def parse_connection_string(text: str) -> dict[str, str]:
    """``Key=Value;...`` into a dict (keys as written). Values may contain '='."""
    fields: dict[str, str] = {}
    for part in text.split(";"):
        if part.strip():
            key, sep, value = part.partition("=")
            if not sep:
                raise InputError("connection string is malformed (expected Key=Value;...)")
            fields[key.strip()] = value.strip()
    return fields


def blob_url_of(url: str, connection_string: str | None = None) -> BlobUrl:
    """The blob ``url`` names, its container and blob names checked against Azure's rules
    (an :class:`InputError` before any request otherwise). A path-style URL is split at
    the connection string's ``BlobEndpoint`` when it has one."""
    endpoint = None
    if connection_string:
        endpoint = parse_connection_string(connection_string).get("BlobEndpoint")
    return parse_blob_url(url, endpoint)


def resolve_auth(url: str, connection_string: str | None) -> tuple[str, BlobAuth]:
    """Pick the credentials for ``url``: returns the URL without query (its names
    percent-encoded as the SDK does, see :mod:`.blobnames`) and the auth.

    Order: a SAS already in the URL; else an account key or SAS from ``connection_string``
    (for an account key we sign a short-lived blob SAS); else Azure AD
    (DefaultAzureCredential). The environment is not read here: the command line passes
    AZURE_STORAGE_CONNECTION_STRING in as ``connection_string``. Names Azure would refuse
    are an :class:`InputError` here, before any request.
    """
    blob = blob_url_of(url, connection_string)
    bare = blob.url
    if "sig=" in blob.query:
        return bare, SasAuth(blob.query)
    if connection_string:
        fields = parse_connection_string(connection_string)
        if sas := fields.get("SharedAccessSignature"):
            return bare, SasAuth(sas.lstrip("?"))
        name, key = fields.get("AccountName"), fields.get("AccountKey")
        if not name or not key:
            raise InputError("connection string has neither AccountName/AccountKey nor a SAS")
        netloc = urlsplit(bare).netloc
        in_account = netloc.startswith(f"{name}.") or blob.account_url.endswith(f"/{name}")
        if fields.get("BlobEndpoint") is None and not in_account:
            raise InputError(f"{bare}: not in the connection string's account {name!r}")
        return bare, SasAuth(_sign_blob_sas(name, key, blob.container, blob.blob))
    return bare, BearerAuth()


def _sign_blob_sas(account: str, key: str, container: str, blob: str) -> str:
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    now = datetime.now(UTC)
    return generate_blob_sas(
        account,
        container,
        blob,
        account_key=key,
        permission=BlobSasPermissions(read=True, write=True, create=True),
        start=now - timedelta(minutes=5),
        expiry=now + _SIGNED_SAS_LIFETIME,
    )
