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
import platform
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from azure.storage.blob import (
    BlobClient,
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    generate_blob_sas,
)

from azrestore.emulator.azurite import AZURITE_ACCOUNT, AZURITE_KEY, AzuriteProcess
from azrestore.formats.sizes import FOOTER_SIZE, blob_size
from azrestore.formats.vhd import validate_fixed_vhd_footer

from . import images
from .images import GiB, ImageSpec, MiB

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
AZCOPY_DEFAULT = REPO / ".tools/node_modules/@azure-tools/azcopy-linux/dist/bin/azcopy_linux_amd64"
CONTAINER = "bench"
UPLOAD_TOOLS = ("azrestore", "sdk", "azcopy")
CONVERT_TOOLS = ("azrestore", "qemu-img")
ALL_TOOLS = ("azrestore", "sdk", "azcopy", "qemu-img")
QEMU_FIXED_VHD = ["-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size"]
#: Flags given to AzCopy besides source and destination (see README: why each).
AZCOPY_FLAGS = [
    "--blob-type",
    "PageBlob",
    "--from-to",
    "LocalBlob",
    "--overwrite",
    "true",
    "--log-level",
    "ERROR",
    "--output-level",
    "essential",
]
SPOT_CHECK_BYTES = 64 * 1024

_started = time.monotonic()


def note(message: str) -> None:
    print(f"[{time.monotonic() - _started:7.1f}s] {message}", file=sys.stderr, flush=True)


# -- child processes -----------------------------------------------------------------------


@dataclass
class Child:
    """What one child process cost: wall time, CPU time and peak RSS (from wait4)."""

    argv: list[str]
    returncode: int
    wall_s: float
    user_s: float
    sys_s: float
    maxrss_kib: int
    timed_out: bool
    stdout: str
    stderr: str

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    def failure(self) -> str | None:
        if self.timed_out:
            return "timed out"
        if self.returncode != 0:
            tail = (self.stderr.strip() or self.stdout.strip())[-1500:]
            return f"exit status {self.returncode}: {tail}"
        return None


_live_children: set[int] = set()


def _kill_group(pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return
            if done:
                return
            time.sleep(0.05)


#: A small launcher between this harness and each measured tool. Linux starts a child's
#: ru_maxrss at the RSS high-water mark of the process it was forked from (the mm that exec
#: replaced), so a tool started straight from this harness (numpy, the Azure SDK: ~80 MiB)
#: would never show less than that. From ``python -I -S`` (~7 MiB) the floor is negligible.
#: The launcher forks and execs the tool, reaps it with wait4 and writes what it cost.
LAUNCHER = """
import json, os, sys, time
result, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(2, f"cannot run {argv[0]}: {exc}\\n".encode())
    os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
with open(result, "w") as f:
    json.dump({"wall_s": wall, "user_s": usage.ru_utime, "sys_s": usage.ru_stime,
               "maxrss_kib": usage.ru_maxrss, "returncode": code}, f)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_child(
    argv: list[str],
    *,
    log_dir: Path,
    label: str,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path = REPO,
) -> Child:
    """Run ``argv`` (through LAUNCHER) in a process group of its own, stdout and stderr to
    files, and return its wall time, CPU time and peak RSS. A timeout, an error or Ctrl-C
    ends the whole group."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path = log_dir / f"{label}.stdout"
    err_path = log_dir / f"{label}.stderr"
    result_path = log_dir / f"{label}.rusage.json"
    result_path.unlink(missing_ok=True)
    lock = threading.Lock()
    state = {"reaped": False, "timed_out": False}
    launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(result_path), *argv]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            launcher,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    _live_children.add(proc.pid)

    def on_timeout() -> None:
        with lock:
            if state["reaped"]:
                return
            state["timed_out"] = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, on_timeout)
    timer.daemon = True
    timer.start()
    try:
        # Wait without reaping: while the launcher is a zombie its pid, and so its process
        # group's id, cannot be reused, so ending leftovers in the group is safe.
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        outer_wall = time.perf_counter() - start
        with lock:
            state["reaped"] = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        _, status, outer = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        _live_children.discard(proc.pid)
    finally:
        timer.cancel()
        if proc.pid in _live_children:  # interrupted: end it and anything it started
            _kill_group(proc.pid)
            _live_children.discard(proc.pid)
    try:
        inner = json.loads(result_path.read_text())
    except (OSError, ValueError):  # killed before the launcher wrote it
        inner = {
            "wall_s": outer_wall,
            "user_s": outer.ru_utime,
            "sys_s": outer.ru_stime,
            "maxrss_kib": outer.ru_maxrss,
            "returncode": proc.returncode,
        }
    return Child(
        argv=argv,
        returncode=int(inner["returncode"]),
        wall_s=float(inner["wall_s"]),
        user_s=float(inner["user_s"]),
        sys_s=float(inner["sys_s"]),
        maxrss_kib=int(inner["maxrss_kib"]),
        timed_out=state["timed_out"],
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )


def last_json(text: str) -> dict[str, Any] | None:
    """The last line of ``text`` that is a JSON object (or the whole text as one)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                value = json.loads(line)
                if isinstance(value, dict):
                    return value
    with contextlib.suppress(ValueError):
        value = json.loads(text)
        if isinstance(value, dict):
            return value
    return None


def process_cpu_s(pid: int | None) -> float | None:
    """user+sys seconds of a running process (for Azurite), or None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# -- tools -----------------------------------------------------------------------------------


def find_azrestore() -> str | None:
    candidate = VENV_BIN / "azrestore"
    if candidate.exists():
        return str(candidate)
    return shutil.which("azrestore")


def compile_package() -> None:
    """Byte-compile the (editable) azrestore package, as installing a wheel does: with
    PYTHONDONTWRITEBYTECODE set, every timed ``azrestore convert`` would otherwise compile
    each module edited since its .pyc was written (its imports took 10 ms instead of 3)."""
    import compileall

    import azrestore

    compileall.compile_dir(Path(azrestore.__file__).parent, quiet=1)


def find_azcopy(explicit: str | None) -> tuple[str | None, str]:
    """AzCopy's binary (made executable) and its version, or None and why not."""
    path = Path(explicit or os.environ.get("AZCOPY_BIN") or AZCOPY_DEFAULT)
    if not path.exists():
        return None, f"AzCopy not found at {path} (make bench installs @azure-tools/azcopy-linux)"
    if not os.access(path, os.X_OK):
        try:
            path.chmod(path.stat().st_mode | 0o111)
        except OSError as exc:
            return None, f"cannot make {path} executable: {exc}"
    try:
        version = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"{path} does not run: {exc}"
    return str(path), version


def tool_version(argv: list[str]) -> str | None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0] if text else None


# -- blob checks -----------------------------------------------------------------------------


@dataclass
class BlobFacts:
    exists: bool
    content_length: int | None = None
    page_ranges: int = 0
    bytes_written: int = 0
    problems: list[str] = field(default_factory=list)


def spot_ranges(spec: ImageSpec, count: int = 3) -> list[tuple[int, int]]:
    """A few ``(offset, length)`` ranges to compare: inside data, across a data/hole edge,
    inside the largest hole (expects zeros) and at the disk's end. Seeded by the image."""
    rng = random.Random(spec.seed * 7919)
    extents = spec.extents()
    picks: list[tuple[int, int]] = []
    if spec.dense:
        picks.extend(
            (rng.randrange(0, spec.size - SPOT_CHECK_BYTES), SPOT_CHECK_BYTES) for _ in range(count)
        )
    else:
        for offset, length in rng.sample(extents, min(count, len(extents))):
            n = min(SPOT_CHECK_BYTES, length)
            picks.append((offset + rng.randrange(0, length - n + 1), n))
        offset, length = extents[-1]
        end = offset + length
        picks.append((max(0, end - SPOT_CHECK_BYTES // 2), SPOT_CHECK_BYTES))
        holes = []
        previous_end = 0
        for offset, length in [*extents, (spec.size, 0)]:
            holes.append((offset - previous_end, previous_end))
            previous_end = offset + length
        gap, start = max(holes)
        if gap >= SPOT_CHECK_BYTES:
            picks.append((start + (gap - SPOT_CHECK_BYTES) // 2, SPOT_CHECK_BYTES))
    picks.append((spec.size - SPOT_CHECK_BYTES, SPOT_CHECK_BYTES))
    return [(o, min(n, spec.size - o)) for o, n in picks]


def inspect_blob(blob: BlobClient, spec: ImageSpec, image: Path, *, spot_check: bool) -> BlobFacts:
    """Length, page ranges (Azurite does not merge them, so their sum is the bytes
    written), the footer as Azure validates it, and a few ranges against the image."""
    try:
        props = blob.get_blob_properties()
    except Exception as exc:
        return BlobFacts(exists=False, problems=[f"no blob: {type(exc).__name__}: {exc}"])
    facts = BlobFacts(exists=True, content_length=props.size)
    expected = blob_size(spec.size)
    if props.size != expected:
        facts.problems.append(f"content-length {props.size} != expected {expected}")
    for page in blob.list_page_ranges():
        facts.page_ranges += 1
        facts.bytes_written += page.end - page.start + 1
    if props.size >= FOOTER_SIZE:
        footer = blob.download_blob(offset=props.size - FOOTER_SIZE, length=FOOTER_SIZE).readall()
        try:
            validate_fixed_vhd_footer(footer, props.size, disk=blob.blob_name)
        except ValueError as exc:
            facts.problems.append(f"footer: {exc}")
    if spot_check and props.size == expected:
        for offset, length in spot_ranges(spec):
            got = blob.download_blob(offset=offset, length=length).readall()
            if got != images.read_at(image, offset, length):
                facts.problems.append(f"bytes {offset}..{offset + length} differ from the image")
    return facts


# -- measurements ----------------------------------------------------------------------------


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


def _sas_url(account_url: str, name: str) -> str:
    sas = generate_blob_sas(
        AZURITE_ACCOUNT,
        CONTAINER,
        name,
        account_key=AZURITE_KEY,
        permission=BlobSasPermissions(read=True, write=True, create=True, delete=True),
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=12),
    )
    return f"{account_url}/{CONTAINER}/{name}?{sas}"


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
    url = _sas_url(account_url, name)
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
        "wall_s": round(child.wall_s, 3),
        "cpu_s": round(child.cpu_s, 3),
        "user_s": round(child.user_s, 3),
        "sys_s": round(child.sys_s, 3),
        "peak_rss_mib": round(child.maxrss_kib / 1024, 1),
        "loadavg_1m_before": round(load, 2),
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
        run: dict[str, Any] = {
            "wall_s": round(child.wall_s, 3),
            "cpu_s": round(child.cpu_s, 3),
            "user_s": round(child.user_s, 3),
            "sys_s": round(child.sys_s, 3),
            "peak_rss_mib": round(child.maxrss_kib / 1024, 1),
            "loadavg_1m_before": round(load, 2),
        }
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


# -- summary ---------------------------------------------------------------------------------

MEDIAN_KEYS = (
    "wall_s",
    "cpu_s",
    "user_s",
    "sys_s",
    "peak_rss_mib",
    "azurite_cpu_s",
    "bytes_sent",
    "page_ranges",
    "azrestore_bytes_uploaded",
    "output_allocated",
)


def summarize(runs: list[dict[str, Any]], spec: ImageSpec) -> dict[str, Any]:
    """Medians over the repetitions (of the successful ones, when any succeeded)."""
    good = [r for r in runs if r.get("ok")] or runs
    summary: dict[str, Any] = {"ok": all(r.get("ok") for r in runs), "repeats": len(runs)}
    for key in MEDIAN_KEYS:
        values = [r[key] for r in good if isinstance(r.get(key), int | float)]
        if values:
            median = statistics.median(values)
            summary[key] = round(median, 3) if isinstance(median, float) else median
    reported = [
        r["tool_report"]["seconds"]
        for r in good
        if isinstance(r.get("tool_report"), dict)
        and isinstance(r["tool_report"].get("seconds"), int | float)
    ]
    if reported:
        summary["tool_reported_s"] = round(statistics.median(reported), 3)
    if "wall_s" in summary and summary["wall_s"] > 0:
        summary["disk_mib_per_s"] = round(spec.size / MiB / summary["wall_s"], 1)
    if "cpu_s" in summary:
        summary["cpu_s_per_gib"] = round(summary["cpu_s"] / (spec.size / GiB), 4)
    if "bytes_sent" in summary:
        summary["bytes_sent_over_nonzero"] = round(summary["bytes_sent"] / spec.data_bytes, 4)
    summary["runs"] = runs
    return summary


def _get(results: dict[str, Any], image: str, tool: str, key: str) -> float | None:
    entry = results.get(image, {}).get(tool, {})
    if entry.get("skipped") or not entry.get("ok"):
        return None
    value = entry.get(key)
    return float(value) if isinstance(value, int | float) else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def ratios(
    specs: list[ImageSpec], upload: dict[str, Any], convert: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {"upload": {}, "convert": {}}
    for spec in specs:
        n = spec.name
        if n in upload:
            a_wall = _get(upload, n, "azrestore", "wall_s")
            out["upload"][n] = {
                "speedup_vs_sdk": _ratio(_get(upload, n, "sdk", "wall_s"), a_wall),
                "speedup_vs_azcopy": _ratio(_get(upload, n, "azcopy", "wall_s"), a_wall),
                "cpu_s_per_gib": {t: _get(upload, n, t, "cpu_s_per_gib") for t in UPLOAD_TOOLS},
                "bytes_sent_over_nonzero": {
                    t: _get(upload, n, t, "bytes_sent_over_nonzero") for t in UPLOAD_TOOLS
                },
                "peak_rss_mib": {t: _get(upload, n, t, "peak_rss_mib") for t in UPLOAD_TOOLS},
            }
        if n in convert:
            out["convert"][n] = {
                "speedup_vs_qemu_img": _ratio(
                    _get(convert, n, "qemu-img", "wall_s"), _get(convert, n, "azrestore", "wall_s")
                ),
                "cpu_s": {t: _get(convert, n, t, "cpu_s") for t in CONVERT_TOOLS},
            }
    return out


def _target(
    name: str, image: str | None, value: float | None, op: str, threshold: float
) -> dict[str, Any]:
    checks: dict[str, Callable[[float, float], bool]] = {
        ">=": lambda v, t: v >= t,
        "<=": lambda v, t: v <= t,
        "<": lambda v, t: v < t,
    }
    return {
        "target": name,
        "image": image,
        "value": value,
        "want": f"{op} {threshold:g}",
        "pass": None if value is None else checks[op](value, threshold),
    }


def targets(
    specs: list[ImageSpec], upload: dict[str, Any], convert: dict[str, Any], sizes: str
) -> list[dict[str, Any]]:
    """The lead's targets, each with its value and pass/fail (None: not measured)."""
    by_role = {s.role: s.name for s in specs}
    result = []
    huge = by_role.get("huge")
    if huge and huge in upload:
        result.append(
            _target(
                "huge sparse upload: AzCopy wall / azrestore wall",
                huge,
                _ratio(
                    _get(upload, huge, "azcopy", "wall_s"),
                    _get(upload, huge, "azrestore", "wall_s"),
                ),
                ">=",
                15,
            )
        )
        result.append(
            _target(
                "huge sparse upload: azrestore bytes sent / non-zero data",
                huge,
                _get(upload, huge, "azrestore", "bytes_sent_over_nonzero"),
                "<=",
                1.2,
            )
        )
    dense = by_role.get("dense")
    if dense and dense in upload:
        result.append(
            _target(
                "dense upload: SDK wall / azrestore wall",
                dense,
                _ratio(
                    _get(upload, dense, "sdk", "wall_s"), _get(upload, dense, "azrestore", "wall_s")
                ),
                ">=",
                1.0,
            )
        )
        result.append(
            _target(
                "dense upload: azrestore CPU s/GiB / AzCopy CPU s/GiB",
                dense,
                _ratio(
                    _get(upload, dense, "azrestore", "cpu_s_per_gib"),
                    _get(upload, dense, "azcopy", "cpu_s_per_gib"),
                ),
                "<",
                1.0,
            )
        )
    rss = [
        v
        for table in (upload, convert)
        for image in table.values()
        if (v := (image.get("azrestore") or {}).get("peak_rss_mib")) is not None
    ]
    if rss:
        result.append(_target("azrestore peak RSS MiB (max over runs)", None, max(rss), "<", 200))
    for role in ("sparse", "huge"):
        name = by_role.get(role)
        if name and name in convert:
            result.append(
                _target(
                    "sparse convert: qemu-img wall / azrestore wall",
                    name,
                    _ratio(
                        _get(convert, name, "qemu-img", "wall_s"),
                        _get(convert, name, "azrestore", "wall_s"),
                    ),
                    ">=",
                    1.0,
                )
            )
    if sizes != "full":
        for t in result:
            t["note"] = "small sizes: indicative only, the targets are for the full set"
    return result


# -- main ------------------------------------------------------------------------------------


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
    parser.add_argument("--json-out", type=Path, help="also write the JSON here")
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


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, so every cleanup path runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        for pid in list(_live_children):
            _kill_group(pid)


def machine_info(workdir: Path) -> dict[str, Any]:
    usage = shutil.disk_usage(workdir)
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "workdir_free_gib": round(usage.free / GiB, 1),
    }


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
    ctx = Context(
        args=args,
        workdir=workdir,
        log_dir=log_dir,
        scratch=scratch,
        azrestore=find_azrestore(),
        azcopy=azcopy,
        azcopy_why_not="" if azcopy else azcopy_detail,
        qemu_img=shutil.which("qemu-img"),
        skip=parse_skip(args.skip, specs),
    )
    doc.update(
        {
            "benchmark": "azrestore",
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine_info(workdir),
            "settings": {
                "sizes": args.sizes,
                "repeat": args.repeat,
                "only": args.only,
                "upload_tools": args.tool_list,
                "convert_tools": args.convert_tools,
                "images": [s.name for s in specs],
                "skipped": sorted(f"{t}:{i}" for t, i in ctx.skip),
                "target": "Azurite 127.0.0.1 (no gateway), a fresh instance per upload",
                "azurite_store": _store_setting(args.azurite_store),
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
                "qemu_img": tool_version([ctx.qemu_img, "--version"]) if ctx.qemu_img else None,
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


def _skipped(reason: str) -> dict[str, Any]:
    return {"skipped": True, "reason": reason}


def run_uploads(
    ctx: Context, specs: list[ImageSpec], paths: dict[str, Path], results: dict[str, Any]
) -> None:
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for spec in specs:
        results[spec.name] = {}
        tools = []
        for tool in ctx.args.tool_list:
            reason = _upload_skip_reason(ctx, tool, spec)
            if reason:
                results[spec.name][tool] = _skipped(reason)
                note(f"upload {spec.name} {tool}: skipped ({reason})")
            else:
                tools.append(tool)
        for rep in range(ctx.args.repeat):
            for tool in in_turn(tools, rep):
                note(f"upload {spec.name} {tool} #{rep + 1} ...")
                result = _upload_on_fresh_azurite(ctx, tool, spec, paths[spec.name], rep)
                tool_runs = runs.setdefault((spec.name, tool), [])
                tool_runs.append(result)
                results[spec.name][tool] = summarize(tool_runs, spec)
                note(f"upload {spec.name} {tool} #{rep + 1}: {_brief(result)}")


def in_turn(tools: list[str], rep: int) -> list[str]:
    """The order of the tools in repetition ``rep``. They take turns within a repetition, so
    drift in the machine's load hits every tool alike, and every other repetition reverses
    the order, so that no tool always follows another's clean-up, or always pays what
    the first run of a set pays. That was up to 4x for a dense convert (6.5 s against
    1.6-3.1 s): the host takes back memory the guest has left free for a while (the
    balloon's free page reporting), and touching 4 GiB of it again took 8.8 s against
    0.5 s at once after."""
    return tools if rep % 2 == 0 else tools[::-1]


def _upload_on_fresh_azurite(
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


def _store_setting(kind: str) -> str:
    if kind == "disk":
        return "disk (a temporary directory; Azurite fdatasyncs every request)"
    return f"memory ({MEMORY_STORE}) when it has room for the image's data, else disk"


def _upload_skip_reason(ctx: Context, tool: str, spec: ImageSpec) -> str | None:
    if (tool, spec.name) in ctx.skip:
        return f"--skip {tool}:{spec.name}"
    if tool == "azrestore" and ctx.azrestore is None:
        return "azrestore not installed"
    if tool == "azcopy" and ctx.azcopy is None:
        return ctx.azcopy_why_not
    if tool == "azcopy" and ctx.qemu_img is None:
        return "qemu-img not found (needed to make AzCopy's fixed VHD input)"
    return None


def run_converts(
    ctx: Context, specs: list[ImageSpec], paths: dict[str, Path], results: dict[str, Any]
) -> None:
    for spec in specs:
        results[spec.name] = {}
        runs: dict[str, list[dict[str, Any]]] = {}
        if ctx.qemu_img is None and "qemu-img" in ctx.args.convert_tools:
            results[spec.name]["qemu-img"] = _skipped("qemu-img not found")
        if ctx.azrestore is None and "azrestore" in ctx.args.convert_tools:
            results[spec.name]["azrestore"] = _skipped("azrestore not installed")
        tools = [t for t in ctx.args.convert_tools if t not in results[spec.name]]
        for rep in range(ctx.args.repeat):
            for tool in in_turn(tools, rep):
                note(f"convert {spec.name} {tool} #{rep + 1} ...")
                result = measure_convert(ctx, tool, spec, paths[spec.name], rep)
                tool_runs = runs.setdefault(tool, [])
                tool_runs.append(result)
                results[spec.name][tool] = summarize(tool_runs, spec)
                note(f"convert {spec.name} {tool} #{rep + 1}: {_brief(result)}")


def _brief(result: dict[str, Any]) -> str:
    parts = [
        f"{result.get('wall_s', '?')} s wall",
        f"{result.get('cpu_s', '?')} s CPU",
        f"{result.get('peak_rss_mib', '?')} MiB RSS",
    ]
    if "bytes_sent" in result:
        parts.append(f"{result['bytes_sent'] / MiB:.1f} MiB sent")
    parts.append("ok" if result.get("ok") else f"FAILED: {result.get('problems') or result}")
    return ", ".join(parts)


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
    if args.json_out:
        args.json_out.write_text(text + "\n")
    print(text)
    note(f"done in {doc['total_seconds']} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
