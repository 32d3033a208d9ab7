"""The restore plan: a YAML file naming where to restore, the helper VMs, and the VMs.

Two stages:

* :func:`load_plan` reads and validates the file (sync, pure apart from reading it; no
  image is opened). Every problem is reported with the plan's name, the field's path and
  its line, e.g. ``plan.yaml: vms[1].disks[0].lun: required for a data disk (line 14)``,
  all of them at once, as one :class:`PlanError` (an :class:`~azrestore.errors.InputError`).
* :func:`resolve_plan` inspects every image and decides each VM's OS family and Hyper-V
  generation from its OS disk (see :mod:`~azrestore.restore.plan.decide`), then checks
  what needs those (helpers, size limits).

Keys (see :func:`example_plan` for a commented plan). Required: ``target.resource_group``,
``target.location``, and per VM ``name``, ``size`` and ``disks`` (each ``path`` and
``role``, and ``lun`` for a data disk). Optional, with their defaults:

* ``version: 1``; ``target.subscription`` (else ``AZURE_SUBSCRIPTION_ID``),
  ``target.subnet`` (else each VM's), ``target.disks: managed`` (or ``page-blob`` with
  ``target.storage_account`` and ``target.container: vhds``),
  ``target.disk_sku: StandardSSD_LRS`` (works with every VM size), ``target.tags``;
* ``proxy: {vm, idle_timeout: 300}``; ``helpers: {linux, windows}`` (VM ids);
* ``transfer: {concurrency: null, chunk_size: 4MiB, max_bandwidth: null, checksum: crc64}``
  (a null concurrency is found from the link), sizes as ``parse_size`` reads them
  (``4MiB``, ``200MB/s``);
* per VM: ``os: auto``, ``generation: auto``, ``resource_group``, ``subnet``,
  ``private_ip`` (a static IP on the NIC: Azure assigns it by DHCP), ``disk_sku``,
  ``tags``, ``power_on: true``, ``wait_for_agent: true`` (needs ``power_on``),
  ``prepare: true`` (run the helper's script; false for disks already made for Azure),
  ``security: auto`` with ``secure_boot`` and ``vtpm`` (Trusted Launch: see
  :mod:`.security`; ``target.security``/``secure_boot``/``vtpm`` are the run's default);
* per disk: ``name`` (default ``<vm>-osdisk`` / ``<vm>-data-lun<N>``), ``sku``, ``caching``.

The modules: :mod:`.schema` (the sections), :mod:`.document` (the whole plan and its
cross-section checks), :mod:`.load` (YAML, lines, wording), :mod:`.resolve` and
:mod:`.decide` (images to decisions), :mod:`.resolved` (the result).
"""

from __future__ import annotations

from .document import RestorePlan
from .example import example_plan
from .ids import parse_resource_id
from .load import load_plan, parse_plan
from .problems import PlanError
from .resolve import check_helpers, resolve_plan
from .resolved import ResolvedDisk, ResolvedPlan, ResolvedVm
from .schema import DiskSpec, Helpers, Proxy, Target, TransferSettings, VmSpec

__all__ = [
    "DiskSpec",
    "Helpers",
    "PlanError",
    "Proxy",
    "ResolvedDisk",
    "ResolvedPlan",
    "ResolvedVm",
    "RestorePlan",
    "Target",
    "TransferSettings",
    "VmSpec",
    "check_helpers",
    "example_plan",
    "load_plan",
    "parse_plan",
    "parse_resource_id",
    "resolve_plan",
]
