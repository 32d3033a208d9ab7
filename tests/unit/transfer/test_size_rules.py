"""Sizes past what a file system here can hold (33 TiB: ext4 stops at 16 TiB), through a
source that only claims its size: convert and the managed-disk upload refuse them, naming
the rule, before the output or anything in Azure is created."""

from __future__ import annotations

from pathlib import Path

import pytest

from azrestore.azure.arm import ArmSettings
from azrestore.azure.manageddisk import create_disk_and_upload
from azrestore.errors import InputError
from azrestore.formats.sizes import GiB, MiB, TiB
from azrestore.sources.base import ChainLink
from azrestore.sources.closing import ClosedOnExit
from azrestore.transfer.config import TransferConfig
from azrestore.transfer.convert import convert_file

DISK = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
    "/providers/Microsoft.Compute/disks/d1"
)


class ClaimedSize(ClosedOnExit):
    """A source of ``size`` zeros that holds no data (a DiskSource)."""

    def __init__(self, size: int, path: str = "nbd://backup.example/huge") -> None:
        self.path = path
        self.size = size
        self.format = "nbd"
        self.chain = (ChainLink(path, "nbd"),)
        self.is_block_device = False
        self.reads = 0

    def data_extents(self) -> list[tuple[int, int]]:
        return []

    def allocated_bytes(self) -> int:
        return 0

    def read_into(self, buffer: memoryview, offset: int) -> int:
        self.reads += 1
        buffer[:] = bytes(len(buffer))
        return len(buffer)

    def read_at(self, offset: int, length: int) -> bytes:
        self.reads += 1
        return bytes(max(0, min(length, self.size - offset)))

    def close(self) -> None:
        pass


def test_convert_refuses_more_than_azure_takes(tmp_path: Path) -> None:
    out = tmp_path / "out.vhd"
    with pytest.raises(InputError) as caught:
        convert_file(ClaimedSize(33 * TiB), out)
    assert str(caught.value) == (
        "nbd://backup.example/huge: 33.0 TiB is larger than any disk Azure takes"
        " (a managed disk is at most 32 TiB: 32,767 GiB)"
    )
    assert not out.exists()


def test_convert_takes_9_tib_from_a_source_that_is_not_a_raw_file(tmp_path: Path) -> None:
    """Past the rule (9 TiB: more than a page blob, within a managed disk), a source that
    is no RawImage holding no data: only the footer is written, nothing read."""
    out = tmp_path / "out.vhd"
    source = ClaimedSize(9 * TiB)
    result = convert_file(source, out)
    assert result.virtual_size == 9 * TiB and result.bytes_copied == 0 and source.reads == 0
    assert out.stat().st_size == 9 * TiB + 512 and out.stat().st_blocks * 512 < 1024 * 1024
    with out.open("rb") as vhd:
        vhd.seek(9 * TiB)
        assert vhd.read()[:8] == b"conectix"


class Pattern(ClaimedSize):
    """A source whose data extents hold ``offset % 251`` at each byte, zeros elsewhere."""

    def __init__(self, size: int, extents: list[tuple[int, int]]) -> None:
        super().__init__(size, "pattern")
        self.extents = extents

    def data_extents(self) -> list[tuple[int, int]]:
        return self.extents

    def byte(self, offset: int) -> int:
        inside = any(start <= offset < start + length for start, length in self.extents)
        return offset % 251 if inside else 0

    def read_into(self, buffer: memoryview, offset: int) -> int:
        self.reads += 1
        got = max(0, min(len(buffer), self.size - offset))
        buffer[:got] = bytes(self.byte(offset + i) for i in range(got))
        buffer[got:] = bytes(len(buffer) - got)
        return got


def test_convert_reads_a_source_through_read_into(tmp_path: Path) -> None:
    size = 3 * MiB + 512  # not a whole MiB: padded
    extents = [(0, 4096), (2 * MiB - 512, MiB + 1024)]  # across the 2 MiB block, to the end
    source = Pattern(size, extents)
    out = tmp_path / "out.vhd"
    result = convert_file(source, out, workers=2)
    assert result.bytes_copied == 4096 + MiB + 1024 and source.reads > 0
    body = out.read_bytes()
    assert len(body) == 4 * MiB + 512 and body[-512:][:8] == b"conectix"
    expected = bytes(source.byte(i) for i in range(size)) + bytes(4 * MiB - size)
    assert body[:-512] == expected


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("size", "os_type", "generation", "message"),
    [
        (33 * TiB, "none", "auto", "a managed disk upload must be between 20,972,032 and"),
        (32767 * GiB + 1, "none", "auto", "35,183,298,347,520 bytes"),
        (5 * TiB, "Linux", "V2", "an OS disk is at most 4 TiB"),
        (3 * TiB, "Windows", "V1", "an OS disk over 2 TiB needs generation V2"),
    ],
)
async def test_managed_disk_rules_come_before_azure(
    size: int, os_type: str, generation: str, message: str
) -> None:
    # No Resource Manager: any request would fail with another error than the rule's.
    settings = ArmSettings(endpoint="https://127.0.0.1:9", token="token")
    with pytest.raises(InputError) as caught:
        await create_disk_and_upload(
            ClaimedSize(size),
            DISK,
            location="westeurope",
            config=TransferConfig(),
            settings=settings,
            os_type=os_type,  # type: ignore[arg-type]
            hyper_v_generation=generation,  # type: ignore[arg-type]
        )
    assert message in str(caught.value)
    assert str(caught.value).startswith("nbd://backup.example/huge")
