"""The emulator's link options on the command line: a bad spec, or one given to a restore
without --emulator, is one error line and exit 2, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import assert_one_line_error, invoke


@pytest.mark.parametrize(
    ("option", "spec", "says"),
    [
        ("--link", "rtt=40", "link spec 'rtt=40': rtt: not a duration"),
        ("--link", "rtt=40ms,rate=1Mb/s", "ambiguous rate unit"),
        ("--blob-targets", "fast", "unknown preset 'fast'"),
        ("--account-targets", "requests=many", "requests: not a request rate"),
    ],
)
def test_bad_spec_is_exit_2_with_one_line(option: str, spec: str, says: str) -> None:
    line = assert_one_line_error(invoke("emulator", option, spec), 2)
    assert says in line


def test_restore_takes_the_link_only_with_emulator(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("not read: the options are refused first\n")
    result = invoke("restore", plan, "--link", "rtt=40ms", "--blob-targets", "standard")
    assert result.exit_code == 2
    assert "need --emulator" in result.stderr
    line = assert_one_line_error(invoke("restore", plan, "--emulator", "--link", "x=1"), 2)
    assert "link spec 'x=1'" in line
