#!/bin/bash
# azrestore: prepare a restored Windows OS disk for Azure, offline, on a LINUX helper it is
# attached to (the way virt-v2v converts Windows guests: ntfs-3g and hivex, no Windows).
#
#   prepare-windows-offline.sh --lun N       the helper's data disk at LUN N (or a bare N, or $AZRESTORE_LUN)
#   prepare-windows-offline.sh --device DEV  that disk by name
# --agent-msi FILE   the Azure VM agent's MSI on the helper (or $AZRESTORE_AGENT_MSI), copied onto
#                    the disk for the first-boot install (else that install downloads it)
# Needs root, ntfs-3g and hivexsh (libhivex-bin). Idempotent. Prints what it changed, then one
# last line: AZRESTORE-RESULT {json}. Exit status: 0 done (maybe with warnings), 1 failed, 2 usage.
#
# What it sets (RDP, SAN policy, RealTimeIsUniversal, firewall rules, services, BCD) and how
# the Azure VM agent gets installed at first boot (a local Group Policy startup script, as
# SYSTEM, no logon: RunOnce waits for a logon, SetupComplete.cmd runs only after Windows
# Setup) are in docs/reference.md. NOT RUN ON A REAL WINDOWS YET: checked against
# hives and NTFS volumes built by azrestore's tests only.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -Eeuo pipefail
umask 022
export LC_ALL=C PATH="${PATH:+$PATH:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

DEVICE="" LUN="${AZRESTORE_LUN:-}" MSI="${AZRESTORE_AGENT_MSI:-}" MODE=device WINDOWS="" AGENT=unknown
CHANGES=() NOTES=() WARNINGS=() MOUNTS=() PARTS=() DONE=false BASE="" WINPART="" WIN="" CS=""
SYSTEMROOT='C:\Windows'
WORK=$(mktemp -d "${TMPDIR:-/tmp}/azrestore.XXXXXX")
US=$'\037'
FIRSTBOOT=ProgramData/AzRestore/FirstBoot
CSE='[{42B5FAAE-6536-11D2-AE5A-0000F87571E3}{40B6664F-4972-11D1-A7CA-0000F87571E3}]'
BOOTMGR='{9dea862c-5cdd-4e70-acc1-f32b344d4795}'
declare -A ADDED=()

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
		json="{\"ok\":$1,\"error\":$(json_str "${2:-}"),\"mode\":\"$MODE\",\"windows\":$(json_str "$WINDOWS")"
		json+=",\"changes\":$(json_list "${CHANGES[@]}"),\"warnings\":$(json_list "${WARNINGS[@]}")"
		json+=",\"notes\":$(json_list "${NOTES[@]}"),\"agent\":\"$AGENT\",\"truncated\":$cut}"
		# Bytes, not characters: a product name may not be ASCII.
		[ "$(printf '%s' "$json" | wc -c)" -gt 3800 ] || break
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
	# In a subshell ($(...), pipelines) just fail: the caller reports.
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
	# rmdir, never rm -r: a mount point that failed to unmount holds the restored disk.
	if [ -n "$BASE" ]; then
		for i in "$BASE"/*; do [ ! -d "$i" ] || rmdir "$i" 2>/dev/null || true; done
		rmdir "$BASE" 2>/dev/null || true
	fi
	rm -rf "$WORK"
	if ! $DONE; then DONE=true && result false "stopped (status $rc)"; fi
}
trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR
trap cleanup EXIT

# --- the disk and its volumes ------------------------------------------------------------

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
fs_of() { blkid -p -s TYPE -o value "$1" 2>/dev/null || true; }
dir_of() { say "$BASE/${1##*/}"; } # dir_of DEV: where DEV is mounted
# mount_ntfs DEV rw|ro: with ntfs-3g; read-write refuses a hibernated or unclean volume.
mount_ntfs() {
	local dir rc=0
	dir=$(dir_of "$1")
	mkdir -p "$dir"
	if [ "$2" = ro ]; then
		ntfs-3g -o ro "$1" "$dir" 2>"$WORK/ntfs.err" || rc=$?
	else
		# noatime: reading what is already as wanted writes nothing (a second run changes no byte).
		ntfs-3g -o rw,norecover,windows_names,noatime "$1" "$dir" 2>"$WORK/ntfs.err" || rc=$?
	fi
	if [ $rc = 0 ]; then
		MOUNTS+=("$dir")
		# ntfs-3g falls back to read-only when the volume is unsafe to write.
		if [ "$2" = ro ] || [ -n "$(awk -v d="$dir" '$2 == d && $4 ~ /^rw/ { print }' /proc/mounts)" ]; then return 0; fi
		if grep -qi hibernat "$WORK/ntfs.err"; then rc=14; elif grep -Eqi 'unclean|unsafe|not unmounted|metadata kept' "$WORK/ntfs.err"; then rc=15; else rc=ro; fi
	fi
	[ "$2" = rw ] || return 1
	case $rc in
	14) die "$1 holds a hibernated Windows (or one shut down with Fast Startup): shut it down fully (shutdown /s /t 0) and back it up again; not changed" ;;
	15) die "$1 was not unmounted cleanly by Windows (its NTFS log is not empty): shut Windows down cleanly and back it up again; not changed" ;;
	*) die "ntfs-3g cannot mount $1 read-write (status $rc): $(tr '\n' ' ' <"$WORK/ntfs.err")" ;;
	esac
}
unmount() { # unmount DIR: one of MOUNTS, unmounted now
	local i
	umount "$1"
	for i in "${!MOUNTS[@]}"; do [ "${MOUNTS[i]}" != "$1" ] || unset 'MOUNTS[i]'; done
	MOUNTS=("${MOUNTS[@]}")
}
remount_rw() { # remount_rw DEV
	local dir
	dir=$(dir_of "$1")
	if [ -n "$(awk -v d="$dir" '$2 == d && $4 ~ /^rw/ { print }' /proc/mounts)" ]; then return 0; fi
	unmount "$dir"
	if [ "$(fs_of "$1")" = ntfs ]; then mount_ntfs "$1" rw
	else mount -o rw "$1" "$dir" && MOUNTS+=("$dir"); fi
}
# ci DIR PATH: DIR/PATH matched case-insensitively (NTFS names are; ntfs-3g's lookups are
# not), printed; status 1 if it does not exist.
ci() {
	local dir=$1 rest=$2 part e found
	while [ -n "$rest" ]; do
		part=${rest%%/*}
		if [ "$part" = "$rest" ]; then rest=""; else rest=${rest#*/}; fi
		[ -n "$part" ] || continue
		if [ -e "$dir/$part" ]; then dir=$dir/$part && continue; fi
		found=""
		for e in "$dir"/*; do
			e=${e##*/}
			if [ "${part,,}" = "${e,,}" ] && [ -e "$dir/$e" ]; then found=$dir/$e && break; fi
		done
		[ -n "$found" ] || return 1
		dir=$found
	done
	say "$dir"
}
ci_mkdir() { # ci_mkdir DIR PATH: like ci, making what is missing
	local dir=$1 part p
	for part in ${2//\// }; do
		if p=$(ci "$dir" "$part"); then dir=$p; else dir=$dir/$part && mkdir "$dir"; fi
	done
	say "$dir"
}
mount_disk() {
	local part fs
	find_disk
	while read -r part fs; do
		if [ "$fs" = part ] || [ "$part" = "$DEVICE" ]; then PARTS+=("$part"); fi
	done < <(lsblk -lnpo NAME,TYPE "$DEVICE")
	# Where the kernel shows no partitions (loop devices without a scan), udev's links may.
	for part in "/dev/disk/azure/scsi1/lun$LUN"-part*; do
		if [ -z "$LUN" ] || [ ! -e "$part" ]; then continue; fi
		part=$(readlink -f "$part")
		case " ${PARTS[*]} " in *" $part "*) ;; *) PARTS+=("$part") ;; esac
	done
	BASE=$(mktemp -d /run/azrestore-win.XXXXXX 2>/dev/null || mktemp -d /tmp/azrestore-win.XXXXXX)
	for part in "${PARTS[@]}"; do
		fs=$(fs_of "$part")
		case $fs in
		ntfs) mount_ntfs "$part" ro || { note "cannot mount $part (ntfs): $(head -c 200 "$WORK/ntfs.err")" && continue; } ;;
		vfat)
			mkdir -p "$(dir_of "$part")"
			if mount -o ro "$part" "$(dir_of "$part")" 2>/dev/null; then MOUNTS+=("$(dir_of "$part")")
			else note "cannot mount $part (vfat): its boot configuration is not read" && continue; fi
			;;
		BitLocker) die "$part is encrypted with BitLocker: it cannot be prepared offline (decrypt it, or suspend protection and back it up decrypted)" ;;
		*) continue ;;
		esac
		if [ -z "$WINPART" ] && [ "$fs" = ntfs ] && ci "$(dir_of "$part")" Windows/System32/config/SYSTEM >/dev/null; then WINPART=$part; fi
	done
	[ -n "$WINPART" ] || die "no Windows installation (an NTFS volume holding Windows\\System32\\config\\SYSTEM) on $DEVICE"
	say "found: Windows on $WINPART"
	remount_rw "$WINPART"
	WIN=$(dir_of "$WINPART")
}

# --- the offline registry, with hivexsh ---------------------------------------------------

# lsval.awk: hivexsh's lsval lines as NAME US TYPE US HEX (strings encoded again as UTF-16LE
# with their terminator); with -v out=, a want file's edits (NAME US TYPE US HEX US HOW; HOW
# set, or activate: a firewall rule made Active=TRUE, added if missing and HEX given) made:
# "setval N" and its pairs to out, what changed to logf.
cat >"$WORK/lsval.awk" <<'EOF'
BEGIN { for (i = 1; i < 256; i++) ord[sprintf("%c", i)] = i; US = "\037"; n = 0 }
function hex16(cp) {
	if (cp >= 65536) { cp -= 65536; return hex16(55296 + int(cp / 1024)) hex16(56320 + cp % 1024) }
	return sprintf("%02x%02x", cp % 256, int(cp / 256))
}
function utf16(s,   i, len, c, cp, k, out) {
	out = ""; len = length(s)
	for (i = 1; i <= len; i++) {
		c = ord[substr(s, i, 1)]
		if (c < 128) cp = c
		else {
			if (c >= 240) { cp = c % 8; k = 3 } else if (c >= 224) { cp = c % 16; k = 2 } else { cp = c % 32; k = 1 }
			while (k-- > 0) { i++; cp = cp * 64 + ord[substr(s, i, 1)] % 64 }
		}
		out = out hex16(cp)
	}
	return out "0000"
}
function unquote(s,   out, i, c) {
	out = ""
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (c == "\\") { i++; c = substr(s, i, 1) }
		out = out c
	}
	return out
}
FILENAME == want { split($0, w, US); wname[++nw] = w[1]; wtype[nw] = w[2]; whex[nw] = w[3]; whow[nw] = w[4]; next }
{
	line = $0
	if (substr(line, 1, 1) != "\"") { bad = "cannot read value line: " substr(line, 1, 60); exit }
	name = ""
	for (i = 2; i <= length(line); i++) {
		c = substr(line, i, 1)
		if (c == "\\") { i++; name = name substr(line, i, 1); continue }
		if (c == "\"") break
		name = name c
	}
	if (substr(line, i + 1, 1) != "=") { bad = "cannot read value line: " substr(line, 1, 60); exit }
	rest = substr(line, i + 2)
	if (name == "@") name = ""
	str = ""
	if (rest ~ /^dword:[0-9a-f]+$/ && length(rest) == 14) {
		type = 4; hex = substr(rest, 13, 2) substr(rest, 11, 2) substr(rest, 9, 2) substr(rest, 7, 2)
	} else if (rest ~ /^hex\([0-9]+\):/) {
		type = rest; sub(/^hex\(/, "", type); sub(/\).*/, "", type)
		hex = rest; sub(/^hex\([0-9]+\):/, "", hex); gsub(/,/, "", hex)
	} else {
		type = 1
		if (rest ~ /^str\([0-9]+\):/) { type = rest; sub(/^str\(/, "", type); sub(/\).*/, "", type); sub(/^str\([0-9]+\):/, "", rest) }
		if (rest !~ /^".*"$/) { bad = "cannot read value line: " substr(line, 1, 60); exit }
		str = unquote(substr(rest, 2, length(rest) - 2)); hex = utf16(str)
	}
	names[++n] = name; types[n] = type; hexes[n] = hex; strs[n] = str; at[tolower(name)] = n
}
END {
	if (bad != "") { print bad > "/dev/stderr"; exit 3 }
	if (out == "") { for (i = 1; i <= n; i++) print names[i] US types[i] US hexes[i]; exit 0 }
	for (j = 1; j <= nw; j++) {
		i = at[tolower(wname[j])]
		if (whow[j] == "activate" && (i || whex[j] == "")) {
			if (i && index(strs[i], "|Active=FALSE|")) {
				s = strs[i]; sub(/\|Active=FALSE\|/, "|Active=TRUE|", s)
				hexes[i] = utf16(s); print "activated " names[i] > logf
			}
			continue
		}
		if (!i) { names[++n] = wname[j]; i = n; at[tolower(wname[j])] = n; print "added " wname[j] > logf }
		else if (types[i] == wtype[j] && hexes[i] == whex[j]) continue
		else print "set " names[i] > logf
		types[i] = wtype[j]; hexes[i] = whex[j]
	}
	# hivexsh reads lines of up to 8191 bytes (without a terminal); Windows wants values over
	# 16344 bytes in big-data records, which hivex does not write.
	for (i = 1; i <= n; i++) if (length("hex:" types[i] ":" hexes[i]) > 8190) {
		print "its value " names[i] " is over 4 KiB, more than hivexsh can write back" > "/dev/stderr"; exit 4
	}
	print "setval " n > out
	for (i = 1; i <= n; i++) { print (names[i] == "" ? "@" : names[i]) > out; print "hex:" types[i] ":" hexes[i] > out }
}
EOF

# hive_clean FILE WHAT: a regf hive whose two sequence numbers agree (saved cleanly: nothing
# waiting in its .LOG1/.LOG2 transaction logs, which Windows would replay over our changes).
hive_clean() {
	local h
	h=$(od -An -v -tx1 -N12 "$1" | tr -d ' \n')
	[ "${h:0:8}" = 72656766 ] || die "$2 is not a registry hive"
	[ "${h:8:8}" = "${h:16:8}" ] || die "$2 was not saved cleanly (changes pending in its transaction logs): boot Windows and shut it down cleanly, then back it up again; not changed"
}
has_key() { printf 'cd %s\n' "$2" | hivexsh "$1" >/dev/null 2>&1; } # has_key HIVE KEY
# get HIVE KEY NAME: the value as a string (hivexsh lsval NAME); status 1 if missing.
get() { printf 'cd %s\nlsval %s\n' "$2" "$3" | hivexsh "$1" 2>/dev/null; }
# vals HIVE KEY: NAME US TYPE US HEX lines; status 1 if KEY is missing, 2 if unreadable.
vals() {
	if ! printf 'cd %s\nlsval\n' "$2" | hivexsh "$1" >"$WORK/lsval" 2>"$WORK/lsval.err"; then
		if grep -q 'not found' "$WORK/lsval.err"; then return 1; fi
		return 2
	fi
	awk -f "$WORK/lsval.awk" "$WORK/lsval" 2>"$WORK/lsval.err" || return 2
}
# dw N: a DWORD's bytes in hex.
dw() { printf '%02x%02x%02x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
sz() { printf '%s' "$1" | iconv -f UTF-8 -t UTF-16LE | od -An -v -tx1 | tr -d ' \n' && printf 0000; }
# add_key HIVE KEY: queue KEY's creation (and its parents') unless it exists.
add_key() {
	local parent=${2%\\*}
	if has_key "$1" "$2" || [ -n "${ADDED[$1|$2]:-}" ]; then return 0; fi
	[ -n "$parent" ] && add_key "$1" "$parent"
	printf 'cd %s\nadd %s\n' "${parent:-\\}" "${2##*\\}" >>"$1.cmds"
	ADDED[$1|$2]=1
}
# edit HIVE KEY WHAT NAME US TYPE US HEX US HOW ...: queue the values for KEY (once per key
# and run) when any differs; reports each as "WHAT: NAME" (or WHAT alone for one value).
edit() {
	local hive=$1 key=$2 what=$3 w rc=0 how name
	shift 3
	: >"$WORK/want" && : >"$WORK/log" && : >"$WORK/setval"
	for w in "$@"; do say "$w" >>"$WORK/want"; done
	vals "$hive" "$key" >/dev/null || rc=$?
	if [ $rc = 2 ]; then warn "$what: cannot read $key ($(head -c 150 "$WORK/lsval.err")); not changed" && return 0; fi
	if [ $rc = 1 ]; then : >"$WORK/lsval"; fi
	awk -v want="$WORK/want" -v out="$WORK/setval" -v logf="$WORK/log" -f "$WORK/lsval.awk" "$WORK/want" "$WORK/lsval" 2>"$WORK/lsval.err" ||
		{ warn "$what: $key not changed ($(head -c 150 "$WORK/lsval.err"))" && return 0; }
	[ -s "$WORK/log" ] || return 0
	[ $rc = 0 ] || add_key "$hive" "$key"
	{ printf 'cd %s\n' "$key" && cat "$WORK/setval"; } >>"$hive.cmds"
	if [ $# = 1 ] || [ $rc = 1 ]; then changed "$what" && return 0; fi
	while read -r how name; do changed "$what: $how $name"; done <"$WORK/log"
}
# commit_hive COPY ORIGINAL WHAT: the queued edits made on COPY and written over ORIGINAL.
commit_hive() {
	[ -s "$1.cmds" ] || return 0
	say commit >>"$1.cmds"
	hivexsh -w -f "$1.cmds" "$1" >"$WORK/commit.out" 2>&1 || die "hivexsh could not change $3: $(tail -c 300 "$WORK/commit.out" | tr '\n' ' ')"
	cat "$1" >"$2"
	say "written: $3"
}
v() { say "$1$US$2$US$3$US${4:-set}"; } # v NAME TYPE HEX [HOW]: one want line

# --- the changes ---------------------------------------------------------------------------

do_system() {
	local h=$1 cur cs s start svc
	cur=$(get "$h" '\Select' Current) || die "the SYSTEM hive has no Select\\Current: not a Windows SYSTEM hive"
	[[ $cur =~ ^[1-9][0-9]*$ ]] || die "the SYSTEM hive's Select\\Current is '$cur', not a control set number"
	CS=$(printf 'ControlSet%03d' "$cur")
	has_key "$h" "\\$CS" || die "the SYSTEM hive has no $CS (its Select\\Current is $cur): the hive is damaged or not Windows'"
	cs="\\$CS"
	say "control set: $CS"
	edit "$h" "$cs\\Services\\partmgr\\Parameters" "storage: SAN policy OnlineAll" "$(v SanPolicy 4 "$(dw 1)")"
	edit "$h" "$cs\\Control\\TimeZoneInformation" "time: RealTimeIsUniversal 1" "$(v RealTimeIsUniversal 4 "$(dw 1)")"
	edit "$h" "$cs\\Control\\Terminal Server" "rdp" "$(v fDenyTSConnections 4 "$(dw 0)")" \
		"$(v KeepAliveEnable 4 "$(dw 1)")" "$(v KeepAliveInterval 4 "$(dw 1)")"
	if has_key "$h" "$cs\\Control\\Terminal Server\\WinStations\\RDP-Tcp"; then
		edit "$h" "$cs\\Control\\Terminal Server\\WinStations\\RDP-Tcp" "rdp listener" \
		"$(v PortNumber 4 "$(dw 3389)")" "$(v LanAdapter 4 "$(dw 0)")" "$(v UserAuthentication 4 "$(dw 1)")" \
		"$(v SecurityLayer 4 "$(dw 1)")" "$(v fAllowSecProtocolNegotiation 4 "$(dw 1)")" \
		"$(v KeepAliveTimeout 4 "$(dw 1)")" "$(v fInheritReconnectSame 4 "$(dw 1)")" \
		"$(v fReconnectSame 4 "$(dw 0)")" "$(v MaxInstanceCount 4 ffffffff)"
	else
		warn "rdp: no RDP-Tcp listener in the registry (Remote Desktop not installed?); not made"
	fi
	if get "$h" "$cs\\Control\\Terminal Server\\WinStations\\RDP-Tcp" SSLCertificateSHA1Hash >/dev/null; then
		note "rdp: the listener has its own certificate (SSLCertificateSHA1Hash), left as is; remove it if self-signed"
	fi
	# Services: TermService not disabled (manual, as the guidance sets it); the others automatic.
	start=$(get "$h" "$cs\\Services\\TermService" Start) || start=""
	if [ "$start" = 4 ]; then edit "$h" "$cs\\Services\\TermService" "rdp: Remote Desktop Services no longer disabled (manual)" "$(v Start 4 "$(dw 3)")"
	elif [ -z "$start" ]; then warn "rdp: no TermService service in the registry"; fi
	for svc in BFE Dhcp Dnscache IKEEXT iphlpsvc nsi mpssvc W32Time; do
		s=$(get "$h" "$cs\\Services\\$svc" Start) || { note "services: no $svc service" && continue; }
		[ "$s" = 2 ] || edit "$h" "$cs\\Services\\$svc" "services: $svc automatic (was $s)" "$(v Start 4 "$(dw 2)")"
	done
	do_firewall "$h" "$cs\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\FirewallRules"
	has_key "$h" "$cs\\Services\\WindowsAzureGuestAgent" && AGENT=installed
	return 0
}
do_firewall() {
	local h=$1 key=$2 app='%SystemRoot%\system32\svchost.exe' wants=()
	if ! has_key "$h" "$key"; then
		warn "firewall: no rules in the registry; allow RDP (3389) and WinRM (5985) in the VM"
		return 0
	fi
	wants+=("$(v RemoteDesktop-UserMode-In-TCP 1 "$(sz "v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|App=$app|Svc=termservice|Name=@FirewallAPI.dll,-28775|Desc=@FirewallAPI.dll,-28756|EmbedCtxt=@FirewallAPI.dll,-28752|")" activate)")
	wants+=("$(v RemoteDesktop-UserMode-In-UDP 1 "$(sz "v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=17|LPort=3389|App=$app|Svc=termservice|Name=@FirewallAPI.dll,-28776|Desc=@FirewallAPI.dll,-28777|EmbedCtxt=@FirewallAPI.dll,-28752|")" activate)")
	wants+=("$(v WINRM-HTTP-In-TCP 1 "$(sz "v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=5985|App=System|Name=@FirewallAPI.dll,-35001|Desc=@FirewallAPI.dll,-35002|EmbedCtxt=@FirewallAPI.dll,-30267|")" activate)")
	# Present ones (never added): the old RDP rule name and WinRM's public-profile rule.
	wants+=("$(v RemoteDesktop-In-TCP 1 "" activate)" "$(v WINRM-HTTP-In-TCP-PUBLIC 1 "" activate)")
	edit "$h" "$key" firewall "${wants[@]}"
}

do_software() {
	local h=$1 ver='\Microsoft\Windows NT\CurrentVersion' name build
	name=$(get "$h" "$ver" ProductName) || name=""
	build=$(get "$h" "$ver" CurrentBuild) || build=""
	WINDOWS="$name${build:+ (build $build)}"
	say "preparing ${WINDOWS:-an unknown Windows} on $WINPART"
	SYSTEMROOT=$(get "$h" "$ver" SystemRoot) || SYSTEMROOT='C:\Windows'
	[[ $SYSTEMROOT =~ ^[A-Za-z]: ]] || SYSTEMROOT='C:\Windows'
	[[ $SYSTEMROOT =~ ^[Cc]: ]] || warn "Windows is on ${SYSTEMROOT:0:2}, not C:; the first-boot installer's paths use ${SYSTEMROOT:0:2}"
}
do_policies() {
	local h=$1 pol='\Policies\Microsoft\Windows NT\Terminal Services'
	if [ "$(get "$h" "$pol" fDenyTSConnections || true)" = 1 ]; then
		edit "$h" "$pol" "rdp: the policy denying connections lifted" "$(v fDenyTSConnections 4 "$(dw 0)")"
	fi
	if has_key "$h" '\Policies\Microsoft\WindowsFirewall'; then
		note "firewall: group policy settings found; they may override the local rules"
	fi
}

# --- the Azure VM agent, installed at first boot ------------------------------------------

# The installer, run at boot as SYSTEM by a local Group Policy machine startup script: the
# agent's MSI (the one put next to it, else downloaded from Microsoft's documented link),
# msiexec /quiet /norestart, a log; then its registration removed. Retried at every boot
# until it succeeds.
installer() {
	cat <<'EOF' | sed 's/$/\r/'
@echo off
rem Installed by azrestore (prepare-windows-offline.sh): installs the Azure VM agent once, at
rem boot, as SYSTEM (a local Group Policy machine startup script), then removes that script.
setlocal
set "LOG=%~dp0install-agent.log"
set "MSI=%~dp0WindowsAzureVmAgent.msi"
echo %DATE% %TIME% start>>"%LOG%"
sc query WindowsAzureGuestAgent >nul 2>&1 && goto registered
if exist "%MSI%" goto install
for /l %%i in (1,1,10) do (
  powershell.exe -NoProfile -ExecutionPolicy Bypass -Command "[Net.ServicePointManager]::SecurityProtocol = 'Tls12'; (New-Object Net.WebClient).DownloadFile('https://go.microsoft.com/fwlink/?linkid=394789', '%MSI%.part')" >>"%LOG%" 2>&1 && goto downloaded
  ping -n 31 127.0.0.1 >nul
)
echo %DATE% %TIME% the download failed; tried again at the next boot>>"%LOG%"
exit /b 1
:downloaded
move /y "%MSI%.part" "%MSI%" >>"%LOG%" 2>&1
:install
msiexec.exe /i "%MSI%" /quiet /norestart /l*v "%~dp0msiexec.log"
set RC=%ERRORLEVEL%
echo %DATE% %TIME% msiexec exit status %RC%>>"%LOG%"
if not "%RC%"=="0" if not "%RC%"=="3010" exit /b 1
:registered
reg delete "HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Group Policy\Scripts\Startup\0" /f >>"%LOG%" 2>&1
reg delete "HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Group Policy\State\Machine\Scripts\Startup\0" /f >>"%LOG%" 2>&1
del /f /q "%SystemRoot%\System32\GroupPolicy\Machine\Scripts\scripts.ini" >>"%LOG%" 2>&1
echo %DATE% %TIME% done>>"%LOG%"
echo done>"%~dp0done"
exit /b 0
EOF
}
# Files ntfs-3g makes (without a user mapping) get "Everyone: full control"; these run as
# SYSTEM, so they get what Windows gives System32 instead: owner Administrators, SYSTEM and
# Administrators full control, Users read and execute (ntfs-3g's system.ntfs_acl attribute).
SD=01000490140000002400000000000000300000000102000000000005200000002002000001010000000000051200000002004c000300000000031400ff011f0001010000000000051200000000031800ff011f000102000000000005200000002002000000031800a900120001020000000000052000000021020000
SETACL='import os, sys
sd, n = bytes.fromhex(sys.argv[1]), 0
for p in sys.argv[2:]:
    if os.getxattr(p, "system.ntfs_acl") != sd:
        os.setxattr(p, "system.ntfs_acl", sd)
        n += 1
print(n)'
secure() { # secure PATH...: each without that ACL gets it
	local n=0 p
	if command -v python3 >/dev/null; then
		n=$(python3 -c "$SETACL" "$SD" "$@")
	elif command -v setfattr >/dev/null && command -v getfattr >/dev/null; then
		for p in "$@"; do
			[ "$(getfattr -h -n system.ntfs_acl -e hex --absolute-names "$p" 2>/dev/null | sed -n 's/^system.ntfs_acl=0x//p')" != "$SD" ] || continue
			setfattr -h -n system.ntfs_acl -v "0x$SD" "$p" && n=$((n + 1))
		done
	else
		warn "agent: no python3 or setfattr on the helper: the first-boot files keep ntfs-3g's ACL (Everyone: full control)"
		return 0
	fi
	[ "$n" = 0 ] || changed "agent: ACL of $n first-boot file(s) and folder(s): SYSTEM and Administrators full control, Users read"
}
# put FILE WHAT: FILE (a path on the Windows volume) gets $WORK/new's content if it differs.
put() {
	if [ -f "$1" ] && cmp -s "$WORK/new" "$1"; then return 0; fi
	cat "$WORK/new" >"$1"
	changed "$2"
}
no_agent() {
	AGENT=missing
	warn "agent: not installed, and the disk has $1 of its own (not merged); install the agent in the VM (https://go.microsoft.com/fwlink/?linkid=394789)"
}
do_agent() {
	local soft=$1 dir gp scripts ini cmdline sroot=${SYSTEMROOT%%\\*} key st
	if [ "$AGENT" = installed ]; then
		note "agent: the Azure VM agent is installed"
		return 0
	fi
	cmdline="$sroot\\${FIRSTBOOT//\//\\}\\install-agent.cmd"
	gp=$(ci_mkdir "$WIN" Windows/System32/GroupPolicy)
	for key in '\Microsoft\Windows\CurrentVersion\Group Policy\Scripts\Startup\0\0' \
		'\Microsoft\Windows\CurrentVersion\Group Policy\State\Machine\Scripts\Startup\0\0'; do
		st=$(get "$soft" "$key" Script) || continue
		if [ "$st" != "$cmdline" ]; then no_agent "local startup scripts" && return 0; fi
	done
	if scripts=$(ci "$gp" Machine/Scripts/scripts.ini); then
		if ! iconv -f UTF-16 -t UTF-8 "$scripts" 2>/dev/null | tr -d '\r' | grep -qiF "CmdLine=$cmdline"; then
			no_agent "a local scripts.ini" && return 0
		fi
	fi
	dir=$(ci_mkdir "$WIN" "$FIRSTBOOT")
	installer >"$WORK/new"
	put "$dir/install-agent.cmd" "agent: first-boot installer \\${FIRSTBOOT//\//\\}\\install-agent.cmd"
	if [ -n "$MSI" ]; then
		cp "$MSI" "$WORK/new"
		put "$dir/WindowsAzureVmAgent.msi" "agent: the helper's agent MSI copied for the first-boot install"
	else
		note "agent: the first-boot installer downloads the agent (https://go.microsoft.com/fwlink/?linkid=394789): the VM needs outbound internet"
	fi
	# The local Group Policy: scripts.ini (UTF-16LE, as gpedit writes it) ...
	if [ -z "${scripts:-}" ]; then
		mkdir -p "$(ci_mkdir "$gp" Machine/Scripts)/Startup" "$(ci_mkdir "$gp" Machine/Scripts)/Shutdown"
		printf '\r\n[Startup]\r\n0CmdLine=%s\r\n0Parameters=\r\n' "$cmdline" | iconv -f UTF-8 -t UTF-16LE >"$WORK/body"
		{ printf '\377\376' && cat "$WORK/body"; } >"$WORK/new"
		put "$(ci_mkdir "$gp" Machine/Scripts)/scripts.ini" "agent: local Group Policy startup script (scripts.ini)"
		ini=bump
	fi
	# ... gpt.ini naming the scripts extension, its version raised when scripts.ini changed ...
	gpt_ini "$gp" "${ini:-}"
	# ... and what the scripts extension would write from them, so that the first boot runs it
	# even before Group Policy processes the new version.
	for key in '\Microsoft\Windows\CurrentVersion\Group Policy\Scripts\Startup\0' \
		'\Microsoft\Windows\CurrentVersion\Group Policy\State\Machine\Scripts\Startup\0'; do
		edit "$soft" "$key" "agent: startup script registered (${key#*Group Policy\\})" \
			"$(v GPO-ID 1 "$(sz LocalGPO)")" "$(v SOM-ID 1 "$(sz Local)")" \
			"$(v FileSysPath 1 "$(sz "$SYSTEMROOT\\System32\\GroupPolicy\\Machine")")" \
			"$(v DisplayName 1 "$(sz 'Local Group Policy')")" "$(v GPOName 1 "$(sz 'Local Group Policy')")" \
			"$(v PSScriptOrder 4 "$(dw 1)")"
		edit "$soft" "$key\\0" "agent: startup script entry (${key#*Group Policy\\}\\0)" \
			"$(v Script 1 "$(sz "$cmdline")")" "$(v Parameters 1 "$(sz '')")" \
			"$(v IsPowershell 4 "$(dw 0)")" "$(v ExecTime 11 0000000000000000)"
	done
	# Ours: the AzRestore folder and all in it, the Group Policy files and folders named here.
	local own=() p
	mapfile -d '' own < <(find "$(ci "$WIN" "${FIRSTBOOT%/*}")" -print0)
	for p in "" gpt.ini Machine Machine/Scripts Machine/Scripts/scripts.ini Machine/Scripts/Startup Machine/Scripts/Shutdown; do
		if p=$(ci "$gp" "$p"); then own+=("$p"); fi
	done
	secure "${own[@]}"
	AGENT=first_boot
	note "agent: installed at first boot by a local Group Policy startup script (not yet run on a real Windows); it needs .NET Framework 4"
}
gpt_ini() { # gpt_ini GPDIR [bump]
	local f ext="" ver=0 line
	if f=$(ci "$1" gpt.ini); then
		ext=$(tr -d '\r' <"$f" | sed -n 's/^gPCMachineExtensionNames=//Ip' | head -n 1)
		ver=$(tr -d '\r' <"$f" | sed -n 's/^Version=//Ip' | head -n 1)
	else
		f=$1/gpt.ini
	fi
	[[ $ver =~ ^[0-9]+$ ]] || ver=0
	if [[ ${ext^^} != *42B5FAAE-6536-11D2-AE5A-0000F87571E3* ]]; then
		# Each [{CSE}{tool}] once, sorted, as the Group Policy editor keeps them.
		ext=$(printf '%s%s' "$ext" "$CSE" | sed 's/\]\[/]\n[/g' | sort -u | tr -d '\n')
	elif [ "$2" != bump ] && [ -f "$f" ]; then
		return 0
	fi
	[ "$2" != bump ] || ver=$((ver + 1))
	: >"$WORK/new"
	if [ -f "$f" ]; then
		while IFS= read -r line || [ -n "$line" ]; do
			line=${line%$'\r'}
			case ${line,,} in
			gpcmachineextensionnames=*) line="gPCMachineExtensionNames=$ext" && ext="" ;;
			version=*) line="Version=$ver" && ver="" ;;
			esac
			printf '%s\r\n' "$line" >>"$WORK/new"
		done <"$f"
	else
		printf '[General]\r\n' >"$WORK/new"
	fi
	[ -z "$ext" ] || printf 'gPCMachineExtensionNames=%s\r\n' "$ext" >>"$WORK/new"
	[ -z "$ver" ] || printf 'Version=%s\r\n' "$ver" >>"$WORK/new"
	put "$f" "agent: local Group Policy gpt.ini (scripts extension, version)"
}

# --- boot configuration (the BCD store, a hive too) ---------------------------------------

do_bcd() {
	local part dir store copy def obj h found=false
	for part in "${PARTS[@]}"; do
		dir=$(dir_of "$part")
		mountpoint -q "$dir" 2>/dev/null || continue
		for store in EFI/Microsoft/Boot/BCD Boot/BCD; do
			store=$(ci "$dir" "$store") || continue
			found=true
			copy=$WORK/BCD-${part##*/}-${store//\//_}
			cp "$store" "$copy"
			h=$(od -An -v -tx1 -N12 "$copy" | tr -d ' \n')
			if [ "${h:0:8}" != 72656766 ] || [ "${h:8:8}" != "${h:16:8}" ]; then
				warn "boot: ${store#"$dir"/} on $part is not a BCD hive, or was not saved cleanly; left alone" && continue
			fi
			def=$(get "$copy" "\\Objects\\$BOOTMGR\\Elements\\23000003" Element) || def=""
			if [[ ! $def =~ ^\{[0-9a-fA-F-]{36}\}$ ]] || ! has_key "$copy" "\\Objects\\$def\\Elements"; then
				warn "boot: ${store#"$dir"/} on $part has no default boot entry; recoveryenabled/bootstatuspolicy not set"
				continue
			fi
			obj="\\Objects\\$def\\Elements"
			edit "$copy" "$obj\\16000009" "boot: recoveryenabled No" "$(v Element 3 00)"
			edit "$copy" "$obj\\250000e0" "boot: bootstatuspolicy IgnoreAllFailures" "$(v Element 3 0100000000000000)"
			if [ -s "$copy.cmds" ]; then
				remount_rw "$part"
				store=$(ci "$dir" "${store#"$dir"/}")
				commit_hive "$copy" "$store" "${store#"$dir"/} on $part"
			fi
		done
	done
	$found || warn "boot: no BCD store (Boot\\BCD, EFI\\Microsoft\\Boot\\BCD) on the disk; recoveryenabled/bootstatuspolicy not set"
}

# --- main ----------------------------------------------------------------------------------

usage() {
	sed -n '3,10p' "$0" >&2 2>/dev/null || true
	DONE=true
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	--lun) LUN=${2:-} && shift ;;
	--device) DEVICE=${2:-} && shift ;;
	--agent-msi) MSI=${2:-} && shift ;;
	-h | --help) usage ;;
	[0-9] | [0-9][0-9]) LUN=$1 ;;
	*) say "unknown argument: $1" >&2 && usage ;;
	esac
	shift
done
[ -n "$DEVICE$LUN" ] || usage
case $LUN in "" | [0-9] | [1-5][0-9] | 6[0-3]) ;; *) die "--lun $LUN: not a LUN (0-63)" ;; esac
[ "$(id -u)" = 0 ] || die "run as root"
for tool in hivexsh ntfs-3g iconv blkid lsblk; do
	command -v "$tool" >/dev/null || die "the helper has no $tool (install libhivex-bin and ntfs-3g)"
done
[ -z "$MSI" ] || [ -r "$MSI" ] || die "--agent-msi $MSI: cannot read it"
mount_disk
system=$(ci "$WIN" Windows/System32/config/SYSTEM)
software=$(ci "$WIN" Windows/System32/config/SOFTWARE) || die "no Windows\\System32\\config\\SOFTWARE hive on $WINPART"
cp "$system" "$WORK/SYSTEM" && cp "$software" "$WORK/SOFTWARE"
hive_clean "$WORK/SYSTEM" "the SYSTEM hive" && hive_clean "$WORK/SOFTWARE" "the SOFTWARE hive"
do_software "$WORK/SOFTWARE"
do_system "$WORK/SYSTEM"
do_policies "$WORK/SOFTWARE"
do_agent "$WORK/SOFTWARE"
commit_hive "$WORK/SYSTEM" "$system" "the SYSTEM hive"
commit_hive "$WORK/SOFTWARE" "$software" "the SOFTWARE hive"
do_bcd

say "summary: ${#CHANGES[@]} change(s), ${#WARNINGS[@]} warning(s)"
DONE=true
result true
