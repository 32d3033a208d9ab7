"""What the kernel knows of a block device between two runs of an upload (Linux sysfs).

A block device's node has no useful modification time, so a device is known by:

- its device number (``major:minor``);
- the machine's boot (``/proc/sys/kernel/random/boot_id``): the counters below start
  again at each boot, so a device is never resumed across a restart;
- the kernel's disk sequence number (``/sys/dev/block/M:m/diskseq``, Linux 5.15+; a
  partition's is its disk's): a new one each time a disk is attached (a loop device
  set up again) or its medium changes;
- the sectors written and discarded through the device since boot (fields 7 and 14 of
  ``/sys/dev/block/M:m/stat``): any write through this device moves them.

A value the system does not show is None, and then it cannot tell anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

#: Where sysfs and procfs are (tests point these elsewhere).
SYS = "/sys"
PROC = "/proc"
#: Indexes in ``/sys/dev/block/M:m/stat`` (Documentation/block/stat.rst).
_WRITE_SECTORS = 6
_DISCARD_SECTORS = 13


@dataclass(frozen=True, slots=True)
class BlockState:
    """A block device's number, the boot, its disk sequence number and the sectors
    written or discarded through it since boot."""

    rdev: str
    boot_id: str | None
    diskseq: int | None
    sectors_written: int | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BlockState:
        if not isinstance(data, dict):
            raise TypeError("the source's block device state is not a mapping")
        return cls(
            rdev=str(data["rdev"]),
            boot_id=_optional_str(data.get("boot_id")),
            diskseq=_optional_int(data.get("diskseq")),
            sectors_written=_optional_int(data.get("sectors_written")),
        )

    def differences(self, now: BlockState) -> list[str]:
        """What differs between ``self`` (recorded) and ``now``, in words."""
        if self.rdev != now.rdev:
            return [f"is another device ({now.rdev}, was {self.rdev})"]
        if self.boot_id != now.boot_id:
            return [
                "was modified, or may have been: the machine was restarted since, and a"
                " device's writes are only counted within one boot"
            ]
        found = []
        if self.diskseq != now.diskseq:
            found.append(
                f"is another disk (disk sequence number {now.diskseq}, was {self.diskseq}:"
                " attached again or its medium changed)"
            )
        if self.sectors_written != now.sectors_written:
            found.append(
                "was modified (sectors written or discarded through the device since:"
                f" {now.sectors_written}, were {self.sectors_written})"
            )
        return found


def block_state(rdev: int) -> BlockState:
    """The state of the block device numbered ``rdev`` (blocking: reads sysfs)."""
    number = f"{os.major(rdev)}:{os.minor(rdev)}"
    directory = os.path.join(SYS, "dev", "block", number)
    disk = directory
    if os.path.exists(os.path.join(directory, "partition")):
        disk = os.path.dirname(os.path.realpath(directory))
    return BlockState(
        rdev=number,
        boot_id=_read(os.path.join(PROC, "sys", "kernel", "random", "boot_id")),
        diskseq=_optional_int(_read(os.path.join(disk, "diskseq"))),
        sectors_written=_sectors_written(_read(os.path.join(directory, "stat"))),
    )


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read(4096).strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _sectors_written(text: str | None) -> int | None:
    fields = (text or "").split()
    try:
        written = int(fields[_WRITE_SECTORS])
    except (IndexError, ValueError):
        return None
    try:
        discarded = int(fields[_DISCARD_SECTORS])
    except (IndexError, ValueError):
        discarded = 0  # kernels before 4.18 show no discards
    return written + discarded


def _optional_int(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"not an integer: {value!r}")
    try:
        return int(value)
    except ValueError:
        return None


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)
