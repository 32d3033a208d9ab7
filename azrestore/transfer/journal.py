"""A journal per target: which ranges of the blob are safely written, so that an upload
killed at any moment continues where it stopped.

File format (``<sha256 of the target key>.journal`` in the journal directory)::

    {"format": "azrestore-journal", "version": 1, "source": {...}, "target": {...}, ...}\\n
    W 0000000000400000 0000000000400000 1a2b3c4d\\n      <- 45 bytes per record
    W 0000000000000000 0000000000400000 5e6f7a8b\\n
    C 0000000000a00200 0000000000000000 9c0d1e2f\\n      <- complete (footer written)

The header line is JSON: the source's identity (path, size, mtime, inode, a digest of
sampled blocks), the target's (key without any query or secret, size, creation time),
the disk's virtual size and the id of the lease the upload holds on its blob, if any.
Each record is fixed-size ASCII: kind, offset and length in hex, and the CRC-32 of the
text before it.

Durability: the header is written to a temporary file, fsynced and renamed into place
(then the directory is fsynced), so a journal either has its whole header or does not
exist. A ``W`` record is appended with one ``write(2)`` only after the service has
acknowledged every request of its range: the kernel has it once the call returns, so it
survives the process being killed at any moment. The file is fsynced every second or so
(off the event loop) and at the end, so a power loss forgets at most the last second of
records; those ranges are sent again, which is harmless (Put Page of the same bytes is
idempotent). Reading stops at the first record that is short, malformed or fails its
CRC (a torn append, or the zeros some file systems show after a crash) and cuts the file
there: every record kept was written whole by us, after its range was acknowledged.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..formats.sizes import SECTOR, MiB
from ..redact import redact_url
from .identity import SourceIdentity
from .sink import TargetIdentity

JOURNAL_FORMAT = "azrestore-journal"
JOURNAL_VERSION = 1
#: The azrestore state directory; journals go in its ``journals`` subdirectory.
RECORD_SIZE = 45
_BODY_SIZE = 35  # "K OOOOOOOOOOOOOOOO LLLLLLLLLLLLLLLL"
_WRITTEN = ord("W")
_COMPLETE = ord("C")
#: Records kept unsorted before they are merged into ranges while loading.
_MERGE_EVERY = 65536

Range = tuple[int, int]


class JournalError(InputError):
    """A journal that cannot be used: damaged, locked by another run, or not ours."""


def journal_path(directory: str | os.PathLike[str], key: str) -> Path:
    """Where the journal of the target named ``key`` lives (a hash: no secret in a name)."""
    name = hashlib.sha256(key.encode()).hexdigest()[:40]
    return Path(directory) / f"{name}.journal"


def merge_ranges(ranges: Iterable[Range]) -> list[Range]:
    """``(start, end)`` ranges sorted, with overlapping or touching ones joined."""
    merged: list[Range] = []
    for start, end in sorted(ranges):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


@dataclass(frozen=True, slots=True)
class JournalHeader:
    """What a journal is about."""

    source: SourceIdentity
    target: TargetIdentity
    virtual_size: int
    created: str = ""
    #: the id of the lease the upload holds on its target (None: not leased)
    lease_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        lease = {} if self.lease_id is None else {"lease_id": self.lease_id}
        return {
            "format": JOURNAL_FORMAT,
            "version": JOURNAL_VERSION,
            "created": self.created or datetime.now(UTC).isoformat(timespec="seconds"),
            "source": self.source.to_json(),
            "target": {**self.target.to_json(), "key": redact_url(self.target.key)},
            "virtual_size": self.virtual_size,
            **lease,
        }

    @classmethod
    def from_json(cls, data: object) -> JournalHeader:
        if not isinstance(data, dict):
            raise ValueError("the header is not a JSON object")
        if not isinstance(data.get("source"), dict) or not isinstance(data.get("target"), dict):
            raise ValueError("the header's source or target is not a JSON object")
        if data.get("format") != JOURNAL_FORMAT or data.get("version") != JOURNAL_VERSION:
            raise ValueError("not an azrestore journal of a known version")
        lease_id = data.get("lease_id")
        if lease_id is not None and not isinstance(lease_id, str):
            raise ValueError("the lease id is not a string")
        return cls(
            source=SourceIdentity.from_json(data["source"]),
            target=TargetIdentity.from_json(data["target"]),
            virtual_size=int(data["virtual_size"]),
            created=str(data.get("created", "")),
            lease_id=lease_id,
        )


def _record(kind: int, offset: int, length: int) -> bytes:
    body = b"%c %016x %016x" % (kind, offset, length)
    return body + b" %08x\n" % zlib.crc32(body)


def _parse_record(record: bytes) -> tuple[int, int, int] | None:
    """``(kind, offset, length)`` of a whole, intact record, else None."""
    if len(record) != RECORD_SIZE or record[-1:] != b"\n" or record[_BODY_SIZE] != ord(" "):
        return None
    body = record[:_BODY_SIZE]
    try:
        crc = int(record[_BODY_SIZE + 1 : -1], 16)
        offset = int(body[2:18], 16)
        length = int(body[19:35], 16)
    except ValueError:
        return None
    if zlib.crc32(body) != crc or body[1:2] != b" " or body[18:19] != b" ":
        return None
    kind = body[0]
    if kind not in (_WRITTEN, _COMPLETE):
        return None
    return kind, offset, length


def _temporary(path: Path) -> tuple[Path, int]:
    """A new temporary file beside ``path``, created exclusively: its own name per writer
    (two writers of one journal in one process do not share one), never a stale file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    while True:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
        try:
            return tmp, os.open(tmp, flags, 0o600)
        except FileExistsError:
            continue


def _damaged(path: Path, why: str) -> JournalError:
    return JournalError(f"{path}: damaged journal ({why}); use --restart to start over")


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock(fd: int, path: Path) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise JournalError(
            f"{path}: another azrestore is uploading to the same target right now"
        ) from None


class Journal:
    """An open journal. :meth:`create` and :meth:`load` block (run them in a worker
    thread); :meth:`record` is one ``write(2)`` and is called on the event loop."""

    def __init__(
        self, path: Path, header: JournalHeader, fd: int, done: list[Range], complete: bool
    ) -> None:
        self.path = path
        self.header = header
        #: merged ranges recorded as written when the journal was opened
        self.done = done
        #: whether the upload had finished (footer written)
        self.complete = complete
        self.records = 0
        self._fd = fd
        self._dirty = False

    @property
    def done_bytes(self) -> int:
        return sum(end - start for start, end in self.done)

    # -- opening --------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, header: JournalHeader) -> Journal:
        """Write a new journal with ``header`` (atomically: whole or absent) and open it."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp, fd = _temporary(path)
        try:
            _lock(fd, path)
            line = json.dumps(header.to_json(), separators=(",", ":")).encode() + b"\n"
            os.write(fd, line)
            os.fsync(fd)
            os.replace(tmp, path)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        _fsync_directory(path.parent)
        os.lseek(fd, 0, os.SEEK_END)
        return cls(path, header, fd, [], False)

    @classmethod
    def load(cls, path: Path) -> Journal:
        """Open an existing journal: read its header and the intact records, and cut off a
        torn tail. Raises :class:`JournalError` when the header is unreadable."""
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            _lock(fd, path)
            header, done, complete, end = cls._read(fd, path)
            if os.fstat(fd).st_size != end:
                os.ftruncate(fd, end)  # a torn last record: drop it, append after the rest
                os.fsync(fd)
            os.lseek(fd, end, os.SEEK_SET)
        except (AttributeError, OverflowError, RecursionError) as exc:
            # A header that is not an object, has an infinite number, or is nested deeper
            # than json decodes.
            os.close(fd)
            raise JournalError(
                f"{path}: damaged journal ({exc}); use --restart to start over"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        return cls(path, header, fd, done, complete)

    @classmethod
    def load_if_exists(cls, path: Path) -> Journal | None:
        """:meth:`load`, or None when there is no journal at ``path``."""
        try:
            return cls.load(path)
        except FileNotFoundError:
            return None

    @staticmethod
    def _read(fd: int, path: Path) -> tuple[JournalHeader, list[Range], bool, int]:
        with open(fd, "rb", closefd=False) as handle:
            handle.seek(0)
            line = handle.readline(MiB)
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("no whole header line")
                header = JournalHeader.from_json(json.loads(line))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise _damaged(path, str(exc)) from None
            limit = header.virtual_size
            if limit <= 0 or limit % SECTOR or limit > header.target.size:
                raise _damaged(
                    path, f"a disk of {limit} bytes in a {header.target.size}-byte target"
                )
            end = len(line)
            done: list[Range] = []
            pending: list[Range] = []
            complete = False
            while True:
                block = handle.read(RECORD_SIZE * 8192)
                position = 0
                intact = True
                while position + RECORD_SIZE <= len(block):
                    parsed = _parse_record(block[position : position + RECORD_SIZE])
                    if parsed is None:
                        intact = False
                        break
                    kind, offset, length = parsed
                    if kind == _COMPLETE:
                        complete = True
                    else:
                        if length <= 0 or (offset | length) % SECTOR or offset + length > limit:
                            # A whole record with a good CRC that names bytes the disk does
                            # not have: not a torn tail, a journal that lies.
                            raise _damaged(
                                path,
                                f"a record names bytes {offset}-{offset + length - 1}:"
                                f" not whole sectors of the disk's {limit} bytes",
                            )
                        pending.append((offset, offset + length))
                        if len(pending) >= _MERGE_EVERY:
                            done = merge_ranges(done + pending)
                            pending.clear()
                    position += RECORD_SIZE
                end += position
                if not intact or len(block) < RECORD_SIZE * 8192:
                    break
        return header, merge_ranges(done + pending), complete, end

    # -- writing --------------------------------------------------------------------------

    def record(self, offset: int, length: int) -> None:
        """Record ``[offset, offset + length)`` as acknowledged by the target: one append
        (kept by the kernel even if the process is killed right after)."""
        try:
            os.write(self._fd, _record(_WRITTEN, offset, length))
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot write the journal: {exc.strerror}") from None
        self.records += 1
        self._dirty = True

    def sync(self) -> None:
        """fsync what was recorded (blocking; a worker thread's job)."""
        if self._dirty and self._fd >= 0:
            self._dirty = False
            os.fsync(self._fd)

    def mark_complete(self, blob_size: int) -> None:
        """The upload finished: replace the journal by its header and one ``C`` record
        (atomically), so a later run with the same source and target has nothing to do."""
        tmp, fd = _temporary(self.path)
        try:
            line = json.dumps(self.header.to_json(), separators=(",", ":")).encode() + b"\n"
            os.write(fd, line + _record(_COMPLETE, blob_size, 0))
            os.fsync(fd)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        finally:
            os.close(fd)
        _fsync_directory(self.path.parent)
        self.complete = True

    def close(self) -> None:
        """fsync and close (idempotent)."""
        if self._fd >= 0:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = -1

    def discard(self) -> None:
        """Close and delete the journal."""
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
