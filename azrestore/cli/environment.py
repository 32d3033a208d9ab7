"""The environment variables the command line reads credentials and settings from. Only
the command line reads them; the library takes them as arguments."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..azure.proxy import ProxySettings

#: An account key (or SAS) for blob URLs that carry no SAS (``--connection-string``).
CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
#: Page-blob restores: the storage account's resource id when the plan names none.
STORAGE_ACCOUNT_ENV = "AZRESTORE_STORAGE_ACCOUNT_ID"
#: Where the command line keeps its state (resume journals), before XDG_STATE_HOME.
STATE_DIR_ENV = "AZRESTORE_STATE_DIR"


def default_journal_dir(environ: Mapping[str, str]) -> Path:
    """``$AZRESTORE_STATE_DIR/journals``, else ``$XDG_STATE_HOME/azrestore/journals``,
    else ``~/.local/state/azrestore/journals`` (``HOME`` from ``environ``)."""
    if state := environ.get(STATE_DIR_ENV):
        return Path(state) / "journals"
    home = environ.get("HOME") or str(Path.home())
    base = environ.get("XDG_STATE_HOME") or str(Path(home) / ".local" / "state")
    return Path(base) / "azrestore" / "journals"


#: The forward proxy of https:// and of http:// requests, and the hosts reached directly
#: (curl's and Python's conventions: the lower-case name wins over the upper-case one).
HTTPS_PROXY_ENV = ("https_proxy", "HTTPS_PROXY")
HTTP_PROXY_ENV = ("http_proxy", "HTTP_PROXY")
NO_PROXY_ENV = ("no_proxy", "NO_PROXY")


def proxy_settings(environ: Mapping[str, str], proxy_url: str | None) -> ProxySettings | None:
    """The forward proxies requests to Azure go through: ``proxy_url`` (``--proxy-url``)
    for every scheme, else ``HTTPS_PROXY`` for https:// targets and ``HTTP_PROXY`` for
    http:// ones; hosts in ``NO_PROXY`` are reached directly either way. None: no proxy.
    A malformed proxy URL is an InputError (exit 2), its password redacted."""
    from ..azure.proxy import ProxySettings, parse_no_proxy

    no_proxy = parse_no_proxy(_first(environ, NO_PROXY_ENV) or "")
    if proxy_url:
        return ProxySettings.single(proxy_url, no_proxy)
    https = _first(environ, HTTPS_PROXY_ENV)
    http = _first(environ, HTTP_PROXY_ENV)
    if not https and not http:
        return None
    return ProxySettings(http=http, https=https, no_proxy=no_proxy)


def _first(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    """The first of the variables ``names`` that is set and not empty; a proxy given as
    ``host:port`` (no scheme, as curl allows) is ``http://host:port``."""
    for name in names:
        if value := environ.get(name, "").strip():
            return value if "://" in value or name in NO_PROXY_ENV else f"http://{value}"
    return None
