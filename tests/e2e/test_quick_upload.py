"""The console script's quick start for scripted ``upload``: it takes exactly the plain
``upload IMAGE --to URL --json`` invocations, writes the blob and answers as the full
command line does (without loading typer), and leaves everything else to it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from azrestore.cli.app import app
from azrestore.cli.quickupload import UPLOAD_FLAGS, UPLOAD_OPTIONS, parse_quick_upload
from azrestore.formats.sizes import MiB
from tests.support.images import expected_vhd_body, make_sparse_image
from tests.support.storage import StorageTarget

URL = "http://127.0.0.1:1/a/b/c.vhd?sig=x"


@pytest.mark.parametrize(
    ("argv", "quick"),
    [
        (["upload", "a.raw", "--to", URL, "--json"], True),
        (["--debug", "upload", "--json", "a.raw", "--to", URL, "--overwrite"], True),
        (["upload", "a", "--to", URL, "--json", "--checksum", "NONE", "--concurrency", "4"], True),
        (["upload", "a", "--to", URL, "--json", "--restart", "--journal-dir", "j"], True),
        (["upload", "a.raw", "--to", URL], False),  # text output: the full command line's
        (["upload", "a.raw", "--to", URL, "--json", "--verify"], False),
        (["upload", "a.raw", "--to", URL, "--json", "--json"], False),
        (["upload", "a.raw=" + URL, "--json"], False),
        (["upload", "a.raw", "b.raw", "--to", URL, "--json"], False),
        (["upload", "a.raw", "--to-disk", "/subscriptions/s", "--json"], False),
        (["upload", "a.raw", "--to", URL, "--json", "--checksum", "sha1"], False),
        (["upload", "a.raw", "--to", URL, "--json", "--concurrency", "-1"], False),
        (["upload", "a.raw", "--to", URL, "--json", "--concurrency"], False),
        (["upload", "a.raw", "--to", URL, "--json", "--help"], False),
        (["--proxy-url", "http://p", "upload", "a.raw", "--to", URL, "--json"], False),
        (["convert", "a.raw", "b.vhd", "--json"], False),
    ],
)
def test_quick_upload_takes_only_plain_invocations(argv: list[str], quick: bool) -> None:
    assert (parse_quick_upload(argv) is not None) == quick


def test_quick_upload_options_are_the_full_commands() -> None:
    command = typer.main.get_command(app).commands["upload"]  # type: ignore[attr-defined]
    options = {opt for param in command.params for opt in param.opts if opt.startswith("-")}
    assert options >= UPLOAD_FLAGS | UPLOAD_OPTIONS


def run(*args: str | Path, full: bool = False) -> subprocess.CompletedProcess[str]:
    """The console script's entry point (or the full command line), then whether typer
    was loaded, on stderr."""
    main = "from azrestore.cli.app import main" if full else "from azrestore.cli.entry import main"
    code = (
        "import sys\n"
        f"{main}\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    print('typer loaded' if 'typer' in sys.modules else 'quick', file=sys.stderr)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=120
    )


def test_quick_upload_writes_and_reports_like_the_full_cli(
    tmp_path: Path, storage: StorageTarget
) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 3 * MiB, [(MiB, b"data" * 1000)])
    journals = ["--journal-dir", str(tmp_path / "journals")]
    quick = run("upload", image, "--to", storage.sas_url("q.vhd"), "--json", *journals)
    assert quick.returncode == 0 and quick.stderr == "quick\n", quick.stderr
    full = run("upload", image, "--to", storage.sas_url("f.vhd"), "--json", *journals, full=True)
    assert full.returncode == 0 and full.stderr == "typer loaded\n", full.stderr
    answers = [json.loads(quick.stdout), json.loads(full.stdout)]
    for answer in answers:
        del answer["seconds"], answer["throughput_mib_s"]
    assert answers[0].pop("url").endswith("/q.vhd") and answers[1].pop("url").endswith("/f.vhd")
    assert answers[0] == answers[1] and answers[0]["bytes_uploaded"] > 0
    for name in ("q.vhd", "f.vhd"):
        blob = storage.blob_client(name).download_blob().readall()
        assert blob[:-512] == expected_vhd_body(image)

    # The same refusal (another image onto a blob that exists), word for word.
    other = make_sparse_image(tmp_path / "other.raw", 2 * MiB, [(0, b"other" * 100)])
    quick = run("upload", other, "--to", storage.sas_url("q.vhd"), "--json", *journals)
    full = run("upload", other, "--to", storage.sas_url("q.vhd"), "--json", *journals, full=True)
    assert quick.returncode == full.returncode == 2
    assert quick.stdout == full.stdout == ""
    assert quick.stderr.removesuffix("quick\n") == full.stderr.removesuffix("typer loaded\n")
    assert "already exists" in quick.stderr

    missing = run(
        "--debug", "upload", tmp_path / "nope.raw", "--to", storage.sas_url("n"), "--json"
    )
    assert missing.returncode == 2 and "Traceback" in missing.stderr
    assert missing.stderr.endswith("nope.raw: no such file\nquick\n")
