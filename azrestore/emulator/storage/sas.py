"""Shared access signatures: refuse a SAS outside its validity window as Azure does
(Azurite answers AuthorizationFailure instead), and let a hook refuse others (a revoked
managed disk's SAS)."""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from azrestore.emulator.storage.errors import CODE_MESSAGES, STATUS_ERRORS, Rejection

__all__ = [
    "SasCheck",
    "SasRefusal",
    "check_sas",
    "check_sas_window",
    "expired_sas_rejection",
    "http_date",
]


@dataclass(frozen=True)
class SasRefusal:
    """How to refuse a SAS request (see ``StorageGateway(sas_check=...)``)."""

    status: int = 403
    code: str = "AuthenticationFailed"
    message: str = STATUS_ERRORS[403][1]
    detail: str | None = None
    """Sent as ``AuthenticationErrorDetail`` in the XML error body."""


#: ``sas_check(operation, path, query)``: called for each request carrying a SAS (``sig``),
#: with the gateway's operation name, the URL path and the lower-cased query; a
#: :class:`SasRefusal` refuses the request, None lets it through.  Used by the Resource Manager
#: simulator to end a managed disk's SAS when its access is revoked.
SasCheck = Callable[[str, str, Mapping[str, str]], "SasRefusal | None"]


def check_sas(
    operation: str, path: str, query: Mapping[str, str], sas_check: SasCheck | None
) -> None:
    """Raise the :class:`Rejection` Azure gives a request whose SAS (if any) is not valid:
    outside its time window, or refused by ``sas_check``."""
    check_sas_window(query)
    if sas_check is not None and "sig" in query:
        refusal = sas_check(operation, path, query)
        if refusal is not None:
            raise Rejection(
                refusal.status,
                refusal.code,
                refusal.message,
                {"AuthenticationErrorDetail": refusal.detail} if refusal.detail else None,
            )


def expired_sas_rejection(detail: str) -> Rejection:
    """403 AuthenticationFailed with ``detail`` as ``AuthenticationErrorDetail``."""
    return Rejection(
        403,
        "AuthenticationFailed",
        CODE_MESSAGES["AuthenticationFailed"],
        {"AuthenticationErrorDetail": detail},
    )


def http_date(moment: datetime) -> str:
    """``moment`` as an HTTP date (RFC 9110), the way Azure writes SAS times in errors."""
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


def check_sas_window(query: Mapping[str, str]) -> None:
    """Refuse a SAS outside its validity window as Azure does (Azurite: AuthorizationFailure)."""
    if "sig" not in query:
        return
    now = datetime.now(UTC)
    start = _parse_sas_time(query["st"]) if "st" in query else None
    expiry = _parse_sas_time(query["se"]) if "se" in query else None
    if (expiry is not None and now > expiry) or (start is not None and now < start):
        start_text = http_date(start) if start else ""
        expiry_text = http_date(expiry) if expiry else ""
        raise expired_sas_rejection(
            f"Signed expiry time [{expiry_text}] must be after signed start time [{start_text}]"
            if expiry is not None and start is not None and expiry <= start
            else "Signature not valid in the specified time frame: "
            f"Start [{start_text}] - Expiry [{expiry_text}] - Current [{http_date(now)}]"
        )
