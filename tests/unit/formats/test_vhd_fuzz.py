"""The VHD footer reader on any bytes: VhdFooter.parse and validate_fixed_vhd_footer end
in a footer or a VhdError, never another exception; a valid footer mutated anywhere is
refused unless its checksum still adds up."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from azrestore.formats.sizes import FOOTER_SIZE, MiB
from azrestore.formats.vhd import VhdError, VhdFooter, fixed_vhd_footer, validate_fixed_vhd_footer

VALID = fixed_vhd_footer(4 * MiB, timestamp=0, unique_id=bytes(16))
FUZZ = settings(max_examples=100, deadline=None)


def _judge(data: bytes, blob_size: int) -> None:
    try:
        VhdFooter.parse(data)
    except VhdError as exc:
        assert str(exc) and "\n" not in str(exc)
    try:
        footer = validate_fixed_vhd_footer(data, blob_size, disk="fuzz")
    except VhdError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert footer.current_size == blob_size - FOOTER_SIZE and footer.current_size % MiB == 0


@FUZZ
@given(st.binary(max_size=2 * FOOTER_SIZE), st.integers(-(2**70), 2**70))
def test_any_bytes(data: bytes, blob_size: int) -> None:
    _judge(data, blob_size)


@FUZZ
@given(st.binary(min_size=FOOTER_SIZE, max_size=FOOTER_SIZE), st.integers(0, 2**64))
def test_any_footer_sized_bytes(data: bytes, blob_size: int) -> None:
    _judge(b"conectix" + data[8:], blob_size)


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, FOOTER_SIZE - 1), st.integers(0, 255)), max_size=8),
    st.sampled_from([4 * MiB + FOOTER_SIZE, 0, FOOTER_SIZE, 2**63]),
)
def test_a_valid_footer_mutated(changes: list[tuple[int, int]], blob_size: int) -> None:
    data = bytearray(VALID)
    for at, value in changes:
        data[at] = value
    _judge(bytes(data), blob_size)
    if bytes(data) != VALID and data[64:68] == VALID[64:68] and sum(data) != sum(VALID):
        try:
            VhdFooter.parse(bytes(data))
        except VhdError:
            pass
        else:
            raise AssertionError("a footer whose bytes changed kept its checksum")


def test_the_valid_footer_is_read() -> None:
    footer = validate_fixed_vhd_footer(VALID, 4 * MiB + FOOTER_SIZE)
    assert footer.pack() == VALID
