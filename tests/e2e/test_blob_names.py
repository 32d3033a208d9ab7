"""Blob names in URLs, end to end: names with spaces and non-ASCII letters go out
percent-encoded (the SDK then finds the blob under its name); names Azure refuses are exit 2
before any request (the gateway counts none)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from azure.storage.blob import ContainerClient

from azrestore.emulator.storage import GatewayThread
from tests.support.cli import assert_one_line_error, invoke, small_image
from tests.support.images import expected_vhd_body
from tests.support.storage import StorageTarget

UNUSUAL = ["my disk.vhd", "disque-é.vhd", "日本/ディスク 1.vhd", "a+b (1)!.vhd"]


def assert_sdk_finds(storage: StorageTarget, name: str, image: Path) -> None:
    """The SDK, straight to Azurite, lists the blob under ``name`` and reads the VHD."""
    with ContainerClient.from_connection_string(
        storage.direct_connection_string, storage.container
    ) as container:
        names = list(container.list_blob_names())
    assert name in names, names
    data = storage.blob_client(name).download_blob().readall()
    assert data[:-512] == expected_vhd_body(image)


@pytest.mark.parametrize("name", UNUSUAL)
def test_upload_and_verify_names_as_written(
    tmp_path: Path, storage: StorageTarget, name: str
) -> None:
    image = small_image(tmp_path)
    url = storage.sas_url(name)  # the name as it is, not encoded
    result = invoke("upload", image, "--to", url, "--verify")
    assert result.exit_code == 0, result.stderr
    assert_sdk_finds(storage, name, image)
    verified = invoke("verify", image, "--to", url)
    assert verified.exit_code == 0, verified.stderr


def test_encoded_and_plain_spellings_name_one_blob(tmp_path: Path, storage: StorageTarget) -> None:
    image = small_image(tmp_path)
    name = "日本 é.vhd"
    encoded = storage.blob_url(quote(name))
    result = invoke(
        "upload", image, "--to", encoded, "--connection-string", storage.connection_string
    )
    assert result.exit_code == 0, result.stderr
    assert_sdk_finds(storage, name, image)
    # The plain spelling is the same target: its journal says the upload is done.
    again = invoke(
        "upload",
        image,
        "--to",
        storage.blob_url(name),
        "--connection-string",
        storage.connection_string,
    )
    assert again.exit_code == 0 and "nothing to do" in again.stdout, again.stderr


def test_pairs_and_manifest_take_unusual_names(tmp_path: Path, storage: StorageTarget) -> None:
    image = small_image(tmp_path)
    manifest = tmp_path / "disks.yaml"
    manifest.write_text(f"- {{image: {image}, to: '{storage.sas_url('ß manifest.vhd')}'}}\n")
    result = invoke("upload", f"{image}={storage.sas_url('pair é.vhd')}", "--manifest", manifest)
    assert result.exit_code == 0, result.stderr
    assert_sdk_finds(storage, "pair é.vhd", image)
    assert_sdk_finds(storage, "ß manifest.vhd", image)


def _bad_urls(storage: StorageTarget) -> dict[str, str]:
    return {
        "uppercase container": f"{storage.account_url}/BAD/disk.vhd",
        "double hyphen": f"{storage.account_url}/a--b/disk.vhd",
        "long container": f"{storage.account_url}/{'c' * 2000}/disk.vhd",
        "long blob": storage.blob_url("b" * 2000),
        "long blob of wide characters": storage.blob_url("😀" * 513),
        "too many segments": storage.blob_url("/".join(["s"] * 255)),
    }


@pytest.mark.parametrize(
    "case",
    [
        "uppercase container",
        "double hyphen",
        "long container",
        "long blob",
        "long blob of wide characters",
        "too many segments",
    ],
)
@pytest.mark.parametrize("how", ["--to", "pair", "manifest", "verify", "key"])
def test_bad_names_are_exit_2_before_any_request(
    tmp_path: Path, storage: StorageTarget, gateway: GatewayThread, case: str, how: str
) -> None:
    image = small_image(tmp_path)
    bare = _bad_urls(storage)[case]
    url = f"{bare}?sv=2023-11-03&sr=b&sp=rcw&sig=SECRET"
    good = storage.sas_url("good.vhd")
    if how == "--to":
        result = invoke("upload", image, "--to", url)
    elif how == "key":
        result = invoke(
            "upload", image, "--to", bare, "--connection-string", storage.connection_string
        )
    elif how == "pair":
        # A good disk first: the bad one stops the run before either is sent.
        result = invoke("upload", f"{image}={good}", f"{image}={url}")
    elif how == "manifest":
        manifest = tmp_path / "disks.txt"
        manifest.write_text(f"{image} '{good}'\n{image} '{url}'\n")
        result = invoke("upload", "--manifest", manifest)
    else:
        result = invoke("verify", image, "--to", url)
    line = assert_one_line_error(result, 2)
    assert "name" in line and "SECRET" not in line
    assert len(line) < 400, line
    assert sum(gateway.statistics().requests.values()) == 0
    assert not storage.blob_client("good.vhd").exists()
