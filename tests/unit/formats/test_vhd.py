"""Fixed VHD footer: geometry, pack/parse, Azure's validation, and cross-checks with qemu."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azrestore.formats.sizes import FOOTER_SIZE, GiB, MiB, TiB, virtual_size
from azrestore.formats.vhd import (
    MAX_CHS_SECTORS,
    VHD_EPOCH,
    VhdError,
    VhdFooter,
    chs_geometry,
    fixed_vhd_footer,
    footer_checksum,
    validate_fixed_vhd_footer,
)
from tests.support.tools import needs

QEMU_IMG = shutil.which("qemu-img")
needs_qemu = needs("qemu-img")

# A footer Azure wrote (disk exported from Azure, 5 GiB, creator "wa\0\0"), from the hexdump
# in qemu commit "vpc: Read images exported from Azure correctly" (Vitaly Kuznetsov, 2024).
AZURE_FOOTER = bytes.fromhex(
    "636f6e65637469780000000200010000"
    "ffffffffffffffff2ec79b9677610000"
    "000700005769326b0000000140000000"
    "000000014000000028a2103f00000002"
    "ffffe7478c54df94bd35714c945fe544"
    "4453921a"
).ljust(FOOTER_SIZE, b"\x00")


def _qemu(*args: str) -> subprocess.CompletedProcess[str]:
    assert QEMU_IMG is not None
    return subprocess.run([QEMU_IMG, *args], capture_output=True, text=True, check=False)


def _write_fixed_vhd(path: Path, size: int, data: dict[int, bytes] | None = None) -> None:
    """A sparse disk of ``size`` bytes (with optional data) followed by our footer."""
    with path.open("wb") as file:
        file.truncate(size)
        for offset, chunk in (data or {}).items():
            file.seek(offset)
            file.write(chunk)
        file.seek(size)
        file.write(fixed_vhd_footer(size))


# --- geometry -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sectors", "expected"),
    [
        # Azure's own footer for a 5 GiB disk.
        (5 * GiB // 512, (10402, 16, 63)),
        # The 17-sector branch, heads raised to the minimum of 4.
        (20 * MiB // 512, (602, 4, 17)),
        # The 255-sector branch starts at exactly 65535 * 16 * 63 sectors.
        (65535 * 16 * 63 - 1, (65534, 16, 63)),
        (65535 * 16 * 63, (16191, 16, 255)),
        # The cap.
        (MAX_CHS_SECTORS, (65535, 16, 255)),
        (4 * TiB // 512, (65535, 16, 255)),
        (0, (0, 4, 17)),
    ],
)
def test_chs_geometry_known_values(sectors: int, expected: tuple[int, int, int]) -> None:
    assert chs_geometry(sectors) == expected


@given(st.integers(min_value=0, max_value=2 * MAX_CHS_SECTORS))
def test_chs_geometry_bounds(sectors: int) -> None:
    cylinders, heads, sectors_per_track = chs_geometry(sectors)
    assert sectors_per_track in (17, 31, 63, 255)
    assert 4 <= heads <= 16
    assert 0 <= cylinders <= 65535
    product = cylinders * heads * sectors_per_track
    # The geometry never addresses more than the disk and is within one cylinder of it
    # below the cap.
    assert product <= min(sectors, MAX_CHS_SECTORS)
    if sectors <= MAX_CHS_SECTORS:
        assert sectors - product < heads * sectors_per_track + sectors_per_track


@given(st.integers(min_value=0, max_value=MAX_CHS_SECTORS), st.integers(1, 10_000))
def test_chs_geometry_is_monotonic(sectors: int, more: int) -> None:
    def product(geometry: tuple[int, int, int]) -> int:
        return geometry[0] * geometry[1] * geometry[2]

    assert product(chs_geometry(sectors)) <= product(chs_geometry(sectors + more))


def test_chs_geometry_rejects_negative() -> None:
    with pytest.raises(VhdError):
        chs_geometry(-1)


@needs_qemu
@pytest.mark.parametrize(
    "size",
    [1 * MiB, 20 * MiB, 100 * MiB, 300 * MiB, 1 * GiB, 40 * GiB, 65535 * 16 * 63 * 512, 127 * GiB],
)
def test_chs_geometry_matches_qemu_calculate_geometry(tmp_path: Path, size: int) -> None:
    """qemu-img without force_size grows the sector count until the VHD specification's
    geometry covers the disk; the same search over chs_geometry must find its answer."""
    image = tmp_path / "dynamic.vhd"
    result = _qemu("create", "-q", "-f", "vpc", str(image), str(size))
    assert result.returncode == 0, result.stderr
    footer = VhdFooter.parse(image.read_bytes()[:FOOTER_SIZE])  # a copy sits at offset 0

    total = size // 512
    extra = 0
    while True:
        geometry = chs_geometry(total + extra)
        if geometry[0] * geometry[1] * geometry[2] >= total:
            break
        extra += 1
    assert footer.geometry == geometry
    assert footer.current_size == geometry[0] * geometry[1] * geometry[2] * 512


# --- footer pack / parse ------------------------------------------------------------------


def test_parses_a_footer_azure_wrote() -> None:
    footer = VhdFooter.parse(AZURE_FOOTER)
    assert footer.cookie == b"conectix"
    assert footer.creator_application == b"wa\x00\x00"
    assert footer.creator_host_os == b"Wi2k"
    assert footer.current_size == footer.original_size == 5 * GiB
    assert footer.disk_type == 2
    assert footer.data_offset == 0xFFFF_FFFF_FFFF_FFFF
    assert footer.checksum == 0xFFFFE747 == footer_checksum(AZURE_FOOTER)
    # Azure writes the specification's geometry, as we do.
    assert footer.geometry == chs_geometry(5 * GiB // 512)
    assert footer.pack() == AZURE_FOOTER
    assert validate_fixed_vhd_footer(AZURE_FOOTER, 5 * GiB + 512) == footer


def test_fixed_footer_fields() -> None:
    unique_id = bytes(range(16))
    footer = fixed_vhd_footer(20 * MiB, timestamp=123456, unique_id=unique_id)
    assert len(footer) == FOOTER_SIZE
    parsed = VhdFooter.parse(footer)
    assert parsed == VhdFooter(
        cookie=b"conectix",
        features=2,
        format_version=0x00010000,
        data_offset=0xFFFF_FFFF_FFFF_FFFF,
        timestamp=123456,
        creator_application=b"qem2",
        creator_version=0x00050003,
        creator_host_os=b"Wi2k",
        original_size=20 * MiB,
        current_size=20 * MiB,
        cylinders=602,
        heads=4,
        sectors_per_track=17,
        disk_type=2,
        checksum=footer_checksum(footer),
        unique_id=unique_id,
        saved_state=0,
    )
    assert footer[85:] == bytes(427)
    # Big-endian on disk.
    assert footer[40:48] == (20 * MiB).to_bytes(8, "big")
    assert footer[60:64] == b"\x00\x00\x00\x02"


def test_fixed_footer_defaults_timestamp_and_unique_id() -> None:
    assert datetime(2000, 1, 1, tzinfo=UTC).timestamp() == VHD_EPOCH
    before = int(time.time()) - VHD_EPOCH
    first = VhdFooter.parse(fixed_vhd_footer(MiB))
    after = int(time.time()) - VHD_EPOCH
    assert before <= first.timestamp <= after
    second = VhdFooter.parse(fixed_vhd_footer(MiB))
    assert first.unique_id != second.unique_id
    assert first.unique_id[6] >> 4 == 4  # a version 4 UUID
    parsed = uuid.UUID(bytes=first.unique_id)
    assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


@pytest.mark.parametrize("size", [0, -512, 511, 513, MiB + 1])
def test_fixed_footer_rejects_sizes(size: int) -> None:
    with pytest.raises(VhdError, match="multiple of 512"):
        fixed_vhd_footer(size)


def test_fixed_footer_rejects_bad_unique_id() -> None:
    with pytest.raises(VhdError, match="16 bytes"):
        fixed_vhd_footer(MiB, unique_id=b"short")


def test_pack_rejects_out_of_range_fields() -> None:
    footer = VhdFooter.parse(fixed_vhd_footer(MiB))
    with pytest.raises(VhdError):
        dataclasses.replace(footer, heads=256).pack()
    with pytest.raises(VhdError):
        dataclasses.replace(footer, creator_application=b"toolong").pack()


footers = st.builds(
    VhdFooter,
    cookie=st.just(b"conectix"),
    features=st.integers(0, 2**32 - 1),
    format_version=st.integers(0, 2**32 - 1),
    data_offset=st.integers(0, 2**64 - 1),
    timestamp=st.integers(0, 2**32 - 1),
    creator_application=st.binary(min_size=4, max_size=4),
    creator_version=st.integers(0, 2**32 - 1),
    creator_host_os=st.binary(min_size=4, max_size=4),
    original_size=st.integers(0, 2**64 - 1),
    current_size=st.integers(0, 2**64 - 1),
    cylinders=st.integers(0, 65535),
    heads=st.integers(0, 255),
    sectors_per_track=st.integers(0, 255),
    disk_type=st.integers(0, 2**32 - 1),
    checksum=st.integers(0, 2**32 - 1),
    unique_id=st.binary(min_size=16, max_size=16),
    saved_state=st.integers(0, 255),
)


@given(footers)
def test_pack_parse_round_trip(footer: VhdFooter) -> None:
    packed = footer.pack()
    assert len(packed) == FOOTER_SIZE
    parsed = VhdFooter.parse(packed)
    # pack() computes the checksum; everything else survives unchanged.
    assert parsed == dataclasses.replace(footer, checksum=parsed.checksum)
    # The checksum is the one's complement of the byte sum without the checksum field.
    assert (parsed.checksum + sum(packed[:64]) + sum(packed[68:])) & 0xFFFFFFFF == 0xFFFFFFFF
    assert parsed.pack() == packed


@given(
    st.integers(1, 4096).map(lambda n: n * MiB),
    st.integers(0, FOOTER_SIZE - 1),
    st.integers(1, 255),
)
def test_any_corrupted_byte_is_detected(size: int, index: int, delta: int) -> None:
    footer = bytearray(fixed_vhd_footer(size))
    footer[index] = (footer[index] + delta) % 256
    with pytest.raises(VhdError):
        VhdFooter.parse(bytes(footer))


def test_parse_errors_name_the_problem() -> None:
    good = fixed_vhd_footer(MiB)
    with pytest.raises(VhdError, match="512 bytes"):
        VhdFooter.parse(good[:511])
    with pytest.raises(VhdError, match="expected cookie 'conectix'"):
        VhdFooter.parse(b"cxsparse" + good[8:])
    corrupt = bytearray(good)
    corrupt[100] = 1
    with pytest.raises(VhdError, match="checksum"):
        VhdFooter.parse(bytes(corrupt))


# --- Azure's validation -------------------------------------------------------------------


def test_validate_accepts_our_footer() -> None:
    footer = fixed_vhd_footer(20 * MiB)
    parsed = validate_fixed_vhd_footer(footer, 20 * MiB + 512)
    assert parsed.current_size == 20 * MiB


def test_validate_rejects_a_bad_cookie_like_azure() -> None:
    not_a_footer = bytes(FOOTER_SIZE)
    with pytest.raises(VhdError, match="Disk is expected to have cookie value 'conectix'"):
        validate_fixed_vhd_footer(not_a_footer, 20 * MiB + 512, disk="disk 'abcd'")
    with pytest.raises(VhdError, match="disk 'abcd'"):
        validate_fixed_vhd_footer(not_a_footer, 20 * MiB + 512, disk="disk 'abcd'")


def test_validate_rejects_bad_checksum() -> None:
    footer = bytearray(fixed_vhd_footer(20 * MiB))
    footer[64] ^= 0xFF
    with pytest.raises(VhdError, match="checksum"):
        validate_fixed_vhd_footer(bytes(footer), 20 * MiB + 512)


def test_validate_rejects_dynamic_disk_type() -> None:
    fixed = VhdFooter.parse(fixed_vhd_footer(20 * MiB))
    dynamic = dataclasses.replace(fixed, disk_type=3, data_offset=512).pack()
    with pytest.raises(VhdError, match=r"disk type 3 \(dynamic\).*fixed"):
        validate_fixed_vhd_footer(dynamic, 20 * MiB + 512)


def test_validate_rejects_size_mismatch() -> None:
    with pytest.raises(VhdError, match=r"21 MiB|22020096"):
        validate_fixed_vhd_footer(fixed_vhd_footer(20 * MiB), 21 * MiB + 512)


def test_validate_rejects_size_not_whole_mib() -> None:
    size = 20 * MiB + 512
    with pytest.raises(VhdError, match="must be a multiple of MiB"):
        validate_fixed_vhd_footer(fixed_vhd_footer(size), size + 512)


def test_validate_rejects_wrong_length() -> None:
    with pytest.raises(VhdError, match="512 bytes"):
        validate_fixed_vhd_footer(fixed_vhd_footer(MiB)[:-1], MiB + 512)


# --- cross-checks with qemu ---------------------------------------------------------------


@needs_qemu
@pytest.mark.parametrize(
    "size",
    [
        512,
        3 * 512,
        20 * MiB,
        20 * MiB + 512,
        GiB + MiB,
        virtual_size(10 * GiB + 12345),
        65535 * 16 * 63 * 512,
        127 * GiB,
        2040 * GiB,  # qemu's largest VHD
    ],
)
def test_qemu_reads_our_size_exactly(tmp_path: Path, size: int) -> None:
    image = tmp_path / "disk.vhd"
    _write_fixed_vhd(image, size)
    result = _qemu("info", "-f", "vpc", "--output=json", str(image))
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["virtual-size"] == size
    assert info["format"] == "vpc"


@needs_qemu
def test_creator_application_matters_to_qemu(tmp_path: Path) -> None:
    """Guards the test above: with creator "qemu" qemu sizes by geometry and reads short,
    so that test would notice a creator application qemu does not size by current size."""
    size = 20 * MiB
    footer = dataclasses.replace(
        VhdFooter.parse(fixed_vhd_footer(size)), creator_application=b"qemu"
    ).pack()
    image = tmp_path / "disk.vhd"
    with image.open("wb") as file:
        file.truncate(size)
        file.seek(size)
        file.write(footer)
    result = _qemu("info", "-f", "vpc", "--output=json", str(image))
    assert result.returncode == 0, result.stderr
    cylinders, heads, sectors = chs_geometry(size // 512)
    assert json.loads(result.stdout)["virtual-size"] == cylinders * heads * sectors * 512 < size


@needs_qemu
@pytest.mark.parametrize("size", [20 * MiB, GiB + MiB, 100 * GiB])
def test_qemu_force_size_footer(tmp_path: Path, size: int) -> None:
    """qemu-img's reference converter: same fields as ours, except that with force_size
    it writes the maximum geometry (65535/16/255) instead of the specification's."""
    image = tmp_path / "qemu.vhd"
    result = _qemu(
        "create", "-q", "-f", "vpc", "-o", "subformat=fixed,force_size", str(image), str(size)
    )
    assert result.returncode == 0, result.stderr
    blob_size = image.stat().st_size
    assert blob_size == size + FOOTER_SIZE
    with image.open("rb") as file:
        file.seek(-FOOTER_SIZE, 2)
        raw = file.read()
    theirs = validate_fixed_vhd_footer(raw, blob_size)
    assert theirs.geometry == (65535, 16, 255)
    assert theirs.geometry != chs_geometry(size // 512)

    ours = VhdFooter.parse(fixed_vhd_footer(size))
    assert ours.geometry == chs_geometry(size // 512)
    differ = {"timestamp", "unique_id", "checksum", "cylinders", "heads", "sectors_per_track"}
    for field in dataclasses.fields(VhdFooter):
        if field.name not in differ:
            assert getattr(ours, field.name) == getattr(theirs, field.name), field.name


@needs_qemu
def test_our_vhd_matches_qemu_conversion(tmp_path: Path) -> None:
    """Raw disk + our footer reads back, through qemu, as the raw disk and as qemu's own
    fixed VHD of it."""
    size = 24 * MiB
    data = {0: b"\xeb\x63\x90" + bytes(range(256)) * 2, 5 * MiB + 4096: b"x" * 70_000}
    raw = tmp_path / "disk.raw"
    with raw.open("wb") as file:
        file.truncate(size)
        for offset, chunk in data.items():
            file.seek(offset)
            file.write(chunk)
    ours = tmp_path / "ours.vhd"
    _write_fixed_vhd(ours, size, data)
    reference = tmp_path / "reference.vhd"
    result = _qemu(
        "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size",
        str(raw), str(reference),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    result = _qemu("compare", "-f", "vpc", "-F", "raw", str(ours), str(raw))
    assert result.returncode == 0, result.stdout + result.stderr
    result = _qemu("compare", "-f", "vpc", "-F", "vpc", str(ours), str(reference))
    assert result.returncode == 0, result.stdout + result.stderr
    # The data part of the two VHDs is byte for byte the raw disk.
    assert ours.read_bytes()[:size] == reference.read_bytes()[:size] == raw.read_bytes()


def test_large_footer_beyond_qemu_limit() -> None:
    """Azure takes up to 32 TiB; the geometry saturates and the size is exact."""
    size = 32 * TiB
    footer = validate_fixed_vhd_footer(fixed_vhd_footer(size), size + FOOTER_SIZE)
    assert footer.current_size == size
    assert footer.geometry == (65535, 16, 255)


@settings(max_examples=50)
@given(st.integers(1, 8 * 1024 * 1024))
def test_footer_for_any_mib_size_validates(mebibytes: int) -> None:
    size = mebibytes * MiB
    footer = fixed_vhd_footer(size, timestamp=0, unique_id=bytes(16))
    parsed = validate_fixed_vhd_footer(footer, size + FOOTER_SIZE)
    assert parsed.geometry == chs_geometry(size // 512)
