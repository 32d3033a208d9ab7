"""Benchmark azrestore against its peers, side by side in one run, on the same images.

``python -m benchmarks.run [options]`` (``make bench BENCH_ARGS="..."``) prints progress to
stderr and one JSON document to stdout. See benchmarks/README.md for what is measured and
how to read the ratios.

* upload: ``azrestore upload`` vs azure-storage-blob's ``upload_blob(blob_type="PageBlob")``
  (``benchmarks/peer_sdk.py``) vs AzCopy, each to a fresh page blob in an Azurite of its
  own on 127.0.0.1 (no gateway in between), whose store is in memory by default;
* convert: ``azrestore convert`` vs ``qemu-img convert -O vpc -o subformat=fixed,force_size``.

Every tool runs as a child process; its CPU time and peak RSS come from ``os.wait4``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from azrestore.formats.sizes import blob_size

from . import images, results
from .children import note, signals_as_interrupt
from .images import GiB, ImageSpec
from .measure import Context, store_setting
from .rounds import run_converts, run_uploads
from .summary import ratios, targets
from .tools import (
    ALL_TOOLS,
    AZCOPY_FLAGS,
    CONVERT_TOOLS,
    QEMU_FIXED_VHD,
    REPO,
    UPLOAD_TOOLS,
    compile_package,
    find_azcopy,
    find_azrestore,
    tool_version,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Benchmark azrestore upload/convert against AzCopy, the SDK and qemu-img.",
    )
    parser.add_argument("--only", choices=("upload", "convert"), help="run one part only")
    parser.add_argument("--images", help="comma-separated image names or roles (dense,sparse,huge)")
    parser.add_argument(
        "--tools",
        default=",".join(ALL_TOOLS),
        help="tools to run (default %(default)s): upload runs azrestore, sdk and azcopy;"
        " convert runs azrestore and qemu-img",
    )
    parser.add_argument("--sizes", choices=("full", "small"), default="full")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool and image (median)")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench-out")
    parser.add_argument(
        "--json-out",
        default="",
        metavar="FILE",
        help="also write the JSON here (default benchmarks/results/run.json, or run-small.json"
        " with --sizes small; '-' for stdout only)",
    )
    parser.add_argument(
        "--skip",
        default="none",
        help="tool:image pairs to skip, image by name or role, e.g. sdk:huge (the SDK takes"
        " ~16 min on the 64 GiB image: its Python zero test costs ~60 ms per 4 MiB of zeros)",
    )
    parser.add_argument("--azrestore-concurrency", type=int, help="passed as --concurrency")
    parser.add_argument(
        "--azrestore-args",
        default="",
        help="extra arguments for `azrestore upload`, e.g. '--checksum none'",
    )
    parser.add_argument("--sdk-concurrency", type=int, default=16)
    parser.add_argument("--sdk-api", choices=("aio", "sync"), default="aio")
    parser.add_argument("--azcopy", help="AzCopy binary (default: the npm package in .tools/)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per tool run")
    parser.add_argument("--no-spot-check", action="store_true", help="skip content checks")
    parser.add_argument(
        "--azurite-store",
        choices=("memory", "disk"),
        default="memory",
        help="where Azurite keeps blob data (default %(default)s: /dev/shm when it has room;"
        " on disk, every request also waits for Azurite's fdatasync)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - set(ALL_TOOLS)
    if unknown:
        parser.error(f"unknown tools {sorted(unknown)}; known: {', '.join(ALL_TOOLS)}")
    args.tool_list = [t for t in UPLOAD_TOOLS if t in tools]
    args.convert_tools = [t for t in CONVERT_TOOLS if t in tools]
    try:
        args.specs = images.select(
            args.sizes, [n.strip() for n in args.images.split(",")] if args.images else None
        )
    except ValueError as exc:
        parser.error(str(exc))
    return args


def parse_skip(text: str, specs: list[ImageSpec]) -> set[tuple[str, str]]:
    skip: set[tuple[str, str]] = set()
    if text.strip().lower() in ("", "none"):
        return skip
    for item in text.split(","):
        tool, _, image = item.strip().partition(":")
        for spec in specs:
            if image in (spec.name, spec.role, "*"):
                skip.add((tool, spec.name))
    return skip


def run(args: argparse.Namespace, doc: dict[str, Any]) -> None:
    """Fill ``doc`` as the run goes, so an interrupted run still reports what it did."""
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    # Several runs may share the work dir: each keeps its logs and scratch apart.
    run_id = f"{dt.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"
    prune_old(workdir / "logs", max_age_s=86400)
    log_dir = workdir / "logs" / run_id
    scratch = workdir / "scratch" / run_id
    specs: list[ImageSpec] = args.specs
    azcopy, azcopy_detail = find_azcopy(args.azcopy)
    compile_package()
    qemu_img = shutil.which("qemu-img")
    qemu_version = tool_version([qemu_img, "--version"]) if qemu_img else None
    ctx = Context(
        args=args,
        workdir=workdir,
        log_dir=log_dir,
        scratch=scratch,
        azrestore=find_azrestore(),
        azcopy=azcopy,
        azcopy_why_not="" if azcopy else azcopy_detail,
        qemu_img=qemu_img,
        skip=parse_skip(args.skip, specs),
    )
    doc.update(
        {
            "benchmark": "azrestore",
            "started": results.started(),
            "machine": results.machine_info(workdir),
            "versions": results.versions(
                {"azcopy": azcopy_detail if azcopy else None, "qemu-img": qemu_version}
            ),
            "settings": {
                "sizes": args.sizes,
                "repeat": args.repeat,
                "only": args.only,
                "upload_tools": args.tool_list,
                "convert_tools": args.convert_tools,
                "images": [s.name for s in specs],
                "skipped": sorted(f"{t}:{i}" for t, i in ctx.skip),
                "target": "Azurite 127.0.0.1 (no gateway), a fresh instance per upload",
                "azurite_store": store_setting(args.azurite_store),
                "order": "tools take turns; the order is reversed every other repetition"
                " (uploads and converts)",
                "page_cache": "warm: each tool's input is read once right before its run",
                "azrestore": {
                    "path": ctx.azrestore,
                    "concurrency": args.azrestore_concurrency or "default",
                    "extra_upload_args": args.azrestore_args,
                },
                "sdk": {
                    "call": "upload_blob(stream, length, blob_type='PageBlob', overwrite=True,"
                    f" max_concurrency={args.sdk_concurrency})",
                    "api": args.sdk_api,
                    "input": "stream: image + zeros to the virtual size + fixed VHD footer",
                },
                "azcopy": {
                    "path": ctx.azcopy,
                    "version": azcopy_detail if azcopy else None,
                    "flags": AZCOPY_FLAGS,
                    "input": "fixed VHD made by `qemu-img convert " + " ".join(QEMU_FIXED_VHD) + "`"
                    " (sparse), made once before timing; AzCopy needs a 512-multiple file and"
                    " would not add the footer itself",
                },
                "qemu_img": qemu_version,
            },
            "images": {},
            "upload": {},
            "convert": {},
        }
    )
    note(f"workdir {workdir}; images: {', '.join(s.name for s in specs)}")

    paths: dict[str, Path] = {}
    for spec in specs:
        start = time.perf_counter()
        note(f"image {spec.name}: checking/making ({spec.size / GiB:g} GiB)")
        path, built = images.ensure(spec, workdir)
        paths[spec.name] = path
        doc["images"][spec.name] = {
            "role": spec.role,
            "path": str(path),
            "size": spec.size,
            "nonzero_bytes": spec.data_bytes,
            "extents": len(spec.extents()),
            "allocated_bytes": images.allocated_bytes(path),
            "expected_blob_size": blob_size(spec.size),
            "built_now": built,
            "seconds": round(time.perf_counter() - start, 2),
        }

    doc["logs"] = str(log_dir)
    try:
        if args.only != "convert" and args.tool_list:
            run_uploads(ctx, specs, paths, doc["upload"])
        if args.only != "upload" and args.convert_tools:
            run_converts(ctx, specs, paths, doc["convert"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        with contextlib.suppress(OSError):
            scratch.parent.rmdir()  # only when no other run is using it


def prune_old(directory: Path, *, max_age_s: float) -> None:
    """Remove the subdirectories of ``directory`` untouched for ``max_age_s``."""
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in directory.iterdir():
            with contextlib.suppress(OSError):
                if entry.is_dir() and now - entry.stat().st_mtime > max_age_s:
                    shutil.rmtree(entry, ignore_errors=True)


def finish(doc: dict[str, Any], args: argparse.Namespace) -> None:
    """Ratios and targets from whatever ``doc`` holds."""
    specs: list[ImageSpec] = args.specs
    upload = doc.setdefault("upload", {})
    convert = doc.setdefault("convert", {})
    doc["ratios"] = ratios(specs, upload, convert)
    doc["targets"] = targets(specs, upload, convert, args.sizes)
    doc.setdefault("machine", {})["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.monotonic()
    doc: dict[str, Any] = {}
    status = 0
    with signals_as_interrupt():
        try:
            run(args, doc)
        except KeyboardInterrupt:
            note("interrupted: every process started here is stopped; partial results follow")
            doc["interrupted"] = True
            status = 130
        except Exception as exc:
            traceback.print_exc()
            note("failed; partial results follow")
            doc["error"] = f"{type(exc).__name__}: {exc}"
            status = 1
    finish(doc, args)
    doc["total_seconds"] = round(time.monotonic() - start, 1)
    text = json.dumps(doc, indent=2)
    name = "run" if args.sizes == "full" else f"run-{args.sizes}"
    results.write(text, results.json_out_path(args.json_out, name))
    print(text)
    note(f"done in {doc['total_seconds']} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
