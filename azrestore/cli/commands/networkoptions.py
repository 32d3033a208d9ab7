"""The emulator's link options (``--link``, ``--blob-targets``, ``--account-targets``),
shared by ``azrestore emulator`` and ``restore --emulator``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ...emulator.storage.network import NetworkModel

LinkOption = Annotated[
    str | None,
    typer.Option(
        "--link",
        metavar="SPEC",
        show_default=False,
        help="The emulator's link to its storage: rtt=40ms[,jitter=5ms][,rate=1Gbit/s]"
        "[,seed=N] (a round trip per request, a bandwidth cap shared by the whole link),"
        " or none [default: none].",
    ),
]
BlobTargetsOption = Annotated[
    str | None,
    typer.Option(
        "--blob-targets",
        metavar="SPEC",
        show_default=False,
        help="Azure's scalability targets per blob in the emulator, answered 503 ServerBusy"
        " with Retry-After when exceeded: standard (500 requests/s, 60 MiB/s), premium"
        " (2000 requests/s, 500 MiB/s), none, or requests=N/s,bytes=RATE[,burst=1s]"
        " [default: none].",
    ),
]
AccountTargetsOption = Annotated[
    str | None,
    typer.Option(
        "--account-targets",
        metavar="SPEC",
        show_default=False,
        help="The same per storage account: standard (40000 requests/s, 60 Gbit/s),"
        " premium (40000 requests/s, 50 Gbit/s), none, or requests=N/s,bytes=RATE"
        " [default: none].",
    ),
]


def network_model(
    link: str | None, blob_targets: str | None, account_targets: str | None
) -> NetworkModel | None:
    """The model the options give (None when none was given); a bad spec raises
    :class:`~azrestore.errors.InputError` (one line, exit 2)."""
    if link is None and blob_targets is None and account_targets is None:
        return None
    from ...emulator.storage.network import NetworkModel

    return NetworkModel.from_specs(link, blob_targets, account_targets)
