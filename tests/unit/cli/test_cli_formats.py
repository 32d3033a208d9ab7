"""``--format`` on every command that takes an image, the new keys of ``inspect --json``,
and Azure's size rules per target, each refused with one line before any request."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from azrestore.formats.sizes import MiB, TiB
from azrestore.sources.report import inspect_image
from tests.support.cli import assert_one_line_error, invoke, small_image
from tests.support.disks import mkfs, needs_tools, new_disk, put, sfdisk
from tests.support.images import make_sparse_image
from tests.support.tools import require

#: Never contacted: the checks fail first (nothing listens on port 9).
UNUSED_URL = "https://account.blob.core.windows.net/vhds/disk.vhd?sv=2023-11-03&sig=SECRETSIG"
DISK = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
    "/providers/Microsoft.Compute/disks/d1"
)


def command_line(command: str, image: Path, tmp_path: Path) -> list[str | Path]:
    if command == "inspect":
        return ["inspect", image]
    if command == "convert":
        return ["convert", image, tmp_path / "out.vhd"]
    if command == "verify":
        return ["verify", image, "--to", UNUSED_URL]
    if command == "upload-to-disk":
        return ["upload", image, "--to-disk", DISK, "--location", "westeurope"]
    if command == "upload-pair":
        return ["upload", f"{image}={UNUSED_URL}"]
    return ["upload", image, "--to", UNUSED_URL]


COMMANDS = ["inspect", "convert", "verify", "upload", "upload-to-disk", "upload-pair"]


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_format_is_one_usage_line(tmp_path: Path, command: str) -> None:
    image = small_image(tmp_path)
    result = invoke(*command_line(command, image, tmp_path), "--format", "qcow3")
    line = assert_one_line_error(result, 2)
    assert "--format" in line and "'qcow3' is not an image format" in line
    assert "raw, qcow2, vmdk, vhdx, vpc, vdi, nbd" in line
    assert not (tmp_path / "out.vhd").exists()


@pytest.mark.parametrize("command", ["inspect", "convert"])
def test_format_raw_is_taken(tmp_path: Path, command: str) -> None:
    image = small_image(tmp_path)
    result = invoke(*command_line(command, image, tmp_path), "--format", "raw", "--json")
    assert result.exit_code == 0, result.stderr
    if command == "convert":
        assert (tmp_path / "out.vhd").stat().st_size == 4 * MiB + 512


@pytest.mark.parametrize("command", ["inspect", "convert", "upload"])
def test_format_help_names_the_formats(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "--format" in result.stdout and "qcow2" in result.stdout


def test_manifest_entry_format_is_checked(tmp_path: Path) -> None:
    image = small_image(tmp_path)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(f"- image: {image.name}\n  to: '{UNUSED_URL}'\n  format: qcow3\n")
    line = assert_one_line_error(invoke("upload", "--manifest", manifest), 2)
    assert "entry 1: format: 'qcow3' is not an image format" in line
    assert "SECRETSIG" not in line


def test_inspect_json_names_format_chain_and_allocation(tmp_path: Path) -> None:
    image = small_image(tmp_path)
    result = invoke("inspect", image, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    size = image.stat().st_size
    assert report["format"] == "raw"
    assert report["virtual_size"] == report["disk_size"] == size
    assert report["backing_chain"] == [{"path": str(image), "format": "raw"}]
    # The data written (boot sector, 70,000 bytes, last sector), in file-system blocks.
    assert 70_000 + 1024 <= report["allocated_bytes"] < 4 * 4096 + 70_000 + 8192
    assert report["vhd"]["virtual_size"] == 4 * MiB  # the existing keys stay
    assert report == anyio.run(inspect_image, image).to_json()
    table = invoke("inspect", image)
    assert table.exit_code == 0 and "format" in table.stdout and "raw" in table.stdout


def test_inspect_takes_a_disk_over_8_tib(tmp_path: Path) -> None:
    """The reader no longer refuses what a page blob cannot hold: a managed disk can."""
    image = make_sparse_image(tmp_path / "big.raw", 9 * TiB, [(0, b"x" * 512)])
    result = invoke("inspect", image, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["disk_size"] == 9 * TiB and report["vhd"]["blob_size"] == 9 * TiB + 512


@pytest.mark.parametrize("how", ["upload", "upload-pair"])
def test_page_blob_over_8_tib_is_refused_first(tmp_path: Path, how: str) -> None:
    """Refused for that disk before its blob is created (nothing listens at the URL)."""
    image = make_sparse_image(tmp_path / "big.raw", 9 * TiB, [(0, b"x" * 512)])
    result = invoke(*command_line(how, image, tmp_path))
    if how == "upload":
        line = assert_one_line_error(result, 2)
    else:  # a bulk upload: the disk's error, and the run's summary on stdout
        assert result.exit_code == 2, result.stderr
        (line,) = result.stderr.splitlines()
        assert "1 failed" in result.stdout
    assert "larger than a page blob can hold" in line and "at most 8 TiB" in line
    assert "SECRETSIG" not in line


def test_managed_disk_takes_9_tib_past_the_size_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """9 TiB is within a managed disk's rule: the run gets as far as Resource Manager
    (nothing listens there), where before it was refused as too large for a page blob."""
    monkeypatch.setenv("AZRESTORE_ARM_ENDPOINT", "https://127.0.0.1:9")
    monkeypatch.setenv("AZRESTORE_ARM_TOKEN", "token")
    image = make_sparse_image(tmp_path / "big.raw", 9 * TiB, [(MiB, b"data")])
    result = invoke(*command_line("upload-to-disk", image, tmp_path), "--os-type", "none")
    assert result.exit_code != 0
    assert "page blob" not in result.stderr and "between" not in result.stderr


@needs_tools
def test_os_disk_rules_for_upload_to_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A BIOS OS disk over 2 TiB needs V2; any OS disk over 4 TiB is refused; both before
    any request (nothing listens on the endpoint)."""
    monkeypatch.setenv("AZRESTORE_ARM_ENDPOINT", "https://127.0.0.1:9")
    monkeypatch.setenv("AZRESTORE_ARM_TOKEN", "token")
    bios = new_disk(tmp_path, 2 * TiB + 64 * MiB, "bios.raw")
    sfdisk(bios, "label: dos\nstart=2048, size=65536, type=83, bootable\n")
    put(bios, MiB, mkfs(tmp_path, "ext4", 32 * MiB))
    line = assert_one_line_error(invoke(*command_line("upload-to-disk", bios, tmp_path)), 2)
    assert "an OS disk over 2 TiB needs generation V2" in line and "bios.raw" in line
    forced = invoke(*command_line("upload-to-disk", bios, tmp_path), "--generation", "V2")
    assert "needs generation V2" not in forced.stderr  # past the rule, to the endpoint
    huge = new_disk(tmp_path, 4 * TiB + MiB, "huge.raw")
    sfdisk(huge, "label: dos\nstart=2048, size=65536, type=83, bootable\n")
    put(huge, MiB, mkfs(tmp_path, "ext4", 32 * MiB))
    result = invoke(*command_line("upload-to-disk", huge, tmp_path), "--generation", "V2")
    assert "an OS disk is at most 4 TiB" in assert_one_line_error(result, 2)
    # The same disk as a data disk is no OS disk: the OS rules do not apply.
    data = invoke(*command_line("upload-to-disk", huge, tmp_path), "--os-type", "none")
    assert "OS disk" not in data.stderr


def test_quick_convert_reads_a_container_and_hands_a_url_to_the_full_command_line(
    tmp_path: Path,
) -> None:
    require("qemu-img")
    image = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "16M"], check=True)
    code = (
        "import sys\nfrom azrestore.cli.entry import main\ntry:\n    main()\nfinally:\n"
        "    print('typer' in sys.modules, file=sys.stderr)\n"
    )

    def quick(source: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, "convert", source, str(tmp_path / "o.vhd"), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = quick(str(image))
    assert done.stderr.splitlines()[-1] == "False", done.stderr  # converted by the quick start
    assert done.returncode == 0 and (tmp_path / "o.vhd").stat().st_size == 16 * MiB + 512
    (tmp_path / "o.vhd").unlink()
    done = quick("nbd://127.0.0.1:1/none")  # refused at once: nothing listens on port 1
    assert done.stderr.splitlines()[-1] == "True", done.stderr  # the full command line ran
    assert done.returncode != 0 and not (tmp_path / "o.vhd").exists()
