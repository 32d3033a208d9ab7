"""Each VM's security type: Trusted Launch (secure boot and a virtual TPM) or Standard, from
the plan's ``security``, ``secure_boot`` and ``vtpm`` (per VM, else the target's), the VM's
generation and size, and its OS disk's boot chain
(:mod:`~azrestore.formats.boot_chain`).

* ``security: auto`` (the default) is Trusted Launch, as Azure creates new Gen2 VMs, for a
  V2 disk on a size that supports it (:func:`~azrestore.azure.vmsizes.supports_trusted_launch`),
  with secure boot only when the disk's boot chain is signed, and the vTPM on; Standard
  for a V1 disk or another size.
* ``security: trusted_launch`` forces it: refused on a V1 disk or a size without it.
* ``security: standard``: neither; ``secure_boot`` or ``vtpm`` true with it is refused.
* ``secure_boot: true`` is refused when the boot chain is not signed, or cannot be told
  (no EFI system partition, no ``\\EFI\\BOOT\\BOOTX64.EFI``): the VM would not boot.
  ``secure_boot: false`` and ``vtpm: false`` turn them off in a Trusted Launch VM.

Every refusal names the VM and the field, before anything is created (what Azure would
refuse, or a VM that would not boot).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ...azure.vmsizes import supports_trusted_launch
from ...formats.boot_chain import BootChain
from .document import RestorePlan
from .fields import Generation
from .problems import Loc
from .schema import VmSpec

SecurityType = Literal["TrustedLaunch", "Standard"]


@dataclass(frozen=True, slots=True)
class SecurityChoice:
    """What a VM is created as, and why (in words, for the dry run and the report)."""

    security_type: SecurityType = "Standard"
    secure_boot: bool = False
    vtpm: bool = False
    reason: str = ""

    @property
    def trusted_launch(self) -> bool:
        return self.security_type == "TrustedLaunch"

    def describe(self) -> str:
        """``Trusted Launch (secure boot on, vTPM on)`` or ``Standard``."""
        if not self.trusted_launch:
            return "Standard"
        on = {True: "on", False: "off"}
        return f"Trusted Launch (secure boot {on[self.secure_boot]}, vTPM {on[self.vtpm]})"

    def to_json(self) -> dict[str, Any]:
        return {
            "security_type": self.security_type,
            "secure_boot": self.secure_boot,
            "vtpm": self.vtpm,
            "reason": self.reason,
        }


#: A Standard VM, chosen by nobody (the default of a resolved VM made without a plan).
STANDARD = SecurityChoice()


def decide_security(
    plan: RestorePlan,
    loc: Loc,
    vm: VmSpec,
    generation: Generation,
    chain: BootChain,
    problems: list[str],
) -> SecurityChoice | None:
    """The VM's security choice; None after adding the problems of a refused request."""
    target = plan.target

    def field(name: str) -> tuple[Any, Loc]:
        own = getattr(vm, name)
        if own is not None:
            return own, (*loc, name)
        return getattr(target, name), ("target", name)

    mode, mode_loc = field("security")
    secure_boot, boot_loc = field("secure_boot")
    vtpm, vtpm_loc = field("vtpm")
    before = len(problems)

    def refuse(where: Loc, message: str) -> None:
        problems.append(plan.problem(where, f"VM {vm.name}: {message}"))

    chain_text = f"boot chain {chain.summary}"
    if mode == "standard":
        for value, where, name in (
            (secure_boot, boot_loc, "secure_boot"),
            (vtpm, vtpm_loc, "vtpm"),
        ):
            if value:
                refuse(
                    where, f"{name}: true needs security: trusted_launch (or auto), not standard"
                )
        if len(problems) > before:
            return None
        return SecurityChoice("Standard", reason="security: standard")
    blocker = None
    if generation != "V2":
        blocker = "Trusted Launch needs a generation V2 (UEFI) disk, and this one is V1 (BIOS)"
    elif not supports_trusted_launch(vm.size):
        blocker = f"the VM size {vm.size} does not support Trusted Launch"
    if blocker is not None:
        if mode == "trusted_launch":
            refuse(mode_loc, f"{blocker}; use security: standard (or auto)")
        for value, where, name in (
            (secure_boot, boot_loc, "secure_boot"),
            (vtpm, vtpm_loc, "vtpm"),
        ):
            if value:
                refuse(where, f"{name}: true needs Trusted Launch, but {blocker}")
        if len(problems) > before:
            return None
        return SecurityChoice("Standard", reason=f"auto: {blocker}")
    if secure_boot and chain.signed is not True:
        refuse(
            boot_loc,
            f"secure_boot: true, but the OS disk's {chain_text}: the VM would not boot"
            " (leave secure_boot out, or false, for Trusted Launch without it)",
        )
        return None
    boot = chain.signed is True if secure_boot is None else bool(secure_boot)
    tpm = True if vtpm is None else bool(vtpm)
    why = f"{mode}: Gen2 on {vm.size}; {chain_text}"
    if secure_boot is None and not boot:
        why += ", so secure boot is off"
    return SecurityChoice("TrustedLaunch", secure_boot=boot, vtpm=tpm, reason=why)
