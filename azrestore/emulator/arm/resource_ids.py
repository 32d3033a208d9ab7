"""Resource ids as the simulator, the server side, builds and reads them.

These are the emulator's own on purpose: the client parses ids with its own code
(:func:`azrestore.restore.plan.parse_resource_id`), and the simulator must not share it, or a
bug in that parser would be judged by itself and could never show in an emulator test.
"""

from __future__ import annotations

import uuid

__all__ = [
    "arm_id",
    "id_key",
    "location_key",
    "new_id",
    "resource_id_segments",
]


def arm_id(subscription: str, resource_group: str, namespace: str, *parts: str) -> str:
    """``/subscriptions/S/resourceGroups/RG/providers/NS/type/name[/type/name...]``."""
    tail = "/".join(parts)
    group = f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
    return f"{group}/providers/{namespace}/{tail}"


def resource_id_segments(resource_id: str) -> dict[str, str]:
    """The name after each segment of a resource id, by lower-case segment name
    (``subscriptions``, ``resourcegroups``, ``providers``, then each ``type`` -> name).

    The server side's reading of an id that a request refers to (a disk or subnet by id);
    separate from the client's parser, see the module docstring.
    """
    segments = [s for s in resource_id.strip("/").split("/") if s]
    parts: dict[str, str] = {}
    for index in range(0, len(segments) - 1, 2):
        parts[segments[index].lower()] = segments[index + 1]
    return parts


def location_key(location: str) -> str:
    """ARM's normalised location name (``West US`` -> ``westus``)."""
    return location.replace(" ", "").lower()


def new_id() -> str:
    """A new lower-case GUID."""
    return str(uuid.uuid4())


def id_key(resource_id: str) -> str:
    """Resource ids are case-insensitive in ARM: the dictionary key of one."""
    return resource_id.rstrip("/").lower()
