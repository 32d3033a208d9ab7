"""Managed disks (``Microsoft.Compute/disks``): create (Upload, Import, Empty), update, get,
list, delete, grant access (beginGetAccess) and revoke it (endGetAccess).

State machine (``diskState``): an Upload disk starts ``ReadyToUpload``; a Write grant makes it
``ActiveUpload``; revoking validates the uploaded VHD footer and makes it ``Unattached``.  A
Read grant makes an unattached (or reserved) disk ``ActiveSAS`` until revoked.  A disk
attached to a VM is ``Attached`` (``Reserved`` while the VM is deallocated).

Choices where Azure's behaviour is not documented: a revoke that finds a bad VHD ends
``Failed`` (InvalidVhd) and leaves the disk ``ActiveUpload`` with its SAS still valid (so the
uploader can fix the footer and revoke again), which is what Storage Explorer's hint after
such a failure describes; a disk with an active SAS cannot be deleted (revoke first).

Modules: :mod:`.routes` (routing, read, delete), :mod:`.validation` (request bodies),
:mod:`.create` (Upload and Empty), :mod:`.importing` (Import from a blob), :mod:`.update`,
:mod:`.access` (grants, revokes and the gateway's SAS hook), :mod:`.representation` (the
disk as ARM answers it).
"""
