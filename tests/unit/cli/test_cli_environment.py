"""The command line reads the environment and hands credentials and settings to the jobs,
which never read it themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from azrestore.azure.arm import ArmSettings
from azrestore.cli.commands import upload as upload_command
from azrestore.cli.commands import upload_disk as upload_disk_command
from azrestore.cli.commands import verify as verify_command
from azrestore.cli.environment import default_journal_dir
from azrestore.jobs.upload import BlobTarget, ManagedDiskTarget
from tests.support.cli import invoke, small_image

URL = "https://account.blob.core.windows.net/c/disk.vhd"
DISK = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
    "/providers/Microsoft.Compute/disks/d1"
)


class Stop(Exception):
    """Ends a job before it sends anything, once its arguments are seen."""


@pytest.mark.parametrize(
    ("environment", "option", "expected"),
    [
        ("AccountName=env;AccountKey=a2V5", None, "AccountName=env;AccountKey=a2V5"),
        (
            "AccountName=env;AccountKey=a2V5",
            "AccountName=opt;AccountKey=a2V5",
            "AccountName=opt;AccountKey=a2V5",
        ),
        (None, None, None),
    ],
)
def test_connection_string_from_the_option_else_the_environment(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    environment: str | None,
    option: str | None,
    expected: str | None,
) -> None:
    if environment is None:
        monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    else:
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", environment)
    given: list[str | None] = []

    async def upload(image: Path, url: str, target: BlobTarget, **kwargs: object) -> None:
        given.append(target.connection_string)
        raise Stop

    async def verify(image: Path, url: str, *, connection_string: str | None, **kw: object) -> None:
        given.append(connection_string)
        raise Stop

    monkeypatch.setattr(upload_command, "upload_to_page_blob", upload)
    monkeypatch.setattr(verify_command, "verify_page_blob", verify)
    extra = [] if option is None else ["--connection-string", option]
    image = small_image(tmp_path)
    assert invoke("upload", image, "--to", URL, *extra).exit_code == 1
    assert invoke("verify", image, "--to", URL, *extra).exit_code == 1
    assert given == [expected, expected]


def test_managed_disk_settings_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZRESTORE_ARM_ENDPOINT", "https://127.0.0.1:9")
    monkeypatch.setenv("AZRESTORE_ARM_TOKEN", "token")
    seen: list[tuple[ManagedDiskTarget, ArmSettings]] = []

    async def upload(
        image: Path, disk: ManagedDiskTarget, *, settings: ArmSettings, **kwargs: object
    ) -> None:
        seen.append((disk, settings))
        raise Stop

    monkeypatch.setattr(upload_disk_command, "upload_to_new_managed_disk", upload)
    image = small_image(tmp_path)
    result = invoke("upload", image, "--to-disk", DISK, "--location", "westeurope")
    assert result.exit_code == 1
    [(disk, settings)] = seen
    assert disk == ManagedDiskTarget(DISK, "westeurope", "auto", "auto", "Standard_LRS")
    assert settings.endpoint == "https://127.0.0.1:9" and settings.token == "token"


def test_the_journals_default_folder(tmp_path: Path) -> None:
    state = {"AZRESTORE_STATE_DIR": str(tmp_path / "state"), "XDG_STATE_HOME": "/x"}
    assert default_journal_dir(state) == tmp_path / "state" / "journals"
    xdg = {"XDG_STATE_HOME": str(tmp_path / "xdg"), "HOME": "/h"}
    assert default_journal_dir(xdg) == tmp_path / "xdg" / "azrestore" / "journals"
    home = {"HOME": str(tmp_path / "home")}
    assert default_journal_dir(home) == tmp_path / "home/.local/state/azrestore/journals"


def test_proxies_come_from_the_option_else_the_environment() -> None:
    from azrestore.azure.proxy import ProxySettings
    from azrestore.cli.environment import proxy_settings

    assert proxy_settings({}, None) is None
    env = {
        "HTTPS_PROXY": "http://u:p@upper:1",
        "https_proxy": "http://u:p@lower:1",
        "HTTP_PROXY": "plain:3128",
        "NO_PROXY": "localhost, .corp",
    }
    assert proxy_settings(env, None) == ProxySettings(
        http="http://plain:3128", https="http://u:p@lower:1", no_proxy=("localhost", ".corp")
    )
    chosen = proxy_settings(env, "http://opt:2")
    assert chosen == ProxySettings("http://opt:2", "http://opt:2", ("localhost", ".corp"))
