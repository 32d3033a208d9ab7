"""What azrestore's client costs in CPU on loopback, against the simplest sender of the same
bytes (``benchmarks/cpu_peer.py``: pread and one sendmsg per 4 MiB Put Page over one
keep-alive socket), both sending into the strict gateway in front of Azurite (in memory),
in one run. Prints JSON.

    python -m benchmarks.cpu [--size-mib 1024] [--repeat 3] [--json-out FILE]

Every run is a child process measured with wait4 (its own user+sys CPU, not the
server's), the tools taking turns. Per GiB sent is (CPU of the dense upload - CPU of the
same command on an all-holes disk of the same size) / GiB: what sending costs once
started. Start-up is the all-holes ``azrestore upload`` on its own, with the package
byte-compiled first, as an install leaves it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient

from azrestore.emulator.azurite import AzuriteProcess

from . import results
from .blobcheck import CONTAINER, sas_url
from .children import Child, note, run_child
from .gateway import make_dense
from .images import GiB
from .measure import MEMORY_STORE
from .tools import compile_package, find_azrestore

PEER_DESCRIPTION = (
    "benchmarks/cpu_peer.py: Python, standard library only; one keep-alive TCP connection;"
    " Create Blob, then per 4 MiB of the image an os.pread and one Put Page (its headers"
    " and the chunk in one socket.sendmsg, the answer read whole), then the 512-byte VHD"
    " footer; no checksum, no zero detection, one request in flight"
)


@contextlib.contextmanager
def gateway_in_front(upstream: str) -> Iterator[str]:
    """The strict gateway (as ``azrestore emulator`` runs it) in front of ``upstream``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "azrestore.emulator.storage", "--upstream", upstream],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        yield str(json.loads(proc.stdout.readline())["account_url"])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--json-out",
        default="",
        metavar="FILE",
        help="also write the JSON here (default benchmarks/results/cpu.json; '-': stdout only)",
    )
    args = parser.parse_args(argv)
    azrestore = find_azrestore()
    if azrestore is None:
        print("azrestore is not installed (make install)", file=sys.stderr)
        return 2
    compile_package()
    import compileall

    compileall.compile_file(str(Path(__file__).with_name("cpu_peer.py")), quiet=1)
    started = results.started()
    size = args.size_mib << 20
    shm = MEMORY_STORE if shutil_free(MEMORY_STORE) > size + GiB else None
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="azr-cpu-")))
        location = None
        if shm is not None:
            location = stack.enter_context(tempfile.TemporaryDirectory(dir=shm))
        azurite = stack.enter_context(AzuriteProcess(location=location))
        machine = results.machine_info(work)
        dense, empty, nothing = work / "dense.raw", work / "empty.raw", work / "nothing.raw"
        make_dense(dense, size)
        with empty.open("wb") as handle:
            handle.truncate(size)
        nothing.write_bytes(bytes(4096))  # the footer needs a size
        with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
            service.create_container(CONTAINER)
        account = stack.enter_context(gateway_in_front(azurite.account_url))
        variants: dict[str, tuple[list[str], Path, Path]] = {
            "azrestore": ([azrestore, "upload"], dense, empty),
            "azrestore_no_checksum": ([azrestore, "upload", "--checksum", "none"], dense, empty),
        }
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in (*variants, "peer")}
        counter = 0

        def run(label: str, argv: list[str]) -> Child:
            nonlocal counter
            counter += 1
            child = run_child(argv, log_dir=work / "logs", label=f"{label}-{counter}", timeout=900)
            problem = child.failure()
            if problem is not None:
                raise SystemExit(f"{label}: {problem}")
            return child

        container = stack.enter_context(
            BlobServiceClient.from_connection_string(azurite.connection_string)
        ).get_container_client(CONTAINER)

        def upload_once(label: str, argv: list[str], blob: str, *, url_at: int) -> Child:
            """Run ``argv`` with the SAS URL of ``blob`` at ``url_at``, then delete the blob
            (a store in memory would otherwise hold every upload of the run)."""
            argv = [*argv[:url_at], sas_url(account, blob), *argv[url_at:]]
            try:
                return run(label, argv)
            finally:
                with contextlib.suppress(Exception):
                    container.delete_blob(blob)

        for index in range(args.repeat):
            order = ["peer", *variants]
            if index % 2:
                order.reverse()
            for name in order:
                load = os.getloadavg()[0]
                if name == "peer":
                    peer = [sys.executable, "-m", "benchmarks.cpu_peer"]
                    full = upload_once(name, [*peer, str(dense)], f"peer-{index}.vhd", url_at=4)
                    idle = upload_once(name, [*peer, str(nothing)], f"peer0-{index}.vhd", url_at=4)
                else:
                    command, image, holes = variants[name]
                    extra = ["--json", "--overwrite", "--restart", "--journal-dir", str(work / "j")]
                    at = len(command) + 2
                    blob = f"{name}-{index}.vhd"
                    full = upload_once(
                        name, [*command, str(image), "--to", *extra], blob, url_at=at
                    )
                    blob = f"{name}-empty-{index}.vhd"
                    idle = upload_once(
                        name, [*command, str(holes), "--to", *extra], blob, url_at=at
                    )
                runs[name].append(
                    {
                        "cpu_s": round(full.cpu_s, 3),
                        "wall_s": round(full.wall_s, 3),
                        "startup_cpu_s": round(idle.cpu_s, 3),
                        "startup_wall_s": round(idle.wall_s, 3),
                        "cpu_s_per_gib": round((full.cpu_s - idle.cpu_s) / (size / GiB), 3),
                        "loadavg_1m_before": round(load, 2),
                    }
                )
                note(f"{name} #{index}: {runs[name][-1]}")
    result: dict[str, Any] = {
        "benchmark": "cpu",
        "started": started,
        "machine": machine,
        "versions": results.versions(),
        "size_mib": args.size_mib,
        "repeat": args.repeat,
        "azurite_store": "memory" if shm is not None else "disk",
        "endpoint": "the strict gateway (python -m azrestore.emulator.storage) before Azurite",
        "peer": PEER_DESCRIPTION,
        "per_gib": "(CPU of the dense run - CPU of the same command with nothing to send) / GiB",
        "startup": "azrestore upload of an all-holes disk of the same size (nothing sent)",
        "tools": {},
    }
    for name, measured in runs.items():
        result["tools"][name] = {
            key: median([r[key] for r in measured])
            for key in ("cpu_s", "wall_s", "startup_cpu_s", "startup_wall_s", "cpu_s_per_gib")
        } | {"runs": measured}
    peer = result["tools"]["peer"]["cpu_s_per_gib"]
    for name in variants:
        result["tools"][name]["per_gib_over_peer"] = round(
            result["tools"][name]["cpu_s_per_gib"] / peer, 2
        )
    result["targets"] = {"per_gib_over_peer_at_most": 1.5, "startup_cpu_s_under": 0.3}
    text = json.dumps(result, indent=2)
    results.write(text, results.json_out_path(args.json_out, "cpu"))
    print(text)
    return 0


def shutil_free(path: Path) -> int:
    import shutil

    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
