"""The client's check of blob URLs: Azure's naming rules before any request, and names
percent-encoded as azure-storage-blob encodes them. Judged from outside: the SDK's own URL,
and the strict gateway's independent rules (azrestore.emulator.storage.names)."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from azure.storage.blob import BlobClient
from hypothesis import given, settings
from hypothesis import strategies as st

from azrestore.azure.auth import blob_url_of, resolve_auth
from azrestore.azure.blobnames import BlobUrl, parse_blob_url
from azrestore.emulator.storage.names import blob_name_rejection, container_name_rejection
from azrestore.errors import InputError
from azrestore.jobs.manifest import ManifestEntry, parse_pair

ACCOUNT = "https://acct.blob.core.windows.net"
AZURITE = "http://127.0.0.1:10000/devstoreaccount1"


def sdk_url(account_url: str, container: str, blob: str) -> str:
    with BlobClient(account_url, container, blob) as client:
        return str(client.url)


@pytest.mark.parametrize(
    "blob", ["my disk.vhd", "é.vhd", "日本/ディスク.vhd", "a+b (1)!~'*.vhd", "😀"]
)
@pytest.mark.parametrize("account_url", [ACCOUNT, AZURITE])
def test_names_are_encoded_as_the_sdk_does(account_url: str, blob: str) -> None:
    expected = sdk_url(account_url, "vhds", blob)
    for spelling in (blob, quote(blob)):  # as written, or encoded already
        parsed = parse_blob_url(f"{account_url}/vhds/{spelling}?sv=1&sig=x")
        assert parsed == BlobUrl(account_url, "vhds", blob, "sv=1&sig=x")
        assert parsed.url == expected


def test_resolve_auth_returns_the_encoded_url_and_signs_the_decoded_name() -> None:
    bare, _ = resolve_auth(f"{ACCOUNT}/vhds/my disk.vhd?sv=1&sig=x", None)
    assert bare == f"{ACCOUNT}/vhds/my%20disk.vhd"
    key = "a2V5"  # base64 of "key"
    bare, auth = resolve_auth(f"{ACCOUNT}/vhds/my%20disk.vhd", f"AccountName=acct;AccountKey={key}")
    assert bare == f"{ACCOUNT}/vhds/my%20disk.vhd" and "sig=" in auth.query


def test_a_path_style_account_from_the_connection_string() -> None:
    endpoint = "http://azurite:10000/devstoreaccount1"
    parsed = blob_url_of(
        f"{endpoint}/vhds/a b.vhd", f"BlobEndpoint={endpoint};SharedAccessSignature=sv=1"
    )
    assert (parsed.account_url, parsed.container, parsed.blob) == (endpoint, "vhds", "a b.vhd")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"{ACCOUNT}/BAD/disk.vhd", "container name 'BAD' is not valid"),
        (f"{ACCOUNT}/a--b/disk.vhd", "container name 'a--b' is not valid"),
        (f"{ACCOUNT}/ab/disk.vhd", "container name 'ab' has 2 characters"),
        (f"{ACCOUNT}/{'c' * 2000}/disk.vhd", "has 2000 characters"),
        (f"{ACCOUNT}/vhds/{'b' * 1025}", "blob name 'bbbb"),
        (f"{ACCOUNT}/vhds/{'😀' * 513}", "has 1026 characters"),
        (f"{ACCOUNT}/vhds/{'/'.join('s' * 255)}", "255 path segments"),
        (f"{ACCOUNT}/$root/a/b", "a blob of $root has no '/'"),
        (f"{ACCOUNT}/vhds/%FF.vhd", "not valid UTF-8"),
        (f"{ACCOUNT}/vhds/\udcff.vhd", "not valid UTF-8"),  # undecodable bytes from argv
        (f"{ACCOUNT}/vhds/a\tb.vhd", "control character"),
        (f"{ACCOUNT}/vhds", "not a blob URL"),
        (f"{ACCOUNT}/vhds/", "not a blob URL"),
        ("ftp://acct/vhds/a", "not an http(s) blob URL"),
        ("https://[::1/vhds/a", "not a URL"),
    ],
)
def test_bad_names_are_input_errors(url: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)) as error:
        resolve_auth(f"{url}?sv=1&sig=SECRET", None)
    assert "SECRET" not in str(error.value)
    assert len(str(error.value)) < 300


def test_system_containers_and_the_longest_names_are_taken() -> None:
    for container in ("$root", "$web", "$logs", "a" * 63, "abc", "a-b-c"):
        parse_blob_url(f"{ACCOUNT}/{container}/x")
    parse_blob_url(f"{ACCOUNT}/vhds/{'b' * 1024}")
    parse_blob_url(f"{ACCOUNT}/vhds/{'😀' * 512}")
    parse_blob_url(f"{ACCOUNT}/vhds/{'/'.join('s' * 254)}")


def test_pairs_take_urls_with_spaces() -> None:
    url = f"{ACCOUNT}/vhds/my disk.vhd?sv=1&sig=x"
    assert parse_pair(f"a=b.raw={url}") == ManifestEntry("a=b.raw", url)


names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=80)


@settings(max_examples=200)
@given(
    container=st.one_of(names, st.from_regex(r"[a-z0-9-]{1,70}", fullmatch=True)),
    blob=names,
    encoded=st.booleans(),
)
def test_the_client_and_the_gateway_agree(container: str, blob: str, encoded: bool) -> None:
    """The client refuses exactly what the gateway (written apart) refuses, and what it
    takes goes out as the SDK's URL."""
    gateway_refuses = (
        container_name_rejection(container) or blob_name_rejection(blob, container)
    ) is not None
    if encoded or not blob.isprintable() or set(blob) & set("?#%") or blob.startswith("/"):
        blob_part = quote(blob, safe="")
    else:
        blob_part = blob
    try:
        parsed = parse_blob_url(f"{ACCOUNT}/{quote(container, safe='')}/{blob_part}")
    except InputError:
        assert gateway_refuses
    else:
        assert not gateway_refuses
        assert parsed.url == sdk_url(ACCOUNT, container, blob)
