"""Checks on an uploaded page blob: its length, page ranges, footer and a few ranges of
its content against the image."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from pathlib import Path

from azure.storage.blob import BlobClient, BlobSasPermissions, generate_blob_sas

from azrestore.emulator.azurite import AZURITE_ACCOUNT, AZURITE_KEY
from azrestore.formats.sizes import FOOTER_SIZE, blob_size
from azrestore.formats.vhd import validate_fixed_vhd_footer

from . import images
from .images import ImageSpec

CONTAINER = "bench"
SPOT_CHECK_BYTES = 64 * 1024


def sas_url(account_url: str, name: str) -> str:
    sas = generate_blob_sas(
        AZURITE_ACCOUNT,
        CONTAINER,
        name,
        account_key=AZURITE_KEY,
        permission=BlobSasPermissions(read=True, write=True, create=True, delete=True),
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=12),
    )
    return f"{account_url}/{CONTAINER}/{name}?{sas}"


@dataclass
class BlobFacts:
    exists: bool
    content_length: int | None = None
    page_ranges: int = 0
    bytes_written: int = 0
    problems: list[str] = field(default_factory=list)


def spot_ranges(spec: ImageSpec, count: int = 3) -> list[tuple[int, int]]:
    """A few ``(offset, length)`` ranges to compare: inside data, across a data/hole edge,
    inside the largest hole (expects zeros) and at the disk's end. Seeded by the image."""
    rng = random.Random(spec.seed * 7919)
    extents = spec.extents()
    picks: list[tuple[int, int]] = []
    if spec.dense:
        picks.extend(
            (rng.randrange(0, spec.size - SPOT_CHECK_BYTES), SPOT_CHECK_BYTES) for _ in range(count)
        )
    else:
        for offset, length in rng.sample(extents, min(count, len(extents))):
            n = min(SPOT_CHECK_BYTES, length)
            picks.append((offset + rng.randrange(0, length - n + 1), n))
        offset, length = extents[-1]
        end = offset + length
        picks.append((max(0, end - SPOT_CHECK_BYTES // 2), SPOT_CHECK_BYTES))
        holes = []
        previous_end = 0
        for offset, length in [*extents, (spec.size, 0)]:
            holes.append((offset - previous_end, previous_end))
            previous_end = offset + length
        gap, start = max(holes)
        if gap >= SPOT_CHECK_BYTES:
            picks.append((start + (gap - SPOT_CHECK_BYTES) // 2, SPOT_CHECK_BYTES))
    picks.append((spec.size - SPOT_CHECK_BYTES, SPOT_CHECK_BYTES))
    return [(o, min(n, spec.size - o)) for o, n in picks]


def inspect_blob(blob: BlobClient, spec: ImageSpec, image: Path, *, spot_check: bool) -> BlobFacts:
    """Length, page ranges (Azurite does not merge them, so their sum is the bytes
    written), the footer as Azure validates it, and a few ranges against the image."""
    try:
        props = blob.get_blob_properties()
    except Exception as exc:
        return BlobFacts(exists=False, problems=[f"no blob: {type(exc).__name__}: {exc}"])
    facts = BlobFacts(exists=True, content_length=props.size)
    expected = blob_size(spec.size)
    if props.size != expected:
        facts.problems.append(f"content-length {props.size} != expected {expected}")
    for page in blob.list_page_ranges():
        assert page.start is not None and page.end is not None
        facts.page_ranges += 1
        facts.bytes_written += page.end - page.start + 1
    if props.size >= FOOTER_SIZE:
        footer = blob.download_blob(offset=props.size - FOOTER_SIZE, length=FOOTER_SIZE).readall()
        try:
            validate_fixed_vhd_footer(footer, props.size, disk=blob.blob_name)
        except ValueError as exc:
            facts.problems.append(f"footer: {exc}")
    if spot_check and props.size == expected:
        for offset, length in spot_ranges(spec):
            got = blob.download_blob(offset=offset, length=length).readall()
            if got != images.read_at(image, offset, length):
                facts.problems.append(f"bytes {offset}..{offset + length} differ from the image")
    return facts
