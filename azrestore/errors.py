"""One exception hierarchy for azrestore.

Every error azrestore raises derives from :class:`AzRestoreError`.  Foreign errors (OSError,
aiohttp, azure-core) are translated once, at the layer that meets them, so callers above
only ever see these types.  ``exit_code`` is what the command line returns for each.
"""

from __future__ import annotations


class AzRestoreError(Exception):
    """Base of every error azrestore raises."""

    exit_code: int = 1


class InputError(AzRestoreError):
    """Bad input found before anything is created: a missing, empty, unreadable or
    oversized image, a container format where raw is expected, a malformed option."""

    exit_code = 2


class SourceError(AzRestoreError):
    """A source that failed while it was read, after it was opened: an NBD server that
    went away or answered a read with an error, a qemu-nbd that died."""


class TransferError(AzRestoreError):
    """A transfer that failed: retries exhausted, or the service refused it for good."""


class SinkError(TransferError):
    """An error answered by the target (storage service) for one request.

    ``retryable`` tells the transfer layer whether to try the request again;
    ``retry_after`` carries the service's Retry-After in seconds when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.code = code
        self.retry_after = retry_after


class AuthenticationExpired(SinkError):
    """403 AuthenticationFailed: a SAS that has (probably) expired; grant access again."""


class TargetExistsError(TransferError):
    """The target blob exists and overwriting was not asked for."""

    exit_code = 2


class ControlPlaneError(AzRestoreError):
    """Resource Manager refused or failed an operation (create a disk, grant access, ...).

    ``code`` is Azure's error code (``InvalidVhd``, ``OperationNotAllowed``, ...).
    """

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def unreadable_file(path: object, exc: OSError, *, action: str = "read") -> InputError:
    """The one wording of a file that cannot be opened or read: ``PATH: cannot ACTION: why``
    (``action`` such as ``open``, ``read`` or ``read the manifest``)."""
    return InputError(f"{path}: cannot {action}: {exc.strerror or exc}")


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that stopped a task group (its siblings were then cancelled): callers get
    one azrestore error rather than a group."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error
