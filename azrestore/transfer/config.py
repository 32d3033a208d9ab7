"""One configuration object for a transfer (in the manner of s3transfer's TransferConfig)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..errors import InputError
from ..formats.sizes import MAX_PUT_PAGE, SECTOR, KiB, MiB


class Checksum(StrEnum):
    """Per-request integrity check sent with every Put Page."""

    MD5 = "md5"
    CRC64 = "crc64"
    NONE = "none"


#: Connections a session is sized for when nothing else says: the most requests an
#: automatic run puts in flight (:data:`azrestore.transfer.concurrency.CEILING`).
DEFAULT_CONCURRENCY = 32


@dataclass(frozen=True, slots=True)
class TransferConfig:
    """How a disk is moved. Memory in use is at most ``slots * chunk_size`` plus a
    constant, whatever the disk's size.

    - ``concurrency``: requests in flight (and chunk buffers held) at once; ``None`` (the
      default) finds it from the link, between 1 and ``max_concurrency`` (see
      :mod:`azrestore.transfer.concurrency`).
    - ``max_concurrency``: the ceiling of automatic concurrency.
    - ``chunk_size``: bytes read per chunk; also the largest request (at most 4 MiB).
    - ``zero_block`` / ``merge_gap``: the zero-skipping rule, see :mod:`azrestore.formats.zeros`;
      ``merge_gap`` is the least gap sent, which the request planner
      (:mod:`azrestore.transfer.requestplan`) widens where the link makes requests dear.
    - ``max_bandwidth``: bytes per second sent, ``None`` for no cap.
    - ``max_attempts``, ``backoff_base``, ``backoff_max``: retry policy for transient errors
      (exponential backoff with full jitter, Retry-After honoured when longer).
    - ``request_timeout``: seconds one request may take before it counts as failed.
    """

    concurrency: int | None = None
    max_concurrency: int = DEFAULT_CONCURRENCY
    chunk_size: int = 4 * MiB
    checksum: Checksum = Checksum.CRC64
    zero_block: int = 4 * KiB
    merge_gap: int = 64 * KiB
    max_bandwidth: int | None = None
    max_attempts: int = 8
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    request_timeout: float = 300.0

    def __post_init__(self) -> None:
        if self.concurrency is not None and not 1 <= self.concurrency <= 256:
            raise InputError(f"concurrency must be between 1 and 256, not {self.concurrency}")
        if not 1 <= self.max_concurrency <= 256:
            raise InputError(
                f"max concurrency must be between 1 and 256, not {self.max_concurrency}"
            )
        if not (SECTOR <= self.chunk_size <= MAX_PUT_PAGE) or self.chunk_size % SECTOR:
            raise InputError(
                f"chunk size must be a multiple of 512 between 512 B and 4 MiB,"
                f" not {self.chunk_size}"
            )
        if self.zero_block <= 0 or self.zero_block % SECTOR:
            raise InputError(
                f"zero block must be a positive multiple of 512, not {self.zero_block}"
            )
        if self.merge_gap < 0:
            raise InputError("merge gap must not be negative")
        if self.max_bandwidth is not None and self.max_bandwidth <= 0:
            raise InputError("max bandwidth must be positive")
        if self.max_attempts < 1:
            raise InputError("max attempts must be at least 1")
        object.__setattr__(self, "checksum", Checksum(self.checksum))

    @property
    def slots(self) -> int:
        """The most requests in flight: ``concurrency`` if fixed, else the ceiling."""
        return self.max_concurrency if self.concurrency is None else self.concurrency
