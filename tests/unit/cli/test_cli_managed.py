"""`upload --to-disk`: its options are checked before anything is created in Azure."""

from __future__ import annotations

from pathlib import Path

import pytest

from azrestore.formats.sizes import MiB
from tests.support.cli import assert_one_line_error, invoke
from tests.support.images import make_sparse_image

DISK = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
    "/providers/Microsoft.Compute/disks/d1"
)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to-disk", DISK], "needs --location"),
        (
            ["--to-disk", "/subscriptions/x/disks/d1", "--location", "westeurope"],
            "not a resource id",
        ),
        (
            ["--to-disk", DISK.replace("disks", "virtualMachines"), "--location", "westeurope"],
            "not a Microsoft.Compute/disks resource id",
        ),
        (["--to-disk", DISK, "--location", "westeurope", "--os-type", "bsd"], "--os-type"),
        (["--to-disk", DISK, "--location", "westeurope", "--generation", "V3"], "--generation"),
        (["--to", "http://127.0.0.1:9/c/b", "--to-disk", DISK], "exactly one of"),
        ([], "exactly one of"),
        (["--to", "http://127.0.0.1:9/c/b", "--location", "westeurope"], "goes with --to-disk"),
    ],
)
def test_managed_disk_options_are_checked_first(
    tmp_path: Path, args: list[str], message: str
) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 32 * MiB, [(0, b"x")])
    result = invoke("upload", image, *args)
    assert message in assert_one_line_error(result, 2)


def test_too_small_for_a_managed_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing listens on this endpoint: the size check must come before any request.
    monkeypatch.setenv("AZRESTORE_ARM_ENDPOINT", "https://127.0.0.1:9")
    monkeypatch.setenv("AZRESTORE_ARM_TOKEN", "token")
    image = make_sparse_image(tmp_path / "disk.raw", 4 * MiB, [(0, b"x")])
    result = invoke("upload", image, "--to-disk", DISK, "--location", "westeurope")
    assert "between" in assert_one_line_error(result, 2)
