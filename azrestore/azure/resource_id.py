"""Azure resource ids: ``/subscriptions/S/resourceGroups/RG/providers/NS/TYPE/NAME``, and
below a top-level resource its children (``.../virtualNetworks/vnet/subnets/default``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InputError

_RESOURCE_ID = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"/providers/(?P<namespace>[^/]+)/(?P<path>.+)$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ResourceId:
    """A parsed Azure resource id. ``types`` and ``names`` pair up below the provider:
    ``("virtualNetworks", "subnets")`` and ``("vnet", "default")`` for a subnet."""

    subscription: str
    resource_group: str
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def name(self) -> str:
        """The resource's own name (the last one in the id)."""
        return self.names[-1]

    @property
    def resource_type(self) -> str:
        """The full type, e.g. ``Microsoft.Network/virtualNetworks/subnets``."""
        return "/".join((self.namespace, *self.types))

    def is_type(self, resource_type: str) -> bool:
        """Whether this id is of ``resource_type``, case-insensitively as Azure compares."""
        return self.resource_type.lower() == resource_type.lower()

    @classmethod
    def split(cls, text: str) -> ResourceId | None:
        """The parts of ``text``, or None when it is not shaped like a resource id (every
        type followed by a name). Checks the shape only: not the type, the subscription
        or the resource group."""
        match = _RESOURCE_ID.match(text)
        if not match:
            return None
        path = match["path"].split("/")
        if len(path) % 2 or not all(path):
            return None
        return cls(
            match["subscription"],
            match["group"],
            match["namespace"],
            tuple(path[0::2]),
            tuple(path[1::2]),
        )

    @classmethod
    def parse(cls, text: str, *, expected: str) -> ResourceId:
        """Parse the id of a top-level resource of type ``expected``
        (``Microsoft.Compute/disks``). Raises :class:`~azrestore.errors.InputError`."""
        rid = cls.split(text.strip())
        if rid is None or len(rid.types) != 1:
            shape = f"/subscriptions/SUB/resourceGroups/RG/providers/{expected}/NAME"
            raise InputError(f"{text}: not a resource id (expected {shape})")
        if not rid.is_type(expected):
            raise InputError(f"{text}: not a {expected} resource id")
        return rid

    def __str__(self) -> str:
        path = "/".join(f"{kind}/{name}" for kind, name in zip(self.types, self.names, strict=True))
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/{self.namespace}/{path}"
        )
