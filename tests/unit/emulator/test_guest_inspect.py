"""The emulator's own judgement of a disk after a guest script, on file trees: a Linux
root needs os-release, sshd and a guest agent enabled by systemd links that lead to unit
files; a Windows volume needs RDP allowed and the agent (or a first-boot installer) in its
SYSTEM hive (hives made with hivexsh from hivex's minimal hive)."""

from __future__ import annotations

from pathlib import Path

import pytest

from azrestore.emulator.guest.inspect import Verdict, inside, judge_linux, judge_windows
from tests.support.guestimages import windows_tree
from tests.support.tools import needs

WANTS = "etc/systemd/system/multi-user.target.wants"


def _linux(root: Path, *, links: dict[str, str], files: tuple[str, ...] = ()) -> Path:
    (root / "usr/lib").mkdir(parents=True)
    (root / "usr/lib/os-release").write_text("ID=ubuntu\nVERSION_ID=22.04\n")
    (root / "etc").mkdir()
    (root / "etc/os-release").symlink_to("../usr/lib/os-release")
    (root / "lib").symlink_to("usr/lib")
    for unit in ("ssh.service", "walinuxagent.service", "cloud-init.service"):
        (root / "usr/lib/systemd/system").mkdir(parents=True, exist_ok=True)
        (root / "usr/lib/systemd/system" / unit).write_text("[Unit]\n")
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x\n")
    (root / WANTS).mkdir(parents=True)
    for name, target in links.items():
        (root / WANTS / name).symlink_to(target)
    return root


def _judge_linux(root: Path) -> Verdict:
    verdict = Verdict()
    judge_linux(root, verdict)
    return verdict


def test_sshd_and_an_agent_enabled_is_ready(tmp_path: Path) -> None:
    root = _linux(
        tmp_path,
        links={
            "ssh.service": "/lib/systemd/system/ssh.service",  # absolute: inside the root
            "walinuxagent.service": "../../../../usr/lib/systemd/system/walinuxagent.service",
        },
    )
    verdict = _judge_linux(root)
    assert verdict.ready and verdict.os == "Linux", verdict
    assert verdict.evidence == [
        "os-release: ubuntu",
        f"sshd: /{WANTS}/ssh.service",
        f"agent: /{WANTS}/walinuxagent.service",
    ]


@pytest.mark.parametrize(
    ("links", "files", "problem"),
    [
        ({"walinuxagent.service": "/lib/systemd/system/walinuxagent.service"}, (), "sshd"),
        ({"ssh.service": "/lib/systemd/system/ssh.service"}, (), "no guest agent"),
        (  # a link to a unit that is not there enables nothing
            {
                "ssh.service": "/lib/systemd/system/ssh.service",
                "waagent.service": "/lib/systemd/system/waagent.service",
            },
            (),
            "no guest agent",
        ),
        (  # the first-boot hook without its installer program
            {
                "ssh.service": "/lib/systemd/system/ssh.service",
                "azrestore-install-agent.service": (
                    "/etc/systemd/system/azrestore-install-agent.service"
                ),
            },
            ("etc/systemd/system/azrestore-install-agent.service",),
            "no guest agent",
        ),
    ],
    ids=["no sshd", "no agent", "dangling link", "hook without program"],
)
def test_what_is_missing_is_not_ready(
    tmp_path: Path, links: dict[str, str], files: tuple[str, ...], problem: str
) -> None:
    verdict = _judge_linux(_linux(tmp_path, links=links, files=files))
    assert not verdict.ready
    assert any(problem in p for p in verdict.problems), verdict.problems


def test_the_first_boot_hook_counts_as_an_agent(tmp_path: Path) -> None:
    root = _linux(
        tmp_path,
        links={
            "ssh.service": "/lib/systemd/system/ssh.service",
            "azrestore-install-agent.service": (
                "/etc/systemd/system/azrestore-install-agent.service"
            ),
        },
        files=(
            "etc/systemd/system/azrestore-install-agent.service",
            "usr/local/sbin/azrestore-install-agent",
        ),
    )
    verdict = _judge_linux(root)
    assert verdict.ready, verdict.problems
    assert verdict.evidence[-1].endswith("(first-boot agent installer)")


def test_links_never_lead_out_of_the_root(tmp_path: Path) -> None:
    (tmp_path / "root/etc").mkdir(parents=True)
    (tmp_path / "root/etc/os-release").symlink_to("/etc/hostname")
    assert inside(tmp_path / "root", "/etc/os-release") == tmp_path / "root/etc/hostname"
    assert inside(tmp_path / "root", "/../../etc/x") == tmp_path / "root/etc/x"


def test_not_linux(tmp_path: Path) -> None:
    verdict = _judge_linux(tmp_path)
    assert verdict.os is None and not verdict.ready and verdict.problems == ["no os-release"]


# --- Windows -------------------------------------------------------------------------------


@needs("hivexsh", "hivexget")
@pytest.mark.parametrize(
    ("deny", "agent", "installer", "ready"),
    [
        (0, True, False, True),
        (0, False, True, True),
        (1, True, True, False),
        (0, False, False, False),
    ],
    ids=["agent", "installer", "rdp denied", "no agent"],
)
def test_windows_needs_rdp_and_an_agent_in_the_current_control_set(
    tmp_path: Path, deny: int, agent: bool, installer: bool, ready: bool
) -> None:
    verdict = Verdict()
    judge_windows(windows_tree(tmp_path, deny=deny, agent=agent, installer=installer), verdict)
    assert verdict.os == "Windows"
    assert verdict.ready is ready, verdict
    assert "SYSTEM: current control set ControlSet002" in verdict.evidence


@needs("hivexsh", "hivexget")
@pytest.mark.parametrize(
    ("startup", "ready"), [("registry", True), ("scripts.ini", True), ("none", False)]
)
def test_a_first_boot_installer_counts_only_when_a_startup_script_runs_it(
    tmp_path: Path, startup: str, ready: bool
) -> None:
    tree = windows_tree(tmp_path, deny=0, agent=False, installer=True, startup=startup)
    verdict = Verdict()
    judge_windows(tree, verdict)
    assert verdict.ready is ready, verdict
    if not ready:
        assert "a first-boot agent installer no startup script runs" in verdict.problems
