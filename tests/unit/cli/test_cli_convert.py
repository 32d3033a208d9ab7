"""``azrestore convert``: the VHD it writes (qemu-img agrees) and --overwrite."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from azrestore.formats.sizes import MiB, blob_size, virtual_size
from tests.support.cli import assert_one_line_error, invoke, small_image
from tests.support.tools import needs

needs_qemu = needs("qemu-img")


# -- convert ------------------------------------------------------------------------------


@needs_qemu
def test_convert_json_and_qemu_agrees(tmp_path: Path) -> None:
    image = small_image(tmp_path)
    out = tmp_path / "disk.vhd"
    result = invoke("convert", image, out, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    data = json.loads(result.stdout)
    padded = virtual_size(image.stat().st_size)
    assert padded == 4 * MiB
    assert data["output"] == str(out)
    assert data["disk_size"] == image.stat().st_size
    assert data["virtual_size"] == padded and data["blob_size"] == padded + 512
    assert out.stat().st_size == padded + 512
    compare = subprocess.run(
        ["qemu-img", "compare", "-f", "raw", str(image), "-F", "vpc", str(out)],
        capture_output=True,
        text=True,
    )
    assert compare.returncode == 0, compare.stdout + compare.stderr
    assert "identical" in compare.stdout.lower()
    info = subprocess.run(
        ["qemu-img", "info", "-f", "vpc", "--output=json", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(info.stdout)["virtual-size"] == padded


def test_convert_refuses_to_overwrite(tmp_path: Path) -> None:
    image = small_image(tmp_path)
    out = tmp_path / "disk.vhd"
    out.write_bytes(b"keep")
    line = assert_one_line_error(invoke("convert", image, out), 2)
    assert str(out) in line and "--overwrite" in line
    assert out.read_bytes() == b"keep"
    result = invoke("convert", image, out, "--overwrite")
    assert result.exit_code == 0, result.stderr
    # Not a terminal: no progress, one summary line.
    assert result.stderr == ""
    assert result.stdout.count("\n") == 1 and result.stdout.startswith(f"wrote {out}")
    assert out.stat().st_size == blob_size(image.stat().st_size)
