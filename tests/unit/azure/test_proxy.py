"""Which forward proxy a request goes through: NO_PROXY's conventions, the scheme's proxy,
azure-core's ``proxies=``, malformed proxy URLs; and that a proxy's password is redacted."""

from __future__ import annotations

import pytest

from azrestore.azure.arm import ArmSettings
from azrestore.azure.proxy import ProxySettings, bypassed, parse_no_proxy
from azrestore.errors import InputError
from azrestore.redact import redact_text, redact_url

PROXY = "http://alice:s3cr%40t@proxy.corp:3128"


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "direct"),
    [
        ("acct.blob.core.windows.net", 443, "*", True),
        ("acct.blob.core.windows.net", 443, ".core.windows.net", True),
        ("acct.blob.core.windows.net", 443, "core.windows.net", True),
        ("acct.blob.core.windows.net", 443, "*.windows.net", True),
        ("core.windows.net", 443, ".core.windows.net", True),
        ("notcore.windows.net", 443, "core.windows.net", False),
        ("management.azure.com", 443, "blob.core.windows.net", False),
        ("127.0.0.1", 10000, "", False),  # loopback is proxied unless named
        ("127.0.0.1", 10000, "localhost, 127.0.0.1", True),
        ("127.0.0.1", 10000, "127.0.0.0/8", True),
        ("10.1.2.3", 443, "10.0.0.0/8", True),
        ("10.1.2.3", 443, "192.168.0.0/16", False),
        ("::1", 443, "::1", True),
        ("::1", 443, "[::1]:443", True),
        ("host.example", 8443, "host.example:443", False),
        ("host.example", 443, "host.example:443", True),
        ("HOST.Example.", 443, "host.example", True),
    ],
)
def test_no_proxy(host: str, port: int, no_proxy: str, direct: bool) -> None:
    assert bypassed(host, port, parse_no_proxy(no_proxy)) is direct


def test_the_schemes_proxy_and_no_proxy() -> None:
    settings = ProxySettings(http="http://p:1", https=PROXY, no_proxy=(".internal",))
    assert settings.for_url("https://acct.blob.core.windows.net/c/b?sig=x") == PROXY
    assert settings.for_url("http://127.0.0.1:10000/acct/c/b") == "http://p:1"
    assert settings.for_url("https://disk.internal/x") is None
    assert ProxySettings(https=PROXY).for_url("http://host/x") is None
    assert ProxySettings.single(PROXY).for_url("http://host/x") == PROXY


def test_resource_manager_clients_take_the_decision_not_the_environment() -> None:
    kwargs = ArmSettings(proxy=ProxySettings.single(PROXY)).client_kwargs()
    assert kwargs["proxies"] == {"https": PROXY}
    assert kwargs["use_env_settings"] is False
    bypass = ProxySettings.single(PROXY, no_proxy=("127.0.0.1",))
    local = ArmSettings(endpoint="https://127.0.0.1:8443", proxy=bypass).client_kwargs()
    assert "proxies" not in local and local["use_env_settings"] is False
    assert "proxies" not in ArmSettings().client_kwargs()


@pytest.mark.parametrize(
    "url",
    [
        "https://bob:pw-Hidden@proxy:3128",
        "socks5://bob:pw-Hidden@proxy:1080",
        "http://",
        "http://bob:pw-Hidden@proxy:3128/path",
        "http://proxy:99999",
    ],
)
def test_malformed_proxy_urls_are_bad_input_with_the_password_redacted(url: str) -> None:
    with pytest.raises(InputError) as caught:
        ProxySettings.single(url)
    assert caught.value.exit_code == 2
    assert "pw-Hidden" not in str(caught.value)


def test_proxy_passwords_are_redacted() -> None:
    text = (
        f"connecting via {PROXY}, url='http://bob:pw@10.0.0.1:8080'"
        " Proxy-Authorization: Basic YWxpY2U6czNjcmV0"
    )
    shown = redact_text(text)
    assert "s3cr" not in shown and ":pw@" not in shown and "YWxpY2U6czNjcmV0" not in shown
    assert "alice:REDACTED@proxy.corp:3128" in shown
    assert redact_url(PROXY) == "http://alice:REDACTED@proxy.corp:3128"
    # URLs without a password, or with an @ in their path, are left as they are.
    for url in ("http://alice@proxy:3128", "https://host:443/path@x", "https://host/a:b@c"):
        assert redact_url(url) == url
