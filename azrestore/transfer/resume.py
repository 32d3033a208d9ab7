"""Deciding, before an upload, whether it starts fresh, continues an interrupted run from
its journal, or has nothing left to do; and refusing to continue onto changed data."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread

from ..errors import AzRestoreError, InputError
from ..sources.base import DiskSource
from .identity import SourceIdentity, source_identity
from .journal import (
    Journal,
    JournalError,
    JournalHeader,
    Range,
    journal_path,
)
from .sink import PageSink, TargetIdentity

if TYPE_CHECKING:
    pass

#: The target identity of a journal written before its target is created.
PENDING = "pending: being created"


class ResumeRefused(InputError):
    """The journal of an interrupted upload does not fit what is there now (the source or
    the target changed); ``--restart`` starts over."""


@dataclass(frozen=True, slots=True)
class ResumeOptions:
    """How :func:`~azrestore.transfer.pipeline.upload_disk` keeps a journal.

    - ``directory``: where journals live (the command line's default is under the
      user's state folder; the library makes the caller say);
    - ``restart``: forget an existing journal and start over (a target that is not
      re-created by ``prepare``, such as a managed disk's upload URL, has the ranges the
      old journal recorded cleared first, when the sink can ``clear``);
    - ``key``: the target's stable name, when the sink's URL is not (a managed disk's SAS
      URL may change with each grant of access; pass the disk's resource ID);
    - ``sync_interval``: seconds between fsyncs of the journal.
    """

    directory: Path
    restart: bool = False
    key: str | None = None
    sync_interval: float = 1.0


def target_key(sink: PageSink, options: ResumeOptions) -> str:
    """The name a target's journal is filed under: ``options.key``, else the sink's
    ``target_key`` (a URL without its query), else its description."""
    if options.key:
        return options.key
    key = getattr(sink, "target_key", None)
    return key if isinstance(key, str) and key else sink.description


async def _identity(sink: PageSink) -> TargetIdentity | None:
    identify = getattr(sink, "identity", None)
    if identify is None:
        raise InputError(f"{sink.description}: this target cannot be resumed (no identity)")
    result: TargetIdentity | None = await identify()
    return result


def _target_changes(recorded: TargetIdentity, now: TargetIdentity | None) -> list[str]:
    if now is None:
        return ["no longer exists"]
    found = []
    if recorded.size != now.size:
        found.append(f"is {now.size} bytes now, not {recorded.size}")
    if recorded.created != now.created:
        found.append(f"was re-created (created {now.created}, not {recorded.created})")
    return found


def _source_identity(image: DiskSource) -> SourceIdentity:
    """:func:`~azrestore.transfer.identity.source_identity` of any source."""
    return source_identity(image)


async def open_journal(
    image: DiskSource, sink: PageSink, options: ResumeOptions, blob_size: int, virtual_size: int
) -> Journal:
    """Open (or create) the journal of ``sink``'s target for ``image``: its ``done``
    ranges are already written, and ``complete`` says that nothing is left.

    Calls ``sink.prepare`` unless an interrupted upload of the same source into the same
    target is continued; then the sink's lease (``acquire_lease``, when it has one) is
    taken again with the id the journal recorded. Otherwise the prepared target is leased
    and the new journal records the lease's id (``lease_id``): a lease is taken only when a
    journal keeps its id, so that no crash can leave a lease nobody can take back.

    Raises :class:`ResumeRefused` when a journal of an unfinished upload exists but the
    source or the target changed since. A finished upload's journal
    whose source and target are unchanged means there is nothing to do (``complete``); one
    that no longer matches is dropped, and the upload starts as if there were none.
    """
    key = target_key(sink, options)
    directory = options.directory
    path = journal_path(directory, key)
    # A journal that cannot be written must fail the upload before the target is touched.
    await anyio.to_thread.run_sync(_writable, directory)
    source = await anyio.to_thread.run_sync(_source_identity, image)
    old: Journal | None = None
    journal = await anyio.to_thread.run_sync(Journal.load_if_exists, path)
    if journal is not None and journal.header.target.created == PENDING and not options.restart:
        adopted = await _adopt_pending(journal, source, sink, blob_size)
        if adopted is not None:
            return adopted
        journal = None
    if journal is not None:
        if options.restart:
            old = journal  # dropped once its pages are cleared, not before
        else:
            try:
                keep = await _check(journal, source, sink)
                if keep and not journal.complete:
                    await _take_lease(sink, journal.header.lease_id)
            except BaseException:
                # Refused (or failed): the journal stays, with the lease id and the pages
                # it recorded, for --restart.
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(journal.close)
                raise
            if keep:
                return journal
            await anyio.to_thread.run_sync(journal.discard)
    # A pending journal first, naming the lease id to be taken: a run stopped from here
    # on, even between the blob's creation and its lease, leaves a blob the same command
    # knows as its own (see _adopt_pending).
    proposed = _new_lease_id() if getattr(sink, "leasing", False) else None
    pending_header = JournalHeader(
        source=source,
        target=TargetIdentity(key, blob_size, PENDING),
        virtual_size=virtual_size,
        lease_id=proposed,
    )
    pending: Journal | None = None
    try:
        if old is not None and old.header.lease_id is not None:
            # Starting over on the blob this journal's upload leased: take its lease back,
            # so that the blob can be replaced (Azure refuses Put Blob without the id).
            await _take_lease(sink, old.header.lease_id)
        if old is not None:
            await anyio.to_thread.run_sync(old.close)
        pending = await anyio.to_thread.run_sync(Journal.create, path, pending_header)
        try:
            await sink.prepare(blob_size)
        except Exception:
            # Refused (the blob exists, a lease conflict...): not this upload's blob.
            await anyio.to_thread.run_sync(pending.discard)
            raise
        if old is not None and old.done and not old.complete and not getattr(sink, "fresh", True):
            await _clear(sink, old.done)
    finally:
        if pending is not None:
            await anyio.to_thread.run_sync(pending.close)
    try:
        acquire = getattr(sink, "acquire_lease", None)
        if acquire is not None and getattr(sink, "lease_id", None) is None:
            await acquire(proposed)  # a new lease, for as long as this journal lives
        target = await _identity(sink)
        if target is None:
            raise InputError(f"{sink.description}: the target is gone right after it was prepared")
        header = JournalHeader(
            source=source,
            target=target,
            virtual_size=virtual_size,
            lease_id=getattr(sink, "lease_id", None),
        )
        return await anyio.to_thread.run_sync(Journal.create, path, header)
    except BaseException:
        # No journal records the lease: nobody could take it back, so give it up.
        await give_up_lease(sink)
        raise


def _new_lease_id() -> str:
    """A random lease id in the GUID form Azure wants (not through ``uuid``, which would
    load ``platform`` and ``re`` into the quick start)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


async def _adopt_pending(
    journal: Journal, source: SourceIdentity, sink: PageSink, blob_size: int
) -> Journal | None:
    """The journal of a run stopped while it created its target (before anything was
    written): the target, if it is there, is that run's, so it is leased again with the
    id the journal names (someone else's lease is refused) and the upload goes on in it,
    from nothing; None when there is no target (start as if there were no journal)."""
    header = journal.header
    await anyio.to_thread.run_sync(journal.close)
    try:
        now = await _identity(sink)
        if now is None or header.source.differences(source):
            await anyio.to_thread.run_sync(journal.discard)
            return None
        if now.size != blob_size:
            raise ResumeRefused(
                f"{sink.description}: is {now.size} bytes, not {blob_size}: an interrupted"
                f" upload (journal {journal.path}) cannot be continued into it; use"
                " --restart to start over"
            )
        await _take_lease(sink, header.lease_id)
        renewed = JournalHeader(
            source=header.source,
            target=now,
            virtual_size=header.virtual_size,
            lease_id=getattr(sink, "lease_id", None),
        )
        return await anyio.to_thread.run_sync(Journal.create, journal.path, renewed)
    except BaseException:
        await give_up_lease(sink)
        raise


async def _take_lease(sink: PageSink, lease_id: str | None) -> None:
    acquire = getattr(sink, "acquire_lease", None)
    if acquire is not None and lease_id is not None:
        await acquire(lease_id)


async def release_lease(sink: PageSink) -> None:
    """Release the sink's lease on its target, if it holds one (the upload is done)."""
    release = getattr(sink, "release_lease", None)
    if release is not None:
        await release()


async def give_up_lease(sink: PageSink) -> None:
    """:func:`release_lease` on the way out of a failure: shielded, bounded, best effort
    (the failure is what the caller reports)."""
    with (
        anyio.CancelScope(shield=True),
        anyio.move_on_after(30),
        contextlib.suppress(AzRestoreError),
    ):
        await release_lease(sink)


def _writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not os.access(directory, os.W_OK | os.X_OK):
            raise PermissionError(13, "permission denied")
    except OSError as exc:
        raise JournalError(
            f"{directory}: cannot keep resume journals there: {exc.strerror or exc}"
            " (use --journal-dir or AZRESTORE_STATE_DIR)"
        ) from None


async def _check(journal: Journal, source: SourceIdentity, sink: PageSink) -> bool:
    """Whether ``journal`` may be continued (True) or dropped (False); raises when it
    belongs to an unfinished upload that the source or target no longer fits."""
    header = journal.header
    changes = [f"the source {c}" for c in header.source.differences(source)]
    if not changes:
        now = await _identity(sink)
        changes = [f"the target {c}" for c in _target_changes(header.target, now)]
    if not changes:
        return True
    if journal.complete:
        return False  # a finished upload of something else: no resume, a plain upload
    raise ResumeRefused(
        f"{sink.description}: an interrupted upload of {header.source.path} into this target"
        f" cannot be continued: {'; '.join(changes)} (journal {journal.path});"
        " use --restart to start over"
    )


@dataclass(frozen=True, slots=True)
class JournalStatus:
    """What the journal of one target says, looked at without taking it over
    (:func:`journal_status`): whether there is one, whether it records a finished upload,
    and what no longer fits (empty: the same source into the same target)."""

    path: Path
    found: bool
    complete: bool = False
    changes: tuple[str, ...] = ()

    @property
    def matches(self) -> bool:
        """A journal of this very source and target, so the upload can be continued."""
        return self.found and not self.changes


async def journal_status(
    image: DiskSource, key: str, target: TargetIdentity | None, options: ResumeOptions
) -> JournalStatus:
    """Whether the journal filed under ``key`` belongs to an upload of ``image`` into the
    target that is ``target`` now (a target that is not a blob, such as a managed disk, is
    identified by its caller). The journal is closed again: :func:`open_journal` (through
    ``upload_disk(resume=...)``) takes it over later. Raises :class:`JournalError` when it
    is damaged or another run holds it."""
    path = journal_path(options.directory, key)
    journal = await anyio.to_thread.run_sync(Journal.load_if_exists, path)
    if journal is None:
        return JournalStatus(path, found=False)
    try:
        source = await anyio.to_thread.run_sync(_source_identity, image)
        header = journal.header
        changes = [f"the source {c}" for c in header.source.differences(source)]
        changes += [f"the target {c}" for c in _target_changes(header.target, target)]
        return JournalStatus(path, True, journal.complete, tuple(changes))
    finally:
        await anyio.to_thread.run_sync(journal.close)


async def start_journal(
    image: DiskSource, key: str, target: TargetIdentity, options: ResumeOptions, virtual_size: int
) -> Path:
    """Write a new, empty journal for an upload of ``image`` into the target that was just
    created as ``target`` (replacing any journal under ``key``), before anything is sent: a
    run killed from here on leaves a journal the next run continues from."""
    path = journal_path(options.directory, key)
    await anyio.to_thread.run_sync(_writable, options.directory)
    source = await anyio.to_thread.run_sync(_source_identity, image)
    header = JournalHeader(source=source, target=target, virtual_size=virtual_size)
    journal = await anyio.to_thread.run_sync(Journal.create, path, header)
    await anyio.to_thread.run_sync(journal.close)
    return path


async def forget_journal(key: str, options: ResumeOptions) -> None:
    """Delete the journal filed under ``key``, if any (its target is gone)."""
    path = journal_path(options.directory, key)
    await anyio.to_thread.run_sync(partial(path.unlink, missing_ok=True))


async def _clear(sink: PageSink, ranges: list[Range]) -> None:
    clear = getattr(sink, "clear", None)
    if clear is None:
        raise InputError(
            f"{sink.description}: cannot start over: the target keeps the pages of the"
            " interrupted upload and cannot clear them"
        )
    for start, end in ranges:
        await clear(start, end - start)
