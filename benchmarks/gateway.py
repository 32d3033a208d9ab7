"""What the strict gateway costs: the same dense upload straight to Azurite and through
the gateway (run as its own process, as `azrestore emulator` runs it in front of Azurite),
alternating, in one run. Prints JSON with the medians and the ratio.

    python -m benchmarks.gateway [--size-mib 1024] [--repeat 3] [--link SPEC]
        [--blob-targets SPEC]

``--link`` and ``--blob-targets`` give the gateway a link like Azure's (as ``azrestore
emulator`` takes them); ``python -m benchmarks.link`` measures azrestore through it against
the least time the targets allow.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from azure.storage.blob import BlobServiceClient

from azrestore.emulator.azurite import AzuriteProcess

from . import results
from .blobcheck import CONTAINER, sas_url
from .children import note, run_child
from .tools import find_azrestore


def make_dense(path: Path, size: int) -> None:
    rng = np.random.default_rng(7)
    with path.open("wb") as handle:
        left = size
        while left:
            block = min(left, 64 << 20)
            handle.write(rng.bytes(block))
            left -= block


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--link", metavar="SPEC", help="the gateway's link, e.g. rtt=40ms")
    parser.add_argument("--blob-targets", metavar="SPEC", help="e.g. standard")
    parser.add_argument(
        "--json-out",
        default="",
        metavar="FILE",
        help="also write the JSON here (default benchmarks/results/gateway.json;"
        " '-' for stdout only)",
    )
    args = parser.parse_args(argv)
    azrestore = find_azrestore()
    if azrestore is None:
        print("azrestore is not installed (make install)", file=sys.stderr)
        return 2
    started = results.started()
    with tempfile.TemporaryDirectory(prefix="azr-gw-") as work, AzuriteProcess() as azurite:
        machine = results.machine_info(Path(work))
        image = Path(work) / "dense.raw"
        make_dense(image, args.size_mib << 20)
        with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
            service.create_container(CONTAINER)
        network = [
            *(["--link", args.link] if args.link else []),
            *(["--blob-targets", args.blob_targets] if args.blob_targets else []),
        ]
        gateway = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "azrestore.emulator.storage",
                "--upstream",
                azurite.account_url,
                *network,
            ],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            assert gateway.stdout is not None
            through = json.loads(gateway.stdout.readline())["account_url"]
            runs: dict[str, list[dict[str, float]]] = {"direct": [], "gateway": []}
            for index in range(args.repeat):
                for label, account in (("direct", azurite.account_url), ("gateway", through)):
                    url = sas_url(account, f"{label}-{index}.vhd")
                    child = run_child(
                        [azrestore, "upload", str(image), "--to", url, "--json", "--overwrite",
                         "--restart", "--journal-dir", str(Path(work) / "journals")],
                        log_dir=Path(work) / "logs",
                        label=f"{label}-{index}",
                        timeout=600,
                    )  # fmt: skip
                    if child.returncode != 0:
                        print(child.stderr, file=sys.stderr)
                        return 1
                    runs[label].append({"wall_s": child.wall_s, "cpu_s": child.cpu_s})
                    note(f"{label} #{index}: {child.wall_s:.2f} s")
        finally:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=30)
            if gateway.stdout is not None:
                gateway.stdout.close()
    result: dict[str, Any] = {
        "benchmark": "gateway",
        "started": started,
        "machine": machine,
        "versions": results.versions(),
        "size_mib": args.size_mib,
        "repeat": args.repeat,
        "link": args.link,
        "blob_targets": args.blob_targets,
    }
    for label, measured in runs.items():
        wall = statistics.median(r["wall_s"] for r in measured)
        result[label] = {
            "wall_s": round(wall, 3),
            "mib_per_s": round(args.size_mib / wall, 1),
            "cpu_s": round(statistics.median(r["cpu_s"] for r in measured), 3),
        }
    result["gateway_over_direct_throughput"] = round(
        result["gateway"]["mib_per_s"] / result["direct"]["mib_per_s"], 3
    )
    text = json.dumps(result, indent=2)
    results.write(text, results.json_out_path(args.json_out, "gateway"))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
