"""Read a page blob back and compare it with the disk source it was uploaded from."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..sources.open import open_source

if TYPE_CHECKING:
    from ..azure.proxy import ProxySettings
    from ..transfer.config import TransferConfig
    from ..transfer.verify import VerifyProgress, VerifyResult


async def verify_page_blob(
    image_path: str | os.PathLike[str],
    url: str,
    *,
    config: TransferConfig,
    connection_string: str | None = None,
    on_progress: VerifyProgress | None = None,
    proxy: ProxySettings | None = None,
    image_format: str | None = None,
) -> VerifyResult:
    """Compare the page blob at ``url`` (its SAS, else ``connection_string``, else Azure
    AD) with ``image_path``, as the fixed VHD an upload makes of it, through the forward
    proxy ``proxy`` names for its URL (else directly). ``image_path`` is a file of any
    format or an NBD URL; ``image_format`` forces its format."""
    from ..azure.pageblob import open_page_blob
    from ..transfer.verify import verify_disk

    with await open_source(image_path, image_format=image_format) as image:
        async with open_page_blob(
            url,
            connection_string=connection_string,
            existing=True,
            concurrency=config.slots,
            proxy=proxy,
        ) as sink:
            return await verify_disk(image, sink, config=config, on_progress=on_progress)
