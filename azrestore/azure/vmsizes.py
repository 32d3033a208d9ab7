"""How many data disks an Azure VM size takes (a small model of Azure's size table), for
batching the disks of several VMs onto one helper.

B, D, E, F (v2 and later) and A_v2 sizes take two data disks per vCPU, 32 at most (B1s
and B1ms: 2); the older D/DS sizes (D1_v2 ... D15_v2) have their own counts; M sizes 64.
A name this model does not read gets 4, the count of the smallest common sizes.

Trusted Launch (Gen2 with secure boot and vTPM) is refused by Azure on sizes that boot
only Gen1 and on a few families: Basic, A (A0-A11) and Av2, D and Dv2 (not DS/DSv2),
G/GS, and NV/NC of the first generation. Every other size this model reads takes it
(Azure's answer to the others: BadRequest "The VM size '...' is not supported for
creation of VMs and Virtual Machine Scale Set with 'TrustedLaunch' security type").
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MAX_LUNS", "max_data_disks", "supports_trusted_launch"]

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


_NO_TRUSTED_LAUNCH: Final = re.compile(
    r"^(?:basic_.*|standard_a\d+.*|standard_d\d+(?:_v2)?(?:_promo)?|standard_gs?\d+.*"
    r"|standard_n[cv]\d+(?:r|_promo)?)$",
    re.I,
)


def supports_trusted_launch(vm_size: str) -> bool:
    """Whether Azure creates a Trusted Launch VM of ``vm_size``."""
    return _NO_TRUSTED_LAUNCH.match(vm_size) is None
