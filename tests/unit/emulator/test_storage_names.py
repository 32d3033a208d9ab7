"""Azure's naming rules for containers and blobs, as the gateway keeps them."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azrestore.emulator.storage.errors import Rejection
from azrestore.emulator.storage.names import (
    NamedResource,
    blob_name_rejection,
    check_names,
    container_name_rejection,
    name_length,
    named_resource,
)

# The documented rules, stated as plainly as they read.
CONTAINER_RULE = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*")
SYSTEM = {"$root", "$web", "$logs"}


def documented_container(name: str) -> bool:
    return name in SYSTEM or (3 <= len(name) <= 63 and CONTAINER_RULE.fullmatch(name) is not None)


def documented_blob(name: str) -> bool:
    utf16_units = len(name.encode("utf-16-le", "surrogatepass")) // 2
    return 1 <= utf16_units <= 1024 and len(name.split("/")) <= 254


def code(rejection: Rejection | None) -> str | None:
    if rejection is None:
        return None
    assert rejection.status == 400
    return rejection.code


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("abc", None),
        ("a-b-c", None),
        ("0container9", None),
        ("a" * 63, None),
        ("$root", None),
        ("$web", None),
        ("$logs", None),
        ("ab", "OutOfRangeInput"),
        ("", "OutOfRangeInput"),
        ("a" * 64, "OutOfRangeInput"),
        ("BAD", "InvalidResourceName"),
        ("Abc", "InvalidResourceName"),
        ("a--b", "InvalidResourceName"),
        ("-ab", "InvalidResourceName"),
        ("ab-", "InvalidResourceName"),
        ("a_b", "InvalidResourceName"),
        ("a.b", "InvalidResourceName"),
        ("abé", "InvalidResourceName"),
        ("$other", "InvalidResourceName"),
    ],
)
def test_container_names(name: str, expected: str | None) -> None:
    assert code(container_name_rejection(name)) == expected


@pytest.mark.parametrize(
    ("name", "container", "expected"),
    [
        ("a", "c0ntainer", None),
        ("x" * 1024, "c0ntainer", None),
        ("x" * 1025, "c0ntainer", "OutOfRangeInput"),
        ("", "c0ntainer", "OutOfRangeInput"),
        ("é" * 1024, "c0ntainer", None),  # characters, not UTF-8 bytes
        ("😊" * 512, "c0ntainer", None),  # each is two UTF-16 code units
        ("😊" * 513, "c0ntainer", "OutOfRangeInput"),
        ("/".join(["s"] * 254), "c0ntainer", None),
        ("/".join(["s"] * 255), "c0ntainer", "OutOfRangeInput"),
        ("ends with a dot.", "c0ntainer", None),  # the docs advise against it; Azure takes it
        ("dir/", "c0ntainer", None),
        ("a/b", "$root", "InvalidResourceName"),
        ("ab", "$root", None),
    ],
)
def test_blob_names(name: str, container: str, expected: str | None) -> None:
    assert code(blob_name_rejection(name, container)) == expected


def test_length_counts_utf16_code_units() -> None:
    assert name_length("abc") == 3
    assert name_length("阿") == 1
    assert name_length("😊") == 2


@pytest.mark.parametrize(
    ("path", "query", "expected"),
    [
        ("", {}, NamedResource()),
        ("/", {"comp": "list"}, NamedResource()),
        ("/c0ntainer", {"restype": "container"}, NamedResource("c0ntainer")),
        ("/c0ntainer/", {"restype": "container"}, NamedResource("c0ntainer")),
        ("/c0ntainer/a/b.vhd", {}, NamedResource("c0ntainer", "a/b.vhd")),
        ("/c0ntainer/with%20space", {}, NamedResource("c0ntainer", "with space")),
        ("/c0ntainer/a%2Fb", {}, NamedResource("c0ntainer", "a/b")),
        ("/c0ntainer/a+b", {}, NamedResource("c0ntainer", "a+b")),
        ("/c0ntainer/%C3%A9t%C3%A9", {}, NamedResource("c0ntainer", "été")),
        ("/c0ntainer/%FF", {}, NamedResource("c0ntainer", "\ufffd")),
        ("/BAD", {"restype": "container"}, NamedResource("BAD")),
        # One segment without restype=container: a blob of the root container.
        ("/page.html", {}, NamedResource("$root", "page.html")),
        ("/$root/page.html", {}, NamedResource("$root", "page.html")),
    ],
)
def test_named_resource(path: str, query: dict[str, str], expected: NamedResource) -> None:
    assert named_resource(path, query) == expected


def test_check_names_raises_the_first_refusal() -> None:
    with pytest.raises(Rejection) as caught:
        check_names("/BAD/" + "x" * 2000, {})
    assert caught.value.code == "InvalidResourceName"
    with pytest.raises(Rejection) as caught:
        check_names("/good/" + "x" * 2000, {})
    assert caught.value.code == "OutOfRangeInput"
    check_names("/good/" + "x" * 1024, {})
    check_names("", {"comp": "list"})


def test_encoded_length_is_decoded_before_counting() -> None:
    # 1,024 characters are 3,072 bytes of UTF-8 and 9,216 percent-encoded: still valid.
    encoded = quote("阿" * 1024, safe="~/")
    assert len(encoded) == 9216
    check_names(f"/c0ntainer/{encoded}", {})
    with pytest.raises(Rejection):
        check_names(f"/c0ntainer/{encoded}%E9%98%BF", {})


CONTAINER_ALPHABET = st.sampled_from([*"abcz09-", "A", "_", ".", "é", "$"])


@settings(max_examples=300)
@given(
    st.one_of(
        st.text(CONTAINER_ALPHABET, max_size=70),
        st.sampled_from(sorted(SYSTEM)),
        st.integers(1, 70).map(lambda n: "a" * n),
    )
)
def test_container_rule_agrees_with_the_documented_statement(name: str) -> None:
    rejection = container_name_rejection(name)
    assert (rejection is None) == documented_container(name)
    if rejection is not None and name not in SYSTEM:
        length_ok = 3 <= len(name) <= 63
        assert rejection.code == ("InvalidResourceName" if length_ok else "OutOfRangeInput")


BLOB_TEXT = st.text(
    st.one_of(st.sampled_from("/a.é阿 "), st.characters(codec="utf-8")), max_size=1100
)


@settings(max_examples=150)
@given(
    st.one_of(
        BLOB_TEXT,
        st.integers(1020, 1030).map(lambda n: "b" * n),
        st.integers(510, 515).map(lambda n: "😊" * n),
        st.integers(250, 258).map(lambda n: "/" * n),
    )
)
def test_blob_rule_agrees_with_the_documented_statement(name: str) -> None:
    assert (blob_name_rejection(name, "c0ntainer") is None) == documented_blob(name)


@settings(max_examples=150)
@given(st.text(st.characters(codec="utf-8"), min_size=1, max_size=200))
def test_names_encoded_as_the_sdk_encodes_them_decode_back(name: str) -> None:
    # azure-storage-blob: quote(blob_name, safe="~/") after the container.
    assert named_resource(f"/c0ntainer/{quote(name, safe='~/')}", {}) == NamedResource(
        "c0ntainer", name
    )
