"""The strict gateway refuses container and blob names Azure refuses, with Azure's answers,
and lets through the names Azure takes (judged with azure-storage-blob and raw HTTP)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp
import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobClient, BlobServiceClient

from azrestore.emulator.storage import GatewayThread
from tests.support.pages import VERSION, assert_azure_error

if TYPE_CHECKING:
    from tests.support.storage import StorageTarget


def through_gateway(storage: StorageTarget, name: str) -> BlobClient:
    return BlobClient.from_connection_string(storage.connection_string, storage.container, name)


def refused(call: Callable[[], object]) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as caught:
        call()
    assert caught.value.status_code == 400
    return caught.value


def error_code_of(exc: HttpResponseError) -> str | None:
    """The storage error code (``x-ms-error-code``) of an azure-storage-blob error."""
    # azure-storage sets error_code on its errors; azure-core's class does not declare it.
    code: str | None = exc.error_code  # type: ignore[attr-defined]
    return code


def test_blob_name_of_1024_characters_accepted_1025_refused(
    storage: StorageTarget, gateway: GatewayThread
) -> None:
    longest = "n" * 1023 + "x"
    with through_gateway(storage, longest) as blob:
        blob.upload_blob(b"kept")
        assert blob.download_blob().readall() == b"kept"
    assert storage.blob_client(longest).exists()

    too_long = "n" * 1024 + "x"
    with through_gateway(storage, too_long) as blob:
        error = refused(lambda: blob.upload_blob(b"lost"))
        assert error_code_of(error) == "OutOfRangeInput"
        # Every operation naming the blob is refused, not only writes.
        assert error_code_of(refused(lambda: blob.create_page_blob(512))) == "OutOfRangeInput"
        assert error_code_of(refused(blob.get_blob_properties)) == "OutOfRangeInput"
        assert error_code_of(refused(lambda: blob.download_blob().readall())) == "OutOfRangeInput"
        assert error_code_of(refused(blob.delete_blob)) == "OutOfRangeInput"
    # Refused by the gateway itself: Azurite, which takes such names, never saw them.
    assert not storage.blob_client(too_long).exists()
    stats = gateway.statistics()
    assert stats.rejections == {"OutOfRangeInput": 5}
    assert stats.forwarded.get("PutBlob") == 1


def test_the_testers_2000_character_name_refused(
    storage: StorageTarget,
) -> None:
    name = "t" * 2000
    with through_gateway(storage, name) as blob:
        assert error_code_of(refused(lambda: blob.upload_blob(b"x"))) == "OutOfRangeInput"
    assert not storage.blob_client(name).exists()


@pytest.mark.parametrize(
    "name",
    [
        "disk with spaces.vhd",
        "été/ディスク/диск.vhd",
        "emoji 😊.vhd",
        "阿" * 1024,  # 1,024 characters: 9,216 bytes once percent-encoded
        "😊" * 512,  # 1,024 UTF-16 code units, Azure's count
        "plus+and%percent",
    ],
)
def test_names_azure_takes_work(storage: StorageTarget, name: str) -> None:
    with through_gateway(storage, name) as blob:
        blob.upload_blob(b"payload")
        assert blob.get_blob_properties().size == 7
        assert blob.download_blob().readall() == b"payload"
    with BlobServiceClient.from_connection_string(storage.direct_connection_string) as service:
        names = [b.name for b in service.get_container_client(storage.container).list_blobs()]
    assert names == [name]


def test_a_name_over_1024_utf16_code_units_refused(storage: StorageTarget) -> None:
    with through_gateway(storage, "😊" * 513) as blob:
        assert error_code_of(refused(lambda: blob.upload_blob(b"x"))) == "OutOfRangeInput"


def test_a_name_over_254_segments_refused(storage: StorageTarget) -> None:
    with through_gateway(storage, "/".join(["s"] * 254)) as blob:
        blob.upload_blob(b"x")
    with through_gateway(storage, "/".join(["s"] * 255)) as blob:
        assert error_code_of(refused(lambda: blob.upload_blob(b"x"))) == "OutOfRangeInput"


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("BAD", "InvalidResourceName"),
        ("a--b", "InvalidResourceName"),
        ("-ab", "InvalidResourceName"),
        ("ab", "OutOfRangeInput"),
        ("a" * 64, "OutOfRangeInput"),
    ],
)
def test_invalid_container_names_refused(
    storage: StorageTarget, gateway: GatewayThread, name: str, code: str
) -> None:
    with BlobServiceClient.from_connection_string(storage.connection_string) as service:
        assert error_code_of(refused(lambda: service.create_container(name))) == code
        container = service.get_container_client(name)
        assert error_code_of(refused(container.get_container_properties)) == code
        assert error_code_of(refused(lambda: list(container.list_blobs()))) == code
        blob = container.get_blob_client("disk.vhd")
        assert error_code_of(refused(lambda: blob.upload_blob(b"x"))) == code
    stats = gateway.statistics()
    assert stats.rejections == {code: 4}
    assert sum(stats.forwarded.values()) == 0


def test_valid_container_names_accepted(storage: StorageTarget) -> None:
    names = [f"v{uuid.uuid4().hex[:8]}-a1", "x" * 50 + uuid.uuid4().hex[:13]]
    assert all(3 <= len(n) <= 63 for n in names)
    with BlobServiceClient.from_connection_string(storage.connection_string) as service:
        for name in names:
            container = service.create_container(name)
            try:
                container.upload_blob("b", b"x")
                assert [b.name for b in container.list_blobs()] == ["b"]
            finally:
                container.delete_container()
        # Account-level operations name nothing and go on.
        assert any(c.name == storage.container for c in service.list_containers())


@pytest.mark.anyio
async def test_refusals_are_azure_answers_over_raw_http(
    storage: StorageTarget, http: aiohttp.ClientSession
) -> None:
    url = storage.sas_url("r" * 1025)
    async with http.get(url, headers=VERSION) as response:
        assert_azure_error(
            response.status, dict(response.headers), await response.read(), 400, "OutOfRangeInput"
        )
    # Percent-encoded as clients send it: 1,025 characters once decoded.
    url = storage.sas_url("r" * 1024).replace("/" + "r" * 1024 + "?", "/" + "r" * 1024 + "%72?")
    async with http.head(url, headers=VERSION) as response:
        assert response.status == 400
        assert response.headers["x-ms-error-code"] == "OutOfRangeInput"
    async with http.put(
        f"{storage.account_url}/a--b?restype=container", headers=VERSION
    ) as response:
        assert_azure_error(
            response.status,
            dict(response.headers),
            await response.read(),
            400,
            "InvalidResourceName",
        )
