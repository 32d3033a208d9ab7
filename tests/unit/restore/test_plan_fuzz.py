"""The plan reader on hostile and random input: a plan, a clear PlanError (exit code 2)
or another InputError, never another exception; alias bombs, self-referring aliases,
deep nesting and huge files refused at once (run as a child process with a memory limit
and a timeout, so that a regression fails instead of eating the machine)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azrestore.errors import AzRestoreError
from azrestore.restore.plan import PlanError, RestorePlan, load_plan, parse_plan
from azrestore.yamlfile import MAX_ALIASES, MAX_DEPTH, MAX_VALUES
from tests.support.bounded import read_bounded, run_bounded
from tests.support.cli import assert_one_line_error
from tests.support.plans import base
from tests.support.yamlfuzz import (
    LAUGHS,
    mutated,
    nested_flow,
    yaml_documents,
)

VALID = yaml.safe_dump(base(), sort_keys=False)
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _judge(text: str, tmp_path: Path) -> None:
    """``text`` is a plan or a PlanError whose every line names the source."""
    try:
        plan = parse_plan(text, source="fuzz.yaml", base_dir=tmp_path)
    except AzRestoreError as exc:
        assert isinstance(exc, PlanError) and exc.exit_code == 2, repr(exc)
        assert exc.problems and all(p.startswith("fuzz.yaml: ") for p in exc.problems), exc
    else:
        assert isinstance(plan, RestorePlan)


@FUZZ
@given(st.text(max_size=400))
def test_any_text(tmp_path: Path, text: str) -> None:
    _judge(text, tmp_path)


@FUZZ
@given(mutated(VALID))
def test_a_valid_plan_mutated(tmp_path: Path, text: str) -> None:
    _judge(text, tmp_path)


@FUZZ
@given(yaml_documents(base()))
def test_yaml_shaped_like_a_plan(tmp_path: Path, text: str) -> None:
    _judge(text, tmp_path)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300))
def test_any_bytes_as_a_file(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "plan.yaml"
    path.write_bytes(data)
    try:
        load_plan(path)
    except AzRestoreError as exc:
        assert exc.exit_code == 2 and str(path) in str(exc), repr(exc)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        # Found by the fuzzers: SafeConstructor's scalar readers raise ValueError & co.
        ("target: !!int abc\n", "not a valid int: 'abc' (line 1, column 9)"),
        ("target: " + "1" * 5000 + "\n", "not a valid int: '111"),
        ("target: !!timestamp x\n", "not a valid timestamp: 'x'"),
        ("target: 2001-13-45\n", "not a valid timestamp: '2001-13-45'"),
        ("target: !!bool maybe\n", "not a valid bool: 'maybe'"),
        ("target: !!float x\n", "not a valid float: 'x'"),
    ],
)
def test_scalars_a_tag_cannot_read(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(PlanError) as caught:
        parse_plan(text + "vms: []\n", source="plan.yaml", base_dir=tmp_path)
    (problem,) = caught.value.problems
    assert problem.startswith("plan.yaml: not valid YAML: ") and fragment in problem, problem


def test_nesting_up_to_the_limit_is_read(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="target: should be a valid dictionary"):
        parse_plan(f"target: {nested_flow(MAX_DEPTH - 1)}\nvms: []\n", base_dir=tmp_path)


HOSTILE = {
    "billion-laughs": (LAUGHS + "target: *a8\nvms: []\n", f"more than {MAX_VALUES} values"),
    "merge-keys": (
        "a0: &a0 {k: v}\n"
        + "".join(f"a{i}: &a{i} {{<<: [{', '.join([f'*a{i - 1}'] * 9)}]}}\n" for i in range(1, 9))
        + "target: *a8\nvms: []\n",
        f"more than {MAX_VALUES} values",
    ),
    "self-alias": ("target: &t {vms: *t}\nvms: []\n", "alias *t is inside the value it names"),
    "many-aliases": (
        "x: &x 1\ntarget: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\n",
        f"too many aliases: more than {MAX_ALIASES}",
    ),
    "deep-flow": (f"target: {nested_flow(5000)}\nvms: []\n", f"more than {MAX_DEPTH} levels"),
    "deep-block": ("target:\n" + "- " * 5000 + "x\n", f"more than {MAX_DEPTH} levels"),
    "deep-through-aliases": (
        f"a: &a {nested_flow(40)}\ntarget: {nested_flow(30, '*a')}\n",
        f"more than {MAX_DEPTH} levels",
    ),
    "huge-file": ("# padding\n" * 200_000 + "target: {}\n", "larger than 1 MiB, the limit"),
}


def test_hostile_plans_are_refused_at_once(tmp_path: Path) -> None:
    paths = []
    for name, (text, _) in HOSTILE.items():
        paths.append(tmp_path / f"{name}.yaml")
        paths[-1].write_text(text)
    outcomes = read_bounded("azrestore.restore.plan.load_plan", paths)
    for path, (_, fragment), (kind, code, message) in zip(
        paths, HOSTILE.values(), outcomes, strict=True
    ):
        assert kind in ("PlanError", "InputError") and code == 2, (path.name, kind, message)
        assert message.startswith(f"{path}: ") and fragment in message, message
        assert "\n" not in message


def test_the_command_line_refuses_a_bomb(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(HOSTILE["billion-laughs"][0])
    line = assert_one_line_error(run_bounded("restore", "plan.yaml", "--dry-run", cwd=tmp_path), 2)
    assert line.startswith("azrestore: error: plan.yaml: too large: more than "), line


def test_an_endless_plan_is_not_read_whole(tmp_path: Path) -> None:
    line = assert_one_line_error(run_bounded("restore", "/dev/zero", "--dry-run"), 2)
    assert line == "azrestore: error: /dev/zero: larger than 1 MiB, the limit for a plan"


@settings(max_examples=2, deadline=None)
@given(st.one_of(mutated(VALID), yaml_documents(base())))
def test_the_command_line_on_generated_plans(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    folder = tmp_path_factory.mktemp("cli")
    (folder / "plan.yaml").write_text(text)
    result = run_bounded("restore", "plan.yaml", "--dry-run", cwd=folder)
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr, result.stderr
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert all(
        line.startswith("azrestore: error: ") or line.startswith("plan.yaml: ")
        for line in result.stderr.splitlines()
    ), result.stderr


@pytest.mark.parametrize(
    "text",
    [
        "target: {location: " + "x" * 300_000 + "}\nvms: []\n",
        "vms: [{name: web, size: Standard_D2s_v5, disks: [{path: a, role: os, lun: "
        + "x" * 300_000
        + "}]}]\n",
    ],
)
def test_a_huge_value_is_not_quoted_back_whole(tmp_path: Path, text: str) -> None:
    with pytest.raises(PlanError) as caught:
        parse_plan(text, source="plan.yaml", base_dir=tmp_path)
    assert all(len(problem) < 400 for problem in caught.value.problems), caught.value.problems
