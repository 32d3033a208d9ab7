"""How many data disks an Azure VM size takes (a small model of Azure's size table), for
batching the disks of several VMs onto one helper.

B, D, E, F (v2 and later) and A_v2 sizes take two data disks per vCPU, 32 at most (B1s
and B1ms: 2); the older D/DS sizes (D1_v2 ... D15_v2) have their own counts; M sizes 64.
A name this model does not read gets 4, the count of the smallest common sizes.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MAX_LUNS", "max_data_disks"]

#: LUNs 0-63: no VM size takes more data disks.
MAX_LUNS: Final = 64
_SIZE: Final = re.compile(r"^(?:standard|basic)_([a-z]+)(\d+)([a-z]*)(?:_v(\d+))?", re.I)
_OLD_D: Final = {1: 4, 2: 8, 3: 16, 4: 32, 5: 64, 11: 8, 12: 16, 13: 32, 14: 64, 15: 64}


def max_data_disks(vm_size: str) -> int:
    """The most data disks ``vm_size`` takes."""
    match = _SIZE.match(vm_size)
    if match is None:
        return 4
    family, number, version = match.group(1).lower(), int(match.group(2)), match.group(4)
    if family in ("d", "ds") and (version is None or int(version) <= 2):
        return _OLD_D.get(number, 8)
    if family == "m":
        return MAX_LUNS
    return max(2, min(2 * number, 32))
