"""One measured run of one tool on one image: its command line and input, the child
process, and the checks on what it wrote."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient, ContainerClient

from azrestore.emulator.azurite import AZURITE_ACCOUNT, AZURITE_KEY, AzuriteProcess
from azrestore.formats.sizes import FOOTER_SIZE, blob_size
from azrestore.formats.vhd import validate_fixed_vhd_footer

from . import images
from .blobcheck import CONTAINER, BlobFacts, inspect_blob, sas_url
from .children import last_json, process_cpu_s, run_child
from .images import GiB, ImageSpec
from .tools import AZCOPY_FLAGS, QEMU_FIXED_VHD


@dataclass
class Context:
    args: argparse.Namespace
    workdir: Path
    log_dir: Path
    #: This run's own scratch (AzCopy state, convert outputs): runs may share a work dir.
    scratch: Path
    azrestore: str | None
    azcopy: str | None
    azcopy_why_not: str
    qemu_img: str | None
    skip: set[tuple[str, str]]


def azcopy_input(ctx: Context, spec: ImageSpec, image: Path) -> tuple[Path, float | None]:
    """The fixed VHD AzCopy uploads: ``qemu-img convert`` of the image, made once (not timed
    as part of the upload) and reused while the image is unchanged. Also the seconds it
    took when made now."""
    assert ctx.qemu_img is not None
    target_dir = ctx.workdir / "azcopy-input"
    target_dir.mkdir(parents=True, exist_ok=True)
    vhd = target_dir / f"{spec.name}.vhd"
    stamp = vhd.with_name(vhd.name + ".json")
    source = image.stat()
    wanted = {"image_size": source.st_size, "image_mtime_ns": source.st_mtime_ns}
    with contextlib.suppress(OSError, ValueError):
        if json.loads(stamp.read_text()) == wanted and vhd.stat().st_size == blob_size(spec.size):
            return vhd, None
    partial = vhd.with_name(f"{vhd.name}.{os.getpid()}.partial")
    start = time.perf_counter()
    try:
        subprocess.run(
            [ctx.qemu_img, "convert", *QEMU_FIXED_VHD, str(image), str(partial)],
            check=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
        )
        seconds = time.perf_counter() - start
        partial.replace(vhd)
    finally:
        partial.unlink(missing_ok=True)
    stamp.write_text(json.dumps(wanted) + "\n")
    return vhd, seconds


def upload_argv(
    ctx: Context, tool: str, spec: ImageSpec, image: Path, url: str
) -> tuple[list[str], dict[str, str] | None, dict[str, Any]]:
    """The command line for one upload, its environment, and notes about the input."""
    args = ctx.args
    info: dict[str, Any] = {}
    if tool == "azrestore":
        assert ctx.azrestore is not None
        argv = [ctx.azrestore, "upload", str(image), "--to", url, "--json", "--overwrite"]
        if args.azrestore_concurrency:
            argv += ["--concurrency", str(args.azrestore_concurrency)]
        argv += shlex.split(args.azrestore_args)
        return argv, None, info
    if tool == "sdk":
        argv = [sys.executable, "-m", "benchmarks.peer_sdk", str(image), "--url", url]
        argv += ["--concurrency", str(args.sdk_concurrency), "--api", args.sdk_api]
        return argv, None, info
    assert tool == "azcopy" and ctx.azcopy is not None
    vhd, prep = azcopy_input(ctx, spec, image)
    info["input"] = str(vhd)
    info["input_prep_seconds"] = None if prep is None else round(prep, 3)
    state = ctx.scratch / "azcopy-state"
    shutil.rmtree(state, ignore_errors=True)
    env = dict(os.environ)
    env.update(
        AZCOPY_LOG_LOCATION=str(state / "logs"),
        AZCOPY_JOB_PLAN_LOCATION=str(state / "plans"),
        AZCOPY_DISABLE_SYSLOG="true",
    )
    return [ctx.azcopy, "copy", str(vhd), url, *AZCOPY_FLAGS], env, info


def measure_upload(
    ctx: Context,
    container: ContainerClient,
    account_url: str,
    azurite_pid: int | None,
    tool: str,
    spec: ImageSpec,
    image: Path,
    rep: int,
) -> dict[str, Any]:
    name = f"{spec.name}-{tool}-{rep}"
    blob = container.get_blob_client(name)
    with contextlib.suppress(Exception):
        blob.delete_blob()
    url = sas_url(account_url, name)
    try:
        argv, env, info = upload_argv(ctx, tool, spec, image, url)
    except subprocess.CalledProcessError as exc:
        return {"ok": False, "problems": [f"preparing the input failed: {exc.stderr!r}"]}
    images.warm(Path(info.get("input", image)))
    load = os.getloadavg()[0]
    azurite_before = process_cpu_s(azurite_pid)
    child = run_child(
        argv, log_dir=ctx.log_dir, label=f"upload-{name}", timeout=ctx.args.timeout, env=env
    )
    azurite_after = process_cpu_s(azurite_pid)
    run: dict[str, Any] = {
        **child.figures(load),
        **info,
    }
    if azurite_before is not None and azurite_after is not None:
        run["azurite_cpu_s"] = round(azurite_after - azurite_before, 2)
    failure = child.failure()
    report = last_json(child.stdout)
    if tool == "azrestore" and report is not None:
        run["tool_report"] = report
        if "bytes_uploaded" in report:
            run["azrestore_bytes_uploaded"] = report["bytes_uploaded"]
    try:
        facts = inspect_blob(blob, spec, image, spot_check=not ctx.args.no_spot_check)
    except Exception as exc:
        facts = BlobFacts(
            exists=False, problems=[f"checking the blob: {type(exc).__name__}: {exc}"]
        )
    run["blob_content_length"] = facts.content_length
    run["bytes_sent"] = facts.bytes_written
    run["page_ranges"] = facts.page_ranges
    problems = ([failure] if failure else []) + facts.problems
    if tool == "azrestore" and failure is None and report is None:
        problems.append("no JSON report on stdout")
    run["ok"] = not problems
    if problems:
        run["problems"] = problems
    with contextlib.suppress(Exception):
        blob.delete_blob()
    return run


def measure_convert(
    ctx: Context, tool: str, spec: ImageSpec, image: Path, rep: int
) -> dict[str, Any]:
    out_dir = ctx.scratch / "convert-out"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{spec.name}-{tool}.vhd"
    out.unlink(missing_ok=True)
    if tool == "azrestore":
        assert ctx.azrestore is not None
        argv = [ctx.azrestore, "convert", str(image), str(out), "--json"]
    else:
        assert ctx.qemu_img is not None
        argv = [ctx.qemu_img, "convert", *QEMU_FIXED_VHD, str(image), str(out)]
    images.warm(image)
    load = os.getloadavg()[0]
    try:
        child = run_child(
            argv,
            log_dir=ctx.log_dir,
            label=f"convert-{spec.name}-{tool}-{rep}",
            timeout=ctx.args.timeout,
        )
        run: dict[str, Any] = child.figures(load)
        problems = [f] if (f := child.failure()) else []
        if tool == "azrestore":
            report = last_json(child.stdout)
            if report is not None:
                run["tool_report"] = report
            elif not problems:
                problems.append("no JSON report on stdout")
        if out.exists():
            info = out.stat()
            run["output_size"] = info.st_size
            run["output_allocated"] = info.st_blocks * 512
            expected = blob_size(spec.size)
            if info.st_size != expected:
                problems.append(f"output size {info.st_size} != expected {expected}")
            else:
                footer = images.read_at(out, info.st_size - FOOTER_SIZE, FOOTER_SIZE)
                try:
                    validate_fixed_vhd_footer(footer, info.st_size, disk=out.name)
                except ValueError as exc:
                    problems.append(f"footer: {exc}")
                if not problems and ctx.qemu_img and not ctx.args.no_spot_check:
                    compare = subprocess.run(
                        [ctx.qemu_img, "compare", "-f", "raw", "-F", "vpc", str(image), str(out)],
                        capture_output=True,
                        text=True,
                        stdin=subprocess.DEVNULL,
                    )
                    if compare.returncode != 0:
                        problems.append(f"qemu-img compare: {compare.stdout.strip()}")
        elif not problems:
            problems.append("no output file")
        run["ok"] = not problems
        if problems:
            run["problems"] = problems
        return run
    finally:
        out.unlink(missing_ok=True)


def upload_on_fresh_azurite(
    ctx: Context, tool: str, spec: ImageSpec, image: Path, rep: int
) -> dict[str, Any]:
    """One upload into an Azurite of its own. A shared one skewed runs: it now and then
    spent 12-19 CPU s on one 4 GiB upload (its clean-up of earlier blobs, we think), and it
    freed deleted blobs' space so slowly that 14 dense uploads filled the disk."""
    with contextlib.ExitStack() as stack:
        store = azurite_store(ctx.args.azurite_store, spec)
        location = None
        if store is not None:
            location = stack.enter_context(tempfile.TemporaryDirectory(dir=store))
        azurite = stack.enter_context(AzuriteProcess(location=location))
        # AzuriteProcess keeps its Popen private; its pid only feeds Azurite's CPU column.
        proc = getattr(azurite, "_proc", None)
        azurite_pid = getattr(proc, "pid", None)
        service = BlobServiceClient(
            azurite.account_url,
            credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY},
        )
        try:
            container = service.get_container_client(CONTAINER)
            with contextlib.suppress(Exception):
                container.create_container()
            result = measure_upload(
                ctx, container, azurite.account_url, azurite_pid, tool, spec, image, rep
            )
        finally:
            service.close()
        result["azurite_store"] = "memory" if store is not None else "disk"
        return result


#: Where an in-memory Azurite store goes, and what it must leave free there.
MEMORY_STORE = Path("/dev/shm")
MEMORY_STORE_SPARE = 1 * GiB


def azurite_store(kind: str, spec: ImageSpec) -> Path | None:
    """The directory for Azurite's store in memory, or None for its default (on disk).

    On disk, every Put Page also waits for Azurite's fdatasync on this machine's shared
    virtual disk (``dd conv=fdatasync``: about 370 MB/s, against 1.8 GB/s unsynced): the
    same wait for every tool, plus the neighbours' disk load as noise (dense medians of 5
    moved between 0.90x and 1.10x of the SDK's speed from run to run). In memory, the
    tools' own costs show. The store needs the image's non-zero bytes (what the tools
    send) plus a spare GiB; without that room it stays on disk, and each run says which.
    """
    if kind != "memory" or not MEMORY_STORE.is_dir():
        return None
    try:
        free = shutil.disk_usage(MEMORY_STORE).free
    except OSError:
        return None
    return MEMORY_STORE if free >= spec.data_bytes + MEMORY_STORE_SPARE else None


def store_setting(kind: str) -> str:
    if kind == "disk":
        return "disk (a temporary directory; Azurite fdatasyncs every request)"
    return f"memory ({MEMORY_STORE}) when it has room for the image's data, else disk"
