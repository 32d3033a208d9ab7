"""How a helper's batch is chosen: which waiting VMs it takes (as many as its free data
disk slots hold, first come first served) and at which LUNs their disks attach.

Pure functions over counts and LUN numbers; :mod:`.prepare` drives them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from ..azure.vmsizes import MAX_LUNS, max_data_disks

__all__ = ["allocate_luns", "free_slots", "take_batch"]


def free_slots(vm_size: str, own_luns: Collection[int]) -> int:
    """How many more data disks a helper of ``vm_size`` with its own data disks at
    ``own_luns`` takes (never below 0)."""
    return max(0, min(max_data_disks(vm_size), MAX_LUNS) - len(own_luns))


def take_batch(sizes: Sequence[int], slots: int) -> list[int]:
    """The indexes of ``sizes`` (disks per waiting VM, in arrival order) a batch of at
    most ``slots`` disks takes: first fit, in order (a VM too big for what is left is
    passed over for a smaller one behind it)."""
    taken: list[int] = []
    left = slots
    for index, size in enumerate(sizes):
        if 0 < size <= left:
            taken.append(index)
            left -= size
    return taken


def allocate_luns(counts: Sequence[int], used: Collection[int]) -> list[list[int]]:
    """Distinct free LUNs (0-63, lowest first, none of ``used``) for each of ``counts``
    disks. Raises ValueError when there are not enough."""
    free = [lun for lun in range(MAX_LUNS) if lun not in set(used)]
    if sum(counts) > len(free):
        raise ValueError(f"{sum(counts)} disks, {len(free)} free LUNs")
    result: list[list[int]] = []
    for count in counts:
        result.append(free[:count])
        free = free[count:]
    return result
