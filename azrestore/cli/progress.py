"""Live progress for uploads and conversions, and the one-line summaries.

The callbacks run on the event loop thread, possibly thousands of times a second, so they
only keep the latest numbers. Rich's refresh thread pulls those numbers ~10 times a second
and does all the drawing; nothing is drawn when the console is not a terminal.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

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
from ..transfer.progress import ProgressEvent, TransferResult, TransferStats

_REFRESH_PER_SECOND = 10


class _RateColumn(ProgressColumn):
    """Progress rate in binary units (rich's own column uses decimal ones)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(
            "?/s" if speed is None else f"{format_size(speed)}/s", style="progress.data.speed"
        )


class _PullProgress(Progress):
    """A Progress that asks its owner for fresh numbers right before each redraw."""

    def __init__(self, owner: _LiveBar, *columns: str | ProgressColumn, console: Console) -> None:
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
            stats.bytes_uploaded + stats.bytes_skipped,
            stats.blob_size or None,
            f"sent {format_size(stats.bytes_uploaded)}, {retries}",
        )


class CopyProgress(_LiveBar):
    """The ``on_progress(done, total)`` callback of a conversion."""

    def __init__(self, console: Console | None, description: str = "convert") -> None:
        self.done = 0
        self.total: int | None = None
        super().__init__(console, description, detail=False)

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def sync(self) -> None:
        self._update(self.done, self.total)


def summary_line(result: TransferResult | ConvertResult) -> str:
    """One line that says what a finished upload or conversion did."""
    if isinstance(result, ConvertResult):
        return (
            f"wrote {result.output}: fixed VHD of {format_size(result.virtual_size)}"
            f" + 512 B footer from a {format_size(result.disk_size)} disk,"
            f" {format_size(result.bytes_copied)} of data copied,"
            f" in {result.seconds:.1f} s ({result.throughput_mib_s:.1f} MiB/s)"
        )
    stats = result.stats
    retries = "1 retry" if stats.retries == 1 else f"{stats.retries} retries"
    return (
        f"uploaded a {format_size(stats.disk_size)} disk to {redact_url(result.target)}"
        f" in {stats.seconds:.1f} s ({stats.throughput_mib_s:.1f} MiB/s):"
        f" {format_size(stats.bytes_uploaded)} sent in {stats.requests} requests,"
        f" {format_size(stats.bytes_skipped)} skipped as zeros, {retries}"
    )
