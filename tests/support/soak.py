"""Soak tests' driver: one azrestore command run as a child process again and again,
interrupted at seeded random moments (SIGINT and SIGKILL mixed), then run to the end; and
what the runs should have sent, to bound what they did send."""

from __future__ import annotations

import random
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process

from azrestore.formats.sizes import MiB, virtual_size
from azrestore.formats.zeros import nonzero_runs
from azrestore.sources.raw import RawImage
from azrestore.transfer.chunking import read_windows
from azrestore.transfer.config import TransferConfig
from azrestore.transfer.journal import RECORD_SIZE, merge_ranges
from tests.support.images import make_sparse_image

#: What each kind of interruption should make the command exit with.
EXIT_CODES = {signal.SIGINT: 130, signal.SIGKILL: -signal.SIGKILL}
#: No single run of a soak may take longer than this (a hang is a failure, not a stall).
RUN_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Run:
    """One run of the soaked command: the signal sent (None: left to finish), when it was
    sent (seconds after the start), the progress at the end, and how the run ended."""

    how: signal.Signals | None
    sent_after: float | None
    progress: int
    code: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        if self.how is None:
            what = "to the end"
        elif self.sent_after is None:
            what = f"{self.how.name} not sent (ended first)"
        else:
            what = f"{self.how.name} at {self.sent_after:.2f}s"
        return f"{what} ({self.progress} bytes recorded): exit {self.code}, {self.stderr.strip()!r}"


@dataclass
class Soak:
    """A command run ``interruptions`` times with seeded interruptions, then to the end.

    ``progress`` counts what the command has visibly done so far (bytes its journals
    record): each interrupted run waits until ``min_step`` to ``max_step`` more bytes are
    recorded, then a random 0 to ``max_delay`` seconds more, then gets its signal, so
    that every run makes progress and the signals land at varied moments (requests in
    flight, waiting for bandwidth, between chunks, mid-append). With ``first_when``, the
    first run instead gets its signal a random 0 to ``first_delay`` seconds after
    ``first_when()`` is true (say: the target exists), before any progress: while the
    target is being created, prepared or leased.
    """

    args: Sequence[str]
    env: Mapping[str, str]
    progress: Callable[[], int]
    seed: int
    interruptions: int = 10
    min_step: int = MiB // 4
    max_step: int = MiB
    max_delay: float = 0.3
    first_when: Callable[[], bool] | None = None
    first_delay: float = 0.05
    runs: list[Run] = field(default_factory=list)

    def signals(self) -> list[signal.Signals]:
        """The seeded order of signals: half SIGINT, half SIGKILL."""
        half = self.interruptions // 2
        order = [signal.SIGINT] * half + [signal.SIGKILL] * (self.interruptions - half)
        random.Random(self.seed).shuffle(order)
        return order

    def context(self) -> str:
        """The seed and every run so far, for failure messages."""
        lines = [f"seed {self.seed}"]
        lines += [f"  run {n}: {run.describe()}" for n, run in enumerate(self.runs)]
        return "\n".join(lines)

    async def run_all(self) -> Run:
        """Every interrupted run, then the run to the end; the last run."""
        rng = random.Random(self.seed + 1)
        for n, how in enumerate(self.signals()):
            step = rng.randint(self.min_step, self.max_step)
            run = await self.run_once(how, None if n == 0 and self.first_when else step, rng)
            self.runs.append(run)
            assert run.code == EXIT_CODES[how], self.context()
        last = await self.run_once(None, 0, rng)
        self.runs.append(last)
        return last

    async def run_once(
        self, how: signal.Signals | None, step: int | None, rng: random.Random
    ) -> Run:
        """One run: ``how`` sent once ``step`` more bytes are recorded (None: once
        ``first_when()``), and a random delay; ``how`` None lets it finish. Whatever
        happens, the child is ended here."""
        start = self.progress()
        process = await anyio.open_process(
            list(self.args), env=dict(self.env), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out: list[bytes] = []
        err: list[bytes] = []
        sent_after: float | None = None
        try:
            with anyio.fail_after(RUN_TIMEOUT):
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(_drain, process.stdout, out)
                    tasks.start_soon(_drain, process.stderr, err)
                    if how is not None:
                        ready = self._ready(start, step)
                        delay = self.first_delay if step is None else self.max_delay
                        sent_after = await self._interrupt(process, how, ready, delay, rng)
                    await process.wait()
        except TimeoutError:
            raise AssertionError(f"a run did not end in {RUN_TIMEOUT}s\n{self.context()}") from None
        finally:
            await _end(process)
        code = process.returncode
        assert code is not None
        return Run(
            how, sent_after, self.progress(), code, b"".join(out).decode(), b"".join(err).decode()
        )

    def _ready(self, start: int, step: int | None) -> Callable[[], bool]:
        if step is None:
            assert self.first_when is not None
            return self.first_when
        return lambda: self.progress() >= start + step

    async def _interrupt(
        self,
        process: Process,
        how: signal.Signals,
        ready: Callable[[], bool],
        delay: float,
        rng: random.Random,
    ) -> float | None:
        began = anyio.current_time()
        while process.returncode is None and not ready():  # noqa: ASYNC110
            await anyio.sleep(0.005)  # polling a file another process writes
        await anyio.sleep(rng.uniform(0.0, delay))
        if process.returncode is not None:
            return None
        process.send_signal(how)
        return anyio.current_time() - began


async def _drain(stream: Any, into: list[bytes]) -> None:
    into.extend([chunk async for chunk in stream])


async def _end(process: Process) -> None:
    """Kill the child if it still runs, and reap it (shielded: it runs on failures too)."""
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            process.kill()
        await process.wait()
        await process.aclose()


def journal_bytes(journals: Path) -> int:
    """Bytes the journals under ``journals`` record as written (0 while there are none):
    the union of their ``W`` records' ranges (a journal compacted on resume, or with a
    torn last record, keeps it), and the whole blob for a complete one."""
    total = 0
    for path in journals.glob("*.journal"):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # renamed into place right now
            continue
        body = data[data.find(b"\n") + 1 :]
        ranges = []
        for at in range(0, len(body) - RECORD_SIZE + 1, RECORD_SIZE):
            try:
                kind, offset, length, _ = body[at : at + RECORD_SIZE].split(b" ")
            except ValueError:  # damaged: the journal's reader stops there too
                break
            if kind == b"W":
                start = int(offset, 16)
                ranges.append((start, start + int(length, 16)))
            elif kind == b"C":  # complete: the whole blob, whose size it records
                ranges.append((0, int(offset, 16)))
        total += sum(end - start for start, end in merge_ranges(ranges))
    return total


def scattered_image(path: Path, size: int, data: int, seed: int) -> Path:
    """A sparse image of ``size`` bytes holding about ``data`` bytes of random data in
    seeded extents (4 KiB aligned, some 4 KiB zero blocks inside), holes between them."""
    rng = random.Random(seed)
    chunks: list[tuple[int, bytes]] = []
    extents = max(1, data // (2 * MiB))
    slot = size // extents
    for n in range(extents):
        length = min(data // extents, slot - 4096)
        offset = n * slot + rng.randrange(0, slot - length + 1) // 4096 * 4096
        body = bytearray(rng.randbytes(length))
        hole = rng.randrange(0, length - 4096) // 4096 * 4096
        body[hole : hole + 4096] = bytes(4096)
        chunks.append((offset, bytes(body)))
    chunks.append((size - 4096, rng.randbytes(4096)))  # the last block too
    return make_sparse_image(path, size, chunks)


def bytes_needed(image: Path, config: TransferConfig) -> int:
    """What one clean upload of ``image`` sends: the non-zero runs of its windows, and the
    VHD footer."""
    with RawImage.open(image) as raw:
        total = 512
        buffer = bytearray(config.chunk_size)
        for window in read_windows(
            raw.data_extents(), virtual_size=virtual_size(raw.size), chunk_size=config.chunk_size
        ):
            view = memoryview(buffer)[: window.length]
            raw.read_into(view, window.offset)
            runs = nonzero_runs(view, config.zero_block, config.merge_gap)
            total += sum(end - start for start, end in runs)
    return total


def qemu_compare(image: Path, vhd: Path) -> str:
    """``qemu-img compare`` of the raw image with the VHD, and ``qemu-img info`` of the
    VHD: an AssertionError unless qemu-img finds them identical; returns the info's text."""
    compare = subprocess.run(
        ["qemu-img", "compare", "-f", "raw", str(image), "-F", "vpc", str(vhd)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert compare.returncode == 0, compare.stdout + compare.stderr
    assert "identical" in compare.stdout.lower(), compare.stdout
    info = subprocess.run(
        ["qemu-img", "info", "-f", "vpc", "--output=json", str(vhd)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return info.stdout
