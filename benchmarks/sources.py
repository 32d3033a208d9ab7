"""Container formats against the raw image: the same 1 GiB of data in an 8 GiB disk as raw,
qcow2, VMDK (monolithicSparse and streamOptimized) and dynamic VHDX, uploaded to Azurite
by `azrestore upload` and converted by `azrestore convert` side by side with
`qemu-img convert -O vpc -o subformat=fixed,force_size`, each tool twice per repeat in
ABBA order, memory primed before every timed run. Prints
JSON: medians, each format's upload throughput over the raw image's, convert time over
qemu-img's, peak RSS, and bytes read against the format's allocated bytes.

    python -m benchmarks.sources [--disk-gib 8] [--data-mib 1024] [--repeat 3]
        [--formats vmdk-streamOptimized,...] [--compressible]
"""

from __future__ import annotations

import argparse
import json
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
from .children import Child, last_json, note, run_child
from .images import warm
from .source_reads import read_rate
from .tools import compile_package, find_azrestore, tool_version

#: The formats compared with raw: (label, qemu-img's -O and -o).
FORMATS: tuple[tuple[str, str, str], ...] = (
    ("qcow2", "qcow2", ""),
    ("vmdk-monolithicSparse", "vmdk", "subformat=monolithicSparse"),
    ("vmdk-streamOptimized", "vmdk", "subformat=streamOptimized"),
    ("vhdx-dynamic", "vhdx", "subformat=dynamic"),
)
#: Data is written in extents of this size, spread evenly over the disk.
EXTENT = 64 << 20
#: Memory touched and freed before each timed run, over the run's data bytes (see prime).
PRIME_MARGIN = 256 << 20


def prime(nbytes: int) -> None:
    """Touch ``nbytes`` of fresh memory and free it, just before a timed run.

    This machine is a KVM guest with free page reporting (virtio-balloon): memory freed for
    a few seconds is handed back to the host, and the next process to fill it (with page
    cache: the output file, Azurite's blob) pays a host fault per page, about 2 s per GiB
    here. Without this, whichever tool ran first after a pause (azrestore convert, after
    the upload) paid it, and the tool right after it (qemu-img, reusing the pages of the
    output just deleted) did not: that made raw conversions look 6x slower. Primed, every
    run starts with backed free memory."""
    block = np.empty(nbytes, dtype=np.uint8)
    block.fill(1)
    del block


def make_raw(path: Path, disk: int, data: int, *, compressible: bool = False) -> None:
    """A sparse raw disk of ``disk`` bytes holding ``data`` bytes of random data (not
    compressible; or, ``compressible``, random letters of 16, which zlib packs to about
    60%), in extents spread over the whole disk."""
    rng = np.random.default_rng(11)
    extents = max(1, data // EXTENT)
    stride = disk // extents
    with path.open("wb") as handle:
        handle.truncate(disk)
        for index in range(extents):
            handle.seek(index * stride)
            length = min(EXTENT, data - index * EXTENT)
            if compressible:
                letters = rng.integers(0, 16, length, dtype=np.uint8) + ord("a")
                handle.write(letters.tobytes())
            else:
                handle.write(rng.bytes(length))


def make_image(raw: Path, out: Path, fmt: str, options: str) -> None:
    argv = ["qemu-img", "convert", "-f", "raw", "-O", fmt]
    if options:
        argv += ["-o", options]
    subprocess.run([*argv, str(raw), str(out)], check=True, capture_output=True)


def _measured(child: Child) -> dict[str, Any]:
    return {"wall_s": child.wall_s, "cpu_s": child.cpu_s, "maxrss_kib": child.maxrss_kib}


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(run[key] for run in runs))


def _spread(runs: list[dict[str, Any]], key: str) -> list[float]:
    return [round(min(run[key] for run in runs), 3), round(max(run[key] for run in runs), 3)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--disk-gib", type=int, default=8)
    parser.add_argument("--data-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--formats",
        default="",
        help="comma-separated labels of the formats compared with raw (default: all of "
        + ", ".join(label for label, _, _ in FORMATS)
        + ")",
    )
    parser.add_argument(
        "--compressible",
        action="store_true",
        help="data that zlib packs to about 60%% (default: random, incompressible)",
    )
    parser.add_argument("--workdir", default="", help="default: a temporary folder")
    parser.add_argument(
        "--json-out",
        default="",
        metavar="FILE",
        help="also write the JSON here (default benchmarks/results/sources.json; '-' for none)",
    )
    args = parser.parse_args(argv)
    chosen = [f for f in FORMATS if not args.formats or f[0] in args.formats.split(",")]
    if args.formats and len(chosen) != len(args.formats.split(",")):
        parser.error(f"--formats: each one of {', '.join(label for label, _, _ in FORMATS)}")
    azrestore = find_azrestore()
    if azrestore is None:
        print("azrestore is not installed (make install)", file=sys.stderr)
        return 2
    compile_package()
    started = results.started()
    disk, data = args.disk_gib << 30, args.data_mib << 20
    with tempfile.TemporaryDirectory(prefix="azr-src-", dir=args.workdir or None) as work_dir:
        work = Path(work_dir)
        logs = work / "logs"
        machine = results.machine_info(work)
        raw = work / "disk.raw"
        make_raw(raw, disk, data, compressible=args.compressible)
        images = {"raw": raw}
        for label, fmt, options in chosen:
            images[label] = work / f"disk.{label}"
            make_image(raw, images[label], fmt, options)
            note(f"made {label}: {images[label].stat().st_blocks * 512 >> 20} MiB on disk")
        uploads: dict[str, list[dict[str, Any]]] = {label: [] for label in images}
        converts: dict[str, list[dict[str, Any]]] = {label: [] for label in images}
        qemu: dict[str, list[dict[str, Any]]] = {label: [] for label in images}
        read: dict[str, dict[str, Any]] = {}
        with AzuriteProcess() as azurite:
            with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
                service.create_container(CONTAINER)
            for index in range(args.repeat):
                for label, image in images.items():
                    url = sas_url(azurite.account_url, f"{label}-{index}.vhd")
                    warm(image)  # every tool starts with the image in the page cache
                    prime(data + PRIME_MARGIN)
                    child = run_child(
                        [azrestore, "upload", str(image), "--to", url, "--json", "--overwrite",
                         "--restart", "--journal-dir", str(work / "journals")],
                        log_dir=logs, label=f"upload-{label}-{index}", timeout=1800,
                    )  # fmt: skip
                    if child.returncode != 0:
                        print(child.stderr, file=sys.stderr)
                        return 1
                    uploads[label].append(_measured(child))
                    report = last_json(child.stdout) or {}
                    read[label] = {"bytes_read": report.get("bytes_read")}
                    note(f"upload {label} #{index}: {child.wall_s:.2f} s")
                    # The blob is not needed again: Azurite's files would fill the page cache.
                    with BlobServiceClient.from_connection_string(
                        azurite.connection_string
                    ) as service:
                        service.get_blob_client(CONTAINER, f"{label}-{index}.vhd").delete_blob()
                    out = work / "out.vhd"
                    tools = {
                        "azrestore": [azrestore, "convert", str(image), str(out), "--json"],
                        "qemu-img": ["qemu-img", "convert", "-O", "vpc", "-o",
                                     "subformat=fixed,force_size", str(image), str(out)],
                    }  # fmt: skip
                    # Each tool runs twice, once before the other and once after (ABBA):
                    # whichever runs first after the upload may still meet memory the host
                    # took back (see prime), so neither is always first.
                    first, second = list(tools) if index % 2 == 0 else list(tools)[::-1]
                    order = [first, second, second, first]
                    for turn, tool in enumerate(order):
                        out.unlink(missing_ok=True)
                        warm(image)
                        prime(data + PRIME_MARGIN)
                        child = run_child(
                            tools[tool], log_dir=logs, label=f"{tool}-{label}-{index}-{turn}",
                            timeout=1800,
                        )  # fmt: skip
                        if child.returncode != 0:
                            print(child.stderr, file=sys.stderr)
                            return 1
                        (converts if tool == "azrestore" else qemu)[label].append(_measured(child))
                    out.unlink(missing_ok=True)
                    note(f"convert {label} #{index}: {converts[label][-1]['wall_s']:.2f} s,"
                         f" qemu-img {qemu[label][-1]['wall_s']:.2f} s")  # fmt: skip
        for label, image in images.items():
            inspected = subprocess.run(
                [azrestore, "inspect", str(image), "--json"], capture_output=True, text=True
            )
            allocated = json.loads(inspected.stdout).get("allocated_bytes")
            read[label]["allocated_bytes"] = allocated
            got = read[label]["bytes_read"]
            read[label]["read_over_allocated"] = round(got / allocated, 4) if allocated else None
            warm(image)
            read[label]["read_rate"] = read_rate(image)
            note(f"read {label}: {read[label]['read_rate']}")
    raw_rate = data / _median(uploads["raw"], "wall_s")
    result: dict[str, Any] = {
        "benchmark": "sources",
        "started": started,
        "machine": machine,
        "versions": results.versions({"qemu-img": tool_version(["qemu-img", "--version"])}),
        "disk_bytes": disk,
        "data_bytes": data,
        "repeat": args.repeat,
        "compressible": args.compressible,
        "method": (
            "medians of --repeat runs; each run starts with the image warmed and memory primed"
            " (prime()); azrestore convert and qemu-img run twice per repeat, ABBA; read_rate:"
            " the image's data extents read in-process on 2 threads, 4 MiB pieces, and for a"
            " container format the CPU time of its qemu-nbd child over that read;"
            " streamOptimized, decompressed in-process: MiB of grains decompressed per CPU s"
            " of the reading process (decompressed_mib_per_cpu_s) and per wall s"
        ),
        "formats": {},
    }
    for label in images:
        upload_wall = _median(uploads[label], "wall_s")
        convert_wall = _median(converts[label], "wall_s")
        qemu_wall = _median(qemu[label], "wall_s")
        result["formats"][label] = {
            "upload": {
                "wall_s": round(upload_wall, 3),
                "wall_s_min_max": _spread(uploads[label], "wall_s"),
                "data_mib_per_s": round(data / upload_wall / 2**20, 1),
                "maxrss_mib": round(max(r["maxrss_kib"] for r in uploads[label]) / 1024, 1),
                "throughput_over_raw": round(data / upload_wall / raw_rate, 3),
            },
            "convert": {
                "wall_s": round(convert_wall, 3),
                "wall_s_min_max": _spread(converts[label], "wall_s"),
                "qemu_img_wall_s": round(qemu_wall, 3),
                "qemu_img_wall_s_min_max": _spread(qemu[label], "wall_s"),
                "qemu_img_over_azrestore": round(qemu_wall / convert_wall, 3),
                "maxrss_mib": round(max(r["maxrss_kib"] for r in converts[label]) / 1024, 1),
            },
            **read[label],
            "runs": {"upload": uploads[label], "convert": converts[label], "qemu": qemu[label]},
        }
    text = json.dumps(result, indent=2)
    results.write(text, results.json_out_path(args.json_out, "sources"))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
