"""The batch of a helper: which VMs it takes, at which LUNs, and the batch script run for
real in bash with stand-in per-VM scripts (its summary read back by parse_batch)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from azrestore.azure.vmsizes import max_data_disks
from azrestore.restore.batching import allocate_luns, free_slots, take_batch
from azrestore.restore.batchscript import (
    BATCH_PREFIX,
    MAX_BATCH_JOBS,
    OFFLINE_WINDOWS_SCRIPT,
    SUMMARY_LIMIT,
    BatchJob,
    batch_command,
    batch_fits,
    batch_luns,
    parse_batch,
)
from azrestore.restore.scripts import LINUX_SCRIPT, MAX_SCRIPT_BYTES

#: A stand-in for prepare-linux.sh: hangs for the LUNs in $HANG_LUNS (until stopped),
#: fails for those in $FAIL_LUNS with a long error and stderr, else reports two changes
#: and a warning.
FAKE = r"""#!/bin/bash
lun=${AZRESTORE_LUN:?}
echo "changed: one on $lun"
echo "changed: two"
echo "warning: look"
for h in ${HANG_LUNS:-}; do
	if [ "$h" = "$lun" ]; then
		trap 'echo "lun $lun: stopped, cleaning up" >&2; exit 143' TERM
		sleep 300 &
		wait
	fi
done
for f in ${FAIL_LUNS:-}; do
	if [ "$f" = "$lun" ]; then
		for i in $(seq 1 50); do echo "stderr line $i of lun $lun \"quoted\" \\ back" >&2; done
		long=$(printf 'x%.0s' $(seq 1 2000))
		echo "AZRESTORE-RESULT {\"ok\":false,\"error\":\"disk $lun is broken \\\"badly\\\" $long\"}"
		exit 1
	fi
done
echo 'AZRESTORE-RESULT {"ok":true,"error":""}'
"""


@pytest.mark.parametrize(
    ("size", "disks"),
    [
        ("Standard_B1s", 2),
        ("Standard_B2s", 4),
        ("Standard_D2s_v5", 4),
        ("Standard_D4s_v5", 8),
        ("Standard_D8s_v5", 16),
        ("Standard_D16s_v5", 32),
        ("Standard_D64s_v5", 32),
        ("Standard_E4s_v5", 8),
        ("Standard_F2s_v2", 4),
        ("Standard_DS2_v2", 8),
        ("Standard_D5_v2", 64),
        ("Standard_M128s", 64),
        ("Custom", 4),
    ],
)
def test_data_disks_per_size(size: str, disks: int) -> None:
    assert max_data_disks(size) == disks


def test_free_slots_leave_out_the_helpers_own_disks() -> None:
    assert free_slots("Standard_D4s_v5", {0, 1}) == 6
    assert free_slots("Standard_B1s", {0, 1, 2}) == 0


def test_take_batch_is_first_fit_in_arrival_order() -> None:
    assert take_batch([1, 1, 1], 8) == [0, 1, 2]
    assert take_batch([3, 3, 1, 2], 4) == [0, 2]
    assert take_batch([5, 2], 4) == [1]
    assert take_batch([1] * 20, 16) == list(range(16))
    assert take_batch([], 4) == []
    assert take_batch([1], 0) == []


def test_luns_are_distinct_free_and_lowest_first() -> None:
    assert allocate_luns([1, 3, 1], {0, 2}) == [[1], [3, 4, 5], [6]]
    luns = allocate_luns([1] * 62, {10, 20})
    flat = [lun for group in luns for lun in group]
    assert len(set(flat)) == 62 and not {10, 20} & set(flat) and max(flat) == 63
    with pytest.raises(ValueError):
        allocate_luns([63], {0, 1})


def test_batch_command_checks_its_jobs() -> None:
    with pytest.raises(ValueError):
        batch_command([])
    with pytest.raises(ValueError):
        batch_command([BatchJob(1), BatchJob(1)])
    with pytest.raises(ValueError):
        batch_command([BatchJob(64)])
    with pytest.raises(ValueError):
        batch_command([BatchJob(lun) for lun in range(MAX_BATCH_JOBS)] + [BatchJob(0)])


def test_the_real_scripts_fit_the_budget_even_both_at_once() -> None:
    command = batch_command([BatchJob(lun) for lun in range(MAX_BATCH_JOBS)])
    assert command.command_id == "RunShellScript"
    assert len(command.text.encode()) <= MAX_SCRIPT_BYTES
    assert batch_luns(command.script) == list(range(MAX_BATCH_JOBS))
    # The offline Windows script (another branch's) stands in at the Linux one's size.
    texts = {OFFLINE_WINDOWS_SCRIPT: Path(__file__).read_text() * 3}
    both = batch_command([BatchJob(0), BatchJob(1, OFFLINE_WINDOWS_SCRIPT)], texts=texts)
    assert len(both.text.encode()) <= MAX_SCRIPT_BYTES
    assert both.text.count("unpack s") == 2


def test_scripts_too_big_together_go_in_separate_batches() -> None:
    assert batch_fits({LINUX_SCRIPT})
    # An offline script of the real one's size (about 31 KB) does not fit beside it.
    big = {OFFLINE_WINDOWS_SCRIPT: "".join(f"echo {i} $RANDOM{i * 7919}\n" for i in range(2500))}
    assert batch_fits({OFFLINE_WINDOWS_SCRIPT}, texts=big)
    assert not batch_fits({LINUX_SCRIPT, OFFLINE_WINDOWS_SCRIPT}, texts=big)
    small = {OFFLINE_WINDOWS_SCRIPT: FAKE}
    assert batch_fits({LINUX_SCRIPT, OFFLINE_WINDOWS_SCRIPT}, texts=small)


def _run(script: Path, fail: str = "", hang: str = "") -> str:
    env = {"PATH": "/usr/bin:/bin", "FAIL_LUNS": fail, "HANG_LUNS": hang}
    result = subprocess.run(
        ["bash", str(script)],
        env={**env, "TMPDIR": str(script.parent)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _write(tmp_path: Path, jobs: list[BatchJob], job_timeout: float = 60) -> Path:
    texts = {LINUX_SCRIPT: FAKE, OFFLINE_WINDOWS_SCRIPT: FAKE}
    command = batch_command(jobs, job_timeout=job_timeout, texts=texts)
    path = tmp_path / "batch.sh"
    path.write_text(command.text)
    return path


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash")
def test_one_failing_job_fails_alone_with_its_stderr_tail(tmp_path: Path) -> None:
    jobs = [BatchJob(3), BatchJob(7, OFFLINE_WINDOWS_SCRIPT), BatchJob(9)]
    stdout = _run(_write(tmp_path, jobs), fail="7")
    results = parse_batch(stdout, len(jobs))
    assert results is not None
    assert [r.ok for r in results] == [True, False, True]
    assert (results[0].changes, results[0].warnings) == (2, 1)
    failed = results[1]
    assert failed.error is not None and failed.error.startswith("disk 7 is broken")
    assert "stderr line 50 of lun 7" in failed.stderr_tail
    assert "stderr line 50 of lun 7" in failed.describe()
    # Nothing of the jobs' temporary files is left.
    assert [p.name for p in tmp_path.iterdir()] == ["batch.sh"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash")
def test_a_hanging_job_is_stopped_at_its_timeout_and_fails_alone(tmp_path: Path) -> None:
    jobs = [BatchJob(2), BatchJob(5), BatchJob(8)]
    stdout = _run(_write(tmp_path, jobs, job_timeout=1), hang="5")
    results = parse_batch(stdout, len(jobs))
    assert results is not None
    assert [r.ok for r in results] == [True, False, True]
    hung = results[1]
    assert hung.error is not None and hung.error.startswith("timed out after 1 s: stopped")
    # Stopped by TERM, so that the script's own exit trap cleans up (unmounts).
    assert "lun 5: stopped, cleaning up" in hung.stderr_tail
    assert "job 1: failed: timed out after 1 s" in stdout
    assert [p.name for p in tmp_path.iterdir()] == ["batch.sh"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash")
def test_the_summary_of_the_largest_batch_fits_run_commands_output(tmp_path: Path) -> None:
    jobs = [BatchJob(lun) for lun in range(MAX_BATCH_JOBS)]
    stdout = _run(_write(tmp_path, jobs), fail=" ".join(str(lun) for lun in range(64)))
    line = stdout.splitlines()[-1]
    assert line.startswith(BATCH_PREFIX)
    assert len(line.encode()) <= SUMMARY_LIMIT < 4096
    # What Run Command returns: the last 4096 bytes.
    tail = stdout.encode()[-4096:].decode(errors="ignore")
    results = parse_batch(tail, MAX_BATCH_JOBS)
    assert results is not None and not any(r.ok for r in results)
    assert all(r.error and r.error.startswith(f"disk {i} is") for i, r in enumerate(results))
    assert all(r.stderr_tail.endswith("back") for r in results)  # the end of its stderr
    json.loads(line[len(BATCH_PREFIX) :])  # valid JSON despite quotes and backslashes


def test_parse_batch_needs_a_whole_summary() -> None:
    assert parse_batch("no summary here", 1) is None
    assert parse_batch(BATCH_PREFIX + "{not json", 1) is None
    assert parse_batch(BATCH_PREFIX + '{"v":1,"jobs":[[1,0,0]]}', 2) is None
    (result,) = parse_batch("x\n" + BATCH_PREFIX + '{"v":1,"jobs":[[1,4,2]]}\n', 1) or []
    assert result.ok and (result.changes, result.warnings) == (4, 2)
