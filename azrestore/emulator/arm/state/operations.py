"""Long-running operation records and their views."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from azrestore.emulator.arm.errors import ArmError

__all__ = ["Operation", "OperationStatus", "OperationView"]

OperationStatus = Literal["InProgress", "Succeeded", "Failed"]


@dataclass(frozen=True)
class OperationView:
    """One long-running operation."""

    id: str
    name: str
    resource_id: str
    status: str
    started: datetime
    ended: datetime | None
    error_code: str | None
    error_message: str | None


@dataclass
class Operation:
    """A long-running operation and its monitor."""

    id: str
    name: str
    resource_id: str
    location: str
    namespace: str
    monitor_kind: str
    """URL segment of the monitor: ``operations`` or ``DiskOperations``."""
    api_version: str
    started: datetime
    retry_after: float
    status: OperationStatus = "InProgress"
    ended: datetime | None = None
    error: ArmError | None = None
    result: Any = None
    """The body the Location URL answers once done (AccessUri, RunCommandResult) or None."""
    has_output: bool = False

    @property
    def running(self) -> bool:
        """Whether the operation is still in progress."""
        return self.status == "InProgress"

    def view(self) -> OperationView:
        """A frozen snapshot."""
        return OperationView(
            id=self.id,
            name=self.name,
            resource_id=self.resource_id,
            status=self.status,
            started=self.started,
            ended=self.ended,
            error_code=self.error.code if self.error else None,
            error_message=self.error.message if self.error else None,
        )
