"""Resource Manager error answers: ``{"error": {"code": ..., "message": ...}}`` with Azure's codes.

Where a wording is quoted from a recorded Azure answer the helper says so; the others follow
Azure's usual phrasing (see the package docstring for the list and the sources).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["ArmError"]

ARM_NOT_FOUND_FIX: Final = "For more details please go to https://aka.ms/ARMResourceNotFoundFix"
CONCURRENT_REQUEST: Final = (
    "The request failed due to conflict with a concurrent request. To resolve it, please refer "
    "to https://aka.ms/activitylog to get more details on the conflicting requests."
)


class ArmError(Exception):
    """An ARM error answer: HTTP ``status`` with ``{"error": {"code", "message", ...}}``.

    Raised by request handlers (answered at once) and by long-running operations (the status
    monitor then reports ``Failed`` with this error, and the ``Location`` URL answers
    ``status`` with it).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        details: tuple[ArmError, ...] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.details = details
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The inner ``error`` object."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target is not None:
            error["target"] = self.target
        if self.details:
            error["details"] = [detail.body() for detail in self.details]
        return error


# -- common answers ---------------------------------------------------------------------------


def resource_not_found(resource_type: str, name: str, resource_group: str) -> ArmError:
    """404 ResourceNotFound, worded as ARM words it (recorded answers)."""
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{resource_type}/{name}' under resource group '{resource_group}' "
        f"was not found. {ARM_NOT_FOUND_FIX}",
    )


def missing_parameter(path: str) -> ArmError:
    """400 InvalidParameter for a required property that is absent."""
    return ArmError(
        400,
        "InvalidParameter",
        f"Required parameter '{path}' is missing (null).",
        target=path,
    )


def invalid_parameter(path: str, message: str) -> ArmError:
    """400 InvalidParameter for a property with a wrong value."""
    return ArmError(400, "InvalidParameter", message, target=path)


def concurrent_conflict() -> ArmError:
    """409 Conflict for a write racing another write on the same resource (recorded answer,
    e.g. two disk attachments PUT at once on one VM)."""
    return ArmError(409, "Conflict", CONCURRENT_REQUEST)


def internal_execution_error() -> ArmError:
    """The generic failure of a long-running Compute operation."""
    return ArmError(
        500, "InternalExecutionError", "An internal execution error occurred. Please retry later."
    )
