"""What every resource record has: its id and place, its tags, the properties the simulator
does not model, and the one long-running operation at a time that may work on it."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from azrestore.emulator.arm.state.operations import Operation

__all__ = ["ResourcePlace", "ResourceRecord"]


class ResourcePlace(TypedDict):
    """The fields every resource's view starts with."""

    id: str
    name: str
    resource_group: str
    location: str


@dataclass
class ResourceRecord:
    """A resource that one long-running operation at a time may be working on (for a VM:
    not counting run commands, which have their own slot)."""

    id: str
    name: str
    subscription: str
    resource_group: str
    location: str
    tags: dict[str, str]
    pending: Operation | None = field(default=None, kw_only=True)
    extra: dict[str, Any] = field(default_factory=dict, kw_only=True)
    """Request properties the simulator does not model, echoed back (encryption, ...)."""

    @property
    def busy(self) -> bool:
        """Whether the resource's operation is in progress."""
        return self.pending is not None and self.pending.running

    def echo_unmodelled(self, properties: Mapping[str, Any], modelled: Collection[str]) -> None:
        """Keep (over older ones) the request's properties not in ``modelled``, to echo back."""
        for name, value in properties.items():
            if name not in modelled:
                self.extra[name] = value

    def place(self) -> ResourcePlace:
        """The id and place its view starts with."""
        return ResourcePlace(
            id=self.id, name=self.name, resource_group=self.resource_group, location=self.location
        )
