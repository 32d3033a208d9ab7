"""Guest scripts run for real: an emulated Linux VM's Run Command script runs as root in a
sandbox of its own (a private mount namespace) over loop devices holding its data disks'
bytes, and the emulator judges afterwards which disk is a bootable OS disk with an agent.

Modules: :mod:`.availability` (whether this machine can), :mod:`.blobdisk` (disk blobs to
sparse files and back), :mod:`.loops` (loop devices), :mod:`.sandbox` (the namespace and
one program run in it, with ``launcher.sh``), :mod:`.inspect` (the emulator's own check of
the disks, run in the sandbox), :mod:`.runner` (all of it for one run command).
"""
