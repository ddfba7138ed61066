#!/bin/sh
# ollama-gpu-fix shlib: the POSIX-sh helpers every remote script shares.
#
# ollama_gpu_fix/scripts.py sends this text in front of each script (probe.sh, verify.sh) as
# ONE remote command (`sh -c '<shlib.sh><script>'`), so a helper is written once and behaves
# the same in each. Definitions only: nothing here runs. POSIX sh (dash, busybox ash).
#
# Callers set: LS (an absolute ls, or empty), SELF_UID (our uid), UNSAFE_PATH (collects the
# PATH directories dropped), before ogf_safe_path; TMO comes from ogf_init_tmo.

# Marks the helpers as defined: a script run on its own reads this file instead.
# shellcheck disable=SC2034 # read by the scripts
OGF_SHLIB=1

ogf_have() { command -v "$1" >/dev/null 2>&1; }

# `timeout` as this host spells it: TMO is "timeout", "timeout -t" (busybox before 1.30) or
# empty (none: the command runs unbounded). Use as `$TMO ${TMO:+SECONDS} command ...`.
# shellcheck disable=SC2034 # TMO is for the scripts
ogf_init_tmo() {
	TMO=
	ogf_have timeout || return 0
	if timeout 10 true >/dev/null 2>&1; then
		TMO=timeout
	elif timeout -t 10 true >/dev/null 2>&1; then
		TMO="timeout -t"
	fi
	return 0
}

# `ls -ln` of one path (-L: through a link): sets LS_MODE LS_UID LS_GID; 1 when unknown.
# shellcheck disable=SC2034 # LS_GID is for the scripts
ogf_ls() {
	[ -n "$LS" ] || return 1
	# shellcheck disable=SC2046,SC2086 # the words of one ls line, on purpose
	set -- $($LS -ldn $1 -- "$2" 2>/dev/null)
	[ $# -ge 4 ] || return 1
	LS_MODE=$1
	LS_UID=$3
	LS_GID=$4
}

# Owned by root or by us, and writable by nobody else: safe to run or to trust.
ogf_safe_mode() {
	case $LS_UID in 0 | "$SELF_UID") ;; *) return 1 ;; esac
	case $LS_MODE in ?????w* | ????????w*) return 1 ;; esac
	return 0
}
ogf_safe_dir() { ogf_ls -L "$1" && ogf_safe_mode; }
ogf_safe_file() { ogf_ls -L "$1" && ogf_safe_mode; }

# Keep the PATH directories no other user can write: the scripts run their tools as root.
ogf_safe_path() {
	[ -n "$LS" ] || return 0 # cannot check: keep it (noted in probe-meta.txt)
	ogf_keep=
	ogf_ifs=$IFS
	IFS=:
	# shellcheck disable=SC2086 # split on ':' on purpose
	set -- $PATH
	IFS=$ogf_ifs
	for ogf_d in "$@"; do
		case $ogf_d in /*) ;; *) continue ;; esac # never "" or "." from root
		[ -d "$ogf_d" ] || continue
		case ":$ogf_keep:" in *":$ogf_d:"*) continue ;; esac
		if ogf_safe_dir "$ogf_d"; then
			ogf_keep=${ogf_keep:+$ogf_keep:}$ogf_d
		else
			case " $UNSAFE_PATH " in *" $ogf_d "*) ;; *) UNSAFE_PATH="$UNSAFE_PATH $ogf_d" ;; esac
		fi
	done
	PATH=$ogf_keep
}

ogf_status_field() { # /proc/PID/status FIELD -> first value
	while read -r ogf_k ogf_v ogf_rest; do
		if [ "$ogf_k" = "$2:" ]; then
			printf '%s\n' "$ogf_v"
			return 0
		fi
	done <"$1" 2>/dev/null
	return 1
}

ogf_user_uid() { # name -> uid, from /etc/passwd
	# shellcheck disable=SC2034 # fields read only to skip them
	while IFS=: read -r ogf_pn ogf_pp ogf_pu ogf_rest; do
		if [ "$ogf_pn" = "$1" ]; then
			printf '%s\n' "$ogf_pu"
			return 0
		fi
	done </etc/passwd 2>/dev/null
	return 1
}

ogf_key() { # KEY: the values of KEY= lines
	while IFS= read -r ogf_x; do
		case $ogf_x in "$1="*) printf '%s\n' "${ogf_x#"$1"=}" ;; esac
	done
}

# Lines of unit text in, the value of the last OLLAMA_HOST= set outside a comment out.
ogf_env_host() {
	while IFS= read -r ogf_x; do
		case $ogf_x in
		'#'* | ';'*) continue ;;
		*OLLAMA_HOST=*)
			ogf_x=${ogf_x##*OLLAMA_HOST=}
			ogf_x=${ogf_x%%[\" ]*}
			printf '%s\n' "$ogf_x"
			;;
		esac
	done | ogf_last
}

ogf_last() {
	ogf_last_l=
	while IFS= read -r ogf_x; do ogf_last_l=$ogf_x; done
	[ -n "$ogf_last_l" ] && printf '%s\n' "$ogf_last_l"
	return 0
}

# An OLLAMA_HOST value (or a URL) -> where the API listens, as Ollama's envconfig.Host() reads
# it: scheme, [IPv6], port; never 0.0.0.0 (a client cannot talk to it). Sets API_URL
# (scheme://host:port), API_HOSTPORT and API_PORT (probe.sh and verify.sh both ask it).
# shellcheck disable=SC2034 # the API_ variables are for the scripts
ogf_host_url() {
	ogf_h=$1
	ogf_h=${ogf_h#\"}
	ogf_h=${ogf_h%\"}
	ogf_h=${ogf_h#\'}
	ogf_h=${ogf_h%\'}
	ogf_scheme=http
	ogf_port=11434
	case $ogf_h in
	http://*)
		ogf_h=${ogf_h#http://}
		ogf_port=80
		;;
	https://*)
		ogf_h=${ogf_h#https://}
		ogf_scheme=https
		ogf_port=443
		;;
	esac
	ogf_h=${ogf_h%%/*}
	ogf_h=${ogf_h##*@}
	case $ogf_h in
	\[*\]:*)
		ogf_port=${ogf_h##*:}
		ogf_h=${ogf_h%:*}
		;;
	\[*\]) ;;
	*:*:*) ogf_h="[$ogf_h]" ;; # bare IPv6
	*:*)
		ogf_port=${ogf_h##*:}
		ogf_h=${ogf_h%:*}
		;;
	esac
	case $ogf_h in
	'' | 0.0.0.0) ogf_h=127.0.0.1 ;;
	'[::]' | '[::0]') ogf_h='[::1]' ;;
	esac
	case $ogf_h in *[!A-Za-z0-9.:\[\]_-]*) ogf_h=127.0.0.1 ;; esac
	case $ogf_port in '' | *[!0-9]*) ogf_port=11434 ;; esac
	API_PORT=$ogf_port
	API_HOSTPORT="$ogf_h:$ogf_port"
	API_URL="$ogf_scheme://$API_HOSTPORT"
}

# ---- who listens on a port (verify.sh's server section, preflight.sh's port check) ------
# Callers set API_PORT, MAINPID (empty without systemd), LS, TMO; results in LISTENERS and
# LISTENER_OUT.

# Add to LISTENERS ("PID" words) the processes holding a LISTEN socket on the API's port, on
# any address, IPv4 or IPv6 (curl may reach either). Without ss or lsof: the socket inodes
# from /proc/net/tcp{,6}, then the /proc/PID/fd link `socket:[INODE]` naming each.
ogf_listeners() {
	ogf_port=$API_PORT
	while :; do case $ogf_port in 0?*) ogf_port=${ogf_port#0} ;; *) break ;; esac; done
	case $ogf_port in '' | *[!0-9]* | ??????*) return 0 ;; esac
	[ "$ogf_port" -le 65535 ] || return 0
	ogf_inodes=
	for ogf_x in $(ogf_listen_inodes "$(printf '%04X' "$ogf_port")"); do
		case " $ogf_inodes " in *" $ogf_x "*) ;; *) ogf_inodes="$ogf_inodes $ogf_x" ;; esac
	done
	[ -n "$ogf_inodes" ] || return 0
	# The service's own process and its children first (a few small directories, the usual
	# answer), then every process.
	if [ -n "$MAINPID" ] && [ "$MAINPID" != 0 ]; then
		ogf_dirs="/proc/$MAINPID/fd"
		for ogf_f in "/proc/$MAINPID"/task/*/children; do
			ogf_l=
			read -r ogf_l <"$ogf_f" 2>/dev/null
			for ogf_x in $ogf_l; do
				case $ogf_x in *[!0-9]*) ;; *) ogf_dirs="$ogf_dirs /proc/$ogf_x/fd" ;; esac
			done
		done
		# shellcheck disable=SC2086 # inodes are words
		ogf_holders "$ogf_dirs" $ogf_inodes
	fi
	[ -n "$ogf_inodes" ] || return 0
	set -- /proc/[0-9]*/fd
	ogf_dirs=$*
	# shellcheck disable=SC2086 # directories and inodes are words
	ogf_holders "$ogf_dirs" $ogf_inodes
}

# HEXPORT -> the inodes of the LISTEN sockets (state 0A) on that local port, from
# /proc/net/tcp and tcp6 (grep, when there, keeps the lines naming the port). The kernel lists
# listening sockets first, so at most 4096 lines of each are read.
ogf_listen_inodes() {
	for ogf_f in /proc/net/tcp /proc/net/tcp6; do
		[ -r "$ogf_f" ] || continue
		if ogf_have grep; then
			$TMO ${TMO:+10} grep -F ":$1 " "$ogf_f" 2>/dev/null
		else
			ogf_m=0
			while IFS= read -r ogf_l && [ "$ogf_m" -lt 4096 ]; do
				ogf_m=$((ogf_m + 1))
				printf '%s\n' "$ogf_l"
			done <"$ogf_f"
		fi | {
			ogf_n=0
			# shellcheck disable=SC2034 # the other fields are read only to skip them
			while read -r ogf_sl ogf_local ogf_rem ogf_st ogf_q ogf_tr ogf_rt ogf_uid ogf_to \
				ogf_ino ogf_rest; do
				ogf_n=$((ogf_n + 1))
				[ "$ogf_n" -gt 4096 ] && break
				[ "$ogf_st" = 0A ] || continue
				case $ogf_local in *:"$1") ;; *) continue ;; esac
				case $ogf_ino in '' | 0 | *[!0-9]*) continue ;; esac
				printf '%s\n' "$ogf_ino"
			done
		}
	done
}

# DIRS INODE...: the first process holding each inode, from one `ls -ln` over the fd
# directories (one command, not one per fd; grep, when there, keeps only the directory names
# and the sought sockets), at most 100000 lines of it read. Records each holder
# (ogf_listener) and removes its inode from ogf_inodes (the ones still sought).
ogf_holders() {
	ogf_dirs=$1
	shift
	[ -n "$LS" ] || return 0
	ogf_pats="fd:"
	for ogf_x in "$@"; do
		ogf_pats="$ogf_pats
socket:[$ogf_x]"
	done
	# ls names each directory before its entries, except when given only one
	ogf_first=
	case $ogf_dirs in
	*' '*) ;;
	/proc/*/fd)
		ogf_first=${ogf_dirs#/proc/}
		ogf_first=${ogf_first%/fd}
		;;
	esac
	# -q: a name's newline printed as '?' (a file path cannot add lines); busybox ls has no
	# -q and prints '?' itself. Each find is confirmed on its own below anyway.
	ogf_q=
	$LS -qd / >/dev/null 2>&1 && ogf_q=q
	# shellcheck disable=SC2086 # directories are words
	ogf_found=$($TMO ${TMO:+10} $LS -ln$ogf_q $ogf_dirs 2>/dev/null | ogf_only "$ogf_pats" | {
		ogf_pid=$ogf_first
		ogf_n=0
		ogf_want=" $* "
		while IFS= read -r ogf_l; do
			ogf_n=$((ogf_n + 1))
			[ "$ogf_n" -gt 100000 ] && break
			case $ogf_l in
			/proc/*/fd:)
				ogf_pid=${ogf_l#/proc/}
				ogf_pid=${ogf_pid%/fd:}
				continue
				;;
			*' -> socket:['*']') ;;
			*) continue ;;
			esac
			ogf_i=${ogf_l##*socket:\[}
			ogf_i=${ogf_i%\]}
			case $ogf_want in *" $ogf_i "*) ;; *) continue ;; esac
			# the word before the link is the fd number, and only one link is on the line
			ogf_fd=${ogf_l% -> socket:\[*\]}
			case $ogf_fd in *' -> '*) continue ;; esac
			ogf_fd=${ogf_fd##* }
			case $ogf_pid$ogf_fd in '' | *[!0-9]*) continue ;; esac
			ogf_is_socket "$ogf_pid" "$ogf_fd" "$ogf_i" || continue
			printf '%s %s\n' "$ogf_pid" "$ogf_i"
			ogf_want=${ogf_want%%" $ogf_i "*}" "${ogf_want#*" $ogf_i "}
			case $ogf_want in *[0-9]*) ;; *) break ;; esac
		done
	})
	# shellcheck disable=SC2086 # "PID INODE" pairs are words
	set -- $ogf_found
	while [ $# -ge 2 ]; do
		ogf_listener "$1"
		ogf_rest=
		for ogf_x in $ogf_inodes; do
			[ "$ogf_x" = "$2" ] || ogf_rest="$ogf_rest $ogf_x"
		done
		ogf_inodes=$ogf_rest
		shift 2
	done
}

# PID FD INODE: is /proc/PID/fd/FD that socket? Asked of that one link, so no other line of
# a listing (a file name another user chose) can claim a socket for a process.
ogf_is_socket() {
	ogf_v=$($TMO ${TMO:+10} "$LS" -ln "/proc/$1/fd/$2" 2>/dev/null)
	case $ogf_v in
	*"
"*) return 1 ;;
	*" /proc/$1/fd/$2 -> socket:[$3]") return 0 ;;
	esac
	return 1
}

ogf_only() { # PATTERNS: the lines holding one of them (all lines without grep)
	if ogf_have grep; then
		$TMO ${TMO:+10} grep -F -e "$1"
	else
		while IFS= read -r ogf_l; do printf '%s\n' "$ogf_l"; done
	fi
}

# Record PID (once) as it is now: `listener=PID UID COMM`, `exe=PID OWNER-UID MODE` (its
# binary, through the link; "- -" when unreadable) and its parent chain (ogf_ancestry).
ogf_listener() {
	case " $LISTENERS " in *" $1 "*) return 0 ;; esac
	LISTENERS="$LISTENERS $1"
	ogf_c=
	read -r ogf_c <"/proc/$1/comm" 2>/dev/null
	ogf_u=$(ogf_status_field "/proc/$1/status" Uid)
	ogf_e="- -"
	ogf_ls -L "/proc/$1/exe" && ogf_e="$LS_UID $LS_MODE"
	LISTENER_OUT="${LISTENER_OUT}listener=$1 ${ogf_u:--} ${ogf_c:--}
exe=$1 $ogf_e
$(ogf_ancestry "$1")

"
}

ogf_ancestry() { # PID... -> "pid ppid comm" for each process up to pid 1
	for ogf_p in "$@"; do
		ogf_n=0
		while [ -n "$ogf_p" ] && [ "$ogf_p" != 0 ] && [ "$ogf_n" -lt 32 ]; do
			ogf_c=
			read -r ogf_c <"/proc/$ogf_p/comm" 2>/dev/null || break
			ogf_pp=
			# shellcheck disable=SC2034 # the rest is read only to skip it
			while read -r ogf_k ogf_v ogf_r; do
				[ "$ogf_k" = PPid: ] && ogf_pp=$ogf_v && break
			done <"/proc/$ogf_p/status"
			printf '%s %s %s\n' "$ogf_p" "${ogf_pp:-0}" "$ogf_c"
			ogf_p=$ogf_pp
			ogf_n=$((ogf_n + 1))
		done
		echo
	done
}

# ---- the verification (verify.sh, and probe.sh's observation) -------------------------------
# Callers define ogf_sec (NAME COMMAND...: print `--ogf-$NONCE-- NAME`, then what COMMAND
# printed) and set TMO, LS, UNSAFE_PATH; settings: OGF_API, OGF_MODEL, OGF_TOKENS, OGF_WAIT,
# OGF_PULL, OGF_BASELINE, OGF_GEN_TIMEOUT (verify.sh's header says each), and OGF_GENERATE
# (0: read /api/ps, the server and the GPU's process list without running the model).

# Ask the API that the unit configures (waiting for it), run the model, then record /api/ps,
# whom the API belongs to and the GPU's process list. The verdict is ollama_gpu_fix/verdict.py.
ogf_verify_run() {
	ogf_unit
	ogf_api
	ogf_wait
	ogf_unit # as it is once the API answers (a restart gives a new MainPID)
	# Who holds the port now, and again after the model ran: a process that takes the port
	# between the two is caught as well. Each holder is recorded when found.
	LISTENERS=
	LISTENER_OUT=
	ogf_listeners
	if [ "$OGF_UP" != 1 ]; then
		ogf_sec server ogf_server
		return 0
	fi
	ogf_sec version ogf_get /api/version
	if [ -n "$OGF_MODEL" ] || [ "${OGF_GENERATE:-1}" = 0 ]; then
		if [ "${OGF_GENERATE:-1}" = 1 ]; then
			if [ "${OGF_PULL:-0}" = 1 ]; then
				ogf_sec pull ogf_post /api/pull "{\"model\":\"$OGF_MODEL\",\"stream\":false}" 900
			fi
			ogf_sec generate ogf_post /api/generate "{\"model\":\"$OGF_MODEL\",\"prompt\":\"Why is the sky blue?\",\"stream\":false,\"keep_alive\":\"5m\",\"options\":{\"num_predict\":${OGF_TOKENS:-4},\"temperature\":0}}" "${OGF_GEN_TIMEOUT:-120}"
		fi
		ogf_sec ps ogf_get /api/ps
		ogf_unit
		ogf_listeners
		ogf_sec server ogf_server
		ogf_gpu_processes
		if [ "${OGF_BASELINE:-0}" = 1 ] && [ "${OGF_GENERATE:-1}" = 1 ]; then
			ogf_sec baseline ogf_post /api/generate "{\"model\":\"$OGF_MODEL\",\"prompt\":\"Why is the sky blue?\",\"stream\":false,\"keep_alive\":0,\"options\":{\"num_predict\":${OGF_TOKENS:-4},\"temperature\":0,\"num_gpu\":0}}" "${OGF_GEN_TIMEOUT:-120}"
		fi
	else
		ogf_sec server ogf_server
	fi
}

ogf_get() { $TMO ${TMO:+15} curl -s -m 10 --max-filesize 1048576 "$API_URL$1"; }
ogf_post() {
	$TMO ${TMO:+$((${3:-60} + 5))} curl -s -m "${3:-60}" --max-filesize 1048576 \
		-H 'Content-Type: application/json' -d "$2" "$API_URL$1"
}

# The unit as systemd runs it now. Sets SYSTEMD (yes/no), UNIT_LOAD, UNIT_ACTIVE, MAINPID and
# UNIT_HOST: OLLAMA_HOST as the service's own process has it (an EnvironmentFile= included),
# else as the unit's Environment= sets it.
ogf_unit() {
	SYSTEMD=no
	UNIT_LOAD=
	UNIT_ACTIVE=
	MAINPID=
	UNIT_HOST=
	[ -d /run/systemd/system ] && ogf_have systemctl || return 0
	SYSTEMD=yes
	ogf_show=$($TMO ${TMO:+10} systemctl --no-pager show ollama -p LoadState -p ActiveState \
		-p MainPID -p Environment 2>/dev/null)
	UNIT_LOAD=$(printf '%s\n' "$ogf_show" | ogf_key LoadState | ogf_last)
	UNIT_ACTIVE=$(printf '%s\n' "$ogf_show" | ogf_key ActiveState | ogf_last)
	MAINPID=$(printf '%s\n' "$ogf_show" | ogf_key MainPID | ogf_last)
	case $MAINPID in '' | *[!0-9]*) MAINPID= ;; esac
	if [ -n "$MAINPID" ] && [ "$MAINPID" != 0 ] && [ -r "/proc/$MAINPID/environ" ] &&
		ogf_have tr; then
		UNIT_HOST=$($TMO ${TMO:+10} tr '\n\000' '?\n' <"/proc/$MAINPID/environ" 2>/dev/null |
			ogf_key OLLAMA_HOST | ogf_last)
	fi
	[ -n "$UNIT_HOST" ] ||
		UNIT_HOST=$(printf '%s\n' "$ogf_show" | ogf_key Environment | ogf_env_host)
}

# Which API to ask: the unit's own OLLAMA_HOST where systemd has the unit (OGF_API is what a
# probe saw earlier, maybe another user's server); OGF_API only without one.
ogf_api() {
	if [ "$SYSTEMD" = yes ] && [ "$UNIT_LOAD" != not-found ]; then
		ogf_host_url "$UNIT_HOST"
		API_FROM=unit
	elif [ -n "${OGF_API:-}" ]; then
		ogf_host_url "$OGF_API"
		API_FROM=given
	else
		ogf_host_url ""
		API_FROM=default
	fi
}

# Wait for the API (a restart just happened, or a model is loading).
ogf_wait() {
	OGF_UP=0
	ogf_i=0
	ogf_max=$((${OGF_WAIT:-60} * 5))
	while [ "$ogf_i" -lt "$ogf_max" ]; do
		if $TMO ${TMO:+5} curl -s -m 2 -o /dev/null "$API_URL/api/version"; then
			OGF_UP=1
			break
		fi
		ogf_i=$((ogf_i + 1))
		sleep 0.2
	done
	ogf_sec wait echo "up=$OGF_UP after=$((ogf_i / 5))s"
}

# The `server` section: who the API belongs to. With systemd the verdict asks that each
# listener be MainPID or a descendant of it; without, that its uid be root's or the ollama
# account's and its binary root's and writable by no one else.
ogf_server() {
	printf 'systemd=%s\n' "$SYSTEMD"
	if [ "$SYSTEMD" = yes ]; then
		printf 'load=%s\nactive=%s\n' "$UNIT_LOAD" "$UNIT_ACTIVE"
	fi
	printf 'mainpid=%s\n' "$MAINPID"
	printf 'api=%s %s\n' "$API_URL" "$API_FROM"
	printf 'ollama_uid=%s\n' "$(ogf_user_uid ollama)"
	printf 'unsafe_path=%s\n' "${UNSAFE_PATH# }"
	if [ -n "$LISTENER_OUT" ]; then
		printf '%s' "$LISTENER_OUT"
	else
		echo "listener=none"
	fi
}

# Who holds GPU memory, and the parent chain of each (is it Ollama's runner?).
ogf_gpu_processes() {
	ogf_pids=
	if ogf_have nvidia-smi; then
		ogf_apps=$($TMO ${TMO:+10} nvidia-smi --query-compute-apps=pid,process_name,used_memory \
			--format=csv,noheader,nounits 2>&1)
		ogf_sec nvidia-apps printf '%s\n' "$ogf_apps"
		# shellcheck disable=SC2034 # the other fields are read only to skip them
		ogf_pids=$(printf '%s\n' "$ogf_apps" | while IFS=, read -r ogf_p ogf_rest; do
			case $ogf_p in '' | *[!0-9]*) ;; *) printf '%s ' "$ogf_p" ;; esac
		done)
	fi
	if [ -d /sys/class/kfd/kfd/proc ]; then
		ogf_kfd=
		for ogf_p in /sys/class/kfd/kfd/proc/*; do
			ogf_p=${ogf_p##*/}
			case $ogf_p in '' | *[!0-9]*) ;; *) ogf_kfd="$ogf_kfd$ogf_p
" ;; esac
		done
		ogf_sec kfd-pids printf '%s' "$ogf_kfd"
		ogf_pids="$ogf_pids $ogf_kfd"
	fi
	if ogf_have rocm-smi; then
		ogf_rocm=$($TMO ${TMO:+10} rocm-smi --showpids 2>&1 | head -c 65536)
		ogf_sec rocm-pids printf '%s\n' "$ogf_rocm"
		# shellcheck disable=SC2034 # the other fields are read only to skip them
		ogf_pids="$ogf_pids $(printf '%s\n' "$ogf_rocm" | while read -r ogf_p ogf_rest; do
			case $ogf_p in '' | *[!0-9]*) ;; *) printf '%s ' "$ogf_p" ;; esac
		done)"
	fi
	# shellcheck disable=SC2086 # PIDs are words
	ogf_sec ancestry ogf_ancestry $ogf_pids
}

# ---- who holds apt's and dpkg's locks -------------------------------------------------------

# One line per holder: `FILE PID COMM`. apt and dpkg lock with fcntl(F_SETLK), which
# /proc/locks lists as MAJ:MIN:INODE of the locked file (hex device numbers, as the kernel's
# fs/locks.c prints them): the device must match too, or any user could fake "apt is busy" by
# locking a file of the same inode number on another filesystem.
ogf_lock_holders() {
	for ogf_f in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock \
		/var/cache/apt/archives/lock; do
		[ -f "$ogf_f" ] && [ ! -L "$ogf_f" ] || continue
		# shellcheck disable=SC2046 # two numbers
		set -- $(stat -c '%d %i' -- "$ogf_f" 2>/dev/null)
		[ $# -eq 2 ] || continue
		ogf_id=$(printf '%02x:%02x:%s' $((($1 >> 8) & 4095)) \
			$((($1 & 255) | (($1 >> 12) & 1048320))) "$2")
		# shellcheck disable=SC2034 # fields read only to skip them
		while read -r ogf_n ogf_t ogf_a ogf_m ogf_pid ogf_dev ogf_rest; do
			[ "$ogf_dev" = "$ogf_id" ] || continue
			ogf_c=
			read -r ogf_c <"/proc/$ogf_pid/comm" 2>/dev/null
			printf '%s %s %s\n' "$ogf_f" "$ogf_pid" "${ogf_c:-?}"
		done </proc/locks
	done
}
