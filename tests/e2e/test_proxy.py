"""Through a real HTTP forward proxy with Basic authentication (proxy.py on loopback):
page-blob uploads (plain http through the proxy) and a managed-disk upload, whose Resource
Manager calls (https) go through CONNECT. The result is read back straight from Azurite
with the Azure SDK, not through the proxy; the proxy's password is never printed."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest
import yaml
from azure.storage.blob import BlobServiceClient

from azrestore.emulator import Emulator
from azrestore.formats.sizes import MiB
from tests.support import plans
from tests.support.cli import assert_one_line_error, azrestore_script, small_image
from tests.support.disks import needs_tools
from tests.support.forwardproxy import ForwardProxy
from tests.support.images import make_sparse_image
from tests.support.plans import vm_id
from tests.support.storage import StorageTarget

SUB = "00000000-0000-0000-0000-000000000000"
DISK_ID = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/disks/viaproxy"
ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_FS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
_PROXY_VARS = {"http_proxy", "https_proxy", "no_proxy", "all_proxy"}


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[ForwardProxy]:
    with ForwardProxy(tmp_path / "proxy-work") as started:
        yield started


@pytest.fixture(autouse=True)
def _proxy_workdir(tmp_path: Path) -> None:
    (tmp_path / "proxy-work").mkdir()


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without any proxy variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
    return {**env, **extra}


def azrestore(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*azrestore_script(), *args], capture_output=True, text=True, timeout=300, env=env
    )


def host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def assert_no_password(result: subprocess.CompletedProcess[str], proxy: ForwardProxy) -> None:
    assert proxy.password not in result.stdout + result.stderr


@pytest.mark.parametrize("form", ["--to", "IMAGE=URL"])
def test_upload_through_the_environments_proxy(
    storage: StorageTarget, proxy: ForwardProxy, tmp_path: Path, form: str
) -> None:
    image = small_image(tmp_path)
    env = child_env(HTTPS_PROXY=proxy.url(), HTTP_PROXY=proxy.url())
    url = storage.sas_url("viaproxy.vhd")
    # One disk, or the many-disks form (one shared connection pool).
    args = ["--to", url, str(image)] if form == "--to" else [f"{image}={url}"]
    done = azrestore("upload", *args, env=env)
    assert done.returncode == 0, done.stderr
    assert_no_password(done, proxy)
    # Every request went to the gateway through the proxy (Create Blob, Put Page...).
    forwarded = proxy.wait_for_requests(host_port(storage.account_url))
    assert len(forwarded) > 0
    assert {method for method, _ in forwarded} >= {"PUT"}
    assert proxy.put_pages() > 0
    blob = storage.blob_client("viaproxy.vhd").download_blob().readall()
    assert blob[: image.stat().st_size] == image.read_bytes()
    assert blob[-512:-504] == b"conectix"


def test_no_proxy_names_the_hosts_reached_directly(
    storage: StorageTarget, proxy: ForwardProxy, tmp_path: Path
) -> None:
    image = small_image(tmp_path)
    env = child_env(HTTP_PROXY=proxy.url(), NO_PROXY="example.com,127.0.0.1")
    done = azrestore("upload", str(image), "--to", storage.sas_url("direct.vhd"), env=env)
    assert done.returncode == 0, done.stderr
    assert proxy.requests() == []
    blob = storage.blob_client("direct.vhd").download_blob().readall()
    assert blob[: image.stat().st_size] == image.read_bytes()


def test_a_wrong_proxy_password_is_one_line_and_never_printed(
    storage: StorageTarget, proxy: ForwardProxy, tmp_path: Path
) -> None:
    image = small_image(tmp_path)
    wrong = "Wr0ng-pa55word"
    env = child_env(HTTP_PROXY=proxy.url(wrong))
    done = azrestore(
        "--debug", "upload", str(image), "--to", storage.sas_url("refused.vhd"), env=env
    )
    assert done.returncode != 0
    assert wrong not in done.stdout + done.stderr
    # Without --debug: exactly one line, saying what the proxy answered.
    done = azrestore("upload", str(image), "--to", storage.sas_url("refused.vhd"), env=env)
    line = assert_one_line_error(done, done.returncode)
    assert done.returncode != 0
    assert "407" in line and "proxy" in line.lower(), line
    assert wrong not in line
    assert not storage.blob_client("refused.vhd").exists()


def test_a_bad_proxy_url_is_refused_before_anything_is_created(
    storage: StorageTarget, tmp_path: Path
) -> None:
    image = small_image(tmp_path)
    url = storage.sas_url("never.vhd")
    done = azrestore(
        "--proxy-url",
        "ftp://bob:Hidden-pw@127.0.0.1:1",
        "upload",
        str(image),
        "--to",
        url,
        env=child_env(),
    )
    line = assert_one_line_error(done, 2)
    assert "Hidden-pw" not in line and "bob:REDACTED@" in line, line
    assert not storage.blob_client("never.vhd").exists()


@pytest.mark.anyio
async def test_managed_disk_upload_through_the_proxy_url_option(
    proxy: ForwardProxy, tmp_path: Path
) -> None:
    image = make_sparse_image(
        tmp_path / "data.raw", 30 * MiB + 1000, [(0, os.urandom(9000)), (29 * MiB, b"end")]
    )
    async with Emulator(time_factor=0.002) as local_azure:
        info = local_azure.info()
        env = child_env(**{k: str(v) for k, v in info["env"].items()})
        done = await anyio.to_thread.run_sync(
            lambda: azrestore(
                "--proxy-url",
                proxy.url(),
                "upload",
                str(image),
                "--to-disk",
                DISK_ID,
                "--location",
                "westeurope",
                "--json",
                env=env,
            )
        )
        assert done.returncode == 0, done.stderr
        assert_no_password(done, proxy)
        assert json.loads(done.stdout)["disk_state"] == "Unattached"
        # Resource Manager (https) through CONNECT tunnels, the disk's data (http) forwarded.
        tunnels = proxy.wait_for_requests(host_port(info["arm_endpoint"]))
        assert tunnels and {method for method, _ in tunnels} == {"CONNECT"}
        assert any(
            method == "PUT" for method, _ in proxy.requests(host_port(info["blob_endpoint"]))
        )
        assert proxy.put_pages() > 0
        blob_path = local_azure.arm.state().disk("viaproxy").blob_path
        assert blob_path is not None
        container, name = blob_path.strip("/").split("/")
        with BlobServiceClient.from_connection_string(
            local_azure.azurite.connection_string
        ) as service:
            blob = service.get_blob_client(container, name).download_blob().readall()
        assert blob[: image.stat().st_size] == image.read_bytes()
        assert blob[-512:-504] == b"conectix"
        # A wrong password: Resource Manager's first call is refused, in one line.
        wrong = "Wr0ng-arm-pa55"
        refused = await anyio.to_thread.run_sync(
            lambda: azrestore(
                "--proxy-url",
                proxy.url(wrong),
                "upload",
                str(image),
                "--to-disk",
                DISK_ID.replace("viaproxy", "refused"),
                "--location",
                "westeurope",
                env=env,
            )
        )
        line = assert_one_line_error(refused, 1)
        assert "407" in line and wrong not in line, line
        assert all(d.name != "refused" for d in local_azure.arm.state().disks.values())


@needs_tools
def test_restore_emulator_through_the_environments_proxy(
    proxy: ForwardProxy, images: Path, tmp_path: Path
) -> None:
    """A whole emulated restore: its Resource Manager calls through CONNECT, its disk's
    data forwarded; the proxy's password nowhere in the output."""
    disk = images / "web01-os.raw"
    plan = {
        "target": plans.target(),
        "proxy": {"vm": vm_id("azproxy"), "idle_timeout": 1},
        "helpers": plans.helpers(),
        "vms": [
            {
                "name": "web01",
                "size": "Standard_D2s_v5",
                "disks": [{"path": str(disk), "role": "os"}],
            }
        ],
    }
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(yaml.safe_dump(plan, sort_keys=False))
    env = child_env(HTTPS_PROXY=proxy.url(), HTTP_PROXY=proxy.url())
    done = azrestore(
        "restore",
        str(plan_path),
        "--emulator",
        "--emulator-scripts",
        "record",
        "--json",
        "--time-factor",
        "0.002",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert_no_password(done, proxy)
    assert [vm["status"] for vm in json.loads(done.stdout)["vms"]] == ["succeeded"]
    # Resource Manager through CONNECT, the disk's pages forwarded (the emulator's own setup
    # inside the command may use the proxy too: only Put Page is azrestore's data path).
    assert "CONNECT" in {method for method, _ in proxy.wait_for_requests()}
    assert proxy.put_pages() > 0
