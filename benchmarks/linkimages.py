"""The images of the link benchmark (dense, sparse, an aged file system's), written as
fixed VHDs both tools upload, and the least time Azure's per-blob targets allow for them."""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

from azrestore.formats.vhd import fixed_vhd_footer

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
#: Azure's largest Put Page body.
MAX_PUT_PAGE = 4 * MiB
VIRTUAL = 4 * GiB
IMAGES = ("dense", "sparse", "aged")
#: Runs of the aged image: about 320 MiB (8% of 4 GiB) in runs of 4-64 KiB.
AGED_RUNS = 9600


def image_runs(kind: str, aged_runs: int = AGED_RUNS, seed: int = 13) -> list[tuple[int, int]]:
    """The data runs ``(offset, length)`` of an image, sorted and apart (deterministic).

    dense: the whole disk. sparse: 32 extents of 1-8 MiB at random 4 KiB-aligned places.
    aged: ``aged_runs`` runs of 4-64 KiB as a long-used file system's data lies: in
    neighbourhoods (block groups, a file's fragments) of 1-40 runs with free fragments of
    4 KiB to 1 MiB between them (exponential, mean 64 KiB), the neighbourhoods scattered
    over the whole disk.
    """
    if kind == "dense":
        return [(0, VIRTUAL)]
    rng = random.Random(seed)
    if kind == "sparse":
        slot = VIRTUAL // 32
        runs = []
        for index in range(32):
            length = rng.randrange(MiB, 8 * MiB + 1, 4 * KiB)
            runs.append((index * slot + rng.randrange(0, slot - length - 4 * KiB, 4 * KiB), length))
        return runs
    groups: list[list[tuple[int, int]]] = []  # (free fragment before, run length)
    left = aged_runs
    while left > 0:
        count = min(left, rng.randint(1, 40))
        left -= count
        group = []
        for _ in range(count):
            free = int(rng.expovariate(1 / (64 * KiB))) // (4 * KiB) * (4 * KiB)
            group.append((min(4 * KiB + free, MiB), rng.randrange(4 * KiB, 64 * KiB + 1, 4 * KiB)))
        groups.append(group)
    spans = sum(free + length for group in groups for free, length in group)
    room = (VIRTUAL - spans - 4 * MiB) // (4 * KiB)
    starts = sorted(rng.randrange(0, room) * 4 * KiB for _ in groups)
    runs = []
    position = previous = 0
    for start, group in zip(starts, groups, strict=True):
        position += start - previous
        previous = start
        for free, length in group:
            position += free
            runs.append((position, length))
            position += length
    return runs


def build(path: Path, runs: list[tuple[int, int]]) -> None:
    """A sparse fixed VHD of ``VIRTUAL`` bytes: random data in ``runs``, then the footer."""
    with path.open("wb") as handle:
        handle.truncate(VIRTUAL)
        for offset, length in runs:
            handle.seek(offset)
            left = length
            while left:
                block = min(left, 64 * MiB)
                handle.write(os.urandom(block))
                left -= block
        handle.seek(VIRTUAL)
        handle.write(fixed_vhd_footer(VIRTUAL))


def plan_cost(
    runs: list[tuple[int, int]], gap: int, requests: float, rate: float
) -> tuple[float, int, int]:
    """Seconds the targets take for the plan that sends every gap under ``gap`` (requests
    of at most 4 MiB), and its requests and bytes."""
    count = sent = 0
    start = end = -1
    for offset, length in runs:
        position, stop = offset, offset + length
        while position < stop:
            piece = min(stop, position + MAX_PUT_PAGE)
            if end >= 0 and position - end < gap and piece - start <= MAX_PUT_PAGE:
                end = piece
            else:
                if end >= 0:
                    count, sent = count + 1, sent + end - start
                start, end = position, piece
            position = piece
    if end >= 0:
        count, sent = count + 1, sent + end - start
    return max(sent / rate, count / requests), count, sent


def least_seconds(
    runs: list[tuple[int, int]], rtt: float, requests: float, rate: float
) -> dict[str, float | int]:
    """The least time the per-blob targets (``requests``/s, ``rate`` bytes/s) allow.

    ``bound``: no upload sends fewer bytes than the data, nor in fewer requests than
    4 MiB ones: ``max(data / rate, ceil(data / 4 MiB) / requests) + rtt``. ``plan``: the
    least over the plans that send every zero gap shorter than some threshold (4 KiB to
    4 MiB), which scattered data can reach; ``plan_gap`` is that threshold. Neither counts
    the targets' one-second bursts (the buckets start full), nor the 512-byte footer.
    """
    data = sum(length for _, length in runs)
    bound = max(data / rate, math.ceil(data / MAX_PUT_PAGE) / requests) + rtt
    best = (math.inf, 0)
    gap = 4 * KiB
    while gap <= MAX_PUT_PAGE:
        seconds = plan_cost(runs, gap, requests, rate)[0]
        best = min(best, (seconds, gap))
        gap += 4 * KiB if gap < 256 * KiB else 64 * KiB
    return {"bound": bound, "plan": best[0] + rtt, "plan_gap": best[1]}
