"""The boot chain readers: FAT12/16/32 volumes made by mkfs.vfat and filled by mtools,
EFI applications signed by sbsign (sbverify checks them independently), and hypothesis
fuzzing of every parser (they raise FatError or answer, never anything else)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azrestore.formats.boot_chain import read_boot_chain
from azrestore.formats.fat import FatError, FatVolume
from azrestore.formats.layout import Partition
from azrestore.formats.partition_types import ESP_GUID
from azrestore.formats.partitions import analyze_disk
from azrestore.formats.pe_signature import pe_signature
from tests.support.disks import needs_tools, run
from tests.support.efi import TOOLS, efi_application, esp_image, signed, uefi_linux_disk
from tests.support.tools import needs

pytestmark = [needs_tools, needs(*TOOLS)]


def _reader(data: bytes):  # type: ignore[no-untyped-def]
    return lambda offset, length: data[offset : offset + length]


@pytest.mark.parametrize(("bits", "size_mib"), [(12, 4), (16, 32), (32, 64)])
def test_fat_reads_what_mtools_wrote(tmp_path: Path, bits: int, size_mib: int) -> None:
    from tests.support.disks import mkfs

    esp = mkfs(tmp_path, "vfat", size_mib * 1024 * 1024)
    run("mkfs.vfat", "-F", str(bits), str(esp))
    payload = bytes(range(256)) * 700  # several clusters
    source = tmp_path / "payload"
    source.write_bytes(payload)
    run("mmd", "-i", str(esp), "::/EFI", "::/EFI/Some Vendor")
    run("mcopy", "-i", str(esp), str(source), "::/EFI/Some Vendor/A Long File Name.efi")
    data = esp.read_bytes()
    volume = FatVolume.open(_reader(data), 0, len(data))
    assert volume.kind == f"fat{bits}"
    entry = volume.find("\\efi\\SOME VENDOR\\a long file name.EFI")
    assert entry is not None and entry.size == len(payload)
    assert volume.read_file(entry, 1 << 20) == payload
    assert volume.find("EFI/missing") is None
    with pytest.raises(FatError):
        volume.read_file(entry, 100)


def test_signature_found_as_sbverify_finds_it(tmp_path: Path) -> None:
    plain = efi_application()
    good = signed(tmp_path, plain)  # sbverify --cert accepted it
    assert pe_signature(good).signed and pe_signature(good).machine == "x64"
    assert not pe_signature(plain).signed and pe_signature(plain).is_pe
    unsigned = tmp_path / "plain.efi"
    unsigned.write_bytes(plain)
    # sbverify lists the signatures it finds: none in the plain one, one in the other
    assert "signature 1" not in run("sbverify", "--list", str(unsigned))
    good_file = tmp_path / "good.efi"
    good_file.write_bytes(good)
    assert "signature 1" in run("sbverify", "--list", str(good_file))
    assert not pe_signature(b"MZ" + b"\0" * 100).is_pe


def test_boot_chain_of_a_disk(tmp_path: Path) -> None:
    plain = efi_application()
    good = signed(tmp_path, plain)
    files = {"EFI/BOOT/BOOTX64.EFI": good, "EFI/debian/shimx64.efi": good}
    data = uefi_linux_disk(tmp_path, "good.raw", files).read_bytes()
    chain = read_boot_chain(
        _reader(data), len(data), analyze_disk(_reader(data), len(data)).partitions
    )
    assert chain.signed is True and [loader.path for loader in chain.loaders] == [
        "\\EFI\\BOOT\\BOOTX64.EFI",
        "\\EFI\\debian\\shimx64.efi",
    ]
    files["EFI/debian/grubx64.efi"] = plain
    data = uefi_linux_disk(tmp_path, "bad.raw", files).read_bytes()
    chain = read_boot_chain(
        _reader(data), len(data), analyze_disk(_reader(data), len(data)).partitions
    )
    assert chain.signed is False and chain.summary == "unsigned: \\EFI\\debian\\grubx64.efi"
    data = uefi_linux_disk(tmp_path, "none.raw", {"EFI/debian/grubx64.efi": good}).read_bytes()
    chain = read_boot_chain(
        _reader(data), len(data), analyze_disk(_reader(data), len(data)).partitions
    )
    assert chain.signed is None and chain.summary.startswith("no \\EFI\\BOOT\\BOOTX64.EFI")


@pytest.fixture(scope="module")
def fat_sample(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    work = tmp_path_factory.mktemp("fatfuzz")
    return esp_image(work, {"EFI/BOOT/BOOTX64.EFI": efi_application()}).read_bytes()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096), st.integers(0, 4095))
def test_pe_signature_never_raises_on_garbage(noise: bytes, at: int) -> None:
    image = bytearray(efi_application())
    image[at % len(image) : at % len(image) + len(noise)] = noise
    pe_signature(bytes(image))
    pe_signature(noise)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_fat_reader_fails_cleanly_on_damage(fat_sample: bytes, data: st.DataObject) -> None:
    image = bytearray(fat_sample)
    for _ in range(data.draw(st.integers(1, 8))):
        where = data.draw(st.integers(0, 128 * 1024))
        image[where : where + 4] = struct.pack("<I", data.draw(st.integers(0, 2**32 - 1)))
    read = _reader(bytes(image))
    partition = Partition(1, 0, len(image), ESP_GUID, "EFI system partition")
    chain = read_boot_chain(read, len(image), [partition])
    assert chain.esp and chain.signed in (None, False, True)
