#!/bin/bash
# azrestore: prepare a restored Linux OS disk for Azure, on a helper VM it is attached to.
#
#   prepare-linux.sh --lun N       the helper's data disk at LUN N (or a bare N, or $AZRESTORE_LUN)
#   prepare-linux.sh --device DEV  that disk by name
#   prepare-linux.sh --root DIR    a root file system already mounted at DIR (nothing is mounted)
# --fstab-map FILE   "DEVICE UUID" lines, to put fstab by UUID in --root mode
# --chroot, --no-chroot   regenerate the initramfs and GRUB config in the restored system
#                    (default: yes with --lun/--device, no with --root)
# Idempotent. Prints what it changed, then one last line: AZRESTORE-RESULT {json}.
# Exit status: 0 done (maybe with warnings), 1 failed, 2 usage.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -Eeuo pipefail
umask 022
export LC_ALL=C PATH="${PATH:+$PATH:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

ROOT="" DEVICE="" LUN="${AZRESTORE_LUN:-}" FSTAB_MAP="" CHROOT="" MODE=root DISTRO="" MNT=""
CHANGES=() NOTES=() WARNINGS=() PENDING=() MOUNTS=() VGS=() PARTS=() LVF="" LVC=""
WAAGENT=false CLOUD_INIT=false HOOK=false DONE=false LAST=0 ADDED_ARGS="" SSH_PORTS=22
KERNEL_ARGS="console=ttyS0,115200n8 earlyprintk=ttyS0 rootdelay=300"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/azrestore.XXXXXX")
NEW=$WORK/new
MARKS=/var/lib/azrestore

say() { printf '%s\n' "$*"; }
changed() { CHANGES+=("$1") && say "changed: $1"; }
note() { NOTES+=("$1") && say "note: $1"; }
warn() { WARNINGS+=("$1") && say "warning: $1"; }

json_str() {
	local s=$1
	s=${s//\\/\\\\} s=${s//\"/\\\"} s=${s//[$'\001'-$'\037']/ }
	printf '"%s"' "${s:0:300}"
}
json_list() {
	local out="" x
	for x in "$@"; do out+="${out:+,}$(json_str "$x")"; done
	printf '[%s]' "$out"
}
# Run Command returns only the last 4096 bytes of output: the line is cut to fit.
result() {
	local json cut=false
	while :; do
		json="{\"ok\":$1,\"error\":$(json_str "${2:-}"),\"mode\":\"$MODE\",\"distro\":$(json_str "$DISTRO")"
		json+=",\"changes\":$(json_list "${CHANGES[@]}"),\"pending\":$(json_list "${PENDING[@]}")"
		json+=",\"warnings\":$(json_list "${WARNINGS[@]}"),\"notes\":$(json_list "${NOTES[@]}")"
		json+=",\"agent\":{\"waagent\":$WAAGENT,\"cloud_init\":$CLOUD_INIT,\"install_hook\":$HOOK}"
		json+=",\"truncated\":$cut}"
		[ ${#json} -gt 3800 ] || break
		cut=true
		if [ ${#NOTES[@]} -gt 0 ]; then unset 'NOTES[-1]'
		elif [ ${#CHANGES[@]} -gt 5 ]; then unset 'CHANGES[-1]'
		elif [ ${#WARNINGS[@]} -gt 5 ]; then unset 'WARNINGS[-1]'
		else break; fi
	done
	say "AZRESTORE-RESULT $json"
}
die() {
	say "error: $1" >&2
	DONE=true
	result false "$1"
	exit 1
}
on_error() {
	# In a subshell just fail: the caller reports.
	[ "$BASH_SUBSHELL" = 0 ] || exit "$1"
	$DONE && return
	DONE=true
	result false "failed at line $2 (status $1): $3"
	exit 1
}
cleanup() {
	local rc=$? i
	sync 2>/dev/null || true
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" >&2 || true
	done
	for i in "${VGS[@]}"; do lvm_ vgchange -an --select "vg_uuid=$i" >/dev/null 2>&1 || true; done
	# rmdir, never rm -r: a mount point that failed to unmount holds the restored disk.
	[ -z "$MNT" ] || rmdir "$MNT" 2>/dev/null || true
	rm -rf "$WORK"
	if ! $DONE; then DONE=true && result false "stopped (status $rc)"; fi
}
trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR
trap cleanup EXIT

# --- paths in the restored system ---

# r PATH: PATH of the restored system, its symlinks (/etc/x -> /usr/x too) followed in ROOT.
r() {
	local rest=${1#/} out="" part link n=0
	while [ -n "$rest" ]; do
		part=${rest%%/*}
		if [ "$part" = "$rest" ]; then rest=""; else rest=${rest#*/}; fi
		case $part in
		"" | .) continue ;;
		..) out=${out%/*} && continue ;;
		esac
		if [ -L "$ROOT$out/$part" ] && [ $n -lt 40 ]; then
			n=$((n + 1))
			link=$(readlink "$ROOT$out/$part")
			case $link in /*) out="" ;; esac
			rest=${link#/}${rest:+/$rest}
		else
			out=$out/$part
		fi
	done
	say "$ROOT${out:-/}"
}
# rd PATH: like r, but the last component is not followed (to make or remove links).
rd() { say "$(r "${1%/*}")/${1##*/}"; }
has() { [ -e "$(r "$1")" ]; }

# commit PATH WHAT [MODE]: PATH gets the content of $NEW if it differs; WHAT (if any) is reported.
# An existing file keeps its owner, mode and inode. LAST=1 when it changed.
commit() {
	local f
	f=$(r "$1")
	LAST=0
	if [ -f "$f" ] && cmp -s "$NEW" "$f"; then return 0; fi
	if [ -e "$f" ] && [ ! -f "$f" ]; then
		warn "$1 is not a regular file; left alone"
		return 0
	fi
	mkdir -p "${f%/*}"
	if [ -f "$f" ]; then
		cat "$NEW" >"$f"
	else
		cp "$NEW" "$f"
		chmod "${3:-644}" "$f"
	fi
	LAST=1
	[ -z "$2" ] || changed "$2"
}
# link PATH TARGET WHAT: PATH becomes a symlink to TARGET, unless it leads there already.
link() {
	local p
	p=$(rd "$1")
	if [ -L "$p" ] && { [ "$(readlink "$p")" = "$2" ] || [ "$(r "$1")" = "$(r "$2")" ]; }; then return 0; fi
	mkdir -p "${p%/*}"
	rm -f "$p"
	ln -s "$2" "$p"
	changed "$3"
}
# mark NAME TEXT: boot files to regenerate, kept on the disk until a chroot run does it.
mark() {
	local f
	f=$(r "$MARKS/pending-$1")
	mkdir -p "${f%/*}"
	say "$2" >"$f"
}
os_release() {
	local f
	for f in /etc/os-release /usr/lib/os-release; do
		if has "$f"; then
			awk -v k="$1" 'index($0, k "=") == 1 { sub(/^[^=]*=/, ""); gsub(/["\047]/, ""); print; exit }' "$(r "$f")"
			return 0
		fi
	done
}
unit_dir() { # unit_dir NAME: the directory holding the unit file NAME, if any
	local d
	for d in /usr/lib/systemd/system /lib/systemd/system /etc/systemd/system; do
		if [ -f "$(r "$d/$1")" ] && [ ! -L "$(rd "$d/$1")" ]; then say "$d" && return 0; fi
	done
}

# --- the disk: find it and mount its root (not with --root) ---

in_use() { # in_use DEV: is DEV, or anything on it, mounted?
	local mounts
	mounts=$(lsblk -nro MOUNTPOINT "$1")
	[ -n "${mounts//[[:space:]]/}" ]
}
find_disk() {
	local c d cands=()
	if [ -z "$DEVICE" ]; then
		for c in "/dev/disk/azure/scsi1/lun$LUN" "/dev/disk/azure/data/by-lun/$LUN"; do
			if [ -e "$c" ]; then DEVICE=$(readlink -f "$c") && break; fi
		done
	fi
	if [ -z "$DEVICE" ]; then
		# No Azure udev links: the SCSI disks with that LUN, less those in use (the helper's).
		if command -v udevadm >/dev/null; then udevadm settle || true; fi
		for d in /sys/bus/scsi/devices/*:*:*:"$LUN"/block/*; do
			[ -e "$d" ] || continue
			if ! in_use "/dev/${d##*/}"; then cands+=("/dev/${d##*/}"); fi
		done
		[ ${#cands[@]} -eq 1 ] || die "cannot tell which disk is LUN $LUN (candidates: ${cands[*]:-none}); use --device"
		DEVICE=${cands[0]}
	fi
	[ -b "$DEVICE" ] || die "$DEVICE is not a block device"
	if in_use "$DEVICE"; then die "$DEVICE is in use (mounted): not a restored disk, or still mounted"; fi
}
# PARTS: the disk's partitions and LVs; $WORK/blkid: "DEV KEY=VALUE ..." each. LVM sees
# this disk's PVs only (not another disk's VG of the same name, or a clone's PVs).
lvm_() { LVM_SUPPRESS_FD_WARNINGS=1 "$@" --config "devices{filter=[$LVF\"r|.*|\"] global_filter=[$LVF\"r|.*|\"] use_devicesfile=0 obtain_device_list_from_udev=0} $LVC" 2> >(grep -v 'WARNING: Activation disabled' >&2); }
# No device-mapper: a linear LV is a byte range of its PV, mounted by a loop device.
map_lvs() { # map_lvs VG_UUID
	local lv n type attr dev size pe ext
	while read -r lv n type attr dev size; do
		if [ "$n" != 1 ] || [ "$type" != linear ] || [ "${attr:0:1}" != - ] || [ "${dev%\(*}" = "$dev" ]; then
			say "LV $vg/$lv ($type, $n segments, $attr) skipped: not one linear segment (no device-mapper)" >&2
			continue
		fi
		n=${dev#*\(} && dev=${dev%\(*}
		read -r pe ext < <(lvm_ pvs --noheadings --nosuffix --units b -o pe_start,vg_extent_size "$dev")
		say "/dev/$vg/$lv $dev offset=$((pe + ${n%\)} * ext)),sizelimit=$size /dev/mapper/${vg//-/--}-${lv//-/--}" >>"$WORK/lvmap"
		PARTS+=("/dev/$vg/$lv")
	done < <(lvm_ lvs --noheadings --nosuffix --units b -o lv_name,seg_count,segtype,lv_attr,devices,lv_size --select "vg_uuid=$1")
}
probe() {
	local name type part vg uuid vgs=() l
	while read -r name type; do
		if [ "$type" = part ] || [ "$name" = "$DEVICE" ]; then PARTS+=("$name") && LVF+="\"a|^$name\$|\","; fi
	done < <(lsblk -lnpo NAME,TYPE "$DEVICE")
	: >"$WORK/lvmap"
	for part in "${PARTS[@]}"; do
		[ "$(blkid -p -s TYPE -o value "$part" 2>/dev/null || true)" = LVM2_member ] || continue
		command -v vgchange >/dev/null || die "$part is an LVM volume and the helper has no LVM tools (lvm2)"
		[ -e /dev/mapper/control ] && dmsetup version >/dev/null 2>&1 || LVC="global{activation=0}"
		read -r vg uuid < <(lvm_ pvs --noheadings -o vg_name,vg_uuid "$part") || continue
		case " ${vgs[*]} " in *" $vg:$uuid "*) ;; *) vgs+=("$vg:$uuid") ;; esac
	done
	# Active LVs are named after their VG: batch jobs sharing a VG name or UUID take turns.
	if [ -z "$LVC" ]; then
		for l in $(printf '%s\n' "${vgs[@]%:*}" "${vgs[@]#*:}" | sort -u); do exec {name}>"/run/lock/azrestore-vg-$l" && flock "$name"; done
	fi
	for l in "${vgs[@]}"; do
		vg=${l%:*} uuid=${l#*:}
		if [ -n "$LVC" ]; then map_lvs "$uuid" && continue; fi
		! dmsetup ls | grep -q "^${vg//-/--}-[^-]" || die "volume group $vg exists on the helper too; use a helper without one of that name"
		lvm_ vgchange -ay --select "vg_uuid=$uuid" >/dev/null
		VGS+=("$uuid")
		while read -r part; do PARTS+=("$part"); done < <(lvm_ lvs --noheadings -o lv_path --select "vg_uuid=$uuid" | tr -d ' ')
	done
	for part in "${PARTS[@]}"; do
		set -- "$part"
		if read -r _ name type _ < <(grep "^$part " "$WORK/lvmap"); then
			type=${type#offset=} && set -- -O "${type%,*}" -S "${type#*=}" "$name"
		fi
		say "$part $(blkid -p -o export "$@" 2>/dev/null | tr '\n' ' ' || true)"
	done >"$WORK/blkid"
}
fs_of() { awk -v d="$1" '$1 == d { for (i = 2; i <= NF; i++) if (sub(/^TYPE=/, "", $i)) print $i }' "$WORK/blkid"; }
# by_spec SPEC: the partition or volume of this disk an fstab spec names, if any.
by_spec() {
	local key dev
	case $1 in
	UUID=* | LABEL=* | PARTUUID=*)
		key=${1%%=*}
		if [ "$key" = PARTUUID ]; then key=PART_ENTRY_UUID; fi
		awk -v kv="$key=${1#*=}" 'index(" " $0 " ", " " kv " ") { print $1; exit }' "$WORK/blkid"
		;;
	/dev/mapper/* | /dev/*/*)
		awk -v s="$1" '$1 == s || $4 == s { print $1 }' "$WORK/lvmap"
		dev=$(readlink -f "$1" 2>/dev/null || true)
		for key in "${PARTS[@]}"; do [ "$(readlink -f "$key")" != "$dev" ] || say "$key"; done
		;;
	esac
}
part_dev() { # part_dev N: partition N of DEVICE
	local p
	[ -n "$1" ] || return 0
	for p in "${PARTS[@]}"; do
		if [ "$(cat "/sys/class/block/${p##*/}/partition" 2>/dev/null || true)" = "$1" ]; then say "$p" && return 0; fi
	done
}
mount_fs() { # mount_fs DEV DIR [OPTIONS]
	local opts=${3:-rw} dev=$1 lo="" n i j
	[ "$(fs_of "$1")" != xfs ] || opts+=,nouuid # a clone of the helper's image shares its UUID
	read -r _ dev lo _ < <(grep "^$1 " "$WORK/lvmap") || dev=$1
	for i in 1 2 3 4 5; do # an LV of map_lvs: a loop device (gone at umount) over its bytes
		if [ -n "$lo" ]; then
			n=$(losetup -f) && IFS=: read -r i j <"/sys/block/${n#/dev/}/dev"
			[ -b "$n" ] || mknod "$n" b "$i" "$j" || : # no devtmpfs (a sandbox)
			lo=loop=$n,${lo#loop=*,}
		fi
		if mount -o "$opts${lo:+,$lo}" "$dev" "$2"; then MOUNTS+=("$2") && return 0; fi
		[ -n "$lo" ] || return 1
	done
	return 1
}
mount_disk() {
	local part fs sub spec found
	find_disk
	probe
	MNT=$(mktemp -d /run/azrestore-root.XXXXXX 2>/dev/null || mktemp -d /tmp/azrestore-root.XXXXXX)
	for part in "${PARTS[@]}"; do
		fs=$(fs_of "$part")
		case $fs in ext2 | ext3 | ext4 | xfs | btrfs) ;; *) continue ;; esac
		mount_fs "$part" "$MNT" ro || { note "cannot mount $part ($fs)" && continue; }
		found=none
		for sub in "" @ root @/.snapshots/1/snapshot; do # btrfs: the root may be a subvolume
			if [ -f "$MNT/${sub:+$sub/}etc/fstab" ]; then found=$sub && break; fi
		done
		umount "$MNT"
		unset 'MOUNTS[-1]'
		[ "$found" != none ] || continue
		mount_fs "$part" "$MNT" "rw${found:+,subvol=$found}"
		ROOT=$MNT
		break
	done
	[ -n "$ROOT" ] || die "no Linux root file system (holding etc/fstab) on $DEVICE"
	say "mounted: $part, the root file system of $DEVICE"
	# /boot and /boot/efi, for the initramfs and boot loader tools run in the chroot.
	for sub in /boot /boot/efi; do
		spec=$(awk -v mp="$sub" '$1 !~ /^#/ && $2 == mp { print $1; exit }' "$ROOT/etc/fstab")
		[ -n "$spec" ] || continue
		part=$(by_spec "$spec")
		[ -n "$part" ] || part=$(part_dev "$(part_of "$spec")")
		if [ -z "$part" ] || ! mount_fs "$part" "$(r "$sub")"; then warn "cannot mount $sub ($spec) from $DEVICE"; fi
	done
}
bind_for_chroot() {
	local d
	for d in dev proc sys run; do
		if [ -d "$ROOT/$d" ] && ! mountpoint -q "$ROOT/$d"; then
			mount --bind "/$d" "$ROOT/$d"
			MOUNTS+=("$ROOT/$d")
		fi
	done
}
in_root() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C AZR_ARGS="${2:-}" chroot "$ROOT" /bin/sh -c "$1"; }

# --- sshd and the firewalls ---

do_sshd() {
	local unit="" dir="" name cfg files=()
	for cfg in "$(r /etc/ssh/sshd_config)" "$(r /etc/ssh/sshd_config.d)"/*.conf; do
		if [ -f "$cfg" ]; then files+=("$cfg"); fi
	done
	if [ ${#files[@]} -gt 0 ]; then
		SSH_PORTS=$(awk 'tolower($1) == "port" { print $2 }' "${files[@]}" | sort -un | tr '\n' ' ')
		SSH_PORTS=${SSH_PORTS% } && SSH_PORTS=${SSH_PORTS:-22}
		[ "$SSH_PORTS" = 22 ] || note "sshd listens on port(s) $SSH_PORTS: allow them in the NSG too"
		if awk 'tolower($1) == "listenaddress" && $2 !~ /^(0\.0\.0\.0|::|\[::\])(:[0-9]+)?$/ { f = 1 } END { exit !f }' "${files[@]}"; then
			warn "sshd_config has a ListenAddress for a fixed address; sshd may not listen in Azure"
		fi
		if awk 'tolower($1) == "passwordauthentication" && tolower($2) == "no" { f = 1 } END { exit !f }' "${files[@]}"; then
			note "sshd: PasswordAuthentication no, left as is (log in with a key)"
		fi
	fi
	for name in ssh.service sshd.service; do
		dir=$(unit_dir "$name")
		if [ -n "$dir" ]; then unit=$name && break; fi
	done
	if [ -z "$unit" ]; then
		if has /usr/sbin/sshd; then warn "sshd has no systemd unit: make sure it starts at boot"
		else warn "no SSH server (openssh-server) installed: the VM will not be reachable by SSH"; fi
		return 0
	fi
	if [ "$(readlink "$(rd "/etc/systemd/system/$unit")" || true)" = /dev/null ]; then
		rm -f "$(rd "/etc/systemd/system/$unit")"
		changed "sshd: unmasked $unit"
	fi
	if [ -L "$(rd /etc/systemd/system/sockets.target.wants/ssh.socket)" ]; then
		note "sshd: started on demand by ssh.socket"
	else
		link "/etc/systemd/system/multi-user.target.wants/$unit" "$dir/$unit" "sshd: enabled $unit"
	fi
}
do_firewalld() {
	local zone file src="" port add=""
	has /etc/firewalld || return 0
	zone=$(sed -n 's/^DefaultZone=//p' "$(r /etc/firewalld/firewalld.conf)" 2>/dev/null | tail -n 1 || true)
	zone=${zone:-public}
	file=/etc/firewalld/zones/$zone.xml
	if has "$file"; then src=$file; elif has "/usr/lib/firewalld/zones/$zone.xml"; then src=/usr/lib/firewalld/zones/$zone.xml; fi
	if [ -z "$src" ] || ! grep -q '</zone>' "$(r "$src")"; then
		warn "firewalld: cannot read the default zone $zone; open port(s) $SSH_PORTS yourself"
		return 0
	fi
	for port in $SSH_PORTS; do
		if [ "$port" = 22 ] && grep -q '<service[^>]*name="ssh"' "$(r "$src")"; then continue; fi
		grep -Eq "<port[^>]*port=\"$port\"" "$(r "$src")" && continue
		if [ "$port" = 22 ]; then add+='  <service name="ssh"/>'$'\n'
		else add+="  <port protocol=\"tcp\" port=\"$port\"/>"$'\n'; fi
	done
	[ -n "$add" ] || return 0
	ADD=${add%$'\n'} awk '!done && /<\/zone>/ { print ENVIRON["ADD"]; done = 1 } { print }' "$(r "$src")" >"$NEW"
	commit "$file" "firewalld: opened port(s) $SSH_PORTS in zone $zone"
}
do_ufw() {
	local port v file chain any
	has /etc/ufw/ufw.conf || return 0
	if ! grep -Eqi '^ENABLED=("|)yes' "$(r /etc/ufw/ufw.conf)"; then
		note "ufw: installed, disabled"
		return 0
	fi
	for v in 4 6; do
		if [ $v = 4 ]; then file=/etc/ufw/user.rules chain=ufw-user-input any=0.0.0.0/0
		else file=/etc/ufw/user6.rules chain=ufw6-user-input any=::/0; fi
		has "$file" || continue
		cp "$(r "$file")" "$NEW"
		for port in $SSH_PORTS; do
			grep -Eq -- "^-A $chain .*--dport $port( .*)? -j ACCEPT" "$NEW" && continue
			if ! grep -q '^### RULES ###' "$NEW"; then warn "ufw: cannot read $file; allow port $port yourself" && continue; fi
			ADD="### tuple ### allow tcp $port $any any $any in"$'\n'"-A $chain -p tcp --dport $port -j ACCEPT" \
				awk '{ print } !done && /^### RULES ###/ { print ""; print ENVIRON["ADD"]; done = 1 }' "$NEW" >"$WORK/edit"
			cp "$WORK/edit" "$NEW"
		done
		commit "$file" "ufw: allowed port(s) $SSH_PORTS (IPv$v)"
	done
}
do_iptables() {
	local file port
	for file in /etc/sysconfig/iptables /etc/sysconfig/ip6tables /etc/iptables/rules.v4 /etc/iptables/rules.v6; do
		if ! has "$file" || ! grep -q '^\*filter' "$(r "$file")"; then continue; fi
		# Nothing to open when INPUT accepts everything.
		if grep -q '^:INPUT ACCEPT' "$(r "$file")" && ! grep -Eq '^-A INPUT .*-j (DROP|REJECT)' "$(r "$file")"; then continue; fi
		cp "$(r "$file")" "$NEW"
		for port in $SSH_PORTS; do
			grep -Eq -- "^-A INPUT .*--dport $port( .*)? -j ACCEPT" "$NEW" && continue
			# First in INPUT: before any rule that drops.
			ADD="-A INPUT -p tcp -m tcp --dport $port -j ACCEPT" awk '/^\*/ { table = $1 }
				table == "*filter" && !done && (/^-A INPUT / || /^COMMIT/) { print ENVIRON["ADD"]; done = 1 }
				{ print }' "$NEW" >"$WORK/edit"
			cp "$WORK/edit" "$NEW"
		done
		commit "$file" "iptables: accepted port(s) $SSH_PORTS in $file"
	done
	if has /etc/nftables.conf && grep -Eq 'policy (drop|reject)' "$(r /etc/nftables.conf)"; then
		warn "nftables: /etc/nftables.conf drops by default; make sure port(s) $SSH_PORTS are open"
	fi
}

# --- the Azure agent ---

do_agent() {
	local name dir
	for name in /usr/sbin/waagent /usr/bin/waagent /usr/local/sbin/waagent; do
		if has "$name"; then WAAGENT=true; fi
	done
	if has /usr/bin/cloud-init || has /usr/local/bin/cloud-init; then CLOUD_INIT=true; fi
	if $CLOUD_INIT && has /etc/cloud/cloud-init.disabled; then note "cloud-init: disabled (cloud-init.disabled)"; fi
	if $WAAGENT; then
		for name in walinuxagent.service waagent.service; do
			dir=$(unit_dir "$name")
			if [ -n "$dir" ]; then
				link "/etc/systemd/system/multi-user.target.wants/$name" "$dir/$name" "waagent: enabled $name"
				break
			fi
		done
		if $CLOUD_INIT; then note "agent: waagent and cloud-init found"; else note "agent: waagent found"; fi
		return 0
	fi
	# No waagent (cloud-init alone reports no Ready): WALinuxAgent from the distribution's
	# repositories at first boot, retried at every boot until it succeeds.
	cat >"$NEW" <<'EOF'
#!/bin/sh
# Installed by azrestore: installs the Azure Linux agent (WALinuxAgent) once.
exec >>/var/log/azrestore-install-agent.log 2>&1
date
for try in 1 2 3 4 5 6 7 8 9 10; do
	if command -v apt-get >/dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y walinuxagent && break
	elif command -v dnf >/dev/null; then
		dnf install -y WALinuxAgent && break
	elif command -v yum >/dev/null; then
		yum install -y WALinuxAgent && break
	elif command -v zypper >/dev/null; then
		{ zypper --non-interactive install python3-azure-agent || zypper --non-interactive install python-azure-agent; } && break
	else
		echo "no apt-get, dnf, yum or zypper: install WALinuxAgent by hand"; exit 1
	fi
	[ "$try" = 10 ] && exit 1
	sleep 30
done
for unit in walinuxagent.service waagent.service; do
	systemctl enable --now "$unit" && break
done
mkdir -p /var/lib/azrestore && touch /var/lib/azrestore/agent-installed
systemctl disable azrestore-install-agent.service
EOF
	commit /usr/local/sbin/azrestore-install-agent "agent: installer /usr/local/sbin/azrestore-install-agent" 755
	cat >"$NEW" <<'EOF'
[Unit]
Description=Install the Azure Linux agent (azrestore, once)
Wants=network-online.target
After=network-online.target
ConditionPathExists=!/var/lib/azrestore/agent-installed

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/azrestore-install-agent
TimeoutStartSec=30min

[Install]
WantedBy=multi-user.target
EOF
	commit /etc/systemd/system/azrestore-install-agent.service "agent: unit azrestore-install-agent.service"
	link /etc/systemd/system/multi-user.target.wants/azrestore-install-agent.service \
		/etc/systemd/system/azrestore-install-agent.service "agent: enabled azrestore-install-agent.service"
	HOOK=true
	if $CLOUD_INIT; then note "agent: cloud-init, no waagent: WALinuxAgent installed at first boot"
	else warn "agent: no waagent or cloud-init: WALinuxAgent installed at first boot"; fi
}

# --- boot: kernel command line, initramfs ---

do_cmdline() {
	local grub=/etc/default/grub cur arg pat add=""
	if ! has "$grub"; then
		note "no /etc/default/grub: add $KERNEL_ARGS to the kernel command line yourself"
		return 0
	fi
	cur=$(sed -n 's/^GRUB_CMDLINE_LINUX=//p' "$(r "$grub")" | tail -n 1)
	cur=${cur#[\"\']} && cur=${cur%[\"\']}
	for arg in $KERNEL_ARGS; do
		# Present with any value counts (console=ttyS0 at another speed too).
		case $arg in console=*) pat=" console=ttyS0" ;; *) pat=" ${arg%%=*}=" ;; esac
		case " $cur" in *"$pat"*) continue ;; esac
		add+=" $arg"
	done
	[ -n "$add" ] || return 0
	ADDED_ARGS=${add# }
	cur="${cur:+$cur }$ADDED_ARGS"
	if grep -q '^GRUB_CMDLINE_LINUX=' "$(r "$grub")"; then
		LINE="GRUB_CMDLINE_LINUX=\"$cur\"" awk '/^GRUB_CMDLINE_LINUX=/ { print ENVIRON["LINE"]; next } { print }' "$(r "$grub")" >"$NEW"
	else
		cp "$(r "$grub")" "$NEW"
		say "GRUB_CMDLINE_LINUX=\"$cur\"" >>"$NEW"
	fi
	commit "$grub" "grub: added $ADDED_ARGS to GRUB_CMDLINE_LINUX"
	[ $LAST = 0 ] || mark grub "regenerate the GRUB config (update-grub or grub2-mkconfig) for: $ADDED_ARGS"
}
do_initramfs() {
	local mods="hv_vmbus hv_storvsc hv_netvsc" m missing="" f files=()
	if has /etc/initramfs-tools; then
		f=$(r /etc/initramfs-tools/modules)
		if [ -f "$f" ]; then cp "$f" "$NEW"; else : >"$NEW"; fi
		for m in $mods; do
			grep -Eq "^$m([[:space:]]|\$)" "$NEW" || { say "$m" >>"$NEW" && missing+=" $m"; }
		done
		commit /etc/initramfs-tools/modules "initramfs-tools: added$missing"
		[ $LAST = 0 ] || mark initramfs "rebuild the initramfs (update-initramfs -u -k all)"
	fi
	if has /etc/dracut.conf || has /etc/dracut.conf.d || has /usr/lib/dracut; then
		for f in "$(r /etc/dracut.conf)" "$(r /etc/dracut.conf.d)"/*.conf; do
			if [ -f "$f" ]; then files+=("$f"); fi
		done
		missing=""
		for m in $mods; do
			if [ ${#files[@]} -eq 0 ] || ! grep -hE '^[[:space:]]*(add|force)_drivers\+?=' "${files[@]}" | grep -w "$m" >/dev/null; then
				missing+=" $m"
			fi
		done
		[ -n "$missing" ] || return 0
		say 'add_drivers+=" hv_vmbus hv_storvsc hv_netvsc "' >"$NEW"
		commit /etc/dracut.conf.d/90-azrestore-hyperv.conf "dracut: added Hyper-V drivers (90-azrestore-hyperv.conf)"
		[ $LAST = 0 ] || mark initramfs "rebuild the initramfs (dracut -f --regenerate-all)"
	fi
}
# Regenerate boot files in the restored system for what changed (now or in an earlier run).
do_regenerate() {
	local what
	for what in initramfs grub; do
		has "$MARKS/pending-$what" || continue
		if [ "$CHROOT" != yes ]; then
			PENDING+=("$(cat "$(r "$MARKS/pending-$what")")")
			continue
		fi
		bind_for_chroot
		if [ $what = initramfs ]; then
			in_root 'if command -v update-initramfs; then update-initramfs -u -k all
				elif command -v dracut; then dracut -f --regenerate-all
				elif command -v mkinitrd; then mkinitrd; else exit 3; fi' >&2 ||
				die "rebuilding the initramfs failed (see the errors above)"
		else
			# shellcheck disable=SC2016 # $AZR_ARGS expands in the chroot
			in_root 'set -e; if command -v grubby; then grubby --update-kernel=ALL --args="$AZR_ARGS"; fi
				if command -v update-grub; then update-grub
				elif command -v grub2-mkconfig; then
					for c in /boot/grub2/grub.cfg /boot/efi/EFI/*/grub.cfg; do
						if [ -f "$c" ] && ! grep -q "^[[:space:]]*configfile" "$c"; then grub2-mkconfig -o "$c"; fi
					done
				elif command -v grub-mkconfig; then grub-mkconfig -o /boot/grub/grub.cfg; fi' "$ADDED_ARGS" >&2 ||
				die "regenerating the GRUB configuration failed (see the errors above)"
		fi
		rm -f "$(r "$MARKS/pending-$what")"
		changed "$what: regenerated in the restored system"
	done
}

# --- fstab ---

# Names tied to the old hardware (gone in Azure); UUID=, LABEL=, LVM and md names are not.
unstable() {
	case $1 in
	/dev/[shv]d[a-z]* | /dev/xvd[a-z]* | /dev/nvme[0-9]*n[0-9]* | /dev/disk/by-path/*) return 0 ;;
	/dev/disk/by-id/ata-* | /dev/disk/by-id/scsi-* | /dev/disk/by-id/wwn-* | /dev/disk/by-id/nvme-*) return 0 ;;
	/dev/disk/by-id/virtio-* | /dev/disk/by-id/usb-*) return 0 ;;
	esac
	return 1
}
disk_of() {
	case $1 in
	*-part[0-9]*) say "${1%-part*}" ;;
	/dev/nvme*p[0-9]*) say "${1%p[0-9]*}" ;;
	/dev/disk/*) say "$1" ;;
	*) say "$1" | sed 's/[0-9]*$//' ;;
	esac
}
part_of() {
	case $1 in
	*-part[0-9]*) say "${1##*-part}" ;;
	/dev/disk/*) ;;
	/dev/*) say "$1" | sed -n 's/.*[^0-9]\([0-9][0-9]*\)$/\1/p' ;;
	esac
}
uuid_of() { # uuid_of SPEC OSDISK: the file system UUID behind a device name, if known
	local part
	if [ -n "$FSTAB_MAP" ]; then
		awk -v d="$1" '$1 == d { sub(/^UUID=/, "", $2); print $2; exit }' "$FSTAB_MAP"
	elif [ "$MODE" = device ] && [ "$(disk_of "$1")" = "$2" ]; then
		part=$(part_dev "$(part_of "$1")")
		if [ -n "$part" ]; then blkid -p -s UUID -o value "$part" 2>/dev/null || true; fi
	fi
}
on_os_disk() { # on_os_disk SPEC OSDISK: is this swap on the OS disk?
	case $1 in /dev/*) ;; /*) return 0 ;; esac # a swap file
	if unstable "$1"; then [ "$(disk_of "$1")" = "$2" ] && return 0 || return 1; fi
	# UUID=, LABEL=, LVM: found on this disk in device mode; assumed so with --root.
	[ "$MODE" = root ] || [ -n "$(by_spec "$1")" ]
}
do_fstab() {
	local f=/etc/fstab line spec mp type opts rest lead osdisk="" m d n=0 uuid
	has "$f" || { warn "no /etc/fstab" && return 0; }
	# The OS disk's old name: that of /, /boot or /boot/efi, else the usual first disk.
	for m in / /boot /boot/efi; do
		spec=$(awk -v mp="$m" '$1 !~ /^#/ && $2 == mp { print $1; exit }' "$(r "$f")")
		if [ -n "$spec" ] && unstable "$spec"; then osdisk=$(disk_of "$spec") && break; fi
	done
	if [ -z "$osdisk" ]; then
		for d in /dev/sda /dev/vda /dev/xvda /dev/nvme0n1 /dev/hda; do
			if awk -v d="$d" '$1 !~ /^#/ && index($1, d) == 1 { f = 1 } END { exit !f }' "$(r "$f")"; then osdisk=$d && break; fi
		done
	fi
	: >"$NEW"
	while IFS= read -r line || [ -n "$line" ]; do
		spec="" mp="" type="" opts=""
		read -r spec mp type opts rest <<<"$line" || true
		case $spec in "" | \#*)
			say "$line" >>"$NEW"
			continue
			;;
		esac
		lead=${line%%[![:space:]]*}
		if [ "$type" = swap ] && on_os_disk "$spec" "$osdisk"; then
			say "# azrestore: swap on the OS disk disabled (Azure gives swap on the resource disk)" >>"$NEW"
			say "#$line" >>"$NEW"
			changed "fstab: disabled swap $spec" && n=$((n + 1))
			continue
		fi
		if unstable "$spec"; then
			uuid=$(uuid_of "$spec" "$osdisk")
			if [ -n "$uuid" ]; then
				say "# azrestore: was $spec" >>"$NEW"
				say "${lead}UUID=$uuid${line#"$lead$spec"}" >>"$NEW"
				changed "fstab: $mp by UUID (was $spec)" && n=$((n + 1))
				continue
			fi
			if [ "$mp" = / ]; then
				warn "fstab: the UUID of $spec (on /) is unknown; give it with --fstab-map"
			elif [[ ",$opts," != *,nofail,* ]]; then
				# Missing at boot, it would stop the VM in emergency mode; nofail lets it come up.
				if [ -n "$opts" ]; then line=${line/[[:space:]]"$opts"/ "$opts",nofail}; else line+=" defaults,nofail"; fi
				changed "fstab: nofail on $mp ($spec: not on the OS disk, or its UUID is unknown)" && n=$((n + 1))
			fi
		fi
		say "$line" >>"$NEW"
	done <"$(r "$f")"
	# The lines above say what changed, if anything did but spacing.
	if [ $n -gt 0 ]; then commit "$f" ""; else commit "$f" "fstab: normalised"; fi
}

# --- network ---

do_net_rules() {
	local p
	p=$(rd /etc/udev/rules.d/70-persistent-net.rules)
	if [ -e "$p" ] || [ -L "$p" ]; then
		rm -f "$p"
		changed "udev: removed 70-persistent-net.rules"
	fi
	local gen=75-persistent-net-generator.rules
	if has "/lib/udev/rules.d/$gen" || has "/usr/lib/udev/rules.d/$gen"; then
		link "/etc/udev/rules.d/$gen" /dev/null "udev: disabled $gen"
	else
		p=$(rd "/etc/udev/rules.d/$gen")
		if [ -f "$p" ] && [ ! -L "$p" ]; then
			rm -f "$p"
			changed "udev: removed $gen"
		fi
	fi
}
# static_netplan FILE: addresses, gateways or routes outside a nameservers block.
static_netplan() {
	awk '{ match($0, /^ */); ind = RLENGTH }
		/^ *nameservers:/ { ns = ind; next }
		ns != "" && $0 !~ /^ *(#|$)/ && ind <= ns { ns = "" }
		ns == "" && /^ *(addresses|gateway4|gateway6|routes):/ { f = 1 }
		END { exit !f }' "$1"
}
do_network() {
	local d f ours=90-azrestore-eth0.yaml found=false dhcp=false
	if has /etc/netplan; then
		d=$(r /etc/netplan)
		for f in "$d"/*.yaml; do
			if [ ! -f "$f" ] || [ "${f##*/}" = $ours ]; then continue; fi
			found=true
			if static_netplan "$f"; then
				mv "$f" "$f.azrestore-disabled"
				changed "netplan: disabled ${f##*/} (static; Azure uses DHCP: give the NIC a static IP)"
			elif grep -q eth0 "$f" && grep -Eq '^ *dhcp4: *(true|yes)' "$f"; then
				dhcp=true
			fi
		done
		if $found || has "/etc/netplan/$ours"; then
			if ! $dhcp; then
				printf 'network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n' >"$NEW"
				commit "/etc/netplan/$ours" "netplan: eth0 by DHCP ($ours)" 600
			fi
			return 0
		fi
	fi
	if has /etc/sysconfig/network-scripts; then
		f=$(r /etc/sysconfig/network-scripts/ifcfg-eth0)
		if [ -f "$f" ] && grep -Eq '^BOOTPROTO=("|)dhcp' "$f" && grep -Eq '^ONBOOT=("|)yes' "$f" && ! grep -q '^HWADDR=' "$f"; then return 0; fi
		printf 'DEVICE=eth0\nONBOOT=yes\nBOOTPROTO=dhcp\nTYPE=Ethernet\nUSERCTL=no\nPEERDNS=yes\nIPV6INIT=no\n' >"$NEW"
		commit /etc/sysconfig/network-scripts/ifcfg-eth0 "ifcfg: eth0 by DHCP"
	elif [ -d "$(r /etc/sysconfig/network)" ] && has /etc/sysconfig/network/config; then
		f=$(r /etc/sysconfig/network/ifcfg-eth0)
		if [ -f "$f" ] && grep -Eq "^BOOTPROTO=(\"|'|)dhcp" "$f"; then return 0; fi
		printf "BOOTPROTO='dhcp'\nSTARTMODE='auto'\n" >"$NEW"
		commit /etc/sysconfig/network/ifcfg-eth0 "ifcfg: eth0 by DHCP"
	elif has /etc/network/interfaces; then
		f=$(r /etc/network/interfaces)
		if grep -Eqs '^[[:space:]]*iface[[:space:]]+eth0[[:space:]]+inet[[:space:]]+dhcp' "$f" "$(r /etc/network/interfaces.d)"/*; then return 0; fi
		if grep -Eq '^[[:space:]]*iface[[:space:]]+eth0[[:space:]]+inet[[:space:]]+static' "$f"; then
			warn "ifupdown: eth0 is static in /etc/network/interfaces; make it dhcp"
		elif grep -Eq '^[[:space:]]*source(-directory)?[[:space:]]+/etc/network/interfaces\.d' "$f"; then
			printf '# azrestore: Azure assigns addresses by DHCP\nallow-hotplug eth0\niface eth0 inet dhcp\n' >"$NEW"
			commit /etc/network/interfaces.d/50-azrestore-eth0 "ifupdown: eth0 by DHCP (50-azrestore-eth0)"
		else
			cp "$f" "$NEW"
			printf '\n# azrestore: Azure assigns addresses by DHCP\nallow-hotplug eth0\niface eth0 inet dhcp\n' >>"$NEW"
			commit /etc/network/interfaces "ifupdown: eth0 by DHCP"
		fi
	fi
	if grep -lsq '^method=manual' "$(r /etc/NetworkManager/system-connections)"/*.nmconnection; then
		note "NetworkManager: static profiles found; eth0 gets DHCP unless no-auto-default is set"
	fi
}

# --- main ---

usage() {
	sed -n '3,11p' "$0" >&2 2>/dev/null || true
	DONE=true
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	--lun) LUN=${2:-} && shift ;;
	--device) DEVICE=${2:-} && shift ;;
	--root) ROOT=${2:-} && shift ;;
	--fstab-map) FSTAB_MAP=${2:-} && shift ;;
	--chroot) CHROOT=yes ;;
	--no-chroot) CHROOT=no ;;
	-h | --help) usage ;;
	[0-9] | [0-9][0-9]) LUN=$1 ;;
	*) say "unknown argument: $1" >&2 && usage ;;
	esac
	shift
done
if [ -n "$ROOT" ]; then
	[ -d "$ROOT" ] || die "--root $ROOT: not a directory"
	ROOT=$(cd "$ROOT" && pwd -P)
	[ "$ROOT" != / ] || die "--root /: refusing to change the helper itself"
	CHROOT=${CHROOT:-no}
elif [ -n "$DEVICE$LUN" ]; then
	case $LUN in "" | [0-9] | [1-5][0-9] | 6[0-3]) ;; *) die "--lun $LUN: not a LUN (0-63)" ;; esac
	[ "$(id -u)" = 0 ] || die "run as root"
	MODE=device
	mount_disk
	CHROOT=${CHROOT:-yes}
else
	usage
fi
if [ "$CHROOT" = yes ] && [ ! -x "$(r /bin/sh)" ]; then
	note "no /bin/sh in the restored system: boot files cannot be regenerated here"
	CHROOT=no
fi
[ -z "$FSTAB_MAP" ] || [ -r "$FSTAB_MAP" ] || die "--fstab-map $FSTAB_MAP: cannot read it"
has /etc/fstab || has /etc/os-release || die "$ROOT does not look like a Linux root file system"
DISTRO="$(os_release ID) $(os_release VERSION_ID)"
DISTRO=${DISTRO% }
DISTRO=${DISTRO# }
say "preparing ${DISTRO:-an unknown distribution} at $ROOT ($MODE mode)"

do_sshd
do_firewalld
do_ufw
do_iptables
do_agent
do_cmdline
do_initramfs
do_fstab
do_net_rules
do_network
do_regenerate

say "summary: ${#CHANGES[@]} change(s), ${#WARNINGS[@]} warning(s), ${#PENDING[@]} pending"
DONE=true
result true
