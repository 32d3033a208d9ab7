"""What an interrupted ``upload --to-disk`` says it leaves behind, and the journal key of
a disk (its resource id, whatever its case)."""

from __future__ import annotations

import dataclasses

from azrestore.azure.disks import DiskInfo
from azrestore.azure.diskupload import (
    UPLOAD_TAG,
    DiskUploadStatus,
    disk_identity,
    disk_key,
    new_upload_tag,
)
from azrestore.cli.edge import error_message, exit_code_of

DISK = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/RG"
    "/providers/Microsoft.Compute/disks/Web01"
)


def test_open_disk_is_named_with_the_ways_out() -> None:
    status = DiskUploadStatus(DISK, disk_state="ActiveUpload", access_open=True)
    text = status.left_behind()
    assert DISK in text and "ActiveUpload" in text and "left open" in text
    assert "same command" in text and "--restart" in text
    interrupted = KeyboardInterrupt(text)
    assert error_message(interrupted) == f"interrupted: {text}"
    assert exit_code_of(interrupted) == 130
    assert error_message(KeyboardInterrupt()) == "interrupted"


def test_nothing_created_yet() -> None:
    assert "was not created" in DiskUploadStatus(DISK).left_behind()
    assert "may exist" in DiskUploadStatus(DISK, disk_state="Creating").left_behind()


def test_journal_key_and_identity_of_a_disk() -> None:
    assert disk_key(DISK) == disk_key(DISK.lower()) == disk_key(DISK.replace("RG", "rg"))
    info = DiskInfo(
        id=DISK,
        state="ActiveUpload",
        size_bytes=None,
        os_type=None,
        hyper_v_generation=None,
        managed_by=None,
        tags={},
        upload_size_bytes=21 * 1024 * 1024 + 512,
        unique_id="u1",
        time_created="2026-12-03T12:00:00Z",
    )
    identity = disk_identity(info)
    assert identity.key == disk_key(DISK) and identity.size == 21 * 1024 * 1024 + 512
    recreated = disk_identity(dataclasses.replace(info, unique_id="u2"))
    assert recreated.created != identity.created


def test_a_disk_tagged_by_its_upload_is_known_by_the_tag() -> None:
    """The journal is written before the disk is created, naming the upload id the disk
    is then tagged with: the identity it records is the one the disk has once created."""
    tags = new_upload_tag()
    info = DiskInfo(
        id=DISK,
        state="ReadyToUpload",
        size_bytes=None,
        os_type=None,
        hyper_v_generation=None,
        managed_by=None,
        tags={"owner": "ops", **tags},
        upload_size_bytes=21 * 1024 * 1024 + 512,
        unique_id="u1",
        time_created="2026-12-03T12:00:00Z",
    )
    identity = disk_identity(info)
    assert identity.created == f"upload {tags[UPLOAD_TAG]}"
    assert disk_identity(dataclasses.replace(info, unique_id="u2")) == identity
    retagged = disk_identity(dataclasses.replace(info, tags=new_upload_tag()))
    assert retagged.created != identity.created  # created again by another run
    assert disk_identity(dataclasses.replace(info, tags={})).created != identity.created


def test_interrupted_while_created_with_a_journal_says_to_continue() -> None:
    text = DiskUploadStatus(DISK, disk_state="Creating", journal="/j/x.journal").left_behind()
    assert "may exist" in text and "same command again to continue" in text
