"""azrestore's concurrency through the emulator's link: many disks against the computed
limit, and one disk with automatic concurrency against a fixed 16 and AzCopy's AUTO.

``many`` uploads ``--disks`` dense disks of ``--disk-mib`` each in one ``azrestore
upload IMAGE=URL ...`` (one budget) through a link of ``--rtt`` ms with standard
page-blob and account targets (AZURE-FACTS), and compares its throughput with::

    limit = min(account ingress target, disks x blob bytes target, loopback)

where ``loopback`` is what this machine moves through the same gateway with no link and
no targets, measured in the same run (the best of azrestore with automatic concurrency
and with ``--concurrency 64``). On a small machine the account's target (60 Gbit/s) and
the blobs' (50 x 60 MiB/s) are far beyond what loopback carries, so the machine is the
limit; the JSON says which term was the least.

``single`` uploads one dense disk of ``--disk-mib`` through links of ``--rtts`` ms with
standard blob targets: azrestore with default flags (automatic), ``--concurrency 16``
(the old default), and AzCopy with ``AZCOPY_CONCURRENCY_VALUE=AUTO`` if it is installed,
each against the least time the blob's targets allow (``data / 60 MiB/s``).

    python -m benchmarks.link_many [--modes many,single] [--disks 50] [--disk-mib 32]
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
from azrestore.emulator.storage.targets import ACCOUNT_PRESETS, BLOB_PRESETS

from . import results
from .blobcheck import CONTAINER, sas_url
from .children import note, run_child
from .tools import AZCOPY_FLAGS, REPO, find_azcopy

MiB = 1024 * 1024
STANDARD_BLOB = BLOB_PRESETS["standard"]
STANDARD_ACCOUNT = ACCOUNT_PRESETS["standard"]
AZRESTORE = [sys.executable, "-m", "azrestore.cli"]


def build(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        for _ in range(size // MiB):
            handle.write(os.urandom(MiB))


class Bench:
    def __init__(self, work: Path, gateway: GatewayThread, timeout: float) -> None:
        self.work = work
        self.gateway = gateway
        self.timeout = timeout

    def run(
        self,
        label: str,
        argv: list[str],
        network: NetworkModel,
        data: int,
        env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        self.gateway.set_network(network)
        self.gateway.reset_statistics()
        child = run_child(
            argv, log_dir=self.work / "logs", label=label, timeout=self.timeout, env=env, cwd=REPO
        )
        failure = child.failure()
        if failure is not None:
            raise SystemExit(f"{label}: {failure}")
        stats = self.gateway.statistics()
        row: dict[str, Any] = {
            "run": label,
            "link": network.link.describe(),
            "blob_targets": network.blob_targets.describe(),
            "account_targets": network.account_targets.describe(),
            "wall_s": round(child.wall_s, 3),
            "cpu_s": round(child.cpu_s, 3),
            "mib_s": round(data / MiB / child.wall_s, 1),
            "gateway_put_pages": stats.requests.get("PutPage", 0),
            "gateway_throttled": dict(stats.throttled),
        }
        limits = [value for key, value in _walk(child.stdout) if key == "in_flight_limit"]
        peaks = [value for key, value in _walk(child.stdout) if key == "in_flight_peak"]
        if limits:
            row["in_flight_limit_at_end"] = max(limits)
            row["in_flight_peak"] = max(peaks)
        note(f"{label}: {child.wall_s:.1f} s, {row['mib_s']} MiB/s, {row['gateway_throttled']}")
        return row


def _walk(text: str) -> list[tuple[str, Any]]:
    """Every (key, value) of the JSON ``text`` (any depth); none if it is not JSON."""
    try:
        stack: list[Any] = [json.loads(text)]
    except ValueError:
        return []
    found = []
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                found.append((key, value))
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return found


def many(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    size = args.disk_mib * MiB
    images = []
    for k in range(args.disks):
        image = bench.work / f"m{k}.raw"
        build(image, size)
        images.append(image)
    data = args.disks * size
    rtt = args.rtt / 1000

    def argv(prefix: str, extra: list[str]) -> list[str]:
        pairs = [
            f"{image}={sas_url(bench.gateway.account_url, f'{prefix}-{k}.vhd')}"
            for k, image in enumerate(images)
        ]
        return [
            *AZRESTORE,
            "upload",
            *pairs,
            "--json",
            "--overwrite",
            "--restart",
            "--journal-dir",
            str(bench.work / "journals"),
            *extra,
        ]

    loop = NetworkModel()
    link = NetworkModel(
        link=LinkModel(rtt=rtt), blob_targets=STANDARD_BLOB, account_targets=STANDARD_ACCOUNT
    )
    rows = [
        bench.run("many-loopback-auto", argv("la", []), loop, data),
        bench.run("many-loopback-64", argv("l64", ["--concurrency", "64"]), loop, data),
        bench.run(f"many-{args.rtt:g}ms-auto", argv("ra", []), link, data),
        bench.run(f"many-{args.rtt:g}ms-16", argv("r16", ["--concurrency", "16"]), link, data),
    ]
    for image in images:
        image.unlink()
    assert STANDARD_ACCOUNT.bytes is not None and STANDARD_BLOB.bytes is not None
    terms = {
        "account_ingress_mib_s": STANDARD_ACCOUNT.bytes / MiB,
        "sum_of_blob_targets_mib_s": args.disks * STANDARD_BLOB.bytes / MiB,
        "machine_loopback_mib_s": max(rows[0]["mib_s"], rows[1]["mib_s"]),
    }
    limit = min(terms.values())
    auto = rows[2]
    return {
        "disks": args.disks,
        "disk_mib": args.disk_mib,
        "rtt_ms": args.rtt,
        "limit_terms": {key: round(value, 1) for key, value in terms.items()},
        "limit_mib_s": round(limit, 1),
        "limited_by": min(terms, key=lambda key: terms[key]),
        "auto_over_limit": round(auto["mib_s"] / limit, 3),
        "fixed16_over_limit": round(rows[3]["mib_s"] / limit, 3),
        "target": "auto_over_limit >= 0.9",
        "runs": rows,
    }


def single(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    size = args.disk_mib * MiB
    image = bench.work / "single.raw"
    build(image, size)
    azcopy, azcopy_detail = find_azcopy(None)
    assert STANDARD_BLOB.bytes is not None
    least = size / STANDARD_BLOB.bytes
    rows = []
    for rtt_ms in [float(value) for value in args.rtts.split(",")]:
        network = NetworkModel(link=LinkModel(rtt=rtt_ms / 1000), blob_targets=STANDARD_BLOB)
        tag = f"{rtt_ms:g}ms"
        runs = []
        for name, extra in (("auto", []), ("fixed16", ["--concurrency", "16"])):
            url = sas_url(bench.gateway.account_url, f"s-{tag}-{name}.vhd")
            argv = [*AZRESTORE, "upload", str(image), "--to", url, "--json", "--overwrite"]
            argv += ["--restart", "--journal-dir", str(bench.work / "journals"), *extra]
            runs.append((name, bench.run(f"single-{tag}-{name}", argv, network, size)))
        if azcopy is not None:
            state = bench.work / "azcopy-state"
            shutil.rmtree(state, ignore_errors=True)
            env = dict(os.environ)
            env.update(
                AZCOPY_LOG_LOCATION=str(state / "logs"),
                AZCOPY_JOB_PLAN_LOCATION=str(state / "plans"),
                AZCOPY_DISABLE_SYSLOG="true",
                AZCOPY_CONCURRENCY_VALUE="AUTO",
            )
            url = sas_url(bench.gateway.account_url, f"s-{tag}-azcopy.vhd")
            argv = [azcopy, "copy", str(image), url, *AZCOPY_FLAGS]
            runs.append(
                ("azcopy_auto", bench.run(f"single-{tag}-azcopy-auto", argv, network, size, env))
            )
        row: dict[str, Any] = {"rtt_ms": rtt_ms, "least_s": round(least, 3)}
        for name, run in runs:
            run["over_least"] = round(run["wall_s"] / least, 2)
            row[name] = run
        if azcopy is not None:
            row["auto_over_azcopy_auto"] = round(
                row["auto"]["wall_s"] / row["azcopy_auto"]["wall_s"], 2
            )
        rows.append(row)
    image.unlink()
    return {
        "disk_mib": args.disk_mib,
        "azcopy": azcopy_detail if azcopy else f"not run: {azcopy_detail}",
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="many,single")
    parser.add_argument("--disks", type=int, default=50)
    parser.add_argument("--disk-mib", type=int, default=32, help="each disk's size (dense)")
    parser.add_argument("--single-mib", type=int, default=512, help="single mode's disk")
    parser.add_argument("--rtt", type=float, default=40, help="many mode's round trip, ms")
    parser.add_argument("--rtts", default="5,40,150", help="single mode's round trips, ms")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument(
        "--json-out", default="", metavar="FILE", help="default benchmarks/results/link_many.json"
    )
    args = parser.parse_args(argv)
    modes = {mode.strip() for mode in args.modes.split(",") if mode.strip()}
    if not modes or modes - {"many", "single"}:
        parser.error("--modes: many and/or single")
    started = results.started()
    result: dict[str, Any] = {"benchmark": "link_many", "started": started}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="azr-many-") as tmp, AzuriteProcess() as azurite:
        work = Path(tmp)
        result["machine"] = results.machine_info(work)
        result["loadavg_before"] = round(load_before, 2)
        with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
            service.create_container(CONTAINER)
        with GatewayThread(azurite.account_url) as gateway:
            bench = Bench(work, gateway, args.timeout)
            if "many" in modes:
                result["many"] = many(bench, args)
            if "single" in modes:
                single_args = argparse.Namespace(**{**vars(args), "disk_mib": args.single_mib})
                result["single"] = single(bench, single_args)
    result["loadavg_after"] = round(os.getloadavg()[0], 2)
    result["versions"] = results.versions()
    text = json.dumps(result, indent=2)
    results.write(text, results.json_out_path(args.json_out, "link_many"))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
