"""How many data disks a VM size takes: a small model of Azure's size table, enough to
refuse an update or create that attaches more (409 OperationNotAllowed, as Azure does).

B, D, E, F (v2 and later) and A_v2 sizes take two data disks per vCPU, 32 at most (B1s
and B1ms: 2); the older D/DS sizes (D1_v2 ... D15_v2) have their own counts; M sizes 64.

Trusted Launch: not on Basic, A and Av2 (Gen1 only), D and Dv2 without premium storage,
G/GS, and the first NC and NV; every other size takes it.
"""

from __future__ import annotations

import re
from typing import Final

from azrestore.emulator.arm.errors import ArmError

__all__ = ["check_data_disk_count", "max_data_disks", "trusted_launch_capable"]

_SIZE: Final = re.compile(r"^(?:standard|basic)_([a-z]+)(\d+)([a-z]*)(?:_v(\d+))?", re.I)
#: D1_v2 ... D15_v2 and DS1_v2 ... DS15_v2 (and their v1 names)
_OLD_D: Final = {1: 4, 2: 8, 3: 16, 4: 32, 5: 64, 11: 8, 12: 16, 13: 32, 14: 64, 15: 64}


def max_data_disks(vm_size: str) -> int:
    """The most data disks ``vm_size`` takes (4 for a name this model does not read)."""
    match = _SIZE.match(vm_size)
    if match is None:
        return 4
    family, number, version = match.group(1).lower(), int(match.group(2)), match.group(4)
    if family in ("d", "ds") and (version is None or int(version) <= 2):
        return _OLD_D.get(number, 8)
    if family == "m":
        return 64
    return max(2, min(2 * number, 32))


def check_data_disk_count(vm_size: str, count: int) -> None:
    """409 OperationNotAllowed when ``count`` data disks are more than the size takes."""
    limit = max_data_disks(vm_size)
    if count > limit:
        raise ArmError(
            409,
            "OperationNotAllowed",
            "The maximum number of data disks allowed to be attached to a VM of this size"
            f" is {limit}.",
        )


#: Families (the letters after ``Standard_``) with no Trusted Launch at any version ...
_NO_TL_FAMILIES: Final = frozenset({"a", "g", "gs"})
#: ... and those without it in their first versions (v1, v2; NC/NV: v1).
_NO_TL_OLD: Final = {"d": 2, "nc": 1, "nv": 1}


def trusted_launch_capable(vm_size: str) -> bool:
    """Whether a VM of ``vm_size`` may have securityType TrustedLaunch."""
    if vm_size.lower().startswith("basic_"):
        return False
    match = _SIZE.match(vm_size)
    if match is None:
        return True
    family, version = match.group(1).lower(), int(match.group(4) or 1)
    if family in _NO_TL_FAMILIES:
        return False
    return not (family in _NO_TL_OLD and not match.group(3) and version <= _NO_TL_OLD[family])
