"""azrestore and AzCopy through the emulator's link, against the least time Azure's
per-blob targets allow.

Each image (4 GiB virtual, a fixed VHD both tools upload: dense, sparse, and an aged file
system's scattered small runs, see :mod:`benchmarks.linkimages`) is uploaded with default
flags through the strict gateway with a link of each round trip (default 5, 40 and
150 ms) and standard page-blob targets (500 requests/s, 60 MiB/s per blob, AZURE-FACTS),
into Azurite on 127.0.0.1, by azrestore, by AzCopy with its default concurrency and by
AzCopy with ``AZCOPY_CONCURRENCY_VALUE=AUTO``, taking turns. The least time the targets
allow for an image's data is computed, not measured (:func:`least_seconds`): ``bound``,
``max(data / 60 MiB/s, ceil(data / 4 MiB) / 500 per s) + rtt``, which scattered data
cannot reach, and ``plan``, the least over plans that send every zero gap under a
threshold. Each image is first uploaded by azrestore on loopback without targets, the
baseline of the same run. It prints JSON with each wall time, its ratios to both least
times, azrestore's ratio to AzCopy, and the gateway's own counts (Put Pages, 503s).

    python -m benchmarks.link [--images dense,sparse,aged] [--rtts 5,40,150]
                              [--tools azrestore,azcopy,azcopy-auto]

The whole run (three images, three round trips, three uploads each) takes about half an
hour: the dense image is 4 GiB of data, over a minute per upload at 60 MiB/s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
from .linkimages import AGED_RUNS, IMAGES, MiB, build, image_runs, least_seconds
from .tools import AZCOPY_FLAGS, REPO, find_azcopy

TOOLS = ("azrestore", "azcopy", "azcopy-auto")


def upload_argv(
    tool: str, image: Path, url: str, state: Path, azcopy: str | None, extra: list[str]
) -> tuple[list[str], dict[str, str] | None]:
    """One tool's command line and environment (None: this one's) for one upload."""
    if tool == "azrestore":
        # This checkout's azrestore (run from the repository, so an editable install of
        # another checkout does not stand in for it).
        argv = [sys.executable, "-m", "azrestore.cli", "upload", str(image), "--to", url]
        argv += ["--json", "--overwrite", "--restart", "--journal-dir", str(state), *extra]
        return argv, None
    assert azcopy is not None
    shutil.rmtree(state, ignore_errors=True)
    env = dict(os.environ)
    env.update(
        AZCOPY_LOG_LOCATION=str(state / "logs"),
        AZCOPY_JOB_PLAN_LOCATION=str(state / "plans"),
        AZCOPY_DISABLE_SYSLOG="true",
    )
    env.pop("AZCOPY_CONCURRENCY_VALUE", None)
    if tool == "azcopy-auto":
        env["AZCOPY_CONCURRENCY_VALUE"] = "AUTO"
    return [azcopy, "copy", str(image), url, *AZCOPY_FLAGS], env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", default=",".join(IMAGES), help=f"of {','.join(IMAGES)}")
    parser.add_argument("--rtts", default="5,40,150", help="round trips in ms")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"of {','.join(TOOLS)}")
    parser.add_argument("--aged-runs", type=int, default=AGED_RUNS)
    parser.add_argument("--azcopy", help="AzCopy binary (default: the npm package in .tools/)")
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
    tools = [tool.strip() for tool in args.tools.split(",") if tool.strip()]
    if not tools or set(tools) - set(TOOLS):
        parser.error(f"--tools: of {', '.join(TOOLS)}")
    azcopy, azcopy_version = find_azcopy(args.azcopy)
    if azcopy is None and set(tools) - {"azrestore"}:
        print(azcopy_version, file=sys.stderr)
        return 1
    rtts = [float(value) / 1000 for value in args.rtts.split(",")]
    targets = BLOB_PRESETS["standard"]
    assert targets.requests is not None and targets.bytes is not None
    started = results.started()
    rows: list[dict[str, Any]] = []
    failures = 0
    with tempfile.TemporaryDirectory(prefix="azr-link-") as tmp, AzuriteProcess() as azurite:
        work = Path(tmp)
        machine = results.machine_info(work)
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        container = service.create_container(CONTAINER)
        with service, GatewayThread(azurite.account_url) as gateway:
            for kind in kinds:
                runs = image_runs(kind, args.aged_runs)
                image = work / f"{kind}.vhd"
                build(image, runs)
                data = sum(length for _, length in runs)
                note(f"{kind}: {len(runs)} runs, {data / MiB:.0f} MiB of data")
                loopback: float | None = None
                plan: list[tuple[float | None, str]] = [(None, "azrestore")]
                plan += [(rtt, tool) for rtt in rtts for tool in tools]
                for rtt, tool in plan:
                    # First azrestore on loopback, without targets: the baseline.
                    network = NetworkModel()
                    if rtt is not None:
                        network = NetworkModel(link=LinkModel(rtt=rtt), blob_targets=targets)
                    gateway.set_network(network)
                    gateway.reset_statistics()
                    where = "loopback" if rtt is None else f"{round(rtt * 1000)}ms"
                    label = f"{kind}-{where}-{tool}"
                    name = f"{label}.vhd"
                    command, env = upload_argv(
                        tool,
                        image,
                        sas_url(gateway.account_url, name),
                        work / "state" / tool,
                        azcopy,
                        args.azrestore_args.split(),
                    )
                    child = run_child(
                        command,
                        log_dir=work / "logs",
                        label=label,
                        timeout=args.timeout,
                        env=env,
                        cwd=REPO,
                    )
                    failure = child.failure()
                    stats = gateway.statistics()
                    blob = container.get_blob_client(name)
                    length = blob.get_blob_properties().size if blob.exists() else None
                    if length is not None:
                        blob.delete_blob()
                    if failure is not None:
                        # Recorded, and the run goes on: one failed upload loses no figures.
                        note(f"{label}: {failure}")
                        failures += 1
                        rows.append(
                            {
                                "image": kind,
                                "tool": tool,
                                "rtt_ms": None if rtt is None else round(rtt * 1000, 3),
                                "error": failure[-400:],
                                "wall_s": round(child.wall_s, 3),
                                "gateway_put_pages": stats.requests.get("PutPage", 0),
                                "gateway_throttled": dict(stats.throttled),
                            }
                        )
                        continue
                    row: dict[str, Any] = {
                        "image": kind,
                        "tool": tool,
                        "runs": len(runs),
                        "data_mib": round(data / MiB, 1),
                        "link": network.link.describe(),
                        "blob_targets": network.blob_targets.describe(),
                        "wall_s": round(child.wall_s, 3),
                        "cpu_s": round(child.cpu_s, 3),
                        "blob_length": length,
                        "gateway_put_pages": stats.requests.get("PutPage", 0),
                        "gateway_throttled": dict(stats.throttled),
                        "gateway_mib_received": round(
                            stats.bytes_received.get("PutPage", 0) / MiB, 1
                        ),
                    }
                    if tool == "azrestore":
                        report = json.loads(child.stdout)
                        row["requests"] = report.get("requests")
                        row["retries"] = report.get("retries")
                        row["bytes_uploaded_mib"] = round(report.get("bytes_uploaded", 0) / MiB, 1)
                    if rtt is None:
                        loopback = child.wall_s
                    else:
                        least = least_seconds(runs, rtt, targets.requests, targets.bytes)
                        row["rtt_ms"] = round(rtt * 1000, 3)
                        row["least_bound_s"] = round(least["bound"], 3)
                        row["least_plan_s"] = round(least["plan"], 3)
                        row["least_plan_gap_kib"] = int(least["plan_gap"]) // 1024
                        row["over_least_bound"] = round(child.wall_s / least["bound"], 2)
                        row["over_least_plan"] = round(child.wall_s / least["plan"], 2)
                        if loopback and tool == "azrestore":
                            row["over_loopback"] = round(child.wall_s / loopback, 2)
                        mine = [
                            r["wall_s"]
                            for r in rows
                            if r["tool"] == "azrestore"
                            and "error" not in r
                            and r["image"] == kind
                            and r.get("rtt_ms") == row["rtt_ms"]
                        ]
                        if tool != "azrestore" and mine:
                            row["over_azrestore"] = round(child.wall_s / mine[0], 2)
                    note(
                        f"{label}: {child.wall_s:.1f} s, {row['gateway_put_pages']} Put Pages,"
                        f" {row['gateway_mib_received']} MiB, throttled {row['gateway_throttled']}"
                        + (f", {row['over_least_plan']}x the plan least" if rtt else "")
                    )
                    rows.append(row)
                image.unlink()
    result: dict[str, Any] = {
        "benchmark": "link",
        "started": started,
        "machine": machine,
        "versions": results.versions(),
        "azcopy": azcopy_version,
        "targets": targets.describe(),
        "virtual_gib": 4,
        "results": rows,
    }
    text = json.dumps(result, indent=2)
    results.write(text, results.json_out_path(args.json_out, "link"))
    print(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
