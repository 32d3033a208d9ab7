"""azrestore through the emulator's link, against the least time Azure's targets allow.

Each image (4 GiB virtual) is uploaded with default flags through the strict gateway with
a link of each round trip (default 5, 40 and 150 ms) and standard page-blob targets (500
requests/s, 60 MiB/s per blob, AZURE-FACTS), into Azurite on 127.0.0.1. The least time
those targets allow for an image's data is computed, not measured::

    least = max(data / blob bytes/s, ceil(data / 4 MiB) / blob requests/s, rtt)

(no upload sends fewer bytes than the image's data, nor in fewer requests than 4 MiB
ones). Each image is first uploaded on loopback without targets, the baseline measured in
the same run. It prints JSON with azrestore's wall time, its ratios to that least time
and to the loopback run, and the gateway's own counts (requests, 503s, round-trip
seconds).

    python -m benchmarks.link [--images sparse,aged] [--rtts 5,40,150] [--aged-runs 2000]

The default run (a sparse and an aged image, about 200 MiB of data between them, at three
round trips) takes a few minutes; ``--images dense`` adds 4 GiB of data (over a minute per
round trip at 60 MiB/s).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient

from azrestore.emulator.azurite import AzuriteProcess
from azrestore.emulator.storage import GatewayThread, LinkModel, NetworkModel
from azrestore.emulator.storage.targets import BLOB_PRESETS

from . import results
from .blobcheck import CONTAINER, sas_url
from .children import note, run_child
from .tools import REPO

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
#: Azure's largest Put Page body.
MAX_PUT_PAGE = 4 * MiB
VIRTUAL = 4 * GiB
IMAGES = ("sparse", "aged", "dense")


def image_runs(kind: str, aged_runs: int, seed: int = 13) -> list[tuple[int, int]]:
    """The data runs ``(offset, length)`` of an image, sorted and apart.

    sparse: 32 extents of 1-8 MiB at random 4 KiB-aligned places; aged: ``aged_runs``
    runs of 4-64 KiB scattered over the whole disk, as a long-used file system's data
    lies; dense: the whole disk.
    """
    if kind == "dense":
        return [(0, VIRTUAL)]
    rng = random.Random(seed)
    count, low, high = (32, MiB, 8 * MiB) if kind == "sparse" else (aged_runs, 4 * KiB, 64 * KiB)
    slot = VIRTUAL // count
    runs = []
    for index in range(count):
        length = rng.randrange(low, high + 1, 4 * KiB)
        room = slot - length - 4 * KiB
        runs.append((index * slot + rng.randrange(0, room, 4 * KiB), length))
    return runs


def build(path: Path, runs: list[tuple[int, int]]) -> None:
    """A sparse file of ``VIRTUAL`` bytes with random data in ``runs``."""
    with path.open("wb") as handle:
        handle.truncate(VIRTUAL)
        for offset, length in runs:
            handle.seek(offset)
            left = length
            while left:
                block = min(left, 64 * MiB)
                handle.write(os.urandom(block))
                left -= block


def least_seconds(runs: list[tuple[int, int]], rtt: float) -> float:
    """The least time the standard blob targets allow for this data (see the module)."""
    targets = BLOB_PRESETS["standard"]
    assert targets.bytes is not None and targets.requests is not None
    data = sum(length for _, length in runs)
    return max(data / targets.bytes, math.ceil(data / MAX_PUT_PAGE) / targets.requests, rtt)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", default="sparse,aged", help=f"of {','.join(IMAGES)}")
    parser.add_argument("--rtts", default="5,40,150", help="round trips in ms")
    parser.add_argument("--aged-runs", type=int, default=2000)
    parser.add_argument("--azrestore-args", default="", help="extra `azrestore upload` args")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument(
        "--json-out",
        default="",
        metavar="FILE",
        help="also write the JSON here (default benchmarks/results/link.json; '-' for none)",
    )
    args = parser.parse_args(argv)
    kinds = [kind.strip() for kind in args.images.split(",") if kind.strip()]
    if not kinds or set(kinds) - set(IMAGES):
        parser.error(f"--images: of {', '.join(IMAGES)}")
    rtts = [float(value) / 1000 for value in args.rtts.split(",")]
    # This checkout's azrestore (run from the repository, so an editable install of
    # another checkout does not stand in for it).
    azrestore = [sys.executable, "-m", "azrestore.cli"]
    started = results.started()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="azr-link-") as tmp, AzuriteProcess() as azurite:
        work = Path(tmp)
        machine = results.machine_info(work)
        with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
            service.create_container(CONTAINER)
        with GatewayThread(azurite.account_url) as gateway:
            for kind in kinds:
                runs = image_runs(kind, args.aged_runs)
                image = work / f"{kind}.raw"
                build(image, runs)
                data = sum(length for _, length in runs)
                note(f"{kind}: {len(runs)} runs, {data / MiB:.0f} MiB of data")
                loopback: float | None = None
                for rtt in [None, *rtts]:
                    # First the same upload on loopback, without targets: the baseline.
                    network = NetworkModel()
                    if rtt is not None:
                        network = NetworkModel(
                            link=LinkModel(rtt=rtt), blob_targets=BLOB_PRESETS["standard"]
                        )
                    gateway.set_network(network)
                    gateway.reset_statistics()
                    label = f"{kind}-loopback" if rtt is None else f"{kind}-{round(rtt * 1000)}ms"
                    url = sas_url(gateway.account_url, f"{label}.vhd")
                    child = run_child(
                        [*azrestore, "upload", str(image), "--to", url, "--json", "--overwrite",
                         "--restart", "--journal-dir", str(work / "journals"),
                         *args.azrestore_args.split()],
                        log_dir=work / "logs",
                        label=label,
                        timeout=args.timeout,
                        cwd=REPO,
                    )  # fmt: skip
                    failure = child.failure()
                    if failure is not None:
                        print(f"{label}: {failure}", file=sys.stderr)
                        return 1
                    report = json.loads(child.stdout)
                    stats = gateway.statistics()
                    row: dict[str, Any] = {
                        "image": kind,
                        "runs": len(runs),
                        "data_mib": round(data / MiB, 1),
                        "link": network.link.describe(),
                        "blob_targets": network.blob_targets.describe(),
                        "wall_s": round(child.wall_s, 3),
                        "cpu_s": round(child.cpu_s, 3),
                        "requests": report.get("requests"),
                        "retries": report.get("retries"),
                        "bytes_uploaded_mib": round(report.get("bytes_uploaded", 0) / MiB, 1),
                        "gateway_put_pages": stats.requests.get("PutPage", 0),
                        "gateway_throttled": dict(stats.throttled),
                        "gateway_rtt_s": round(stats.link_rtt_seconds, 3),
                    }
                    if rtt is None:
                        loopback = child.wall_s
                        note(f"{label}: {child.wall_s:.1f} s, {row['requests']} requests")
                    else:
                        least = least_seconds(runs, rtt)
                        row["rtt_ms"] = round(rtt * 1000, 3)
                        row["least_s"] = round(least, 3)
                        row["over_least"] = round(child.wall_s / least, 2)
                        if loopback:
                            row["over_loopback"] = round(child.wall_s / loopback, 2)
                        note(
                            f"{label}: {child.wall_s:.1f} s, {row['over_least']}x the least"
                            f" {least:.1f} s, {row['requests']} requests,"
                            f" {row['retries']} retries"
                        )
                    rows.append(row)
                image.unlink()
    result: dict[str, Any] = {
        "benchmark": "link",
        "started": started,
        "machine": machine,
        "versions": results.versions(),
        "targets": BLOB_PRESETS["standard"].describe(),
        "virtual_gib": VIRTUAL // GiB,
        "results": rows,
    }
    text = json.dumps(result, indent=2)
    results.write(text, results.json_out_path(args.json_out, "link"))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
