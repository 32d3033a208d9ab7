"""The environment variables the command line reads credentials and settings from. Only
the command line reads them; the library takes them as arguments."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

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
