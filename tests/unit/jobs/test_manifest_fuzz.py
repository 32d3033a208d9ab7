"""The manifest reader on hostile and random input (YAML, JSON, lines): entries, or a
clear InputError (exit code 2) naming the file, never another exception; alias bombs,
deep nesting and huge files refused at once (in a child process with a memory limit and
a timeout, so that a regression fails instead of eating the machine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azrestore.errors import AzRestoreError, InputError
from azrestore.jobs.manifest import ManifestEntry, read_manifest
from azrestore.yamlfile import MAX_DEPTH, MAX_VALUES
from tests.support.bounded import read_bounded, run_bounded
from tests.support.cli import assert_one_line_error
from tests.support.yamlfuzz import LAUGHS, mutated, nested_flow, yaml_documents

#: Unreachable: nothing listens on the discard port of loopback.
URL = "http://127.0.0.1:9/vhds/a.vhd"
ENTRIES = [{"image": "a.raw", "to": URL, "name": "web"}, {"image": "/x/b.raw", "url": URL}]
TEXTS = [
    yaml.safe_dump(ENTRIES, sort_keys=False),
    json.dumps(ENTRIES),
    f"# disks\na.raw {URL}\n'b c.raw' {URL}\n",
]
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _judge(tmp_path: Path, data: str | bytes) -> None:
    path = tmp_path / "m.yaml"
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    path.write_bytes(data)
    try:
        entries = read_manifest(path)
    except AzRestoreError as exc:
        assert isinstance(exc, InputError) and exc.exit_code == 2, repr(exc)
        assert str(exc).startswith(str(path)) and "\n" not in str(exc), repr(exc)
    else:
        assert all(isinstance(entry, ManifestEntry) for entry in entries)


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes(tmp_path: Path, data: bytes) -> None:
    _judge(tmp_path, data)


@FUZZ
@given(st.sampled_from(TEXTS).flatmap(mutated))
def test_valid_manifests_mutated(tmp_path: Path, text: str) -> None:
    _judge(tmp_path, text)


@FUZZ
@given(yaml_documents(ENTRIES))
def test_yaml_and_json_shaped_like_a_manifest(tmp_path: Path, text: str) -> None:
    _judge(tmp_path, text)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        # Found by the fuzzers.
        (b"\xff\xfe- x\n", "not UTF-8 text"),  # was UnicodeDecodeError
        (f"- image: !!int abc\n  to: {URL}\n".encode(), ":1: expected 'IMAGE URL'"),  # ValueError
        (f"- image: a\n  to: {URL}\n  name: 2001-13-45\n".encode(), ":1: expected 'IMAGE URL'"),
    ],
)
def test_found_by_fuzzing(tmp_path: Path, data: bytes, fragment: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(data)
    with pytest.raises(InputError, match=fragment):
        read_manifest(path)


HOSTILE = {
    "billion-laughs.yaml": (
        LAUGHS.replace("a0: ", "- a0: ").replace("\na", "\n- a") + f"- {{image: a, to: {URL}}}\n",
        f"more than {MAX_VALUES} values",
    ),
    "laughs-in-a-name.yaml": (
        f"- image: a.raw\n  to: {URL}\n  name:\n  - &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"  - &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)),
        f"more than {MAX_VALUES} values",
    ),
    "self-alias.yaml": (f"- &e {{image: a, to: {URL}, name: *e}}\n", "inside the value it names"),
    "deep.json": (nested_flow(5000), f"more than {MAX_DEPTH} levels"),
    "deep-block.yaml": ("- " * 5000 + "x\n", f"more than {MAX_DEPTH} levels"),
    "deep-object.json": ('{"a": ' * 5000 + "1" + "}" * 5000, f"more than {MAX_DEPTH} levels"),
    "huge.txt": (f"a.raw {URL}\n" * 40_000, "larger than 1 MiB, the limit for a manifest"),
}


def test_hostile_manifests_are_refused_at_once(tmp_path: Path) -> None:
    paths = []
    for name, (text, _) in HOSTILE.items():
        paths.append(tmp_path / name)
        paths[-1].write_text(text)
    outcomes = read_bounded("tests.support.bounded.read_manifest_at", paths)
    for path, (_, fragment), (kind, code, message) in zip(
        paths, HOSTILE.values(), outcomes, strict=True
    ):
        assert (kind, code) == ("InputError", 2), (path.name, kind, message)
        assert message.startswith(f"{path}: ") and fragment in message, message
        assert "\n" not in message


def test_the_command_line_refuses_a_bomb(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(HOSTILE["laughs-in-a-name.yaml"][0])
    result = run_bounded("upload", "--manifest", "m.yaml", cwd=tmp_path)
    line = assert_one_line_error(result, 2)
    assert line.startswith("azrestore: error: m.yaml: too large: more than "), line


@settings(max_examples=2, deadline=None)
@given(st.one_of(st.sampled_from(TEXTS).flatmap(mutated), yaml_documents(ENTRIES)))
def test_the_command_line_on_generated_manifests(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    folder = tmp_path_factory.mktemp("cli")
    (folder / "m.yaml").write_text(text, errors="surrogatepass")
    result = run_bounded("upload", "--manifest", "m.yaml", "--journal-dir", "j", cwd=folder)
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr, result.stderr
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_a_huge_word_is_not_quoted_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "m.txt"
    path.write_text("a.raw " + "y" * 300_000 + "\n")
    with pytest.raises(InputError, match="not an http") as caught:
        read_manifest(path)
    assert len(str(caught.value)) < len(str(path)) + 200
