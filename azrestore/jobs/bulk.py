"""Upload many disks under one budget: each manifest entry into its page blob, over one
shared HTTP session, with a progress callback per disk."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Protocol

from ..errors import InputError
from .upload import BlobTarget

if TYPE_CHECKING:
    from ..transfer.config import TransferConfig
    from ..transfer.progress import ProgressCallback
    from ..transfer.resume import ResumeOptions
    from ..transfer.scheduler import DiskOutcome
    from ..transfer.verify import VerifyProgress
    from .manifest import ManifestEntry


class BulkObserver(Protocol):
    """Where a bulk upload reports progress: one callback per disk, by its index."""

    def callback(self, index: int) -> ProgressCallback: ...

    def verify_callback(self, index: int) -> VerifyProgress: ...


async def upload_entries(
    entries: list[ManifestEntry],
    target: BlobTarget,
    *,
    config: TransferConfig,
    resume: ResumeOptions,
    verify: bool,
    observer: BulkObserver,
    image_format: str | None = None,
) -> list[DiskOutcome]:
    """Upload every entry; one outcome per entry, in order. An entry's image is opened
    with its own format, else ``image_format`` (else the one found from the image). A
    disk that fails does not stop the others: its outcome carries the error. Every
    entry's URL is checked first (container and blob names by Azure's rules): a bad one
    is an InputError naming the entry, before any request; so are two entries naming one
    blob, in any spelling.
    """
    from ..azure.auth import blob_url_of
    from ..azure.pageblob import open_blob_session, open_page_blob
    from ..transfer.scheduler import UploadJob, upload_many
    from .manifest import check_distinct_targets

    check_distinct_targets(entries)

    for entry in entries:
        try:
            blob_url_of(entry.url, target.connection_string)
        except InputError as exc:
            raise InputError(f"{entry.label}: {exc}") from None
    async with open_blob_session(config.slots, target.proxy) as session:
        jobs = [
            UploadJob(
                source=entry.image,
                sink=partial(
                    open_page_blob,
                    entry.url,
                    connection_string=target.connection_string,
                    checksum=config.checksum,
                    overwrite=target.overwrite,
                    existing=target.existing,
                    session=session,
                ),
                name=entry.label,
                on_progress=observer.callback(index),
                on_verify_progress=observer.verify_callback(index),
                format=entry.format or image_format,
            )
            for index, entry in enumerate(entries)
        ]
        return await upload_many(jobs, config=config, resume=resume, verify=verify)
