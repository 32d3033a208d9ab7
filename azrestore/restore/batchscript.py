"""The batch Run Command: one RunShellScript that prepares the disks of several VMs at once
on a Linux helper, and the reading of its per-VM summary.

The wrapper embeds each per-VM script it needs once (``prepare-linux.sh``, and
``prepare-windows-offline.sh`` for Windows VMs prepared offline), gzip-compressed and
base64-encoded in a quoted heredoc, so that even both together stay within
:data:`~azrestore.restore.scripts.MAX_SCRIPT_BYTES` (the Linux script alone is close to
it). It runs one job per VM, each the script for that VM's OS-disk LUN, in the background
(at most ``2 x nproc`` at once), each job's stdout, stderr and exit status in its own
files, stopped after the job timeout (``timeout``: a hung job fails its VM alone, reported
as timed out); then it prints, as its last line, ``AZRESTORE-BATCH {json}``:
``{"v": 1, "jobs": [[ok, changes, warnings, error, stderr tail], ...]}`` in job order, the
two strings only for failed jobs and cut so that the line stays under
:data:`SUMMARY_LIMIT` bytes (Run Command returns only the last 4096 bytes of output) even
for the most jobs a batch can hold (64, one per LUN).
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from ..errors import ControlPlaneError
from .scripts import LINUX_SCRIPT, MAX_SCRIPT_BYTES, RunCommandSpec, script_text

__all__ = [
    "BATCH_PREFIX",
    "DEFAULT_JOB_TIMEOUT",
    "MAX_BATCH_JOBS",
    "OFFLINE_WINDOWS_SCRIPT",
    "SUMMARY_LIMIT",
    "BatchJob",
    "JobResult",
    "batch_command",
    "batch_fits",
    "batch_luns",
    "offline_windows_available",
    "parse_batch",
]

BATCH_PREFIX = "AZRESTORE-BATCH "
#: The offline Windows preparation (ntfs-3g and hivex on a Linux helper).
OFFLINE_WINDOWS_SCRIPT = "prepare-windows-offline.sh"
#: The summary line is kept under this many bytes (Run Command keeps the last 4096).
SUMMARY_LIMIT = 3800
#: Seconds one job may run before it is stopped (Run Command's own limit is 90 minutes).
DEFAULT_JOB_TIMEOUT = 1800.0
#: One job per LUN at most.
MAX_BATCH_JOBS = 64
_MAX_LUN = 63


@dataclass(frozen=True)
class BatchJob:
    """One VM of a batch: the script that prepares it, for its OS disk at ``lun``."""

    lun: int
    script: str = LINUX_SCRIPT


@dataclass(frozen=True)
class JobResult:
    """What one job of a batch did."""

    ok: bool
    changes: int = 0
    warnings: int = 0
    error: str | None = None
    #: the last lines of the job's stderr (failed jobs only)
    stderr_tail: str = ""

    def describe(self) -> str:
        """The failure in one line: its error and stderr tail."""
        text = self.error or "failed"
        if self.stderr_tail and self.stderr_tail not in text:
            text += f" (stderr: {self.stderr_tail})"
        return text


@cache
def _script(name: str) -> str:
    if name == LINUX_SCRIPT:
        return script_text(name)
    if name != OFFLINE_WINDOWS_SCRIPT:
        raise ValueError(f"no batch script {name!r}")
    resource = files("azrestore.restore").joinpath("scripts", name)
    if not resource.is_file():
        raise ControlPlaneError(
            f"{name} is not part of this azrestore: a Windows VM needs a Windows helper"
        )
    return resource.read_text(encoding="utf-8")


def offline_windows_available() -> bool:
    """Whether this build carries the offline Windows script."""
    try:
        _script(OFFLINE_WINDOWS_SCRIPT)
    except ControlPlaneError:
        return False
    return True


@cache
def _packed(text: str) -> str:
    """A script gzip-compressed (no timestamp: the same bytes every time), base64."""
    data = gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)
    return base64.encodebytes(data).decode("ascii").rstrip("\n")


_HEAD = r"""#!/bin/bash
# azrestore: prepare the disks of several restored VMs at once on this helper.
# Each job runs an embedded azrestore script (gzip+base64) for one OS-disk LUN, in the
# background, its output in its own files; the last line is AZRESTORE-BATCH {json}.
# Run Command may start it with /bin/sh: it needs bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u
export LC_ALL=C PATH="${PATH:+$PATH:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""

_BODY = r"""D=$(mktemp -d "${TMPDIR:-/tmp}/azrestore-batch.XXXXXX") || {
	echo 'AZRESTORE-BATCH {"v":1,"error":"mktemp failed","jobs":[]}'
	exit 1
}
trap 'rm -rf "$D"' EXIT
command -v timeout >/dev/null || timeout() { shift 3 && "$@"; }
unpack() { base64 -d >"$D/$1.gz" && gzip -dc "$D/$1.gz" >"$D/$1"; }
"""

_RUN = r"""P=${AZRESTORE_PARALLEL:-$(($(nproc 2>/dev/null || echo 1) * 2))}
n=0
for job in $JOBS; do
	while [ "$(jobs -rp | wc -l)" -ge "$P" ]; do wait -n 2>/dev/null || true; done
	(
		s=${job%%:*} lun=${job#*:}
		if [ -s "$D/s$s" ]; then
			# A job past its time is stopped (TERM to its process group: the script's exit
			# trap unmounts; KILL 30 s later), failing its VM alone.
			AZRESTORE_LUN=$lun timeout -k 30 "$T" bash "$D/s$s" "$lun" \
				>"$D/out$n" 2>"$D/err$n" </dev/null
			echo $? >"$D/rc$n"
		else
			echo "the embedded script $s did not unpack" >"$D/err$n"
			echo 127 >"$D/rc$n"
		fi
	) &
	n=$((n + 1))
done
wait
clean() { tr -c '[:print:]' ' ' | tr '"\\' "'/"; }
fails=0
for ((i = 0; i < n; i++)); do
	rc=$(cat "$D/rc$i" 2>/dev/null) || true
	if [ "$rc" != 0 ] || ! grep -qs '^AZRESTORE-RESULT .*"ok":true' "$D/out$i"; then
		fails=$((fails + 1))
	fi
done
cap=$(((LIMIT - 64 - 16 * n) / (fails > 0 ? fails : 1) / 2))
[ "$cap" -le 300 ] || cap=300
[ "$cap" -ge 8 ] || cap=8
out=""
for ((i = 0; i < n; i++)); do
	rc=$(cat "$D/rc$i" 2>/dev/null || echo 255)
	c=$(grep -c '^changed: ' "$D/out$i" 2>/dev/null) || true
	w=$(grep -c '^warning: ' "$D/out$i" 2>/dev/null) || true
	line=$(grep '^AZRESTORE-RESULT ' "$D/out$i" 2>/dev/null | tail -n 1) || true
	if [ "$rc" = 0 ] && [[ $line == *'"ok":true'* ]]; then
		out+="${out:+,}[1,${c:-0},${w:-0}]"
		echo "job $i: prepared (${c:-0} changes, ${w:-0} warnings)"
		continue
	fi
	e=$(printf '%s' "$line" | sed -n 's/.*"error":"\(\([^"\\]\|\\.\)*\)".*/\1/p')
	case $rc in
	124) e="timed out after $T s: stopped${e:+ ($e)}" ;;
	137) e="killed (timed out after $T s, or out of memory)" ;;
	esac
	e=$(printf '%s' "$e" | clean | head -c "$cap")
	[ -n "$e" ] || e="no result line (exit status $rc)"
	t=$(tail -n 3 "$D/err$i" 2>/dev/null | clean | tail -c "$cap")
	out+="${out:+,}[0,${c:-0},${w:-0},\"$e\",\"$t\"]"
	echo "job $i: failed: $e"
done
echo "AZRESTORE-BATCH {\"v\":1,\"jobs\":[$out]}"
"""


def batch_command(
    jobs: Sequence[BatchJob],
    *,
    job_timeout: float = DEFAULT_JOB_TIMEOUT,
    texts: Mapping[str, str] | None = None,
) -> RunCommandSpec:
    """The Run Command that runs ``jobs`` (distinct LUNs) on a Linux helper at once, each
    stopped after ``job_timeout`` seconds (failing its VM alone). ``texts`` gives a
    script's text by name instead of the packaged one (tests)."""
    if not 1 <= len(jobs) <= MAX_BATCH_JOBS:
        raise ValueError(f"a batch has 1-{MAX_BATCH_JOBS} jobs, not {len(jobs)}")
    luns = [job.lun for job in jobs]
    for lun in luns:
        if isinstance(lun, bool) or not 0 <= lun <= _MAX_LUN:
            raise ValueError(f"LUN must be 0-{_MAX_LUN}, not {lun!r}")
    if len(set(luns)) != len(luns):
        raise ValueError(f"a LUN is in the batch twice: {luns}")
    names = list(dict.fromkeys(job.script for job in jobs))
    parts = [_HEAD]
    spec = " ".join(f"{names.index(job.script)}:{job.lun}" for job in jobs)
    parts.append(f'JOBS="{spec}" LIMIT={SUMMARY_LIMIT} T={max(1, round(job_timeout))}\n')
    parts.append(_BODY)
    for index, name in enumerate(names):
        marker = f"AZRESTORE-SCRIPT-{index}"
        text = (texts or {}).get(name) or _script(name)
        parts.append(f"# {name}\nunpack s{index} <<'{marker}'\n{_packed(text)}\n{marker}\n")
    parts.append(_RUN)
    whole = "".join(parts)
    size = len(whole.encode("utf-8"))
    if size > MAX_SCRIPT_BYTES:
        raise ValueError(f"the batch script is {size} bytes, over the {MAX_SCRIPT_BYTES} budget")
    return RunCommandSpec(
        command_id="RunShellScript", script=tuple(whole.splitlines()), parameters=()
    )


def batch_fits(scripts: Collection[str], *, texts: Mapping[str, str] | None = None) -> bool:
    """Whether one batch script can carry all of ``scripts`` (by name) within the budget,
    for the most jobs a batch holds. The Linux and the offline Windows scripts together
    are over it: such VMs then go in separate batches."""
    names = sorted(scripts)
    jobs = [BatchJob(lun, names[lun % len(names)]) for lun in range(MAX_BATCH_JOBS)]
    try:
        batch_command(jobs, texts=texts)
    except ValueError:
        return False
    return True


def batch_luns(script: Sequence[str]) -> list[int]:
    """The OS-disk LUNs of a batch script's jobs, in job order (what an emulated helper
    answers for)."""
    for line in script:
        if line.startswith('JOBS="'):
            return [int(job.split(":")[1]) for job in line.split('"')[1].split()]
    return []


def parse_batch(output: str, count: int) -> list[JobResult] | None:
    """The per-job results of the last ``AZRESTORE-BATCH`` line of ``output`` (the Run
    Command's stdout), or None when there is none or it does not list ``count`` jobs."""
    for line in reversed(output.splitlines()):
        if not line.startswith(BATCH_PREFIX):
            continue
        try:
            value = json.loads(line[len(BATCH_PREFIX) :])
        except json.JSONDecodeError:
            return None
        jobs = value.get("jobs") if isinstance(value, dict) else None
        if not isinstance(jobs, list) or len(jobs) != count:
            return None
        results = []
        for job in jobs:
            if not isinstance(job, list) or len(job) < 3:
                return None
            ok, changes, warnings = job[0] == 1, int(job[1]), int(job[2])
            error = str(job[3]) if len(job) > 3 and job[3] else None
            tail = str(job[4]).strip() if len(job) > 4 else ""
            results.append(JobResult(ok, changes, warnings, None if ok else error, tail))
        return results
    return None
