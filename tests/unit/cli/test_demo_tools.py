"""The demo's tools: its exports are what qemu-img says they are and hold the raw image,
and a missing qemu-img (or a failing one) is one clear error naming what to install."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from azrestore.cli.demo.tools import REQUIRED_TOOLS, DemoError, export_image, preflight
from azrestore.formats.sizes import KiB, MiB
from tests.support.tools import needs

needs_qemu = needs("qemu-img")


def raw_image(path: Path) -> Path:
    """5 MiB and 3 KiB (not a whole MiB), data in the first and last sectors and across
    a 64 KiB grain boundary, holes between."""
    with path.open("wb") as handle:
        handle.truncate(5 * MiB + 3 * KiB)
        handle.write(os.urandom(512))
        handle.seek(192 * KiB - 100)
        handle.write(os.urandom(200))
        handle.seek(5 * MiB + 3 * KiB - 512)
        handle.write(os.urandom(512))
    return path


def qemu_info(image: Path) -> dict[str, Any]:
    result = subprocess.run(
        ["qemu-img", "info", "--output=json", str(image)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    info: dict[str, Any] = json.loads(result.stdout)
    return info


def assert_same_disk(raw: Path, image: Path, fmt: str) -> None:
    compare = subprocess.run(
        ["qemu-img", "compare", "-f", "raw", "-F", fmt, str(raw), str(image)],
        capture_output=True,
        text=True,
    )
    assert compare.returncode == 0, compare.stdout + compare.stderr


def only_these_tools(bin_dir: Path, monkeypatch: pytest.MonkeyPatch, *tools: str) -> None:
    """``PATH`` is ``bin_dir``, holding do-nothing ``tools``."""
    bin_dir.mkdir()
    for tool in tools:
        script = bin_dir / tool
        script.write_text("#!/bin/sh\nexit 0\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))


@needs_qemu
def test_stream_optimized_vmdk_export_holds_the_raw_image(tmp_path: Path) -> None:
    raw = raw_image(tmp_path / "disk.raw")
    out = tmp_path / "disk.vmdk"
    export_image(raw, out, "vmdk", "streamOptimized")
    info = qemu_info(out)
    assert info["format"] == "vmdk"
    assert info["format-specific"]["data"]["create-type"] == "streamOptimized"
    assert info["virtual-size"] == raw.stat().st_size
    assert_same_disk(raw, out, "vmdk")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk.raw", "disk.vmdk"]


@needs_qemu
def test_dynamic_vhdx_export_holds_the_raw_image(tmp_path: Path) -> None:
    raw = raw_image(tmp_path / "disk.raw")
    out = tmp_path / "disk.vhdx"
    export_image(raw, out, "vhdx", "dynamic")
    info = qemu_info(out)
    assert info["format"] == "vhdx"
    assert info["virtual-size"] >= raw.stat().st_size
    assert_same_disk(raw, out, "vhdx")
    fixed = tmp_path / "fixed.vhdx"
    export_image(raw, fixed, "vhdx", "fixed")
    assert out.stat().st_size < fixed.stat().st_size  # dynamic: blocks only where data is


@needs_qemu
def test_a_failed_export_leaves_no_file(tmp_path: Path) -> None:
    raw = raw_image(tmp_path / "disk.raw")
    out = tmp_path / "disk.vmdk"
    with pytest.raises(DemoError) as caught:
        export_image(raw, out, "vmdk", "noSuchSubformat")
    message = str(caught.value)
    assert message.startswith("qemu-img convert ") and "failed: " in message
    assert "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk.raw"]


def test_export_without_qemu_img_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = raw_image(tmp_path / "disk.raw")
    only_these_tools(tmp_path / "bin", monkeypatch)
    with pytest.raises(DemoError) as caught:
        export_image(raw, tmp_path / "disk.vmdk", "vmdk", "streamOptimized")
    message = str(caught.value)
    assert message.startswith("qemu-img not found: ")
    assert "make install" in message and "qemu-utils" in message
    assert not (tmp_path / "disk.vmdk").exists()


def test_preflight_without_qemu_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_these_tools(tmp_path / "bin", monkeypatch, *REQUIRED_TOOLS)
    with pytest.raises(DemoError) as caught:
        preflight()
    message = str(caught.value)
    assert message.startswith("missing qemu-img, qemu-nbd: ")
    assert "make install" in message and "qemu-utils" in message


def test_preflight_names_a_missing_disk_tool_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_these_tools(tmp_path / "bin", monkeypatch, "sfdisk", "qemu-img", "qemu-nbd")
    with pytest.raises(
        DemoError, match=r"^missing mkfs\.ext4, mkfs\.vfat, mkntfs, openssl, sbsign \("
    ):
        preflight()
