"""Live progress for uploads and conversions, and the one-line summaries.

The callbacks run on the event loop thread, possibly thousands of times a second, so they
only keep the latest numbers. Rich's refresh thread pulls those numbers ~10 times a second
and does all the drawing; nothing is drawn when the console is not a terminal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text

from ..formats.sizes import format_size
from ..redact import redact_url
from ..transfer.convert import ConvertResult
from ..transfer.progress import ProgressCallback, ProgressEvent, TransferResult, TransferStats
from .text import convert_summary

if TYPE_CHECKING:
    from ..transfer.scheduler import DiskOutcome
    from ..transfer.verify import VerifyResult

_REFRESH_PER_SECOND = 10


class _RateColumn(ProgressColumn):
    """Progress rate in binary units (rich's own column uses decimal ones)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(
            "?/s" if speed is None else f"{format_size(speed)}/s", style="progress.data.speed"
        )


class _Owner(Protocol):
    def sync(self) -> None: ...


class _PullProgress(Progress):
    """A Progress that asks its owner for fresh numbers right before each redraw."""

    def __init__(self, owner: _Owner, *columns: str | ProgressColumn, console: Console) -> None:
        self._owner = owner  # before Progress.__init__, which may render already
        super().__init__(
            *columns,
            console=console,
            refresh_per_second=_REFRESH_PER_SECOND,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def get_renderable(self) -> RenderableType:
        self._owner.sync()
        return super().get_renderable()


class _LiveBar:
    """One progress bar, drawn on ``console`` only when it is a terminal."""

    def __init__(self, console: Console | None, description: str, detail: bool) -> None:
        self._progress: _PullProgress | None = None
        self._task: TaskID | None = None
        if console is not None and console.is_terminal:
            # Fits 80 columns; the detail is cut short rather than wrapping the bar.
            columns: list[str | ProgressColumn] = [
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=20),
                TaskProgressColumn(),
                DownloadColumn(binary_units=True, table_column=Column(no_wrap=True)),
                _RateColumn(table_column=Column(no_wrap=True)),
                TimeRemainingColumn(),
            ]
            if detail:
                columns.append(
                    TextColumn(
                        "{task.fields[detail]}",
                        style="dim",
                        table_column=Column(no_wrap=True, overflow="ellipsis"),
                    )
                )
            self._progress = _PullProgress(self, *columns, console=console)
            self._task = self._progress.add_task(description, total=None, detail="")

    @property
    def live(self) -> bool:
        """Whether a bar is being drawn."""
        return self._progress is not None

    def sync(self) -> None:
        """Copy the latest numbers into the bar (called from rich's refresh thread)."""

    def _update(self, completed: int, total: int | None, detail: str = "") -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=completed, total=total, detail=detail)

    def __enter__(self) -> Self:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.refresh()  # draws the final numbers once more
            self._progress.stop()


class TransferProgress(_LiveBar):
    """The ``on_progress`` callback of an upload: bytes of the blob done (uploaded plus
    skipped over the blob size), rate, ETA, bytes sent and retries."""

    def __init__(self, console: Console | None, description: str = "upload") -> None:
        self.stats: TransferStats | None = None
        super().__init__(console, description, detail=True)

    def __call__(self, event: ProgressEvent) -> None:
        # Kept to one assignment: events come thousands of times a second.
        self.stats = event.stats

    def sync(self) -> None:
        stats = self.stats
        if stats is None:
            return
        retries = "1 retry" if stats.retries == 1 else f"{stats.retries} retries"
        self._update(
            stats.bytes_uploaded + stats.bytes_skipped + stats.bytes_resumed,
            stats.blob_size or None,
            f"sent {format_size(stats.bytes_uploaded)}, {retries}",
        )


class CopyProgress(_LiveBar):
    """The ``on_progress(done, total)`` callback of a conversion (or, with another
    ``description``, of anything that counts bytes done out of a total)."""

    def __init__(self, console: Console | None, description: str = "convert") -> None:
        self.done = 0
        self.total: int | None = None
        super().__init__(console, description, detail=False)

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def sync(self) -> None:
        self._update(self.done, self.total)


class VerifyProgressBar(CopyProgress):
    """The ``on_progress(done, total)`` callback of a verification."""

    def __init__(self, console: Console | None, description: str = "verify") -> None:
        super().__init__(console, description)


class BulkProgress:
    """Live progress of many disks: one bar per disk and one for the total.

    :meth:`callback` gives each disk its ``on_progress``; an event costs one list store.
    The bars are drawn from rich's refresh thread, only on a terminal.
    """

    def __init__(self, console: Console | None, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self._stats: list[TransferStats | None] = [None] * len(labels)
        self._verified: list[int] = [0] * len(labels)
        self._started = time.monotonic()
        self._finished: float | None = None
        self._progress: _PullProgress | None = None
        self._tasks: list[TaskID] = []
        if console is not None and console.is_terminal:
            columns: list[str | ProgressColumn] = [
                TextColumn("{task.description}", table_column=Column(no_wrap=True, max_width=28)),
                BarColumn(bar_width=20),
                TaskProgressColumn(),
                DownloadColumn(binary_units=True, table_column=Column(no_wrap=True)),
                _RateColumn(table_column=Column(no_wrap=True)),
                TimeRemainingColumn(),
                TextColumn(
                    "{task.fields[detail]}",
                    style="dim",
                    table_column=Column(no_wrap=True, overflow="ellipsis"),
                ),
            ]
            self._progress = _PullProgress(self, *columns, console=console)
            self._total = self._progress.add_task("[bold]total", total=None, detail="")
            self._tasks = [
                self._progress.add_task(label, total=None, detail="") for label in labels
            ]

    @property
    def live(self) -> bool:
        return self._progress is not None

    @property
    def seconds(self) -> float:
        end = self._finished if self._finished is not None else time.monotonic()
        return end - self._started

    def callback(self, index: int) -> ProgressCallback:
        stats = self._stats

        def on_progress(event: ProgressEvent) -> None:
            stats[index] = event.stats

        return on_progress

    def verify_callback(self, index: int) -> Callable[[int, int], None]:
        verified = self._verified

        def on_verify(done: int, total: int) -> None:
            verified[index] = done

        return on_verify

    def sync(self) -> None:
        progress = self._progress
        if progress is None:
            return
        done_total = size_total = sent_total = retries_total = 0
        for index, stats in enumerate(self._stats):
            if stats is None:
                continue
            done = stats.bytes_uploaded + stats.bytes_skipped + stats.bytes_resumed
            detail = f"sent {format_size(stats.bytes_uploaded)}"
            if stats.retries:
                detail += f", {stats.retries} retries"
            if self._verified[index]:
                detail += f", verified {format_size(self._verified[index])}"
            progress.update(
                self._tasks[index], completed=done, total=stats.blob_size or None, detail=detail
            )
            done_total += done
            size_total += stats.blob_size
            sent_total += stats.bytes_uploaded
            retries_total += stats.retries
        progress.update(
            self._total,
            completed=done_total,
            total=size_total or None,
            detail=f"sent {format_size(sent_total)}, {retries_total} retries",
        )

    def __enter__(self) -> Self:
        self._started = time.monotonic()
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finished = time.monotonic()
        if self._progress is not None:
            self._progress.refresh()
            self._progress.stop()


def verify_line(result: VerifyResult) -> str:
    """One line that says what a verification found."""
    target = redact_url(result.target)
    if result.identical:
        return (
            f"verified {target}: identical to the image"
            f" ({format_size(result.bytes_read_back)} read back in {result.seconds:.1f} s)"
        )
    if result.target_size != result.blob_size or (result.footer_problem and not result.differences):
        return f"verify {target}: {result.footer_problem}"
    offsets = ", ".join(str(offset) for offset in result.differences)
    more = f" ({result.windows_differing} chunks differ)" if result.windows_differing > 1 else ""
    text = f"verify {target}: differs from the image at offset(s) {offsets}{more}"
    if result.footer_problem:
        text += f"; {result.footer_problem}"
    return text


def bulk_summary_line(outcomes: Sequence[DiskOutcome], seconds: float) -> str:
    """The total of a bulk upload in one line."""
    results = [outcome.result.stats for outcome in outcomes if outcome.result is not None]
    failed = sum(1 for outcome in outcomes if not outcome.ok)
    sent = sum(stats.bytes_uploaded for stats in results)
    disk = sum(stats.disk_size for stats in results)
    rate = disk / seconds / (1024 * 1024) if seconds > 0 else 0.0
    text = (
        f"{len(outcomes) - failed} of {len(outcomes)} disks done"
        f" ({format_size(disk)} of disks in {seconds:.1f} s, {rate:.1f} MiB/s):"
        f" {format_size(sent)} sent"
    )
    resumed = sum(stats.bytes_resumed for stats in results)
    if resumed:
        text += f", {format_size(resumed)} already there from an earlier run"
    if failed:
        text += f", {failed} failed"
    return text


def summary_line(result: TransferResult | ConvertResult) -> str:
    """One line that says what a finished upload or conversion did."""
    if isinstance(result, ConvertResult):
        return convert_summary(result)
    stats = result.stats
    retries = "1 retry" if stats.retries == 1 else f"{stats.retries} retries"
    if stats.bytes_resumed == stats.blob_size:
        return (
            f"{redact_url(result.target)} already holds this {format_size(stats.disk_size)}"
            " disk (uploaded completely by an earlier run): nothing to do"
        )
    line = (
        f"uploaded a {format_size(stats.disk_size)} disk to {redact_url(result.target)}"
        f" in {stats.seconds:.1f} s ({stats.throughput_mib_s:.1f} MiB/s):"
        f" {format_size(stats.bytes_uploaded)} sent in {stats.requests} requests,"
        f" {format_size(stats.bytes_skipped)} skipped as zeros, {retries}"
    )
    if stats.bytes_resumed:
        line += f"; resumed: {format_size(stats.bytes_resumed)} were written by an earlier run"
    return line
