"""``make demo``: restore two backed-up VMs into a local Azure, with the live view.

Runs as ``python -m azrestore.cli.demo [--quick] [--out DIR]`` from the repository.
Everything goes to ``./demo-out/``:

1. two sample backups, as backup products hand them over: ``web01-os.vmdk``, a
   streamOptimized VMDK (as an OVA export holds) of a Linux GPT/UEFI disk (an EFI system
   partition, FAT32, holding an ``EFI/BOOT`` tree; an ext4 root made by ``mkfs.ext4 -d``
   from a small Linux tree with ``/etc/fstab`` naming ``/dev/sda`` devices, as a restore
   has to fix), and ``dc01-os.vhdx``, a dynamic VHDX (as a Hyper-V export writes) of a
   Windows MBR/BIOS disk (one active NTFS partition by ``mkntfs`` holding Windows' SYSTEM
   and SOFTWARE registry hives and a BCD store as an install has them before it is
   prepared, made with hivexsh and written through an ntfs-3g mount where the demo runs
   as root with FUSE; else a few files copied in by ``ntfscp``). Each disk is built as a
   sparse raw image, then converted by ``qemu-img convert`` and the raw image removed.
   They are reused when ``demo-out/`` holds this demo's exports already;
2. ``azrestore inspect`` of the Linux export (its format, VMDK; UEFI, Linux,
   generation V2);
3. ``demo-out/plan.yaml``: both VMs, a proxy and a Linux helper, which prepares the
   Windows disk too (offline, with ntfs-3g and hivex);
4. ``azrestore restore demo-out/plan.yaml --emulator --dry-run``, then the real run
   against a fresh local emulator (Azurite behind the strict gateway, and the Resource
   Manager simulator) with the live view on this terminal and the report at the end.

``--quick`` runs the simulated Azure nearly as fast as it can go (for a test).

Every process the demo starts is stopped before it exits, also on Ctrl-C (exit 130),
SIGTERM or an error: the demo is a child subreaper, so that even a grandchild such as
Azurite, which runs in its own session, comes back to it if its parent dies.

The script is :mod:`.__main__`; the images come from :mod:`.images` (the EFI partition's
files by :mod:`.fat32`, the exports by ``qemu-img`` through :mod:`.tools`), the processes
are kept in hand by :mod:`.processes`.
"""
