"""nonzero_runs against a naive pure-Python reference and the rule's invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from azrestore.formats.zeros import nonzero_runs

BLOCKS = st.sampled_from([512, 1024, 1536, 4096])


def reference_runs(data: bytes, block: int, merge_gap: int) -> list[tuple[int, int]]:
    """The rule, spelled out one block at a time."""
    runs: list[tuple[int, int]] = []
    last_data_end: int | None = None
    for start in range(0, len(data), block):
        end = min(start + block, len(data))
        if not any(data[start:end]):
            continue
        gap = None if last_data_end is None else start - last_data_end
        if runs and gap is not None and (gap == 0 or gap < merge_gap):
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
        last_data_end = end
    return runs


@st.composite
def buffers(draw: st.DrawFn) -> tuple[bytes, int, int]:
    """A buffer (a multiple of 512 bytes, often not of the block) with clustered data."""
    block = draw(BLOCKS)
    size = draw(st.integers(0, 48)) * 512
    data = bytearray(size)
    if size:
        for _ in range(draw(st.integers(0, 12))):
            start = draw(st.integers(0, size - 1))
            length = draw(st.integers(1, 700))
            value = draw(st.integers(1, 255))
            data[start : start + length] = bytes([value]) * len(data[start : start + length])
    merge_gap = draw(st.sampled_from([0, 1, 511, 512, 513, block, block + 1, 3 * block, 10**9]))
    return bytes(data), block, merge_gap


def zero_block_runs(data: bytes, block: int, start: int, end: int) -> list[int]:
    """Lengths in bytes of the maximal runs of whole zero blocks inside [start, end)."""
    runs, current = [], 0
    for offset in range(start, end, block):
        if any(data[offset : min(offset + block, end)]):
            if current:
                runs.append(current)
            current = 0
        else:
            current += min(block, end - offset)
    if current:
        runs.append(current)
    return runs


@given(buffers())
def test_matches_reference(case: tuple[bytes, int, int]) -> None:
    data, block, merge_gap = case
    assert nonzero_runs(data, block, merge_gap) == reference_runs(data, block, merge_gap)


@given(buffers())
def test_invariants(case: tuple[bytes, int, int]) -> None:
    data, block, merge_gap = case
    runs = nonzero_runs(data, block, merge_gap)
    covered = np.zeros(len(data), dtype=bool)
    previous_end = -1
    for start, end in runs:
        assert previous_end < start < end <= len(data)  # sorted, disjoint, not adjacent
        assert start % block == 0
        assert end % block == 0 or end == len(data)
        covered[start:end] = True
        # A run starts and ends with data.
        assert any(data[start : start + block])
        assert any(data[(end - 1) // block * block : end])
        # No zero stretch of merge_gap bytes or more is sent (none at all for 0).
        for gap in zero_block_runs(data, block, start, end):
            assert gap < max(merge_gap, 1)
        if previous_end >= 0:
            # Two runs are only apart when the zeros between them reach merge_gap.
            assert start - previous_end >= max(merge_gap, 1)
        previous_end = end
    # Every non-zero byte is covered.
    nonzero = np.frombuffer(data, dtype=np.uint8) != 0
    assert not (nonzero & ~covered).any()


@given(st.integers(0, 40).map(lambda n: n * 512), BLOCKS, st.integers(0, 10**6))
def test_all_zero(size: int, block: int, merge_gap: int) -> None:
    assert nonzero_runs(bytes(size), block, merge_gap) == []


@given(st.integers(1, 40).map(lambda n: n * 512), BLOCKS, st.integers(0, 10**6))
def test_all_dense(size: int, block: int, merge_gap: int) -> None:
    assert nonzero_runs(b"\x01" * size, block, merge_gap) == [(0, size)]


def test_merge_gap_zero_never_crosses_a_zero_block() -> None:
    block = 4096
    data = bytearray(5 * block)
    data[0] = data[block] = 1  # adjacent data blocks stay one run
    data[3 * block + 17] = 1
    assert nonzero_runs(bytes(data), block, 0) == [(0, 2 * block), (3 * block, 4 * block)]
    assert nonzero_runs(bytes(data), block, block) == [(0, 2 * block), (3 * block, 4 * block)]
    assert nonzero_runs(bytes(data), block, block + 1) == [(0, 4 * block)]


def test_partial_last_block() -> None:
    data = bytearray(4096 + 512)
    data[-1] = 7
    assert nonzero_runs(bytes(data), 4096, 0) == [(4096, 4608)]
    data[0] = 1
    assert nonzero_runs(bytes(data), 4096, 0) == [(0, 4608)]
    data[0] = 0
    data[4095] = 1
    assert nonzero_runs(bytes(data), 4096, 0) == [(0, 4608)]


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_accepts_buffer_types(kind: type) -> None:
    data = bytearray(8192)
    data[5000] = 1
    assert nonzero_runs(kind(data), 4096, 0) == [(4096, 8192)]


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="block"):
        nonzero_runs(bytes(4096), 1000, 0)
    with pytest.raises(ValueError, match="block"):
        nonzero_runs(bytes(4096), 0, 0)
    with pytest.raises(ValueError, match="multiple of 512"):
        nonzero_runs(bytes(1000), 512, 0)
    assert nonzero_runs(b"", 512, 0) == []
