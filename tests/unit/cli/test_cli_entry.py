"""The console script's quick start for scripted ``convert``: it takes exactly the plain
invocations, answers as the full command line does, and leaves everything else to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from azrestore.cli.app import app
from azrestore.cli.entry import (
    CONVERT_FLAGS,
    FULL_CONVERT_FLAGS,
    QuickConvert,
    parse_quick_convert,
)
from azrestore.formats.sizes import MiB
from tests.support.images import expected_vhd_body, make_sparse_image
from tests.support.qemu import convert, pattern_raw, raw_view
from tests.support.tools import needs


@pytest.mark.parametrize(
    ("argv", "terminal", "expected"),
    [
        (
            ["convert", "a.raw", "b.vhd", "--json"],
            True,
            QuickConvert("a.raw", "b.vhd", True, False, False),
        ),
        (
            ["convert", "--overwrite", "a.raw", "b.vhd"],
            False,
            QuickConvert("a.raw", "b.vhd", False, True, False),
        ),
        (
            ["--debug", "convert", "a", "b", "--json"],
            True,
            QuickConvert("a", "b", True, False, True),
        ),
        # A live progress bar to draw, help, usage errors, other commands: the full CLI.
        (["convert", "a.raw", "b.vhd"], True, None),
        (["convert", "a.raw", "b.vhd", "--help"], False, None),
        (["convert", "a.raw"], False, None),
        (["convert", "a.raw", "b.vhd", "c"], False, None),
        (["convert", "a.raw", "b.vhd", "--json", "--json"], False, None),
        (["convert", "a.raw", "b.vhd", "--jsn"], False, None),
        (["convert", "--", "-a.raw", "b.vhd"], False, None),
        (["--version"], False, None),
        (["inspect", "a.raw", "--json"], False, None),
        ([], False, None),
    ],
)
def test_which_invocations_take_the_quick_start(
    argv: list[str], terminal: bool, expected: QuickConvert | None
) -> None:
    assert parse_quick_convert(argv, stderr_is_terminal=terminal) == expected


def test_quick_start_knows_every_option_of_convert() -> None:
    command = typer.main.get_command(app).commands["convert"]  # type: ignore[attr-defined]
    options = {opt for param in command.params for opt in param.opts if opt.startswith("-")}
    arguments = [param.name for param in command.params if not param.opts[0].startswith("-")]
    assert options - {"--help"} == CONVERT_FLAGS | FULL_CONVERT_FLAGS
    assert arguments == ["image", "output"]


def run(
    *args: str | Path,
    report: str = "'typer loaded' if 'typer' in sys.modules else 'quick'",
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The console script's entry point, then ``report`` (by default whether typer was
    loaded) printed on stderr."""
    code = (
        "import sys\n"
        "from azrestore.cli.entry import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        f"    print({report}, file=sys.stderr)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_quick_start_converts_and_reports_like_the_full_cli(tmp_path: Path) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 3 * MiB + 512, [(MiB, b"data" * 1000)])
    out = tmp_path / "disk.vhd"
    quick = run("convert", image, out, "--json")
    assert quick.returncode == 0 and quick.stderr == "quick\n", quick.stderr
    report = json.loads(quick.stdout)
    assert report["output"] == str(out) and report["blob_size"] == 4 * MiB + 512
    assert out.read_bytes()[:-512] == expected_vhd_body(image)

    # The same refusal, word for word and with the same exit code, from both paths.
    quick = run("convert", image, out)
    helped = run("convert", image, out, "--help")
    assert helped.returncode == 0 and helped.stderr.endswith("typer loaded\n")
    full = subprocess.run(
        [sys.executable, "-m", "azrestore.cli.app", "convert", str(image), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert quick.returncode == full.returncode == 2
    assert quick.stdout == full.stdout == ""
    assert quick.stderr == full.stderr + "quick\n"
    assert "already exists" in full.stderr

    quick = run("convert", image, out, "--overwrite")
    assert quick.returncode == 0 and quick.stderr == "quick\n"
    assert quick.stdout.startswith(f"wrote {out}: fixed VHD of 4.0 MiB")


def test_quick_start_missing_image_and_debug_traceback(tmp_path: Path) -> None:
    missing = run("convert", tmp_path / "nope.raw", tmp_path / "out.vhd", "--json")
    assert missing.returncode == 2
    assert missing.stderr == f"azrestore: error: {tmp_path / 'nope.raw'}: no such file\nquick\n"
    debug = run("--debug", "convert", tmp_path / "nope.raw", tmp_path / "out.vhd", "--json")
    assert debug.returncode == 2
    assert "Traceback" in debug.stderr and debug.stderr.endswith("no such file\nquick\n")
    assert not (tmp_path / "out.vhd").exists()


#: Modules the quick start must not load: each costs milliseconds of a 0.08 s conversion.
HEAVY_MODULES = {
    "anyio",
    "dataclasses",
    "inspect",
    "json",
    "pathlib",
    "re",
    "rich",
    "threading",
    "typer",
    "typing",
}


@pytest.mark.parametrize("as_json", [True, False])
def test_quick_start_loads_nothing_heavy(tmp_path: Path, as_json: bool) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 3 * MiB, [(MiB, b"data")])
    out = tmp_path / "disk.vhd"
    flags = ["--json"] if as_json else []
    done = run(
        "convert", image, out, *flags, report=f"sorted({HEAVY_MODULES!r} & sys.modules.keys())"
    )
    assert done.returncode == 0 and done.stderr == "[]\n", done.stderr
    assert out.stat().st_size == 3 * MiB + 512


#: What the report prints: the BLAS setting, whether numpy was loaded already, and how many
#: threads loading numpy then started (other threads may still be winding down).
BLAS_REPORT = (
    "__import__('os').environ.get('OPENBLAS_NUM_THREADS'), 'numpy' in sys.modules,"
    " -len(__import__('os').listdir('/proc/self/task'))"
    " + (__import__('numpy') and len(__import__('os').listdir('/proc/self/task')))"
)


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("3", "3")])
def test_full_command_line_keeps_numpy_to_one_blas_thread(
    tmp_path: Path, given: str | None, expected: str
) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 3 * MiB, [(MiB, b"data")])
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    done = run("inspect", image, "--json", report=BLAS_REPORT, env=env)
    assert done.returncode == 0, done.stderr
    setting, preloaded, started = done.stderr.split()
    assert setting == expected
    assert preloaded == "False"  # so loading it below is what starts (or not) BLAS threads
    if given is None:
        # No OpenBLAS worker to spin next to the main thread (an idle worker thread of the
        # command may end meanwhile: fewer threads, never more).
        assert int(started) <= 0


@needs("qemu-img", "qemu-nbd")
@pytest.mark.parametrize("fmt", ["qcow2", "vmdk"])
def test_quick_start_converts_a_container_like_the_full_cli(tmp_path: Path, fmt: str) -> None:
    """A container image (a qcow2 through qemu-nbd, a streamOptimized VMDK decompressed
    in-process) takes the quick start too: the same VHD, report and refusals as the full
    command line, without typer's start-up."""
    raw = pattern_raw(tmp_path / "p.raw")
    options = ("subformat=streamOptimized",) if fmt == "vmdk" else ()
    image = convert(raw, tmp_path / f"disk.{fmt}", fmt, *options)
    quick_out, full_out = tmp_path / "quick.vhd", tmp_path / "full.vhd"
    quick = run("convert", image, quick_out, "--json")
    assert quick.returncode == 0 and quick.stderr == "quick\n", quick.stderr
    app_argv = [sys.executable, "-m", "azrestore.cli.app", "convert", str(image)]
    full = subprocess.run(
        [*app_argv, str(full_out), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert full.returncode == 0, full.stderr
    quick_report, full_report = json.loads(quick.stdout), json.loads(full.stdout)
    for report in (quick_report, full_report):
        del report["output"], report["seconds"], report["throughput_mib_s"]
    assert quick_report == full_report
    quick_vhd, full_vhd = quick_out.read_bytes(), full_out.read_bytes()
    # The same but for the footer's timestamp, unique id and so its checksum.
    assert len(quick_vhd) == len(full_vhd) and quick_vhd[:-512] == full_vhd[:-512]
    assert quick_vhd[-512:-488] == full_vhd[-512:-488]
    body, expected = quick_vhd[:-512], raw_view(image, fmt)
    assert body[: len(expected)] == expected and not any(body[len(expected) :])

    again = run("convert", image, quick_out)
    refused = subprocess.run(
        [*app_argv, str(quick_out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == refused.returncode == 2
    assert again.stderr == refused.stderr + "quick\n"
    assert "already exists" in refused.stderr
