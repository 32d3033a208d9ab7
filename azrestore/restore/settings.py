"""The settings of a restore run beyond the plan: timeouts, parallelism, where resume
journals live, and the storage credentials of page-blob mode (given by the caller, never
read from the environment)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .batchscript import DEFAULT_JOB_TIMEOUT


@dataclass(frozen=True)
class RestoreSettings:
    """Knobs of a run beyond the plan."""

    #: how long to wait for the VM agent to report Ready
    agent_timeout: float = 1200.0
    agent_poll_interval: float = 10.0
    #: at most this many disks upload at once (they share the bandwidth budget)
    parallel_uploads: int = 4
    #: page-blob mode: the connection string (account key or SAS) for the storage
    #: account's URL, when that URL carries no SAS; without one, Azure AD
    storage_connection_string: str | None = None
    #: page-blob mode: the storage account's resource id when the plan names none
    storage_account_id: str | None = None
    #: where the disks' resume journals live: a run interrupted (Ctrl-C, SIGTERM, kill -9)
    #: and run again continues each upload from its journal. None: no journal is kept, and
    #: a disk an earlier run left open for upload is refused
    journal_dir: Path | None = None
    #: a disk left open for upload that no journal lets this run continue is deleted and
    #: uploaded again, instead of failing its VM
    restart: bool = False
    #: how long a free helper waits for one more VM to join its batch (it starts at once
    #: when the batch is full or no other VM is still to come) ...
    batch_window: float = 90.0
    #: ... and at most this long after the first VM of the batch came
    batch_max_wait: float = 360.0
    #: how long one VM's preparation in a Linux helper's batch may run: a job past it is
    #: stopped and fails that VM alone (the batch's Run Command goes on)
    job_timeout: float = DEFAULT_JOB_TIMEOUT
