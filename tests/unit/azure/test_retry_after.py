"""How long azrestore's storage client waits when an answer says so: milliseconds first
(``x-ms-retry-after-ms``, as the gateway sends under its targets and azure-core reads),
else Retry-After."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from azrestore.azure.storageerrors import parse_retry_after, raise_for_status, retry_after_of
from azrestore.errors import SinkError


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "1", "x-ms-retry-after-ms": "3"}, 0.003),
        ({"Retry-After": "2", "retry-after-ms": "1500"}, 1.5),
        ({"Retry-After": "2"}, 2.0),
        ({"Retry-After": "1", "x-ms-retry-after-ms": "soon"}, 1.0),
        ({"Retry-After": "1", "x-ms-retry-after-ms": "inf"}, 1.0),
        ({"Retry-After": "nan"}, None),
        ({}, None),
    ],
)
def test_retry_after_of(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_of(CIMultiDict(headers)) == seconds


def test_retry_after_is_never_negative_or_endless() -> None:
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("inf") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


class _Answer:
    """What raise_for_status reads of an aiohttp response."""

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = CIMultiDict(headers)
        self.method = "PUT"
        self.reason = "Server Busy"

    async def read(self) -> bytes:
        return b"<Error><Code>ServerBusy</Code><Message>busy</Message></Error>"


@pytest.mark.anyio
async def test_server_busy_carries_the_wait_in_milliseconds() -> None:
    answer = _Answer(
        503,
        {"x-ms-error-code": "ServerBusy", "Retry-After": "1", "x-ms-retry-after-ms": "40"},
    )
    with pytest.raises(SinkError) as caught:
        await raise_for_status(answer, "disk.vhd", "Put Page")  # type: ignore[arg-type]
    assert caught.value.retryable and caught.value.code == "ServerBusy"
    assert caught.value.retry_after == 0.04
