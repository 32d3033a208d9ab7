"""Each VM's OS family and Hyper-V generation, from what its OS disk's partition table
shows (:func:`~azrestore.formats.os_disk.os_disk_kind`) and what the plan says. Where the
table does not tell and the plan says ``auto``, it is a problem asking the user to say.

* ``generation: auto`` follows the OS disk's firmware: an EFI system partition (GPT, or
  MBR type 0xEF) means UEFI, hence V2; an MBR with an active partition or boot code, or a
  GPT with a BIOS boot partition, means BIOS, hence V1. When neither shows, it is an error
  asking for ``generation``.
* A forced generation the disk cannot boot with is refused with the reason, never
  converted: V1 on a disk that boots only with UEFI, V2 on one that boots only with BIOS.
  A disk set up for both (ESP and BIOS boot partition) takes either. Forcing one on a disk
  whose firmware cannot be told is allowed, with a warning.
* ``os: auto`` takes the family the partitions show (see
  :mod:`azrestore.formats.partitions`); when they show none it is an error asking for
  ``os``. Forcing a family that contradicts a clear detection is a warning, not an error:
  the user may know better (e.g. an encrypted or unusual layout), and the family only
  chooses the helper, the preparation script and the disk's ``os_type``.
"""

from __future__ import annotations

from ...formats.layout import DiskLayout
from ...formats.os_disk import OsDiskKind
from ...sources.report import ImageReport
from .document import RestorePlan
from .fields import Generation, OsFamily
from .problems import Loc, format_loc
from .schema import VmSpec


def describe(layout: DiskLayout) -> str:
    """``GPT: EFI system partition (fat32), Linux filesystem (ext4)`` and the like."""
    if not layout.partitions:
        return f"{layout.scheme.upper()} with no partitions"
    parts = ", ".join(
        p.type_name + (f" ({p.filesystem})" if p.filesystem else "") for p in layout.partitions
    )
    return f"{layout.scheme.upper()}: {parts}"


def decide_family(
    plan: RestorePlan,
    loc: Loc,
    vm: VmSpec,
    report: ImageReport,
    kind: OsDiskKind,
    problems: list[str],
    warnings: list[str],
) -> OsFamily | None:
    """The VM's OS family; None after adding the problem when it cannot be told."""
    detected = kind.family
    if vm.os == "auto":
        if detected is None:
            problems.append(
                plan.problem(
                    (*loc, "os"),
                    f"cannot tell the OS family of {report.path} ({describe(report.layout)});"
                    " set os: linux or os: windows",
                )
            )
        return detected
    if detected is not None and detected != vm.os:
        warnings.append(
            f"{plan.source}: {format_loc((*loc, 'os'))}: set to {vm.os}, but {report.path}"
            f" looks like {detected} ({describe(report.layout)}); going with {vm.os}"
        )
    return vm.os


def decide_generation(
    plan: RestorePlan,
    loc: Loc,
    vm: VmSpec,
    report: ImageReport,
    kind: OsDiskKind,
    problems: list[str],
    warnings: list[str],
) -> Generation | None:
    """The VM's generation; None after adding the problem when it cannot be told, or
    when the plan forces one the disk cannot boot with."""
    layout = report.layout
    where = (*loc, "generation")
    if vm.generation == "auto":
        if kind.generation is None:
            problems.append(
                plan.problem(
                    where,
                    f"cannot tell whether {report.path} boots with UEFI or BIOS"
                    f" ({describe(layout)}: no EFI system partition, no active partition,"
                    " no boot code); set generation: V2 (UEFI) or V1 (BIOS)",
                )
            )
        return kind.generation
    wanted, needs, has = ("V1", "BIOS", "UEFI") if vm.generation == "V1" else ("V2", "UEFI", "BIOS")
    can_boot, other = (
        (kind.boots_bios, kind.boots_uefi)
        if vm.generation == "V1"
        else (kind.boots_uefi, kind.boots_bios)
    )
    if can_boot:
        return vm.generation
    if other:
        missing = (
            "no active partition, BIOS boot partition or boot code"
            if wanted == "V1"
            else "no EFI system partition"
        )
        problems.append(
            plan.problem(
                where,
                f"{wanted} VMs boot with {needs}, but {report.path} boots with {has}"
                f" ({describe(layout)}; {missing}), so it would not start. azrestore does"
                " not convert boot loaders and Azure cannot change a disk's generation"
                f" later: use generation: {'V2' if wanted == 'V1' else 'V1'} (or auto)",
            )
        )
        return None
    warnings.append(
        f"{plan.source}: {format_loc(where)}: {wanted} as the plan says; the partition"
        f" table of {report.path} does not show whether it boots with {needs}"
    )
    return vm.generation
