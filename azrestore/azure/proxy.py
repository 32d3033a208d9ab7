"""Which HTTP(S) forward proxy a request to Azure goes through, if any.

The command line builds one :class:`ProxySettings` from ``--proxy-url`` and the
``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` variables; the library reads no environment.
Page-blob requests (aiohttp) and Resource Manager's clients (azure-core) both ask
:meth:`ProxySettings.for_url`. A proxy URL may carry ``user:password@`` (Basic
authentication to the proxy); :func:`azrestore.redact.redact_text` hides the password.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..errors import InputError
from ..redact import redact_url


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """The proxy for ``http://`` targets and the one for ``https://`` targets (either may
    be None: direct), and the hosts reached directly whatever the scheme.

    ``no_proxy`` entries follow the usual NO_PROXY conventions: ``*`` (no proxy at all),
    a host name (itself and its subdomains), ``.example.com`` (its subdomains and itself),
    an IP address, a CIDR block (``10.0.0.0/8``), any of them with ``:port``. Loopback is
    proxied like any other host unless NO_PROXY names it.
    """

    http: str | None = None
    https: str | None = None
    no_proxy: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for proxy in (self.http, self.https):
            if proxy is not None:
                check_proxy_url(proxy)

    @classmethod
    def single(cls, url: str, no_proxy: tuple[str, ...] = ()) -> ProxySettings:
        """One proxy for every scheme."""
        return cls(http=url, https=url, no_proxy=no_proxy)

    def for_url(self, url: str) -> str | None:
        """The proxy's URL (with its credentials) for a request to ``url``; None: direct."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        proxy = self.https if scheme == "https" else self.http if scheme == "http" else None
        if proxy is None or parts.hostname is None:
            return None
        port = parts.port or (443 if scheme == "https" else 80)
        if bypassed(parts.hostname, port, self.no_proxy):
            return None
        return proxy

    def azure_core_proxies(self, url: str) -> dict[str, str]:
        """azure-core's ``proxies=`` for a client whose requests go to ``url``'s host."""
        proxy = self.for_url(url)
        if proxy is None:
            return {}
        return {urlsplit(url).scheme.lower(): proxy}


def check_proxy_url(url: str) -> None:
    """Raise InputError (exit 2) unless ``url`` is ``http://[user:password@]host[:port]``
    (an ``https://`` proxy, TLS to the proxy itself, is not supported by aiohttp)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise InputError(f"proxy URL {redact_url(url)!r}: not a URL") from None
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise InputError(
            f"proxy URL {redact_url(url)!r}: give http://[user:password@]host:port"
            " (the proxy itself is spoken to in plain HTTP; https:// targets go through"
            " it with CONNECT)"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InputError(f"proxy URL {redact_url(url)!r}: takes no path or query")


def parse_no_proxy(value: str) -> tuple[str, ...]:
    """NO_PROXY's comma- (or space-) separated entries, lower case, empty ones dropped."""
    return tuple(
        item.strip().lower() for item in value.replace(" ", ",").split(",") if item.strip()
    )


def bypassed(host: str, port: int, no_proxy: tuple[str, ...]) -> bool:
    """Whether NO_PROXY's ``no_proxy`` entries send ``host:port`` directly."""
    host = host.lower().rstrip(".")
    address = _address(host)
    for entry in no_proxy:
        if entry == "*":
            return True
        name, entry_port = _split_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = name.lstrip("*").lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host:port``, ``[v6]:port``, or an entry without a port."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if port.isdigit():
            return host, int(port)
    return entry, None
