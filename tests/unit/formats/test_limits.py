"""Azure's size rules per target, at their boundaries: a page blob 8 TiB (footer
included), a managed disk's upload 20 MiB + 512 to 32 TiB + 512 bytes, an OS disk 4 TiB
and over 2 TiB only with V2, a VHD file for Azure 32 TiB ("32 TiB" being Azure's word
for 32,767 GiB)."""

from __future__ import annotations

import pytest

from azrestore.formats.limits import (
    MAX_UPLOAD_SIZE,
    MIN_UPLOAD_SIZE,
    managed_disk_problem,
    os_disk_problem,
    page_blob_problem,
    vhd_file_problem,
)
from azrestore.formats.sizes import MAX_PAGE_BLOB, GiB, MiB, TiB, blob_size


def test_upload_size_bounds_are_azures() -> None:
    assert (20 * MiB + 512, 32767 * GiB + 512) == (MIN_UPLOAD_SIZE, MAX_UPLOAD_SIZE)


def test_page_blob_holds_8_tib_with_the_footer() -> None:
    largest = MAX_PAGE_BLOB - MiB  # the footer takes the last MiB's room
    assert blob_size(largest) <= MAX_PAGE_BLOB
    assert page_blob_problem(largest) is None
    assert page_blob_problem(1) is None
    problem = page_blob_problem(largest + 1)
    assert problem is not None and "larger than a page blob can hold" in problem
    assert "at most 8 TiB" in problem and "32 TiB" in problem


@pytest.mark.parametrize(
    ("disk_size", "allowed"),
    [
        (20 * MiB - 512, True),  # rounded up to 20 MiB
        (20 * MiB - MiB, False),
        (1, False),
        (32767 * GiB, True),
        (32767 * GiB - 512, True),
        (32767 * GiB + 1, False),
        (32 * TiB, False),
        (9 * TiB, True),  # over a page blob's, within a managed disk's
    ],
)
def test_managed_disk_takes_20_mib_to_32_tib(disk_size: int, allowed: bool) -> None:
    problem = managed_disk_problem(disk_size)
    assert (problem is None) == allowed
    if problem is not None:
        assert "between 20,972,032 and 35,183,298,347,520 bytes" in problem
        assert f"{blob_size(disk_size):,} bytes" in problem


@pytest.mark.parametrize(
    ("disk_size", "generation", "expected"),
    [
        (2 * TiB, "V1", None),
        (2 * TiB + 1, "V1", "over 2 TiB needs generation V2"),
        (2 * TiB + 1, "V2", None),
        (4 * TiB, "V2", None),
        (4 * TiB + 1, "V2", "an OS disk is at most 4 TiB"),
        (4 * TiB + 1, "V1", "an OS disk is at most 4 TiB"),
    ],
)
def test_os_disk_rules(disk_size: int, generation: str, expected: str | None) -> None:
    problem = os_disk_problem(disk_size, generation)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem


def test_vhd_file_for_azure_is_at_most_32_tib() -> None:
    assert vhd_file_problem(32767 * GiB) is None
    assert vhd_file_problem(9 * TiB) is None  # no page blob's limit: a managed disk takes it
    problem = vhd_file_problem(32767 * GiB + 1)
    assert problem is not None and "a managed disk is at most 32 TiB" in problem
