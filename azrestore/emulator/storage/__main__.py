"""``python -m azrestore.emulator.storage``: the strict storage gateway on its own, in front
of a running Azurite, until SIGINT or SIGTERM.  It prints ``{"account_url": ...}`` once it
listens."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence

from azrestore.emulator.storage.faults import FaultRule
from azrestore.emulator.storage.network import NetworkModel
from azrestore.emulator.storage.server import StorageGateway
from azrestore.errors import InputError

__all__ = ["main"]


async def _serve(
    upstream: str, port: int, rules: Sequence[FaultRule], network: NetworkModel
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with StorageGateway(upstream, port=port, rules=rules, network=network) as gateway:
        print(json.dumps({"account_url": gateway.account_url}), flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m azrestore.emulator.storage --upstream URL [--port N] [--rule SPEC ...]
    [--link SPEC] [--blob-targets SPEC] [--account-targets SPEC]``."""
    parser = argparse.ArgumentParser(
        prog="python -m azrestore.emulator.storage",
        description="Run the strict storage gateway in front of Azurite until SIGINT/SIGTERM.",
    )
    parser.add_argument("--upstream", required=True, help="Azurite's account URL")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="SPEC",
        help="fault rule, e.g. PutPage:status=503,retry_after=1,nth=3 (repeatable)",
    )
    parser.add_argument("--link", metavar="SPEC", help="e.g. rtt=40ms,jitter=5ms,rate=1Gbit/s")
    parser.add_argument(
        "--blob-targets", metavar="SPEC", help="standard, premium, none or requests=N/s,bytes=R"
    )
    parser.add_argument(
        "--account-targets", metavar="SPEC", help="standard, premium, none or requests=N/s,..."
    )
    args = parser.parse_args(argv)
    try:
        rules = [FaultRule.from_spec(spec) for spec in args.rule]
        network = NetworkModel.from_specs(args.link, args.blob_targets, args.account_targets)
    except InputError as exc:
        parser.error(str(exc))
    asyncio.run(_serve(args.upstream, args.port, rules, network))
    return 0


if __name__ == "__main__":
    sys.exit(main())
