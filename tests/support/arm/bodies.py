"""Request bodies written as plain JSON dicts, typed as the SDK type an operation takes."""

from __future__ import annotations

from typing import TypeVar, cast

BodyT = TypeVar("BodyT")


def request_body(kind: type[BodyT], body: object) -> BodyT:
    """``body`` unchanged, typed as ``kind`` (a TypedDict of azure.mgmt.*.types, or a model).

    The tests send the JSON Azure documents, some of it built from keyword arguments or
    missing required keys on purpose, and the SDK serialises such dicts as they are. Its
    types cannot describe them: the TypedDicts that inherit (Disk, VirtualMachine,
    VirtualNetwork, Subnet, ...) lack ``total=False`` and so make every optional key
    required, and a model attribute such as ``StorageProfile.data_disks`` is typed as
    models only, though it takes dicts too.
    """
    return cast(BodyT, body)
