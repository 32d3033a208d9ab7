"""Choosing how the emulator answers Linux scripts: the rules a restore into it installs
for each scripts mode, and what it does where guest scripts cannot run."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from azrestore.cli.app import app
from azrestore.emulator import Emulator, bundle
from azrestore.emulator.guest import availability
from azrestore.errors import InputError
from azrestore.jobs.emulated import emulated_rules

pytestmark = pytest.mark.anyio


@pytest.fixture
def cannot_run(monkeypatch: pytest.MonkeyPatch) -> str:
    reason = "no loop devices here (test)"
    monkeypatch.setattr(availability, "sandbox_unavailable", lambda: reason)
    monkeypatch.setattr(bundle, "sandbox_unavailable", lambda: reason)
    return reason


async def test_record_answers_every_preparation_script() -> None:
    rules, reason = await emulated_rules("record")
    assert reason is None
    # One rule for batches (AZRESTORE-BATCH), one for single scripts, of any command id.
    assert [(rule.script, rule.command_id) for rule in rules] == [
        ("AZRESTORE-BATCH", None),
        ("AZRESTORE-RESULT", None),
    ]


async def test_auto_where_scripts_run_answers_only_powershell() -> None:
    if availability.sandbox_unavailable() is not None:
        pytest.skip(f"guest scripts cannot run here: {availability.sandbox_unavailable()}")
    rules, reason = await emulated_rules("auto")
    assert reason is None
    assert {rule.command_id for rule in rules} == {"RunPowerShellScript"}


async def test_auto_where_scripts_cannot_run_records_and_says_why(cannot_run: str) -> None:
    rules, reason = await emulated_rules("auto")
    assert reason == cannot_run
    assert {rule.command_id for rule in rules} == {None}
    with pytest.raises(InputError, match="cannot run here"):
        await emulated_rules("run")


async def test_an_emulator_that_must_run_scripts_refuses_to_start(cannot_run: str) -> None:
    with pytest.raises(RuntimeError, match=re.escape(cannot_run)):
        async with Emulator(scripts="run"):
            pass


def test_bad_modes_are_refused() -> None:
    with pytest.raises(ValueError, match="scripts must be"):
        Emulator(scripts="sometimes")  # type: ignore[arg-type]
    result = CliRunner().invoke(app, ["emulator", "--scripts", "sometimes"])
    assert result.exit_code == 2
    assert "--scripts must be run, record or auto" in result.output
