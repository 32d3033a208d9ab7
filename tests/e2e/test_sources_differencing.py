"""Differencing VHDs and VHDXs, which qemu does not read, read by azrestore over their
parents: what is read (and uploaded) is the top view, computed here from qemu's raw views
of each file and the sector bitmaps the test set; ranges no file of the chain holds are
not in the extents; the chain and the journal identity name every file; a missing,
mismatched or looping parent is one clear InputError."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from azrestore.errors import InputError
from azrestore.formats.sizes import MiB
from azrestore.sources import differencing
from azrestore.sources.differencing import DifferencingImage
from azrestore.sources.open import open_source
from azrestore.sources.report import inspect_image
from azrestore.transfer.identity import source_identity
from tests.e2e.test_sources_formats import read_all
from tests.e2e.test_sources_upload import check, upload
from tests.support.cli import assert_one_line_error, run_script
from tests.support.differencing import (
    give_vhdx_a_pending_log,
    make_vhd_child,
    make_vhdx_child,
    vhd_unique_id,
)
from tests.support.qemu import AWKWARD_SIZE, convert, create, pattern_raw, qemu_io, raw_view
from tests.support.storage import StorageTarget
from tests.support.tools import needs

pytestmark = [needs("qemu-img", "qemu-io", "qemu-nbd"), pytest.mark.anyio]

SECTORS_PER_MIB = MiB // 512


def vhd_parent(tmp: Path, subformat: str = "dynamic") -> tuple[Path, bytes]:
    raw = pattern_raw(tmp / "pattern.raw")
    parent = convert(raw, tmp / "parent.vhd", "vpc", f"subformat={subformat}", "force_size=on")
    return parent, raw_view(parent, "vpc")


def vhd_child(tmp: Path, name: str, *writes: str) -> Path:
    child = create(tmp / name, "vpc", AWKWARD_SIZE, "subformat=dynamic", "force_size=on")
    qemu_io(child, "vpc", *writes)
    return child


def vhd_pair(tmp: Path, subformat: str = "dynamic") -> tuple[Path, Path, bytes]:
    """A differencing VHD over a VHD holding the pattern: blocks 0, 2 and 4 (2 MiB each)
    in the child, some of their sectors cleared so that they come from the parent."""
    parent, base = vhd_parent(tmp, subformat)
    child = vhd_child(
        tmp, "child.vhd", "write -P 0x11 0 64k", "write -P 0x22 4M 1M", "write -P 0x33 8M 4k"
    )
    cleared = [*range(0, 8), 100, *range(4 * SECTORS_PER_MIB + 10, 4 * SECTORS_PER_MIB + 30)]
    cleared += range(5 * SECTORS_PER_MIB + 24, 5 * SECTORS_PER_MIB + 60)  # 5M+12k: 0xC3
    expected = make_vhd_child(
        child,
        parent,
        base,
        cleared=cleared,
        relative=".\\parent.vhd",
        absolute="C:\\VMs\\parent.vhd",
    )
    return child, parent, expected


def vhd_chain(tmp: Path) -> tuple[Path, Path, Path, bytes]:
    child, parent, middle = vhd_pair(tmp)
    grand = vhd_child(tmp, "grand.vhd", "write -P 0x44 60k 8k", "write -P 0x55 4194816 512")
    expected = make_vhd_child(
        grand,
        child,
        middle,
        cleared=[*range(120, 124), 4 * SECTORS_PER_MIB + 1],
        relative="child.vhd",
    )
    return grand, child, parent, expected


def vhdx_parent(tmp: Path, subformat: str = "dynamic") -> tuple[Path, bytes]:
    raw = pattern_raw(tmp / "pattern.raw")
    parent = convert(
        raw, tmp / "parent.vhdx", "vhdx", f"subformat={subformat}", "block_size=1048576"
    )
    return parent, raw_view(parent, "vhdx")


def vhdx_pair(
    tmp: Path, subformat: str = "dynamic", locator: dict[str, str] | None = None
) -> tuple[Path, Path, bytes]:
    """A differencing VHDX over a VHDX holding the pattern: block 1 fully present, blocks
    0 and 5 partially (a sector bitmap), block 2 zero, the rest from the parent."""
    parent, base = vhdx_parent(tmp, subformat)
    child = create(
        tmp / "child.vhdx", "vhdx", AWKWARD_SIZE, "subformat=dynamic", "block_size=1048576"
    )
    qemu_io(
        child,
        "vhdx",
        *(
            "write -P 0x11 0 64k",
            "write -P 0x22 1M 1M",
            "write -P 0x33 5M 4k",
            "write -P 0x44 8M 4k",
        ),
    )
    partial = {0: set(range(1, 128)), 5: set(range(0, 8)) | {30}}
    expected = make_vhdx_child(child, parent, base, partial=partial, zero=[2], locator=locator)
    return child, parent, expected


def vhdx_chain(tmp: Path) -> tuple[Path, bytes]:
    child, _, middle = vhdx_pair(tmp)
    grand = create(tmp / "grand.vhdx", "vhdx", AWKWARD_SIZE, "block_size=1048576")
    qemu_io(grand, "vhdx", "write -P 0x55 5246976 4k", "write -P 0x66 7M 512")
    partial = {5: set(range(8, 12))}  # of the 8 sectors written, 4 are the grandchild's
    expected = make_vhdx_child(grand, child, middle, partial=partial, zero=[9])
    return grand, expected


async def check_reads(image: Path, expected: bytes, chain: list[tuple[str, str]]) -> None:
    with await open_source(image) as source:
        assert isinstance(source, DifferencingImage)
        assert source.size == len(expected)
        assert [(Path(link.path).name, link.format) for link in source.chain] == chain
        assert read_all(source) == expected
        assert source.read_at(5 * MiB, 8192) == expected[5 * MiB : 5 * MiB + 8192]
        extents = source.data_extents()
        holes = bytearray(expected)
        for offset, length in extents:
            assert offset >= 0 and offset + length <= source.size
            holes[offset : offset + length] = bytes(length)
        assert not any(holes)
        assert source.allocated_bytes() == sum(length for _, length in extents)


@pytest.mark.parametrize("subformat", ["dynamic", "fixed"])
async def test_a_differencing_vhd_reads_as_its_top_view(tmp_path: Path, subformat: str) -> None:
    child, _, expected = vhd_pair(tmp_path, subformat)
    assert expected != raw_view(child, "vpc")[: len(expected)]  # the bits cleared matter
    await check_reads(child, expected, [("child.vhd", "vpc"), ("parent.vhd", "vpc")])


async def test_what_no_file_of_the_chain_holds_is_not_read(tmp_path: Path) -> None:
    """Block 3 of the VHDs (6-8 MiB) is allocated in neither file."""
    child, _, _ = vhd_pair(tmp_path)
    with await open_source(child) as source:
        for offset, length in source.data_extents():
            assert offset + length <= 6 * MiB or offset >= 8 * MiB
        assert source.allocated_bytes() <= 4 * 2 * MiB


async def test_a_chain_of_three_vhds(tmp_path: Path) -> None:
    grand, _, _, expected = vhd_chain(tmp_path)
    chain = [("grand.vhd", "vpc"), ("child.vhd", "vpc"), ("parent.vhd", "vpc")]
    await check_reads(grand, expected, chain)


async def test_a_chain_of_three_vhdxs(tmp_path: Path) -> None:
    grand, expected = vhdx_chain(tmp_path)
    chain = [("grand.vhdx", "vhdx"), ("child.vhdx", "vhdx"), ("parent.vhdx", "vhdx")]
    await check_reads(grand, expected, chain)


@pytest.mark.parametrize("subformat", ["dynamic", "fixed"])
async def test_a_differencing_vhdx_reads_as_its_top_view(tmp_path: Path, subformat: str) -> None:
    child, _, expected = vhdx_pair(tmp_path, subformat)
    await check_reads(child, expected, [("child.vhdx", "vhdx"), ("parent.vhdx", "vhdx")])


async def test_a_vhdx_parent_found_by_its_absolute_paths_file_name(tmp_path: Path) -> None:
    locator = {"absolute_win32_path": "\\\\?\\D:\\Hyper-V\\parent.vhdx"}
    child, _, expected = vhdx_pair(tmp_path, locator=locator)
    await check_reads(child, expected, [("child.vhdx", "vhdx"), ("parent.vhdx", "vhdx")])


async def test_inspect_shows_the_backing_chain(tmp_path: Path) -> None:
    grand, child, parent, _ = vhd_chain(tmp_path)
    report = (await inspect_image(grand)).to_json()
    assert report["format"] == "vpc"
    assert report["backing_chain"] == [
        {"path": str(grand), "format": "vpc"},
        {"path": str(child), "format": "vpc"},
        {"path": str(parent), "format": "vpc"},
    ]


@pytest.mark.parametrize("case", ["vhd-chain-of-3", "vhdx"])
async def test_a_differencing_disk_uploads_as_its_top_view(
    storage: StorageTarget, tmp_path: Path, case: str
) -> None:
    if case == "vhdx":
        image, _, expected = vhdx_pair(tmp_path)
    else:
        image, _, _, expected = vhd_chain(tmp_path)
    with await open_source(image) as source:
        result = await upload(source, storage, f"{case}.vhd")
        allocated = source.allocated_bytes()
    check(storage, f"{case}.vhd", expected, result)
    assert result.stats.bytes_read <= allocated


async def test_the_identity_covers_every_file_and_a_changed_parent_is_seen(tmp_path: Path) -> None:
    grand, child, parent, _ = vhd_chain(tmp_path)
    with await open_source(grand) as source:
        recorded = source_identity(source)
    assert [item.path for item in recorded.files] == [str(grand), str(child), str(parent)]
    info = parent.stat()
    with parent.open("r+b") as handle:  # data changed in place; its Unique Id kept
        handle.seek(3 * 512 + 512 + 512)
        handle.write(b"\x99" * 512)
    os.utime(parent, ns=(info.st_atime_ns, info.st_mtime_ns))
    with await open_source(grand) as source:
        changes = recorded.differences(source_identity(source))
    assert f"file {parent} was modified (ctime changed)" in changes


async def test_a_missing_parent_is_named_with_the_file_naming_it(tmp_path: Path) -> None:
    child, parent, _ = vhd_pair(tmp_path)
    parent.unlink()
    with pytest.raises(InputError) as caught:
        await open_source(child)
    assert str(caught.value) == (
        f"{child}: its parent '.\\parent.vhd' is not found (tried: {parent})"
    )


async def test_a_missing_vhdx_parent_says_where_it_looked(tmp_path: Path) -> None:
    locator = {
        "relative_path": "..\\other\\base.vhdx",
        "absolute_win32_path": "\\\\?\\D:\\x\\old.vhdx",
    }
    child, _, _ = vhdx_pair(tmp_path, locator=locator)
    with pytest.raises(InputError) as caught:
        await open_source(child)
    assert str(caught.value) == (
        f"{child}: its parent '..\\other\\base.vhdx' is not found (tried:"
        f" {tmp_path.parent / 'other' / 'base.vhdx'}, {tmp_path / 'old.vhdx'})"
    )


async def test_a_vhd_parent_with_another_unique_id_is_refused(tmp_path: Path) -> None:
    parent, base = vhd_parent(tmp_path)
    child = vhd_child(tmp_path, "child.vhd", "write -P 0x11 0 64k")
    other = uuid.uuid4()
    make_vhd_child(child, parent, base, relative="parent.vhd", parent_id=other.bytes)
    with pytest.raises(InputError) as caught:
        await open_source(child)
    assert str(caught.value) == (
        f"{child}: its parent {parent} has Unique Id {uuid.UUID(bytes=vhd_unique_id(parent))},"
        f" but the child was made from one with {other} (the parent changed after the child"
        " was made, or is another disk)"
    )


async def test_a_vhdx_parent_with_another_data_write_guid_is_refused(tmp_path: Path) -> None:
    parent, base = vhdx_parent(tmp_path)
    child = create(tmp_path / "child.vhdx", "vhdx", AWKWARD_SIZE, "block_size=1048576")
    make_vhdx_child(child, parent, base, linkage=uuid.uuid4().bytes_le)
    with pytest.raises(
        InputError, match=r"^.*child\.vhdx: its parent .*parent\.vhdx has DataWriteGuid"
    ):
        await open_source(child)


async def test_a_vhdx_whose_parent_is_not_a_vhdx_is_refused(tmp_path: Path) -> None:
    child, parent, _ = vhdx_pair(tmp_path)
    parent.write_bytes(bytes(4 * MiB))
    with pytest.raises(InputError) as caught:
        await open_source(child)
    assert str(caught.value) == f"{child}: its parent {parent} is not a VHDX: no VHDX signature"


async def test_a_loop_is_refused(tmp_path: Path) -> None:
    child = vhd_child(tmp_path, "child.vhd", "write -P 0x11 0 64k")
    own = vhd_unique_id(child)
    make_vhd_child(child, child, raw_view(child, "vpc"), relative=".\\child.vhd", parent_id=own)
    with pytest.raises(InputError) as caught:
        await open_source(child)
    assert str(caught.value) == f"{child}: its parent {child} is in the chain above it: a loop"


async def test_a_chain_too_deep_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    grand, child, _, _ = vhd_chain(tmp_path)
    monkeypatch.setattr(differencing, "MAX_CHAIN", 2)
    with pytest.raises(InputError) as caught:
        await open_source(grand)
    assert str(caught.value) == f"{child}: a chain of more than 2 differencing files"


async def test_a_truncated_child_is_refused(tmp_path: Path) -> None:
    child, _, _ = vhd_pair(tmp_path)
    data = child.read_bytes()
    child.write_bytes(data[: 3 * MiB] + data[-512:])  # block 2 and on are gone
    with pytest.raises(InputError, match=r"a malformed differencing VHD: .* past the file's end"):
        await open_source(child)


async def test_a_vhdx_with_a_log_to_replay_is_refused(tmp_path: Path) -> None:
    child, _, _ = vhdx_pair(tmp_path)
    give_vhdx_a_pending_log(child)
    with pytest.raises(InputError) as caught:
        await open_source(child)
    assert str(caught.value) == (
        f"{child}: its log holds changes not yet written to the disk (open it once in"
        " Hyper-V, e.g. Mount-VHD, so that the log is replayed)"
    )


def test_the_command_line_says_a_parent_is_missing_in_one_line(tmp_path: Path) -> None:
    child, parent, _ = vhd_pair(tmp_path)
    parent.rename(tmp_path / "moved.vhd")
    line = assert_one_line_error(run_script("inspect", child), 2)
    assert f"{child}: its parent '.\\parent.vhd' is not found (tried: {parent})" in line
