"""The progress renderer: a bar on a terminal, nothing off one."""

from __future__ import annotations

import io

from rich.console import Console

from azrestore.cli.progress import CopyProgress, TransferProgress
from azrestore.formats.sizes import MiB
from azrestore.transfer.progress import EventKind, ProgressEvent, TransferStats

# -- the progress renderer ----------------------------------------------------------------


def _event(uploaded: int, skipped: int, retries: int = 0) -> ProgressEvent:
    stats = TransferStats(
        disk_size=8 * MiB,
        virtual_size=8 * MiB,
        blob_size=8 * MiB + 512,
        bytes_uploaded=uploaded,
        bytes_skipped=skipped,
        retries=retries,
        seconds=1.0,
    )
    return ProgressEvent(EventKind.WRITTEN, stats)


def test_progress_bar_on_a_terminal() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100, color_system=None)
    with TransferProgress(console) as progress:
        assert progress.live
        for n in range(1, 5):
            progress(_event(n * 512 * 1024, n * 512 * 1024, retries=n - 1))
    output = screen.getvalue()
    # The last numbers are drawn on exit: 4 MiB of 8 MiB + 512 done, 3 retries.
    assert "4.0/8.0 MiB" in output and "sent 2.0 MiB, 3 retries" in output
    assert " 50%" in output


def test_no_progress_off_a_terminal() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=False)
    with TransferProgress(console) as progress, CopyProgress(console) as copy:
        assert not progress.live and not copy.live
        progress(_event(MiB, MiB))
        copy(MiB, 2 * MiB)
    assert screen.getvalue() == ""
