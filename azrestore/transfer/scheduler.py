"""Many disks in one run, under one :class:`TransferBudget`.

:func:`upload_many` runs every job at once in one task group. They share the budget's
request slots (handed out first come, first served, which is round robin among disks: see
:mod:`azrestore.transfer.budget`), its chunk buffers and its bandwidth cap, so memory and
requests in flight stay within the budget whatever the number of disks, and a small disk
finishes early rather than queueing behind a large one. A disk that fails is reported in
its :class:`DiskOutcome` and the others go on; cancellation (Ctrl-C) stops them all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import anyio

from ..errors import AzRestoreError
from ..sources.base import DiskSource
from ..sources.open import open_source
from .budget import TransferBudget
from .config import TransferConfig
from .pipeline import upload_disk
from .progress import ProgressCallback, TransferResult
from .resume import ResumeOptions
from .sink import PageSink, ReadableTarget
from .verify import VerifyProgress, VerifyResult, verify_disk

#: Disks open at once in :func:`upload_many` (file descriptors, extent lists); far more
#: than the requests in flight, so small disks are rarely kept waiting by large ones.
MAX_ACTIVE_DISKS = 256
#: A sink, or a factory of one (opened when the job starts, closed when it ends).
SinkSpec = PageSink | Callable[[], AbstractAsyncContextManager[PageSink]]


@dataclass(frozen=True, slots=True)
class UploadJob:
    """One disk of a bulk upload: its source, where it goes, and its progress callback.

    ``source`` is a file (of any format) or an NBD URL; ``format`` forces its format (one
    of :data:`~azrestore.sources.base.FORMATS`; None: found from the source).

    ``sink`` is an open :class:`PageSink` or a callable returning an async context manager
    that yields one (such as ``functools.partial(open_page_blob, url, session=...)``), so
    that nothing is opened for a disk before its turn. ``name`` labels the disk in results.
    """

    source: str | os.PathLike[str]
    sink: SinkSpec
    name: str = ""
    on_progress: ProgressCallback | None = None
    on_verify_progress: VerifyProgress | None = None
    format: str | None = None

    @property
    def label(self) -> str:
        return self.name or str(self.source)


@dataclass(slots=True)
class DiskOutcome:
    """What happened to one disk: its transfer result (and verification), or its error."""

    job: UploadJob
    result: TransferResult | None = None
    verify: VerifyResult | None = None
    error: Exception | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and (self.verify is None or self.verify.identical)

    @property
    def exit_code(self) -> int:
        """0 done (and identical, if verified); the error's code; 1 differences found."""
        if self.error is not None:
            return self.error.exit_code if isinstance(self.error, AzRestoreError) else 1
        return 0 if self.ok else 1


async def upload_many(
    jobs: Sequence[UploadJob],
    *,
    config: TransferConfig | None = None,
    budget: TransferBudget | None = None,
    resume: ResumeOptions | None = None,
    verify: bool = False,
    on_outcome: Callable[[DiskOutcome], None] | None = None,
    max_active: int = MAX_ACTIVE_DISKS,
) -> list[DiskOutcome]:
    """Upload every job's image concurrently under one budget; outcomes in job order.

    ``budget`` defaults to one made from ``config`` (its concurrency, chunk size and
    bandwidth shared by all disks). ``resume`` gives every disk a journal (see
    :class:`ResumeOptions`), ``verify`` reads each disk back once uploaded.
    ``on_outcome`` is called as each disk ends. Errors of one disk (any ``Exception``)
    land in its outcome; cancellation stops all disks and propagates. At most
    ``max_active`` disks are open at once (each holds file descriptors and its extent list;
    buffers and requests are bounded by the budget anyway); the rest wait in job order.
    """
    config = config or TransferConfig()
    budget = budget or TransferBudget.from_config(config)
    budget.check(config)
    outcomes = [DiskOutcome(job) for job in jobs]
    active = anyio.CapacityLimiter(max_active)

    async def run(outcome: DiskOutcome) -> None:
        try:
            async with active:
                await _run_job(outcome, config, budget, resume, verify)
        except Exception as exc:  # one disk's failure is its own; the others go on
            outcome.error = exc
        if on_outcome is not None:
            on_outcome(outcome)

    async with anyio.create_task_group() as tasks:
        for outcome in outcomes:
            tasks.start_soon(run, outcome)
    return outcomes


async def _run_job(
    outcome: DiskOutcome,
    config: TransferConfig,
    budget: TransferBudget,
    resume: ResumeOptions | None,
    verify: bool,
) -> None:
    job = outcome.job
    image = await open_source(job.source, image_format=job.format)
    try:
        if isinstance(job.sink, PageSink):
            await _transfer(outcome, image, job.sink, config, budget, resume, verify)
        else:
            async with job.sink() as sink:
                await _transfer(outcome, image, sink, config, budget, resume, verify)
    finally:
        image.close()


async def _transfer(
    outcome: DiskOutcome,
    image: DiskSource,
    sink: PageSink,
    config: TransferConfig,
    budget: TransferBudget,
    resume: ResumeOptions | None,
    verify: bool,
) -> None:
    job = outcome.job
    outcome.result = await upload_disk(
        image, sink, config=config, on_progress=job.on_progress, budget=budget, resume=resume
    )
    if verify:
        if not isinstance(sink, ReadableTarget):
            raise TypeError(f"{sink.description}: this target cannot be read back to verify")
        outcome.verify = await verify_disk(
            image, sink, config=config, budget=budget, on_progress=job.on_verify_progress
        )
