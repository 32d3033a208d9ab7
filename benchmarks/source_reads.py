"""Read throughput of each kind of source on the same data: a raw image read directly
(RawImage, preadv) against the same disk as qcow2, VMDK and VHDX read through qemu-nbd
(NbdSource), as the pipeline reads them (worker threads, 4 MiB chunks over the data
extents). Prints one JSON document; the machine is shared, so read the ratios.

    .venv/bin/python -m benchmarks.source_reads [--data-gib 1] [--disk-gib 8] [--threads 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from azrestore.sources.base import DiskSource
from azrestore.sources.open import open_source_blocking

CHUNK = 4 << 20
FORMATS = (("qcow2", ()), ("vmdk", ("subformat=monolithicSparse",)), ("vhdx", ()))


def make_raw(path: Path, disk: int, data: int) -> None:
    """A sparse raw disk of ``disk`` bytes with ``data`` bytes of incompressible data in
    64 MiB runs spread over it."""
    if path.exists() and path.stat().st_size == disk:
        return
    run = 64 << 20
    runs = max(1, data // run)
    step = disk // runs
    block = os.urandom(run)
    with path.open("wb") as handle:
        handle.truncate(disk)
        for index in range(runs):
            handle.seek(index * step)
            handle.write(block[index:] + block[:index])


def read_all(source: DiskSource, threads: int) -> tuple[int, float]:
    """Read every data extent in CHUNK pieces on ``threads`` threads; bytes and seconds."""
    windows = [
        (offset + start, min(CHUNK, length - start))
        for offset, length in source.data_extents()
        for start in range(0, length, CHUNK)
    ]
    local = threading.local()

    def read(window: tuple[int, int]) -> int:
        if not hasattr(local, "buffer"):
            local.buffer = bytearray(CHUNK)
        return source.read_into(memoryview(local.buffer)[: window[1]], window[0])

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(read, windows))
    return total, time.perf_counter() - start


def server_cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user + system) a process has used so far, from /proc; None if unknown."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_rate(image: Path, threads: int = 2) -> dict[str, Any]:
    """Read every data extent of ``image`` as the pipeline does (``threads`` threads, CHUNK
    pieces) and say how fast: bytes read against the format's allocated bytes, wall time,
    and for a container format the CPU time of its qemu-nbd child and the bytes read
    straight from the image file instead (``direct_bytes``). A streamOptimized VMDK is
    decompressed in this process: grain bytes made per CPU second of this process (its
    reading threads) is the decompression rate, which qemu-nbd's CPU time once gave."""
    with open_source_blocking(image) as source:
        pid = getattr(source, "server_pid", None)
        cpu_before = server_cpu_s(pid)
        own_before = time.process_time()
        got, seconds = read_all(source, threads)
        own_cpu = time.process_time() - own_before
        cpu_after = server_cpu_s(pid)
        inflated = getattr(source, "decompressed_bytes", None)
        deflated = getattr(source, "compressed_bytes", None)
        allocated = source.allocated_bytes()
        direct = getattr(source, "direct_bytes", None)
    result: dict[str, Any] = {
        "bytes_read": got,
        "allocated_bytes": allocated,
        "read_over_allocated": round(got / allocated, 4) if allocated else None,
        "wall_s": round(seconds, 3),
        "mib_per_s": round(got / seconds / (1 << 20), 1),
        "reader_cpu_s": round(own_cpu, 3),  # this process's, all its threads
    }
    if inflated is not None and deflated is not None:  # decompressed in this process
        result["compressed_bytes"] = deflated
        result["decompressed_bytes"] = inflated
        if own_cpu > 0:
            result["decompressed_mib_per_cpu_s"] = round(inflated / own_cpu / (1 << 20), 1)
        result["decompressed_mib_per_s"] = round(inflated / seconds / (1 << 20), 1)
    if direct is not None:
        result["direct_bytes"] = direct  # read from the image file, not through qemu-nbd
    if cpu_before is not None and cpu_after is not None:
        cpu = cpu_after - cpu_before
        through = got - min(got, direct or 0)
        result["qemu_nbd_cpu_s"] = round(cpu, 3)
        if through and cpu > 0:
            result["mib_per_qemu_nbd_cpu_s"] = round(through / cpu / (1 << 20), 1)
    return result


def drop_caches() -> bool:
    try:
        with open("/proc/sys/vm/drop_caches", "w") as handle:
            handle.write("1\n")
    except OSError:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-gib", type=float, default=1.0)
    parser.add_argument("--disk-gib", type=float, default=8.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--workdir", type=Path, default=Path("bench-out/sources"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    raw = args.workdir / "disk.raw"
    make_raw(raw, int(args.disk_gib * (1 << 30)), int(args.data_gib * (1 << 30)))
    images: list[tuple[str, Path]] = [("raw", raw)]
    for fmt, options in FORMATS:
        image = args.workdir / f"disk.{fmt}"
        if not image.exists():
            command = ["qemu-img", "convert", "-f", "raw", "-O", fmt, str(raw), str(image)]
            if options:
                command[4:4] = ["-o", ",".join(options)]
            subprocess.run(command, check=True)
        images.append((fmt, image))
    results: dict[str, Any] = {"threads": args.threads, "chunk": CHUNK, "results": {}}
    for cache in ("cold", "warm"):
        for name, image in images:
            if cache == "cold" and not drop_caches():
                continue
            with open_source_blocking(image) as source:
                got, seconds = read_all(source, args.threads)
                results["results"][f"{name}:{cache}"] = {
                    "bytes_read": got,
                    "allocated_bytes": source.allocated_bytes(),
                    "seconds": round(seconds, 3),
                    "MiB_per_s": round(got / seconds / (1 << 20), 1),
                }
            print(name, cache, results["results"][f"{name}:{cache}"], file=sys.stderr)
    json.dump(results, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
