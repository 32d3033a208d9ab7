"""Journal.load on damaged and hostile journals: a journal, or a clear JournalError (an
InputError, exit code 2), never another exception. Only the public create/record/load
path is used: the journal's own tests judge what a loaded journal holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azrestore.errors import AzRestoreError
from azrestore.formats.sizes import MiB
from azrestore.transfer.identity import SourceIdentity
from azrestore.transfer.journal import Journal, JournalError, JournalHeader
from azrestore.transfer.sink import TargetIdentity

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SIZE = 8 * MiB


def _valid(path: Path) -> bytes:
    source = SourceIdentity("/disk.raw", SIZE, 1, 2, 3, "ab" * 32)
    journal = Journal.create(
        path, JournalHeader(source, TargetIdentity("http://x/c/b", SIZE + 512, "t0"), SIZE)
    )
    for offset in (0, 2 * MiB, 6 * MiB):
        journal.record(offset, MiB)
    journal.close()
    data = path.read_bytes()
    path.unlink()
    return data


def _judge(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        journal = Journal.load(path)
    except AzRestoreError as exc:
        assert isinstance(exc, JournalError) and exc.exit_code == 2, repr(exc)
        assert str(exc).startswith(str(path)) and "\n" not in str(exc), repr(exc)
    else:
        journal.close()
        done = journal.done
        assert done == sorted(done) and all(start < end for start, end in done)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


@FUZZ
@given(st.binary(max_size=400))
def test_any_bytes(tmp_path: Path, data: bytes) -> None:
    _judge(tmp_path / "j.journal", data)


@FUZZ
@given(st.data())
def test_a_valid_journal_mutated(tmp_path: Path, data: st.DataObject) -> None:
    valid = bytearray(_valid(tmp_path / "v.journal"))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(valid) - 1))
        action = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if action == "flip":
            valid[at] = data.draw(st.integers(0, 255))
        elif action == "delete":
            del valid[at : at + data.draw(st.integers(1, 50))]
        elif action == "insert":
            valid[at:at] = data.draw(st.binary(min_size=1, max_size=50))
        else:
            del valid[at:]
        if not valid:
            break
    _judge(tmp_path / "j.journal", bytes(valid))


def _replace(node: Any, path: list[int], value: Any) -> Any:
    """``node`` with the part that ``path`` picks (indexes into keys) set to ``value``."""
    if not path or not isinstance(node, dict) or not node:
        return value
    key = sorted(node)[path[0] % len(node)]
    return {**node, key: _replace(node[key], path[1:], value)}


@FUZZ
@given(st.lists(st.integers(0, 20), max_size=3), json_values)
def test_a_header_with_any_values(tmp_path: Path, where: list[int], value: Any) -> None:
    valid = _valid(tmp_path / "v.journal")
    line, records = valid.split(b"\n", 1)
    header = _replace(json.loads(line), where, value)
    _judge(tmp_path / "j.journal", json.dumps(header).encode() + b"\n" + records)


@pytest.mark.parametrize(
    "line",
    [
        # Found by the fuzzers: AttributeError, OverflowError, RecursionError before.
        b"[1]",
        b'"a journal"',
        b"[" * 100_000,
        b"INFINITY",  # replaced below by a header whose virtual size is Infinity
    ],
)
def test_found_by_fuzzing(tmp_path: Path, line: bytes) -> None:
    if line == b"INFINITY":
        header = json.loads(_valid(tmp_path / "v.journal").split(b"\n", 1)[0])
        line = json.dumps({**header, "virtual_size": float("inf")}).encode()
    path = tmp_path / "j.journal"
    path.write_bytes(line + b"\n")
    with pytest.raises(JournalError, match="damaged journal"):
        Journal.load(path)
