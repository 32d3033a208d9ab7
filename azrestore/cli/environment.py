"""The environment variables the command line reads credentials and settings from. Only
the command line reads them; the library takes them as arguments."""

from __future__ import annotations

#: An account key (or SAS) for blob URLs that carry no SAS (``--connection-string``).
CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
#: Page-blob restores: the storage account's resource id when the plan names none.
STORAGE_ACCOUNT_ENV = "AZRESTORE_STORAGE_ACCOUNT_ID"
