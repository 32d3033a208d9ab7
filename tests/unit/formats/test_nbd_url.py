"""NBD URLs are parsed strictly: what a URL says is what is connected to."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azrestore.formats.nbd_url import NbdAddress, NbdUrlError, is_nbd_url, parse_nbd_url


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("nbd://127.0.0.1/disk", NbdAddress("nbd://127.0.0.1/disk", "disk", host="127.0.0.1")),
        ("nbd://host:10810", NbdAddress("nbd://host:10810", "", host="host", port=10810)),
        ("nbd+tcp://h/x", NbdAddress("nbd+tcp://h/x", "x", host="h")),
        ("nbd://[::1]:99/a%20b", NbdAddress("nbd://[::1]:99/a%20b", "a b", host="::1", port=99)),
        (
            "nbd+unix:///e?socket=/run/x.sock",
            NbdAddress("nbd+unix:///e?socket=/run/x.sock", "e", socket="/run/x.sock"),
        ),
        ("nbd+unix://?socket=s", NbdAddress("nbd+unix://?socket=s", "", socket="s")),
    ],
)
def test_good_urls(url: str, address: NbdAddress) -> None:
    assert is_nbd_url(url)
    assert parse_nbd_url(url) == address


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("nbds://host/x", "TLS"),
        ("nbd://user:pw@host/x", "no user name"),
        ("nbd:///x", "needs a host"),
        ("nbd://host:0/x", "port 0"),
        ("nbd://host:99999/x", "not a valid NBD URL"),
        ("nbd://host/x?socket=/s", "no query"),
        ("nbd://host/x#frag", "fragment"),
        ("nbd+unix://host/x?socket=/s", "takes no host"),
        ("nbd+unix:///x", "one socket"),
        ("nbd+unix:///x?socket=/a&socket=/b", "one socket"),
        ("nbd+unix:///x?socket=/a&tls=on", "unknown query parameter 'tls'"),
        ("nbd+vsock://3:10809/x", "not supported"),
        ("nbd://host/%ff", "not UTF-8"),
        ("nbd+unix:///x?socket=%ff", "not a valid query"),
    ],
)
def test_bad_urls(url: str, words: str) -> None:
    with pytest.raises(NbdUrlError, match=words):
        parse_nbd_url(url)


def test_files_are_not_urls() -> None:
    assert not is_nbd_url("/tmp/disk.qcow2")
    assert not is_nbd_url("nbd.qcow2")
    assert not is_nbd_url("https://example.com/disk")


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from("%:/?&=[]@#ab0f9 \x00é"), max_size=40))
def test_any_text_parses_or_is_refused(tail: str) -> None:
    for scheme in ("nbd://", "nbd+unix://"):
        with contextlib.suppress(NbdUrlError):
            parse_nbd_url(scheme + tail)
