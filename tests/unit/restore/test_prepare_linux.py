"""prepare-linux.sh, run for real with --root on directory trees shaped like the root file
systems of several distributions; and once in device mode on a loop device."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from azrestore.formats.sizes import MiB
from azrestore.restore.scripts import (
    LINUX_SCRIPT,
    MAX_SCRIPT_BYTES,
    linux_prepare_command,
    parse_result,
    script_text,
)
from tests.support.tools import needs, unavailable

# Commands --root mode must never run (they would touch the helper's disks).
FORBIDDEN = [
    *("mount", "umount", "chroot", "blkid", "losetup", "vgchange", "pvs", "vgs", "lvs", "lsblk"),
    *("udevadm", "mountpoint", "update-grub", "grub2-mkconfig", "dracut", "update-initramfs"),
    "systemctl",
]


@dataclass(frozen=True)
class Link:
    target: str


Tree = dict[str, "str | Link"]


def build(root: Path, tree: Tree) -> Path:
    for name, content in tree.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            path.symlink_to(content.target)
        else:
            path.write_text(content)
    return root


def state(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every path under root: its kind, mode and content hash (or link target)."""
    found: dict[str, tuple[Any, ...]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            info = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                found[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[rel] = ("dir", stat.S_IMODE(info.st_mode))
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found[rel] = ("file", stat.S_IMODE(info.st_mode), digest, info.st_ino)
    return found


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def result(self) -> dict[str, Any]:
        assert self.stdout.splitlines()[-1].startswith("AZRESTORE-RESULT "), self.stdout
        parsed = parse_result(self.stdout)
        assert parsed is not None
        return parsed


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The script exactly as Run Command gets it (the command's lines, joined)."""
    path = tmp_path_factory.mktemp("script") / LINUX_SCRIPT
    path.write_text(linux_prepare_command(0).text)
    return path


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of stand-ins for FORBIDDEN commands that log their use and fail."""
    bin_dir = tmp_path_factory.mktemp("stubs")
    for name in FORBIDDEN:
        stub = bin_dir / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> "{bin_dir}/calls.log"\nexit 1\n')
        stub.chmod(0o755)
    return bin_dir


def prepare(script: Path, stubs: Path, root: Path, *args: str) -> Run:
    env = {"PATH": f"{stubs}:{os.environ['PATH']}", "LANG": "C.UTF-8", "TMPDIR": str(stubs)}
    done = subprocess.run(
        ["bash", str(script), "--root", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def prepare_twice(script: Path, stubs: Path, root: Path, *args: str) -> dict[str, Any]:
    """Run, check success and that a second run changes nothing; the first run's result."""
    first = prepare(script, stubs, root, *args)
    assert first.code == 0, first.stdout + first.stderr
    result = first.result
    assert result["ok"] is True and result["error"] == "" and result["mode"] == "root"
    before = state(root)
    second = prepare(script, stubs, root, *args)
    assert second.code == 0, second.stdout + second.stderr
    assert state(root) == before  # same content, modes, links, and inodes: nothing written
    again = second.result
    assert again["changes"] == []
    assert again["pending"] == result["pending"]
    assert not (stubs / "calls.log").exists(), (stubs / "calls.log").read_text()
    assert not list(stubs.glob("azrestore.*")), "temporary files left behind"
    return result


def read(root: Path, name: str) -> str:
    return (root / name).read_text()


HEADER_NOTE = "# azrestore: swap on the OS disk disabled (Azure gives swap on the resource disk)"
KERNEL_ARGS = "console=ttyS0,115200n8 earlyprintk=ttyS0 rootdelay=300"

UFW_RULES = """\
*filter
:ufw-user-input - [0:0]
:ufw-user-output - [0:0]
### RULES ###

### tuple ### allow tcp 443 0.0.0.0/0 any 0.0.0.0/0 in
-A ufw-user-input -p tcp --dport 443 -j ACCEPT

### END RULES ###
COMMIT
"""

UBUNTU: Tree = {
    "lib": Link("usr/lib"),  # merged /usr
    "bin": Link("usr/bin"),
    "usr/lib/os-release": 'NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="22.04"\n',
    "etc/os-release": Link("../usr/lib/os-release"),
    "usr/lib/systemd/system/ssh.service": "[Unit]\nDescription=OpenBSD Secure Shell server\n",
    "usr/lib/systemd/system/ssh.socket": "[Socket]\nListenStream=22\n",
    "etc/systemd/system/sshd.service": Link("/lib/systemd/system/ssh.service"),  # the alias
    "usr/sbin/sshd": "",
    "etc/ssh/sshd_config": (
        "Include /etc/ssh/sshd_config.d/*.conf\n#Port 22\nKbdInteractiveAuthentication no\n"
    ),
    "etc/ssh/sshd_config.d/50-local.conf": "PasswordAuthentication no\n",
    "etc/netplan/00-installer-config.yaml": (
        "network:\n  ethernets:\n    ens160:\n      addresses:\n      - 192.168.10.5/24\n"
        "      routes:\n      - to: default\n        via: 192.168.10.1\n      nameservers:\n"
        "        addresses: [192.168.10.1]\n  version: 2\n"
    ),
    "etc/netplan/01-dns.yaml": (
        "network:\n  version: 2\n  ethernets:\n    ens161:\n      dhcp4: true\n"
        "      nameservers:\n        addresses: [1.1.1.1]\n        search: [corp]\n"
    ),
    "etc/ufw/ufw.conf": "# /etc/ufw/ufw.conf\nENABLED=yes\nLOGLEVEL=low\n",
    "etc/ufw/user.rules": UFW_RULES,
    "etc/ufw/user6.rules": UFW_RULES.replace("ufw-user", "ufw6-user").replace("0.0.0.0/0", "::/0"),
    "etc/initramfs-tools/modules": (
        "# List of modules that you want to include in your initramfs.\n#\n# raid1\n"
    ),
    "etc/default/grub": (
        'GRUB_DEFAULT=0\nGRUB_TIMEOUT=0\nGRUB_CMDLINE_LINUX_DEFAULT="quiet splash"\n'
        'GRUB_CMDLINE_LINUX=""\n'
    ),
    "etc/fstab": (
        "# /etc/fstab: static file system information.\n"
        "/dev/disk/by-uuid/6c2e4f1e-0000-4c1b-9f6e-8d8f0c1e2a3b / ext4 defaults 0 1\n"
        "/dev/disk/by-uuid/1A2B-3C4D /boot/efi vfat umask=0077 0 1\n"
        "/swap.img\tnone\tswap\tsw\t0\t0\n"
    ),
    "usr/bin/cloud-init": "",
    "etc/cloud/cloud.cfg": "datasource_list: [ Azure, None ]\n",
}


def test_ubuntu_netplan_ufw_initramfs_tools(tmp_path: Path, script: Path, stubs: Path) -> None:
    root = build(tmp_path / "root", UBUNTU)
    netplan_mode = 0o600
    result = prepare_twice(script, stubs, root)
    assert result["distro"] == "ubuntu 22.04"
    # sshd: the unit (found through the merged-/usr link) enabled, the alias left alone.
    assert os.readlink(root / "etc/systemd/system/multi-user.target.wants/ssh.service") == (
        "/usr/lib/systemd/system/ssh.service"
    )
    assert (
        os.readlink(root / "etc/systemd/system/sshd.service") == "/lib/systemd/system/ssh.service"
    )
    assert "sshd: PasswordAuthentication no, left as is (log in with a key)" in result["notes"]
    assert read(root, "etc/ssh/sshd_config.d/50-local.conf") == "PasswordAuthentication no\n"
    # ufw: port 22 allowed in the user rules, IPv4 and IPv6, in ufw's own format.
    assert read(root, "etc/ufw/user.rules") == UFW_RULES.replace(
        "### RULES ###\n",
        "### RULES ###\n\n### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n"
        "-A ufw-user-input -p tcp --dport 22 -j ACCEPT\n",
    )
    assert (
        "### tuple ### allow tcp 22 ::/0 any ::/0 in\n"
        "-A ufw6-user-input -p tcp --dport 22 -j ACCEPT" in read(root, "etc/ufw/user6.rules")
    )
    # netplan: the static file set aside, the DHCP one kept, eth0 by DHCP.
    assert not (root / "etc/netplan/00-installer-config.yaml").exists()
    assert (root / "etc/netplan/00-installer-config.yaml.azrestore-disabled").read_text() == UBUNTU[
        "etc/netplan/00-installer-config.yaml"
    ]
    assert read(root, "etc/netplan/01-dns.yaml") == UBUNTU["etc/netplan/01-dns.yaml"]
    ours = root / "etc/netplan/90-azrestore-eth0.yaml"
    assert (
        ours.read_text() == "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n"
    )
    assert stat.S_IMODE(ours.stat().st_mode) == netplan_mode
    # initramfs-tools: the Hyper-V modules listed.
    assert read(root, "etc/initramfs-tools/modules").endswith(
        "# raid1\nhv_vmbus\nhv_storvsc\nhv_netvsc\n"
    )
    # grub: the serial console and rootdelay, on GRUB_CMDLINE_LINUX only.
    grub = read(root, "etc/default/grub")
    assert f'GRUB_CMDLINE_LINUX="{KERNEL_ARGS}"\n' in grub
    assert 'GRUB_CMDLINE_LINUX_DEFAULT="quiet splash"' in grub
    # fstab: by-uuid links are stable; the swap file is disabled.
    assert read(root, "etc/fstab") == UBUNTU["etc/fstab"].replace(  # type: ignore[union-attr]
        "/swap.img\t", f"{HEADER_NOTE}\n#/swap.img\t"
    )
    # The agent: cloud-init is there, waagent is not: installed at first boot.
    assert result["agent"] == {"waagent": False, "cloud_init": True, "install_hook": True}
    assert_agent_hook(root)
    # No chroot in --root mode: the boot files are left to do, and said so.
    assert result["pending"] == [
        "rebuild the initramfs (update-initramfs -u -k all)",
        f"regenerate the GRUB config (update-grub or grub2-mkconfig) for: {KERNEL_ARGS}",
    ]
    assert (root / "var/lib/azrestore/pending-initramfs").exists()
    assert result["changes"] == [
        "sshd: enabled ssh.service",
        "ufw: allowed port(s) 22 (IPv4)",
        "ufw: allowed port(s) 22 (IPv6)",
        "agent: installer /usr/local/sbin/azrestore-install-agent",
        "agent: unit azrestore-install-agent.service",
        "agent: enabled azrestore-install-agent.service",
        f"grub: added {KERNEL_ARGS} to GRUB_CMDLINE_LINUX",
        "initramfs-tools: added hv_vmbus hv_storvsc hv_netvsc",
        "fstab: disabled swap /swap.img",
        "netplan: disabled 00-installer-config.yaml (static; Azure uses DHCP: give the NIC a"
        " static IP)",
        "netplan: eth0 by DHCP (90-azrestore-eth0.yaml)",
    ]


def assert_agent_hook(root: Path) -> None:
    installer = root / "usr/local/sbin/azrestore-install-agent"
    assert stat.S_IMODE(installer.stat().st_mode) == 0o755
    text = installer.read_text()
    assert text.startswith("#!/bin/sh\n")
    for needle in ("apt-get install -y walinuxagent", "dnf install -y WALinuxAgent", "zypper"):
        assert needle in text
    unit = read(root, "etc/systemd/system/azrestore-install-agent.service")
    assert (
        "Type=oneshot" in unit and "ConditionPathExists=!/var/lib/azrestore/agent-installed" in unit
    )
    assert (
        "ExecStart=/usr/local/sbin/azrestore-install-agent" in unit
        and "WantedBy=multi-user.target" in unit
    )
    assert (
        os.readlink(
            root / "etc/systemd/system/multi-user.target.wants/azrestore-install-agent.service"
        )
        == "/etc/systemd/system/azrestore-install-agent.service"
    )
    done = subprocess.run(["sh", "-n", str(installer)], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr


PUBLIC_ZONE = """\
<?xml version="1.0" encoding="utf-8"?>
<zone>
  <short>Public</short>
  <service name="cockpit"/>
  <service name="dhcpv6-client"/>
</zone>
"""

RHEL: Tree = {
    "lib": Link("usr/lib"),
    "etc/os-release": 'NAME="Red Hat Enterprise Linux"\nID="rhel"\nVERSION_ID="8.9"\n',
    "usr/lib/systemd/system/sshd.service": "[Unit]\nDescription=OpenSSH server daemon\n",
    "usr/sbin/sshd": "",
    "etc/ssh/sshd_config": "Port 22\nPort 2222\nPermitRootLogin yes\n",
    "etc/firewalld/firewalld.conf": "# firewalld config file\nDefaultZone=public\n",
    "etc/firewalld/zones/public.xml": PUBLIC_ZONE,
    "usr/lib/firewalld/zones/public.xml": PUBLIC_ZONE.replace("cockpit", "ssh"),
    "etc/dracut.conf": "# PUT YOUR CONFIG IN separate files\n",
    "etc/dracut.conf.d/.keep": "",
    "etc/sysconfig/network-scripts/ifcfg-ens192": (
        "TYPE=Ethernet\nBOOTPROTO=none\nNAME=ens192\nDEVICE=ens192\nONBOOT=yes\n"
        "IPADDR=10.1.2.3\nPREFIX=24\nGATEWAY=10.1.2.1\nHWADDR=00:50:56:aa:bb:cc\n"
    ),
    "etc/sysconfig/network-scripts/ifcfg-lo": "DEVICE=lo\nIPADDR=127.0.0.1\n",
    "etc/default/grub": (
        'GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX="crashkernel=auto resume=/dev/mapper/rhel-swap'
        ' rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap rhgb quiet"\nGRUB_ENABLE_BLSCFG=true\n'
    ),
    "etc/fstab": (
        "/dev/mapper/rhel-root   /                       xfs     defaults        0 0\n"
        "UUID=3f1c5d2e-1111-4a4a-9c9c-0123456789ab /boot xfs     defaults        0 0\n"
        "/dev/mapper/rhel-swap   none                    swap    defaults        0 0\n"
    ),
}


def test_rhel_firewalld_dracut_ifcfg(tmp_path: Path, script: Path, stubs: Path) -> None:
    root = build(tmp_path / "root", RHEL)
    result = prepare_twice(script, stubs, root)
    assert result["distro"] == "rhel 8.9"
    assert os.readlink(root / "etc/systemd/system/multi-user.target.wants/sshd.service") == (
        "/usr/lib/systemd/system/sshd.service"
    )
    # firewalld: the zone in /etc lacks ssh, and sshd also listens on 2222.
    assert read(root, "etc/firewalld/zones/public.xml") == PUBLIC_ZONE.replace(
        "</zone>", '  <service name="ssh"/>\n  <port protocol="tcp" port="2222"/>\n</zone>'
    )
    assert "sshd listens on port(s) 22 2222: allow them in the NSG too" in result["notes"]
    assert (
        read(root, "usr/lib/firewalld/zones/public.xml")
        == RHEL["usr/lib/firewalld/zones/public.xml"]
    )
    # dracut: the Hyper-V drivers in their own file.
    assert read(root, "etc/dracut.conf.d/90-azrestore-hyperv.conf") == (
        'add_drivers+=" hv_vmbus hv_storvsc hv_netvsc "\n'
    )
    assert "rebuild the initramfs (dracut -f --regenerate-all)" in result["pending"]
    # ifcfg: eth0 by DHCP; the old static interface is left (it has no device in Azure).
    assert read(root, "etc/sysconfig/network-scripts/ifcfg-eth0") == (
        "DEVICE=eth0\nONBOOT=yes\nBOOTPROTO=dhcp\nTYPE=Ethernet\nUSERCTL=no\nPEERDNS=yes\nIPV6INIT=no\n"
    )
    assert (
        read(root, "etc/sysconfig/network-scripts/ifcfg-ens192")
        == RHEL["etc/sysconfig/network-scripts/ifcfg-ens192"]
    )
    # grub: appended to the existing arguments.
    assert (
        'GRUB_CMDLINE_LINUX="crashkernel=auto resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root'
        f' rd.lvm.lv=rhel/swap rhgb quiet {KERNEL_ARGS}"\n'
    ) in read(root, "etc/default/grub")
    # fstab: LVM names are stable; swap on the OS disk (by assumption with --root) disabled.
    fstab = read(root, "etc/fstab")
    assert "\n#/dev/mapper/rhel-swap   none" in fstab and fstab.startswith("/dev/mapper/rhel-root")
    # No agent at all: a warning, and the first-boot installer.
    assert result["agent"] == {"waagent": False, "cloud_init": False, "install_hook": True}
    assert (
        "agent: no waagent or cloud-init: WALinuxAgent installed at first boot"
        in result["warnings"]
    )
    assert_agent_hook(root)


IPTABLES_V4 = """\
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT
-A INPUT -j REJECT --reject-with icmp-host-prohibited
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -p tcp --dport 8080 -j REDIRECT --to-ports 80
COMMIT
"""

DEBIAN: Tree = {
    "etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nID=debian\nVERSION_ID="11"\n',
    "lib/systemd/system/ssh.service": "[Unit]\nDescription=OpenBSD Secure Shell server\n",
    "etc/systemd/system/ssh.service": Link("/dev/null"),  # masked
    "usr/sbin/sshd": "",
    "etc/iptables/rules.v4": IPTABLES_V4,
    "etc/iptables/rules.v6": "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\nCOMMIT\n",
    "etc/udev/rules.d/70-persistent-net.rules": (
        'SUBSYSTEM=="net", ATTR{address}=="00:0c:29:aa:bb:cc", NAME="eth0"\n'
    ),
    "lib/udev/rules.d/75-persistent-net-generator.rules": "# generator\n",
    "etc/network/interfaces": (
        "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\n"
        "allow-hotplug ens3\niface ens3 inet static\n  address 10.0.0.9/24\n  gateway 10.0.0.1\n"
    ),
    "etc/initramfs-tools/modules": "hv_vmbus\n",
    "etc/default/grub": (
        'GRUB_CMDLINE_LINUX_DEFAULT="quiet"\n'
        'GRUB_CMDLINE_LINUX="console=ttyS0,9600 net.ifnames=0"\n'
    ),
    "etc/fstab": (
        "# <file system> <mount point>   <type>  <options>       <dump>  <pass>\n"
        "/dev/sda1       /               ext4    errors=remount-ro 0       1\n"
        "/dev/sda5       none            swap    sw              0       0\n"
        "/dev/disk/by-path/pci-0000:00:10.0-scsi-0:0:0:0-part6 /var ext4 defaults 0 2\n"
        "/dev/sda7       /home           ext4    defaults        0       2\n"
        "/dev/sdb1       /data           xfs     defaults,noatime 0      2\n"
        "/dev/sdc1       /mnt/backup     ext4\n"
        "/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto 0       0\n"
    ),
    "usr/sbin/waagent": "",  # installed, its unit not enabled
    "lib/systemd/system/walinuxagent.service": "[Unit]\nDescription=Azure Linux Agent\n",
}
FSTAB_MAP = (
    "/dev/sda1 0a1b2c3d-0000-4000-8000-00000000000a\n"
    "/dev/disk/by-path/pci-0000:00:10.0-scsi-0:0:0:0-part6"
    " UUID=0a1b2c3d-0000-4000-8000-00000000000b\n"
)


def test_debian_iptables_persistent_net_rules_and_fstab(
    tmp_path: Path, script: Path, stubs: Path
) -> None:
    root = build(tmp_path / "root", DEBIAN)
    mapping = tmp_path / "fstab-map"
    mapping.write_text(FSTAB_MAP)
    result = prepare_twice(script, stubs, root, "--fstab-map", str(mapping))
    # sshd: unmasked and enabled.
    assert os.readlink(root / "etc/systemd/system/multi-user.target.wants/ssh.service") == (
        "/lib/systemd/system/ssh.service"
    )
    assert not (root / "etc/systemd/system/ssh.service").is_symlink()
    # iptables: port 22 accepted first in INPUT (before the REJECT); nat untouched; the
    # IPv6 rules accept everything already.
    rules = read(root, "etc/iptables/rules.v4")
    assert rules == IPTABLES_V4.replace(
        "-A INPUT -i lo -j ACCEPT\n",
        "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n-A INPUT -i lo -j ACCEPT\n",
    )
    assert read(root, "etc/iptables/rules.v6") == DEBIAN["etc/iptables/rules.v6"]
    # udev: the old NIC's name rule removed, the generator masked.
    assert not (root / "etc/udev/rules.d/70-persistent-net.rules").exists()
    assert os.readlink(root / "etc/udev/rules.d/75-persistent-net-generator.rules") == "/dev/null"
    # ifupdown: eth0 by DHCP through interfaces.d.
    assert read(root, "etc/network/interfaces.d/50-azrestore-eth0") == (
        "# azrestore: Azure assigns addresses by DHCP\nallow-hotplug eth0\niface eth0 inet dhcp\n"
    )
    assert read(root, "etc/network/interfaces") == DEBIAN["etc/network/interfaces"]
    # initramfs-tools: only the missing modules added.
    assert read(root, "etc/initramfs-tools/modules") == "hv_vmbus\nhv_storvsc\nhv_netvsc\n"
    # grub: console=ttyS0 at another speed counts; the rest added.
    assert (
        'GRUB_CMDLINE_LINUX="console=ttyS0,9600 net.ifnames=0 earlyprintk=ttyS0 rootdelay=300"'
        in read(root, "etc/default/grub")
    )
    # fstab: by UUID where known, swap on the OS disk off, nofail where the device may be
    # missing, the CD-ROM as it was.
    assert read(root, "etc/fstab") == (
        "# <file system> <mount point>   <type>  <options>       <dump>  <pass>\n"
        "# azrestore: was /dev/sda1\n"
        "UUID=0a1b2c3d-0000-4000-8000-00000000000a"
        "       /               ext4    errors=remount-ro 0       1\n"
        f"{HEADER_NOTE}\n"
        "#/dev/sda5       none            swap    sw              0       0\n"
        "# azrestore: was /dev/disk/by-path/pci-0000:00:10.0-scsi-0:0:0:0-part6\n"
        "UUID=0a1b2c3d-0000-4000-8000-00000000000b /var ext4 defaults 0 2\n"
        "/dev/sda7       /home           ext4    defaults,nofail        0       2\n"
        "/dev/sdb1       /data           xfs     defaults,noatime,nofail 0      2\n"
        "/dev/sdc1       /mnt/backup     ext4 defaults,nofail\n"
        "/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto 0       0\n"
    )
    # waagent: present, its unit enabled; no installer.
    assert result["agent"] == {"waagent": True, "cloud_init": False, "install_hook": False}
    assert os.readlink(
        root / "etc/systemd/system/multi-user.target.wants/walinuxagent.service"
    ) == ("/lib/systemd/system/walinuxagent.service")
    assert not (root / "usr/local/sbin/azrestore-install-agent").exists()
    assert (
        "fstab: /var by UUID (was /dev/disk/by-path/pci-0000:00:10.0-scsi-0:0:0:0-part6)"
        in result["changes"]
    )


CENTOS7: Tree = {
    "etc/os-release": 'NAME="CentOS Linux"\nID="centos"\nVERSION_ID="7"\n',
    "usr/lib/systemd/system/sshd.service": "[Unit]\n",
    "etc/systemd/system/multi-user.target.wants/sshd.service": Link(
        "/usr/lib/systemd/system/sshd.service"
    ),
    "usr/sbin/sshd": "",
    "etc/sysconfig/iptables": (
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -i lo -j ACCEPT\n"
        "-A INPUT -j REJECT --reject-with icmp-host-prohibited\nCOMMIT\n"
    ),
    "usr/sbin/waagent": "",
    "usr/lib/systemd/system/waagent.service": "[Unit]\n",
    "etc/systemd/system/multi-user.target.wants/waagent.service": Link(
        "/usr/lib/systemd/system/waagent.service"
    ),
    "etc/dracut.conf.d/azure.conf": 'add_drivers+=" hv_vmbus hv_netvsc hv_storvsc "\n',
    "etc/default/grub": (
        'GRUB_CMDLINE_LINUX="rootdelay=300 console=ttyS0 earlyprintk=ttyS0 net.ifnames=0"\n'
    ),
    "etc/sysconfig/network-scripts/ifcfg-eth0": 'DEVICE="eth0"\nBOOTPROTO="dhcp"\nONBOOT="yes"\n',
    "etc/fstab": "UUID=abcd / xfs defaults 0 0\n",
}


def test_centos_with_waagent_needs_only_the_firewall(
    tmp_path: Path, script: Path, stubs: Path
) -> None:
    """What is already right stays as is: only the iptables rules change."""
    root = build(tmp_path / "root", CENTOS7)
    result = prepare_twice(script, stubs, root)
    assert result["changes"] == ["iptables: accepted port(s) 22 in /etc/sysconfig/iptables"]
    assert result["pending"] == [] and result["warnings"] == []
    assert "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n-A INPUT -m state" in read(
        root, "etc/sysconfig/iptables"
    )
    assert result["agent"] == {"waagent": True, "cloud_init": False, "install_hook": False}


AZURE_READY: Tree = {
    **{k: v for k, v in UBUNTU.items() if not k.startswith(("etc/netplan", "etc/ufw"))},
    "etc/ssh/sshd_config.d/50-local.conf": "",
    "etc/systemd/system/sockets.target.wants/ssh.socket": Link("/lib/systemd/system/ssh.socket"),
    "etc/netplan/50-cloud-init.yaml": (
        "network:\n  ethernets:\n    eth0:\n      dhcp4: true\n      match:\n"
        "        driver: hv_netvsc\n      set-name: eth0\n  version: 2\n"
    ),
    "etc/default/grub": f'GRUB_CMDLINE_LINUX="{KERNEL_ARGS}"\n',
    "etc/initramfs-tools/modules": "hv_vmbus\nhv_storvsc\nhv_netvsc\n",
    "etc/fstab": "UUID=6c2e / ext4 defaults 0 1\n",
    "usr/sbin/waagent": "",
    "usr/lib/systemd/system/walinuxagent.service": "[Unit]\n",
    "etc/systemd/system/multi-user.target.wants/walinuxagent.service": Link(
        "/lib/systemd/system/walinuxagent.service"
    ),
    "etc/ufw/ufw.conf": "ENABLED=no\n",
}


def test_an_azure_ready_ubuntu_is_left_alone(tmp_path: Path, script: Path, stubs: Path) -> None:
    root = build(tmp_path / "root", AZURE_READY)
    before = state(root)
    run = prepare(script, stubs, root)
    assert run.code == 0, run.stdout + run.stderr
    assert state(root) == before
    result = run.result
    assert result["changes"] == [] and result["pending"] == [] and result["warnings"] == []
    assert result["agent"] == {"waagent": True, "cloud_init": True, "install_hook": False}
    assert "sshd: started on demand by ssh.socket" in result["notes"]
    assert "ufw: installed, disabled" in result["notes"]


def test_suse_without_grub_defaults(tmp_path: Path, script: Path, stubs: Path) -> None:
    root = build(
        tmp_path / "root",
        {
            "etc/os-release": 'ID="sles"\nVERSION_ID="15.5"\n',
            "usr/lib/systemd/system/sshd.service": "",
            "etc/sysconfig/network/config": 'NETCONFIG_DNS_POLICY="auto"\n',
            "etc/sysconfig/network/ifcfg-lo": "IPADDR=127.0.0.1/8\n",
            "etc/fstab": "UUID=1 / btrfs defaults 0 0\n",
            "usr/bin/cloud-init": "",
        },
    )
    result = prepare_twice(script, stubs, root)
    assert result["distro"] == "sles 15.5"
    assert read(root, "etc/sysconfig/network/ifcfg-eth0") == "BOOTPROTO='dhcp'\nSTARTMODE='auto'\n"
    assert any(n.startswith("no /etc/default/grub: add console=ttyS0") for n in result["notes"])
    assert result["pending"] == []


def test_links_never_lead_out_of_the_root(tmp_path: Path, script: Path, stubs: Path) -> None:
    """Absolute links in the restored tree are followed inside it, never on the helper."""
    outside = tmp_path / "helper-etc"
    outside.mkdir()
    root = build(
        tmp_path / "root",
        {
            "etc/os-release": "ID=debian\n",
            "etc/default/grub": Link(f"{outside}/grub"),  # points at the "helper" ...
            f"{str(outside).lstrip('/')}/grub": 'GRUB_CMDLINE_LINUX=""\n',  # ... found in root
            "etc/fstab": Link("/etc/fstab.real"),
            "etc/fstab.real": "/dev/sdb1 /data ext4 defaults 0 2\n",
            "etc/netplan": Link("/var/netplan"),
            "var/netplan/01.yaml": (
                "network:\n  ethernets:\n    eth0:\n      addresses: [10.0.0.4/24]\n"
            ),
        },
    )
    result = prepare_twice(script, stubs, root)
    assert list(outside.iterdir()) == []
    assert KERNEL_ARGS in (root / str(outside).lstrip("/") / "grub").read_text()
    assert read(root, "etc/fstab.real") == "/dev/sdb1 /data ext4 defaults,nofail 0 2\n"
    assert (root / "etc/fstab").is_symlink()
    assert (root / "var/netplan/01.yaml.azrestore-disabled").exists()
    assert (root / "var/netplan/90-azrestore-eth0.yaml").exists()
    assert result["ok"] is True


def test_a_directory_where_a_file_goes_is_a_warning(
    tmp_path: Path, script: Path, stubs: Path
) -> None:
    root = build(
        tmp_path / "root",
        {"etc/os-release": "ID=x\n", "etc/fstab": "", "etc/initramfs-tools/modules/x": ""},
    )
    run = prepare(script, stubs, root)
    assert run.code == 0
    assert (
        "/etc/initramfs-tools/modules is not a regular file; left alone" in run.result["warnings"]
    )


def test_the_result_line_fits_run_command_output(tmp_path: Path, script: Path, stubs: Path) -> None:
    """Run Command keeps the last 4096 bytes: the result line stays under 3800."""
    entries = "".join(f"/dev/sdb{i} /data{i} ext4 defaults 0 2\n" for i in range(1, 120))
    root = build(tmp_path / "root", {"etc/os-release": "ID=x\n", "etc/fstab": entries})
    run = prepare(script, stubs, root)
    assert run.code == 0
    line = run.stdout.splitlines()[-1]
    assert len(line.encode()) < 3900
    result = run.result
    assert result["truncated"] is True and result["ok"] is True
    assert 5 <= len(result["changes"]) < 119


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--root", "/"], 1, "--root /: refusing to change the helper itself"),
        (["--root", "/nonexistent/dir"], 1, "--root /nonexistent/dir: not a directory"),
        (["--lun", "64"], 1, "--lun 64: not a LUN (0-63)"),
        ([], 2, None),
        (["--bogus"], 2, None),
    ],
)
def test_refusals(
    tmp_path: Path, script: Path, args: list[str], code: int, message: str | None
) -> None:
    done = subprocess.run(["bash", str(script), *args], capture_output=True, text=True, check=False)
    assert done.returncode == code, done.stdout + done.stderr
    if message is None:
        assert "AZRESTORE-RESULT" not in done.stdout
        assert "--root DIR" in done.stderr  # the usage
    else:
        result = parse_result(done.stdout)
        assert result is not None and result["ok"] is False and result["error"] == message


def test_a_tree_that_is_not_linux(tmp_path: Path, script: Path, stubs: Path) -> None:
    (tmp_path / "empty").mkdir()
    run = prepare(script, stubs, tmp_path / "empty")
    assert run.code == 1
    assert run.result["ok"] is False and "does not look like a Linux root" in run.result["error"]


def test_an_unexpected_failure_still_reports(tmp_path: Path, script: Path) -> None:
    """A command failing mid-way ends the run with a result that names it."""
    root = build(tmp_path / "root", {"etc/os-release": "ID=x\n", "etc/fstab": ""})
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "awk").write_text("#!/bin/sh\nexit 3\n")
    (broken / "awk").chmod(0o755)
    done = subprocess.run(
        ["bash", str(script), "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": f"{broken}:{os.environ['PATH']}"},
    )
    assert done.returncode == 1
    result = parse_result(done.stdout)
    assert result is not None and result["ok"] is False
    assert result["error"].startswith("failed at line ") and "(status 3)" in result["error"]
    assert done.stdout.count("AZRESTORE-RESULT") == 1


# --- the command, the package data ---------------------------------------------------------


def test_run_command_input() -> None:
    command = linux_prepare_command(5)
    assert command.command_id == "RunShellScript"
    assert command.text == script_text(LINUX_SCRIPT)
    assert dict(command.parameters) == {"AZRESTORE_LUN": "5"}
    body = command.to_dict()
    assert body["commandId"] == "RunShellScript" and body["parameters"] == [
        {"name": "AZRESTORE_LUN", "value": "5"}
    ]
    assert body["script"][0] == "#!/bin/bash"
    assert len(command.text.encode()) <= MAX_SCRIPT_BYTES
    for bad in (-1, 64, True):
        with pytest.raises(ValueError, match="LUN must be 0-63"):
            linux_prepare_command(bad)


def test_lun_from_the_environment_or_a_bare_argument(tmp_path: Path, script: Path) -> None:
    """How Run Command hands over a parameter (environment or argument) does not matter:
    both reach device mode, which fails cleanly here (no such disk)."""
    for args, env in (([], {"AZRESTORE_LUN": "7"}), (["7"], {})):
        done = subprocess.run(
            ["bash", str(script), *args],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": os.environ["PATH"], **env},
        )
        result = parse_result(done.stdout)
        assert result is not None and result["mode"] == "device" and result["ok"] is False, (
            done.stdout
        )
        assert "LUN 7" in result["error"] or "run as root" in result["error"]


def test_parse_result() -> None:
    assert parse_result('x\nAZRESTORE-RESULT {"ok": true}\n') == {"ok": True}
    assert parse_result('AZRESTORE-RESULT {"ok": false}\nAZRESTORE-RESULT {"ok": true}') == {
        "ok": True
    }
    assert parse_result("AZRESTORE-RESULT {cut") is None
    assert parse_result("no result") is None
    assert parse_result("AZRESTORE-RESULT [1]") is None


@needs("shellcheck")
def test_shellcheck() -> None:
    path = Path(__file__).parents[3] / "azrestore/restore/scripts" / LINUX_SCRIPT
    done = subprocess.run(
        ["shellcheck", "-s", "bash", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout


# --- device mode, on a loop device ---------------------------------------------------------

DISK_TOOLS = ("losetup", "sfdisk", "mkfs.ext4", "mkfs.vfat", "mkswap", "blkid", "lsblk", "mount")


def require_disk_tools() -> None:
    """Skip unless root, with the tools that build disk images and attach them."""
    if os.geteuid() != 0 or any(shutil.which(tool) is None for tool in DISK_TOOLS):
        unavailable("needs root and " + ", ".join(DISK_TOOLS))


@contextlib.contextmanager
def attached(image: Path, *options: str) -> Iterator[str]:
    """``image`` on a loop device (skip where there are none), detached afterwards."""
    attaching = subprocess.run(
        ["losetup", "--find", "--show", *options, str(image)],
        capture_output=True,
        text=True,
        check=False,
    )
    if attaching.returncode != 0:
        unavailable(f"no loop devices here: {attaching.stderr.strip()}")
    device = attaching.stdout.strip()
    try:
        yield device
    finally:
        subprocess.run(["losetup", "--detach", device], check=False)


def run_device_mode(script: Path, device: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    """The script run on ``device``, and its result: it must succeed in device mode."""
    done = subprocess.run(
        ["bash", str(script), "--device", device],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = parse_result(done.stdout)
    assert result is not None and result["ok"] is True and result["mode"] == "device"
    return done, result


def assert_nothing_left_mounted(device: str) -> None:
    """Nothing of ``device`` mounted, and no mount point left behind."""
    assert device not in Path("/proc/mounts").read_text()
    assert not list(Path("/run").glob("azrestore-root.*")) and not list(
        Path("/tmp").glob("azrestore-root.*")
    )


@pytest.fixture
def loop_disk(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A GPT disk image (ESP, ext4 root made from a tree, swap) on a loop device."""
    require_disk_tools()
    tree = build(tmp_path / "tree", {k: v for k, v in DEBIAN.items() if k != "etc/fstab"})
    (tree / "etc/fstab").write_text(
        "/dev/sda2 / ext4 errors=remount-ro 0 1\n"
        "/dev/sda1 /boot/efi vfat umask=0077 0 1\n"
        "/dev/sda3 none swap sw 0 0\n"
        "/dev/sdb1 /data ext4 defaults 0 2\n"
    )
    (tree / "boot/efi").mkdir(parents=True)
    image = tmp_path / "disk.img"
    with image.open("wb") as file:
        file.truncate(128 * MiB)
    subprocess.run(
        ["sfdisk", "-q", str(image)],
        input="label: gpt\nstart=2048, size=32M, type=U\nsize=64M, type=L\ntype=S\n",
        text=True,
        check=True,
    )
    parts = {}
    for number, (start, size) in enumerate([(1, 32), (33, 64), (97, 31)], 1):
        fs = tmp_path / f"p{number}.img"
        with fs.open("wb") as file:
            file.truncate(size * MiB)
        command = {1: ["mkfs.vfat"], 2: ["mkfs.ext4", "-q", "-d", str(tree)], 3: ["mkswap"]}[number]
        subprocess.run([*command, str(fs)], capture_output=True, check=True)
        with image.open("r+b") as file:
            file.seek(start * MiB)
            file.write(fs.read_bytes())
        parts[number] = fs
    with attached(image, "--partscan") as device:
        made: list[Path] = []
        try:
            if shutil.which("udevadm"):
                subprocess.run(["udevadm", "settle"], capture_output=True, check=False)
            made = partition_nodes(device)
            yield device, tmp_path
        finally:
            for node in made:
                node.unlink(missing_ok=True)


def partition_nodes(device: str) -> list[Path]:
    """Make sure ``DEVICEpN`` exist for the loop device's three partitions: udev makes them
    where it runs; elsewhere (containers) they are made here from the kernel's numbers in
    /sys. Returns the nodes this made, for the caller to remove."""
    name = Path(device).name
    if not Path(f"/sys/block/{name}/{name}p1").exists():
        # Some kernels (seen in containers) do not scan at attach time: ask partx.
        subprocess.run(["partx", "--add", device], capture_output=True, check=False)
    made = []
    for number in (1, 2, 3):
        node = Path(f"{device}p{number}")
        numbers = Path(f"/sys/block/{name}/{name}p{number}/dev")
        for _ in range(20):  # the kernel adds the partitions shortly after the scan
            if node.exists() or numbers.exists():
                break
            time.sleep(0.1)
        if node.exists():
            continue
        if not numbers.exists():
            unavailable(f"the kernel shows no partition {number} of {device}")
        major, minor = (int(n) for n in numbers.read_text().split(":"))
        os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(major, minor))
        made.append(node)
    return made


def blkid_uuid(device: str) -> str:
    return subprocess.run(
        ["blkid", "-p", "-s", "UUID", "-o", "value", device],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_device_mode_mounts_prepares_and_unmounts(
    loop_disk: tuple[str, Path], script: Path
) -> None:
    device, tmp_path = loop_disk
    done, result = run_device_mode(script, device)
    assert f"mounted: {device}p2, the root file system of {device}" in done.stdout
    assert_nothing_left_mounted(device)
    # fstab: the OS disk's partitions by their real UUIDs (from blkid), swap off, the
    # other disk nofail.
    check = tmp_path / "check"
    check.mkdir()
    subprocess.run(["mount", "-o", "ro", f"{device}p2", str(check)], check=True)
    try:
        fstab = (check / "etc/fstab").read_text()
        grub = (check / "etc/default/grub").read_text()
    finally:
        subprocess.run(["umount", str(check)], check=True)
    root_uuid, esp_uuid = blkid_uuid(f"{device}p2"), blkid_uuid(f"{device}p1")
    assert root_uuid and esp_uuid
    assert fstab == (
        "# azrestore: was /dev/sda2\n"
        f"UUID={root_uuid} / ext4 errors=remount-ro 0 1\n"
        "# azrestore: was /dev/sda1\n"
        f"UUID={esp_uuid} /boot/efi vfat umask=0077 0 1\n"
        f"{HEADER_NOTE}\n"
        "#/dev/sda3 none swap sw 0 0\n"
        "/dev/sdb1 /data ext4 defaults,nofail 0 2\n"
    )
    assert "earlyprintk=ttyS0 rootdelay=300" in grub
    # No /bin/sh in this tree: nothing could be regenerated, and it says so.
    assert any("no /bin/sh in the restored system" in note for note in result["notes"])
    assert result["pending"]


@pytest.fixture
def loop_fs(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An ext4 root file system on a whole loop device (no partitions: works where the
    kernel does not scan loop devices for partitions)."""
    require_disk_tools()
    tree = build(tmp_path / "tree", {k: v for k, v in UBUNTU.items() if k != "etc/fstab"})
    (tree / "etc/fstab").write_text(
        "UUID=0000-1111 / ext4 defaults 0 1\n/dev/sda2 none swap sw 0 0\n"
        "/dev/sdb1 /data ext4 defaults 0 2\n"
    )
    image = tmp_path / "fs.img"
    with image.open("wb") as file:
        file.truncate(64 * MiB)
    subprocess.run(
        ["mkfs.ext4", "-q", "-d", str(tree), str(image)], capture_output=True, check=True
    )
    with attached(image) as device:
        yield device, tmp_path


def test_device_mode_on_a_whole_disk_file_system(loop_fs: tuple[str, Path], script: Path) -> None:
    device, tmp_path = loop_fs
    done, result = run_device_mode(script, device)
    assert result["distro"] == "ubuntu 22.04"
    assert f"mounted: {device}, the root file system of {device}" in done.stdout
    assert_nothing_left_mounted(device)
    check = tmp_path / "check"
    check.mkdir()
    subprocess.run(["mount", "-o", "ro", device, str(check)], check=True)
    try:
        fstab = (check / "etc/fstab").read_text()
        ours = (check / "etc/netplan/90-azrestore-eth0.yaml").exists()
    finally:
        subprocess.run(["umount", str(check)], check=True)
    # /dev/sda is the OS disk (the usual first disk), so its swap goes; sdb1 gets nofail.
    assert fstab == (
        f"UUID=0000-1111 / ext4 defaults 0 1\n{HEADER_NOTE}\n#/dev/sda2 none swap sw 0 0\n"
        "/dev/sdb1 /data ext4 defaults,nofail 0 2\n"
    )
    assert ours
    # A second run, on the same disk, changes nothing.
    again = subprocess.run(
        ["bash", str(script), "--device", device], capture_output=True, text=True, check=False
    )
    second = parse_result(again.stdout)
    assert again.returncode == 0 and second is not None and second["changes"] == [], again.stdout


def test_device_mode_refuses_a_mounted_disk(loop_fs: tuple[str, Path], script: Path) -> None:
    device, tmp_path = loop_fs
    where = tmp_path / "busy"
    where.mkdir()
    subprocess.run(["mount", "-o", "ro", device, str(where)], check=True)
    try:
        done = subprocess.run(
            ["bash", str(script), "--device", device], capture_output=True, text=True, check=False
        )
    finally:
        subprocess.run(["umount", str(where)], check=True)
    assert done.returncode == 1
    result = parse_result(done.stdout)
    assert result is not None and "is in use (mounted)" in result["error"]


def test_json_is_valid_for_odd_text(tmp_path: Path, script: Path, stubs: Path) -> None:
    """Quotes, backslashes and tabs in reported names stay valid JSON."""
    root = build(tmp_path / "root", {"etc/os-release": 'ID="we\\"ird\tos"\n', "etc/fstab": ""})
    run = prepare(script, stubs, root)
    assert run.code == 0
    json.loads(run.stdout.splitlines()[-1].removeprefix("AZRESTORE-RESULT "))


def test_chroot_regenerates_boot_files(tmp_path: Path, script: Path) -> None:
    """With a chroot, the initramfs and GRUB config are rebuilt by the restored system's
    own tools (here stand-ins that record their calls), and nothing is left pending."""
    if os.geteuid() != 0 or shutil.which("ldd") is None:
        unavailable("needs root (chroot) and ldd")
    root = build(tmp_path / "root", {k: v for k, v in UBUNTU.items() if not isinstance(v, Link)})
    shell = Path(os.path.realpath("/bin/sh"))
    libraries = subprocess.run(["ldd", str(shell)], capture_output=True, text=True, check=True)
    for word in libraries.stdout.split():
        if word.startswith("/") and Path(word).exists():
            (root / word.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(word, root / word.lstrip("/"))
    (root / "bin").mkdir(exist_ok=True)
    shutil.copy2(shell, root / "bin/sh")
    for tool in ("update-initramfs", "update-grub"):
        path = root / "usr/sbin" / tool
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'#!/bin/sh\necho "{tool} $*" >> /ran.log\n')
        path.chmod(0o755)
    # Without the chroot first: the work is left pending, marked on the disk ...
    earlier = subprocess.run(
        ["bash", str(script), "--root", str(root)], capture_output=True, text=True, check=False
    )
    pending = parse_result(earlier.stdout)
    assert pending is not None and len(pending["pending"]) == 2
    # ... and a later run with it does it, though nothing else changes then.
    first = subprocess.run(
        ["bash", str(script), "--root", str(root), "--chroot"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    result = parse_result(first.stdout)
    assert result is not None and result["pending"] == []
    assert result["changes"] == [
        "initramfs: regenerated in the restored system",
        "grub: regenerated in the restored system",
    ]
    assert (root / "ran.log").read_text() == "update-initramfs -u -k all\nupdate-grub \n"
    assert not (root / "var/lib/azrestore/pending-initramfs").exists()
    second = subprocess.run(
        ["bash", str(script), "--root", str(root), "--chroot"],
        capture_output=True,
        text=True,
        check=False,
    )
    again = parse_result(second.stdout)
    assert again is not None and again["changes"] == [] and again["pending"] == []
    assert (root / "ran.log").read_text().count("\n") == 2  # not run again
