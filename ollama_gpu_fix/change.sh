#!/bin/sh
# ollama-gpu-fix change v1: every write, edit, removal and restore the fix makes as root, and
# the transaction journal that lets a later run finish or undo an interrupted one.
#
# Run as `sh -c '<this script>' ogf-change COMMAND ARGS...` (one remote command per call).
# Why it looks like this:
# - Root writes only what root owns. A path is written only when every directory above it is
#   root's and writable by nobody else and no component is a symbolic link: then no other user
#   can swap anything between the check and the write, whatever the timing. The file itself
#   must be root's regular file (or absent). A file another user controls is never edited.
# - Temp file + rename in the same directory: a reader sees the old or the new file, never half
#   of one; rename(2) replaces the name, it never follows a link that might sit there.
# - Compare and swap: an edit names the sha256 of the content it was computed from; when the
#   file changed since, nothing is written.
# - Journal: /var/lib/ollama-gpu-fix/txn/journal records each step before it runs and the
#   original of every file before its first change (backup/<n>, with mode and owner), so a
#   rollback or a later run can put the host back as it was found.
# - It ignores SIGHUP: a lost SSH connection does not stop it between a stop and a start.
# Exit codes: 0 done, 2 refused (nothing written; the reason is on stdout), 1 failed.

STATE=/var/lib/ollama-gpu-fix
TXN=$STATE/txn
LAST=$STATE/txn.last

say() { printf '%s\n' "$*"; }
refuse() {
	say "refused: $*"
	exit 2
}
fail() {
	say "failed: $*"
	exit 1
}
now() { date -u +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo -; }

# `ls -ldn PATH` -> E_MODE E_UID E_GID E_SIZE (of the entry itself, never through a link);
# 1 when absent
entry() {
	# shellcheck disable=SC2046 # the words of one ls line, on purpose
	set -- $(ls -ldn -- "$1" 2>/dev/null)
	[ $# -ge 5 ] || return 1
	E_MODE=$1
	E_UID=$3
	E_GID=$4
	E_SIZE=$5
}

# Is DIR's chain root's alone? Every component from / down must be a directory (never a link)
# owned by uid 0 and writable by neither group nor others. Sets WHY when not.
root_chain() {
	case $1 in
	/*) ;;
	*)
		WHY="$1 is not an absolute path"
		return 1
		;;
	esac
	case "/$1/" in
	*/../* | */./*)
		WHY="$1 has . or .. in it"
		return 1
		;;
	*[[:space:]]*)
		WHY="$1 has white space in it"
		return 1
		;;
	esac
	rc_path=
	rc_rest=${1#/}
	while :; do
		rc_here=${rc_path:-/}
		if [ -L "$rc_here" ]; then
			WHY="$rc_here is a symbolic link"
			return 1
		fi
		if ! entry "$rc_here"; then
			WHY="$rc_here does not exist"
			return 1
		fi
		case $E_MODE in
		d*) ;;
		*)
			WHY="$rc_here is not a directory"
			return 1
			;;
		esac
		if [ "$E_UID" != 0 ]; then
			WHY="$rc_here belongs to uid $E_UID, not root"
			return 1
		fi
		case $E_MODE in
		?????w* | ????????w*)
			WHY="$rc_here is writable by other users ($E_MODE)"
			return 1
			;;
		esac
		[ -n "$rc_rest" ] || return 0
		rc_part=${rc_rest%%/*}
		rc_rest=${rc_rest#"$rc_part"}
		rc_rest=${rc_rest#/}
		[ -n "$rc_part" ] && rc_path="$rc_path/$rc_part"
	done
}

# Why root may not write PATH now ('' and 0 when it may). Absent is fine when its directory
# (or, for a missing directory, the one above it) is root's alone.
target() {
	WHY=
	t_dir=${1%/*}
	[ -n "$t_dir" ] || t_dir=/
	if [ ! -e "$t_dir" ] && [ ! -L "$t_dir" ]; then
		root_chain "${t_dir%/*}" || return 1
		[ -w "${t_dir%/*}" ] || {
			WHY="${t_dir%/*} is not writable ($(why_not_writable "${t_dir%/*}"))"
			return 1
		}
		return 0
	fi
	root_chain "$t_dir" || return 1
	if [ -L "$1" ]; then
		WHY="$1 is a symbolic link"
		return 1
	fi
	if [ -e "$1" ]; then
		if [ ! -f "$1" ]; then
			WHY="$1 is not a regular file"
			return 1
		fi
		entry "$1" || {
			WHY="$1 cannot be read"
			return 1
		}
		if [ "$E_UID" != 0 ]; then
			WHY="$1 belongs to uid $E_UID, not root"
			return 1
		fi
		case $E_MODE in
		?????w* | ????????w*)
			WHY="$1 is writable by other users ($E_MODE)"
			return 1
			;;
		esac
		[ -w "$1" ] || {
			WHY="$1 is not writable ($(why_not_writable "$1"))"
			return 1
		}
	fi
	[ -w "$t_dir" ] || {
		WHY="$t_dir is not writable ($(why_not_writable "$t_dir"))"
		return 1
	}
	return 0
}

# access(W_OK) fails for root too on a read-only mount (EROFS) or an immutable inode (EPERM):
# say which.
why_not_writable() {
	if command -v lsattr >/dev/null 2>&1; then
		# shellcheck disable=SC2046
		set -- "$1" $(lsattr -d -- "$1" 2>/dev/null)
		case ${2:-} in *i*)
			echo "immutable"
			return
			;;
		esac
		case ${2:-} in *a*)
			echo "append-only"
			return
			;;
		esac
	fi
	wn_best=
	wn_opts=
	# shellcheck disable=SC2034 # fields read only to skip them
	while read -r wn_id wn_pid wn_dev wn_root wn_mnt wn_opt wn_rest; do
		case $wn_mnt in
		/) ;;
		*) case $1/ in "$wn_mnt"/*) ;; *) continue ;; esac ;;
		esac
		if [ ${#wn_mnt} -ge ${#wn_best} ]; then
			wn_best=$wn_mnt
			wn_opts=$wn_opt
		fi
	done </proc/self/mountinfo
	case ",$wn_opts," in *,ro,*)
		echo "read-only mount $wn_best"
		return
		;;
	esac
	echo "permission denied"
}

sha() {
	if [ -f "$1" ] && [ ! -L "$1" ]; then
		# shellcheck disable=SC2046 # the words of sha256sum's line
		set -- $(sha256sum -- "$1" 2>/dev/null)
		say "${1:-unreadable}"
	else
		say absent
	fi
}

# ---- the journal ---------------------------------------------------------------------------

state_dir() { # the state directories: root's, 0700, created when missing
	root_chain /var/lib || refuse "$WHY"
	for sd in "$STATE" "$TXN" "$TXN/backup"; do
		if [ -L "$sd" ] || { [ -e "$sd" ] && [ ! -d "$sd" ]; }; then
			refuse "$sd is not a directory"
		fi
		[ -d "$sd" ] || mkdir -m 700 -- "$sd" || fail "cannot create $sd"
		entry "$sd"
		[ "$E_UID" = 0 ] || refuse "$sd belongs to uid $E_UID"
		case $E_MODE in d???------ | d???------.) ;; *) chmod 700 -- "$sd" ;; esac
	done
}

record() { # append one line to the journal
	state_dir
	say "$*" >>"$TXN/journal" || fail "cannot write $TXN/journal"
}

txn_open() { # is there a transaction that has not been committed?
	[ -f "$TXN/journal" ] && [ ! -L "$TXN/journal" ] || return 1
	! grep -q '^commit ' "$TXN/journal"
}

# Keep PATH's original before its first change in this transaction (the first backup wins:
# a resumed transaction keeps the state the host was found in).
backup() {
	if awk -v p="$1" '$1 == "backup" && $3 == p { found = 1 } END { exit !found }' \
		"$TXN/journal" 2>/dev/null; then
		return 0
	fi
	b_n=$(grep -c '^backup ' "$TXN/journal" 2>/dev/null)
	b_n=$((${b_n:-0} + 1))
	if [ -f "$1" ]; then
		# shellcheck disable=SC2046 # the words of one ls line
		set -- "$1" $(ls -ldn -- "$1")
		b_tmp=$(mktemp "$TXN/backup/.tmp.XXXXXX") || fail "cannot back up $1"
		cat -- "$1" >"$b_tmp" || fail "cannot back up $1"
		mv -f -- "$b_tmp" "$TXN/backup/$b_n" || fail "cannot back up $1"
		record "backup $b_n $1 present $2 $4 $5"
	else
		record "backup $b_n $1 absent - - -"
	fi
}

# ---- writes --------------------------------------------------------------------------------

# put PATH MODE GID OLD_SHA256|absent BASE64: PATH (root's, MODE, group GID) holds the
# decoded content, if it still is what the edit was computed from.
cmd_put() {
	[ $# -eq 5 ] || fail "put PATH MODE GID OLD CONTENT"
	case $2 in [0-7][0-7][0-7]) ;; *) fail "bad mode $2" ;; esac
	case $3 in '' | *[!0-9]*) fail "bad group $3" ;; esac
	target "$1" || refuse "$WHY"
	now_sha=$(sha "$1")
	[ "$now_sha" = "$4" ] || refuse "$1 changed since it was read (expected $4, found $now_sha)"
	p_dir=${1%/*}
	[ -n "$p_dir" ] || p_dir=/
	txn_open || fail "no open transaction"
	backup "$1"
	[ -d "$p_dir" ] || mkdir -m 755 -- "$p_dir" || fail "cannot create $p_dir"
	p_tmp=$(mktemp "$p_dir/.ogf-change.XXXXXX") || fail "cannot create a file in $p_dir"
	if ! printf '%s' "$5" | base64 -d >"$p_tmp" 2>/dev/null; then
		rm -f -- "$p_tmp"
		fail "cannot write $1"
	fi
	if ! chown "0:$3" -- "$p_tmp" || ! chmod "$2" -- "$p_tmp"; then
		rm -f -- "$p_tmp"
		fail "cannot set the mode of $1"
	fi
	mv -f -- "$p_tmp" "$1" || {
		rm -f -- "$p_tmp"
		fail "cannot replace $1"
	}
	say "wrote $1"
}

# stage NAME PART BASE64: part PART (0, 1, ...) of a file too big for one command line (the
# watchdog's zipapp), kept in the open transaction's stage/ (root's alone) until `place`
cmd_stage() {
	[ $# -eq 3 ] || fail "stage NAME PART CONTENT"
	case $1 in '' | .* | *[!a-z0-9.-]*) fail "bad name $1" ;; esac
	case $2 in '' | *[!0-9]*) fail "bad part $2" ;; esac
	txn_open || fail "no open transaction"
	[ -d "$TXN/stage" ] || mkdir -m 700 -- "$TXN/stage" || fail "cannot create $TXN/stage"
	[ ! -L "$TXN/stage/$1" ] || fail "$TXN/stage/$1 is a link"
	if [ "$2" = 0 ]; then
		: >"$TXN/stage/$1" || fail "cannot stage $1"
	fi
	printf '%s' "$3" | base64 -d >>"$TXN/stage/$1" 2>/dev/null || fail "cannot stage $1"
	say "staged $1 part $2"
}

# place PATH MODE GID OLD_SHA256 NAME SHA256: PATH (root's, MODE, group GID) holds the staged
# NAME, when the stage is whole (its sha256 is SHA256) and PATH still is what it was read as
cmd_place() {
	[ $# -eq 6 ] || fail "place PATH MODE GID OLD NAME SHA256"
	case $2 in [0-7][0-7][0-7]) ;; *) fail "bad mode $2" ;; esac
	case $3 in '' | *[!0-9]*) fail "bad group $3" ;; esac
	case $5 in '' | .* | *[!a-z0-9.-]*) fail "bad name $5" ;; esac
	txn_open || fail "no open transaction"
	pl_src=$TXN/stage/$5
	if [ ! -f "$pl_src" ] || [ -L "$pl_src" ]; then fail "nothing staged as $5"; fi
	[ "$(sha "$pl_src")" = "$6" ] || fail "the staged $5 is incomplete or damaged"
	target "$1" || refuse "$WHY"
	now_sha=$(sha "$1")
	[ "$now_sha" = "$4" ] || refuse "$1 changed since it was read (expected $4, found $now_sha)"
	p_dir=${1%/*}
	[ -n "$p_dir" ] || p_dir=/
	backup "$1"
	[ -d "$p_dir" ] || mkdir -m 755 -- "$p_dir" || fail "cannot create $p_dir"
	p_tmp=$(mktemp "$p_dir/.ogf-change.XXXXXX") || fail "cannot create a file in $p_dir"
	if ! cat -- "$pl_src" >"$p_tmp" || ! chown "0:$3" -- "$p_tmp" || ! chmod "$2" -- "$p_tmp"; then
		rm -f -- "$p_tmp"
		fail "cannot write $1"
	fi
	mv -f -- "$p_tmp" "$1" || {
		rm -f -- "$p_tmp"
		fail "cannot replace $1"
	}
	rm -f -- "$pl_src"
	say "wrote $1"
}

# timer enable|disable UNIT: the watchdog's timer (no other unit), started or stopped with it
cmd_timer() {
	[ $# -eq 2 ] || fail "timer enable|disable UNIT"
	case $2 in ollama-gpu-fix-watchdog.timer) ;; *) fail "not the watchdog's timer: $2" ;; esac
	txn_open || fail "no open transaction"
	record "timer $1 $2 $(now)"
	case $1 in
	enable)
		systemctl daemon-reload || fail "daemon-reload failed"
		systemctl enable --now -- "$2" >/dev/null 2>&1 || fail "cannot enable $2"
		say "enabled $2"
		;;
	disable)
		systemctl disable --now -- "$2" >/dev/null 2>&1 || true
		systemctl stop -- "${2%.timer}.service" >/dev/null 2>&1 || true
		say "disabled $2"
		;;
	*) fail "timer enable|disable UNIT" ;;
	esac
}

# fetch PATH MODE URL: PATH (when absent) holds what URL answers, at most 1 MiB (a signing key,
# a keyring package), downloaded into the same root-owned directory and renamed into place.
cmd_fetch() {
	[ $# -eq 3 ] || fail "fetch PATH MODE URL"
	case $2 in [0-7][0-7][0-7]) ;; *) fail "bad mode $2" ;; esac
	case $3 in https://* | http://*) ;; *) fail "not an http(s) URL: $3" ;; esac
	target "$1" || refuse "$WHY"
	if [ -e "$1" ]; then
		say "present $1"
		return 0
	fi
	txn_open || fail "no open transaction"
	backup "$1"
	f_dir=${1%/*}
	[ -d "$f_dir" ] || mkdir -m 755 -- "$f_dir" || fail "cannot create $f_dir"
	f_tmp=$(mktemp "$f_dir/.ogf-change.XXXXXX") || fail "cannot create a file in $f_dir"
	if ! curl -fsSL --proto '=https,http' --max-filesize 1048576 -m 120 -o "$f_tmp" -- "$3"; then
		rm -f -- "$f_tmp"
		fail "cannot download $3"
	fi
	if ! chown 0:0 -- "$f_tmp" || ! chmod "$2" -- "$f_tmp" || ! mv -f -- "$f_tmp" "$1"; then
		rm -f -- "$f_tmp"
		fail "cannot write $1"
	fi
	say "fetched $1"
}

# remove PATH OLD_SHA256: remove a file the fix created (or restore it as absent)
cmd_remove() {
	target "$1" || refuse "$WHY"
	now_sha=$(sha "$1")
	[ "$now_sha" = absent ] && {
		say "absent $1"
		return 0
	}
	[ "$now_sha" = "$2" ] || refuse "$1 changed since it was read"
	txn_open || fail "no open transaction"
	backup "$1"
	rm -f -- "$1" || fail "cannot remove $1"
	say "removed $1"
}

# read PATH...: what a line edit starts from, for root's regular files only (never a link, a
# FIFO, a device or another user's file): one tab-separated line per path
#   file<TAB>ok<TAB>MODE<TAB>UID<TAB>GID<TAB>SIZE<TAB>SHA256<TAB>PATH, then base64 lines, then end
#   file<TAB>absent<TAB>PATH  |  file<TAB>unsafe<TAB>WHY<TAB>PATH
# At most 64 KiB of a file is sent (a command line holds at most 128 KiB); a bigger file is
# never edited.
cmd_read() {
	for r_path in "$@"; do
		if target "$r_path"; then
			if [ -f "$r_path" ]; then
				entry "$r_path"
				printf 'file\tok\t%s\t%s\t%s\t%s\t%s\t%s\n' "$E_MODE" "$E_UID" "$E_GID" \
					"$E_SIZE" "$(sha "$r_path")" "$r_path"
				head -c 65536 -- "$r_path" | base64
				say "end"
			else
				printf 'file\tabsent\t%s\n' "$r_path"
			fi
		else
			printf 'file\tunsafe\t%s\t%s\n' "$WHY" "$r_path"
		fi
	done
}

# check PATH...: may root write each of these? One line each.
cmd_check() {
	for c_path in "$@"; do
		if target "$c_path"; then
			printf 'ok\t%s\n' "$c_path"
		else
			printf 'unsafe\t%s\t%s\n' "$WHY" "$c_path"
		fi
	done
}

# ---- transactions --------------------------------------------------------------------------

cmd_begin() { # begin RUN_ID: open a transaction, or resume the one an interrupted run left
	state_dir
	if txn_open; then
		record "resume $1 $(now)"
		say "resumed"
		# a package step that began and never finished: let dpkg finish what it started
		b_last=$(awk '$1 == "step" { s = $2 " " $3 } END { print s }' "$TXN/journal")
		case $b_last in
		cuda_toolkit\ begin | nvidia_driver\ begin | amdgpu_driver\ begin | \
			vulkan_packages\ begin | wsl2_purge_guest_driver\ begin)
			if [ -n "$(dpkg --audit 2>/dev/null)" ]; then
				DEBIAN_FRONTEND=noninteractive dpkg --configure -a ||
					fail "an interrupted package step left dpkg unfinished and dpkg --configure -a failed"
				say "finished dpkg's interrupted work (dpkg --configure -a)"
			fi
			;;
		esac
	else
		if [ -f "$TXN/journal" ]; then
			rm -rf -- "$LAST"
			mv -- "$TXN" "$LAST" || fail "cannot archive the last transaction"
			state_dir
		fi
		record "begin $1 $(now)"
		say "begun"
	fi
}

cmd_step() { # step ACTION begin|done
	txn_open || fail "no open transaction"
	record "step $1 $2 $(now)"
}

cmd_remember() { # remember FINGERPRINT: a change a verification undid (not retried blindly)
	case $1 in *[!0-9a-f]* | '') fail "bad fingerprint $1" ;; esac
	state_dir
	say "$1 $(now)" >>"$STATE/rolled-back" || fail "cannot write $STATE/rolled-back"
}

cmd_commit() { # commit RESULT: the transaction ends (verified, rolled-back, failed)
	txn_open || {
		say "nothing to commit"
		return 0
	}
	record "commit $1 $(now)"
	rm -rf -- "$LAST"
	mv -- "$TXN" "$LAST" || fail "cannot archive the transaction"
	say "committed $1"
}

# Put every file the open transaction changed back as it was found (its backup, its mode and
# owner, or absent), newest first; then daemon-reload and restart ollama when asked.
cmd_rollback() {
	txn_open || {
		say "nothing to roll back"
		return 0
	}
	rb_rc=0
	rb_list=$(grep '^backup ' "$TXN/journal" | sort -k2,2nr)
	while read -r rb_kw rb_n rb_path rb_how rb_mode rb_uid rb_gid; do
		[ "$rb_kw" = backup ] || continue
		if ! target "$rb_path"; then
			say "not restored: $WHY"
			rb_rc=1
			continue
		fi
		if [ "$rb_how" = absent ]; then
			rm -f -- "$rb_path" && say "restored $rb_path (absent)"
			continue
		fi
		rb_dir=${rb_path%/*}
		rb_tmp=$(mktemp "$rb_dir/.ogf-change.XXXXXX") || {
			rb_rc=1
			continue
		}
		if cat -- "$TXN/backup/$rb_n" >"$rb_tmp" && chown "$rb_uid:$rb_gid" -- "$rb_tmp" &&
			chmod "$(mode_octal "$rb_mode")" -- "$rb_tmp" && mv -f -- "$rb_tmp" "$rb_path"; then
			say "restored $rb_path"
		else
			rm -f -- "$rb_tmp"
			say "not restored: $rb_path"
			rb_rc=1
		fi
	done <<EOF
$rb_list
EOF
	record "rollback $(now)"
	return $rb_rc
}

mode_octal() { # -rw-r--r-- -> 644 (ls's permission string; setuid bits are never restored)
	mo_s=${1#?}
	mo_out=
	for mo_i in u g o; do
		mo_d=0
		case $mo_s in r*) mo_d=$((mo_d + 4)) ;; esac
		mo_s=${mo_s#?}
		case $mo_s in w*) mo_d=$((mo_d + 2)) ;; esac
		mo_s=${mo_s#?}
		case $mo_s in [xst]*) mo_d=$((mo_d + 1)) ;; esac
		mo_s=${mo_s#?}
		mo_out=$mo_out$mo_d
		: "$mo_i"
	done
	say "$mo_out"
}

# ---- the service ---------------------------------------------------------------------------

unit() { systemctl "$@" ollama.service; }

cmd_restart() { # restart [reload]: daemon-reload when asked, restart; keeps restart's status
	[ "${1:-}" = reload ] && { systemctl daemon-reload || fail "daemon-reload failed"; }
	unit restart || fail "systemctl restart ollama.service failed"
	say "restarted"
}

cmd_start() {
	systemctl enable ollama.service >/dev/null 2>&1 || fail "systemctl enable ollama.service failed"
	unit start || fail "systemctl start ollama.service failed"
	say "started"
}

# Stop ollama (it holds the module), reload nvidia_uvm, start ollama again on every path.
cmd_reload_uvm() {
	unit stop || fail "systemctl stop ollama.service failed"
	modprobe -r nvidia_uvm && modprobe nvidia_uvm
	ru_rc=$?
	unit start
	ru_start=$?
	[ "$ru_rc" = 0 ] || fail "modprobe nvidia_uvm failed ($ru_rc); ollama.service started again"
	[ "$ru_start" = 0 ] || fail "nvidia_uvm reloaded, but ollama.service did not start again"
	say "reloaded nvidia_uvm"
}

cmd_daemon_reload() { systemctl daemon-reload || fail "daemon-reload failed"; }

# ---- main ----------------------------------------------------------------------------------

trap '' HUP PIPE
umask 077
PATH=/usr/sbin:/usr/bin:/sbin:/bin
LC_ALL=C
export PATH LC_ALL
ogf_change_main() {
	ogf_cmd=${1:-}
	[ $# -gt 0 ] && shift
	case $ogf_cmd in
	put) cmd_put "$@" ;;
	stage) cmd_stage "$@" ;;
	place) cmd_place "$@" ;;
	timer) cmd_timer "$@" ;;
	fetch) cmd_fetch "$@" ;;
	remove) cmd_remove "$@" ;;
	read) cmd_read "$@" ;;
	check) cmd_check "$@" ;;
	begin) cmd_begin "$@" ;;
	step) cmd_step "$@" ;;
	commit) cmd_commit "$@" ;;
	remember) cmd_remember "$@" ;;
	rollback)
		cmd_rollback
		rb=$?
		if [ "${1:-}" = restart ]; then
			systemctl daemon-reload
			unit restart || rb=1
		fi
		exit $rb
		;;
	restart) cmd_restart "$@" ;;
	start) cmd_start ;;
	reload-uvm) cmd_reload_uvm ;;
	daemon-reload) cmd_daemon_reload ;;
	status) if txn_open; then say "open"; else say "none"; fi ;;
	*) fail "unknown command ${ogf_cmd:-(none)}" ;;
	esac
}

# OGF_CHANGE_LIB=1: the functions only (preflight.sh is composed after this script)
[ "${OGF_CHANGE_LIB:-}" = 1 ] || ogf_change_main "$@"
