#!/bin/bash
# azrestore emulator: set up a guest sandbox in the private mount (and PID) namespace this
# runs in, then run one phase's program there (as root; the host's / read-only).
#   launcher.sh WORK PHASE
# WORK/devices: "lun sdname loopname major minor" lines, partitions as "lun-partN" lines
# with the partition's node name. WORK/PHASE.sh runs with WORK/PHASE.env (NAME=VALUE, NUL
# separated) as its environment and WORK/PHASE.args (NUL separated) as arguments; its
# streams go to WORK/PHASE.out and WORK/PHASE.err, its exit status to WORK/PHASE.rc.
set -euo pipefail
WORK=$1 PHASE=$2
exec 2>"$WORK/$PHASE.launcher.err"

mount --make-rprivate /
mount -t tmpfs -o mode=755,nosuid azrestore-dev /dev
node() { mknod -m "$4" "/dev/$1" "$2" "${3%%:*}" "${3##*:}"; }
node null c 1:3 666
node zero c 1:5 666
node full c 1:7 666
node random c 1:8 666
node urandom c 1:9 666
node tty c 5:0 666
[ ! -e /sys/class/misc/fuse/dev ] || node fuse c "$(cat /sys/class/misc/fuse/dev)" 666
node loop-control c 10:237 600
mkdir -p /dev/mapper /dev/shm /dev/pts /dev/disk/azure/scsi1
[ ! -e /sys/class/misc/device-mapper/dev ] ||
	node mapper/control c "$(cat /sys/class/misc/device-mapper/dev)" 600
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
mount -t tmpfs -o mode=1777,nosuid,nodev azrestore-shm /dev/shm

while read -r kind a b c d e; do
	case $kind in
	disk) # disk LUN SDNAME LOOPNAME MAJOR:MINOR
		node "$c" b "$d" 660
		node "$b" b "$d" 660
		ln -s "../../../$c" "/dev/disk/azure/scsi1/lun$a"
		;;
	part) # part LUN N SDNAME LOOPNAME-PART MAJOR:MINOR
		node "$d" b "$e" 660
		node "$c$b" b "$e" 660
		ln -s "../../../$d" "/dev/disk/azure/scsi1/lun$a-part$b"
		;;
	esac
done <"$WORK/devices"

# WORK/PHASE.keep (NUL separated): host directories the phase needs (the emulator's own
# Python and package, for its inspection) that the private mounts below would hide.
keep=()
if [ -f "$WORK/$PHASE.keep" ]; then
	while IFS= read -r -d '' item; do keep+=("$item"); done <"$WORK/$PHASE.keep"
fi
for i in "${!keep[@]}"; do
	mkdir -p "$WORK/keep/$i"
	mount --bind "${keep[i]}" "$WORK/keep/$i"
done
mount -t tmpfs -o mode=1777,nosuid,nodev azrestore-tmp /tmp
mount -t tmpfs -o mode=755,nosuid,nodev azrestore-run /run
mkdir -p /run/lock /var/lib/azrestore
mount -t tmpfs -o mode=755,nosuid,nodev azrestore-state /var/lib/azrestore
# LVM without udev: it makes its /dev/mapper nodes itself, sees only this /dev, and keeps
# its metadata backups here.
mkdir -p "$WORK/lvm/backup" "$WORK/lvm/archive"
cat >"$WORK/lvm/lvm.conf" <<'CONF'
devices {
	obtain_device_list_from_udev = 0
	external_device_info_source = "none"
	use_devicesfile = 0
	scan = [ "/dev" ]
}
activation {
	udev_sync = 0
	udev_rules = 0
	verify_udev_operations = 0
	monitoring = 0
}
CONF
if [ -d /etc/lvm ]; then mount --bind "$WORK/lvm" /etc/lvm; fi

# The host's root file system is read-only in here: only this run's work directory, the
# private tmpfs above and /mnt (where Azure mounts the resource disk) are writable.
mount -t tmpfs -o mode=755,nosuid,nodev azrestore-mnt /mnt
for i in "${!keep[@]}"; do
	if [ -d "${keep[i]}" ] && [ "$(stat -c %d:%i "${keep[i]}")" = "$(stat -c %d:%i "$WORK/keep/$i")" ]; then
		continue # not hidden
	fi
	mkdir -p "${keep[i]}"
	mount --bind "$WORK/keep/$i" "${keep[i]}"
	mount -o remount,bind,ro "${keep[i]}"
done
mount --bind "$WORK" "$WORK"
# Reopened through the work directory's own mount: no file open for writing on / then.
exec 2>>"$WORK/$PHASE.launcher.err"
mount -o remount,bind,ro /

env=() args=()
while IFS= read -r -d '' item; do env+=("$item"); done <"$WORK/$PHASE.env"
while IFS= read -r -d '' item; do args+=("$item"); done <"$WORK/$PHASE.args"
[ -d /etc/lvm ] || env+=("LVM_SYSTEM_DIR=$WORK/lvm")
cd /
rc=0
env -i "${env[@]}" /bin/sh "$WORK/$PHASE.sh" "${args[@]}" \
	</dev/null >"$WORK/$PHASE.out" 2>"$WORK/$PHASE.err" || rc=$?
printf '%s\n' "$rc" >"$WORK/$PHASE.rc"
