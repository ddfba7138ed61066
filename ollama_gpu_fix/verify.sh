#!/bin/sh
# ollama-gpu-fix verify v2: prove on the host that Ollama's service runs a model on the GPU.
#
# One remote command: ollama_gpu_fix/scripts.py puts shlib.sh (the shared helpers) in front of
# this text and pyinfra runs it as `sh -c '<script>'` with the settings below in its
# environment; it prints named sections like probe.sh and always exits 0. The verdict is made
# by ollama_gpu_fix/verdict.py from what it prints. It writes nothing on the host; the only
# state it changes is Ollama's own (a model loaded, then unloaded after a CPU baseline).
#
# Trust: it runs as root while other users act. Tools run only from PATH directories no other
# user can write (a fake curl would forge every answer). The API asked is the one the unit
# configures, and the `server` section names the process that holds its listening socket, so
# the verdict can tell Ollama's service from a process that took its port.
#
# OGF_API      the API's address when there is no systemd unit (with one, the unit's own
#              OLLAMA_HOST decides; default http://127.0.0.1:11434)
# OGF_MODEL    the model to run ("" = none is installed: only the startup log can tell)
# OGF_TOKENS   tokens to generate (<= 32, default 4)
# OGF_WAIT     seconds to wait for the API (after a restart)
# OGF_BASELINE 1 = also time the same prompt with num_gpu 0, then unload the model
# OGF_PULL     1 = pull OGF_MODEL when it is not installed
# OGF_GEN_TIMEOUT seconds one generation may take (a CPU may be slow)

# Run on its own (`sh verify.sh`, not composed by scripts.py): read the helpers beside it.
if [ "${OGF_SHLIB:-}" != 1 ]; then
	case $0 in */*) ogf_dir=${0%/*} ;; *) ogf_dir=. ;; esac
	# shellcheck source=ollama_gpu_fix/shlib.sh
	. "$ogf_dir/shlib.sh"
fi

ogf_main() {
	NONCE=
	[ -r /proc/sys/kernel/random/uuid ] && read -r NONCE </proc/sys/kernel/random/uuid
	NONCE=$(printf '%s' "$NONCE" | tr -cd 'A-Za-z0-9')
	[ -n "$NONCE" ] || NONCE="v$$"
	printf '%s\n' "ogf-verify v2 nonce=$NONCE"
	if ! ogf_have curl; then
		ogf_sec error echo "curl is not installed (or only in PATH directories other users" \
			"can write:${UNSAFE_PATH:- none}): cannot talk to Ollama's API"
		return 0
	fi
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
		ogf_sec log ogf_log
		return 0
	fi
	ogf_sec version ogf_get /api/version
	if [ -n "$OGF_MODEL" ]; then
		if [ "${OGF_PULL:-0}" = 1 ]; then
			ogf_sec pull ogf_post /api/pull "{\"model\":\"$OGF_MODEL\",\"stream\":false}" 900
		fi
		ogf_sec generate ogf_post /api/generate "{\"model\":\"$OGF_MODEL\",\"prompt\":\"Why is the sky blue?\",\"stream\":false,\"keep_alive\":\"5m\",\"options\":{\"num_predict\":${OGF_TOKENS:-4},\"temperature\":0}}" "${OGF_GEN_TIMEOUT:-120}"
		ogf_sec ps ogf_get /api/ps
		ogf_unit
		ogf_listeners
		ogf_sec server ogf_server
		ogf_gpu_processes
		if [ "${OGF_BASELINE:-0}" = 1 ]; then
			ogf_sec baseline ogf_post /api/generate "{\"model\":\"$OGF_MODEL\",\"prompt\":\"Why is the sky blue?\",\"stream\":false,\"keep_alive\":0,\"options\":{\"num_predict\":${OGF_TOKENS:-4},\"temperature\":0,\"num_gpu\":0}}" "${OGF_GEN_TIMEOUT:-120}"
		fi
	else
		ogf_sec server ogf_server
	fi
	ogf_sec log ogf_log
}

ogf_sec() {
	ogf_name=$1
	shift
	ogf_out=$("$@" 2>&1 | head -c 1048576)
	printf '%s\n' "--ogf-$NONCE-- $ogf_name"
	[ -n "$ogf_out" ] && printf '%s\n' "$ogf_out"
	return 0
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


# Ollama's own log since it last started: what it detected (the fallback without a model).
ogf_log() {
	if [ "$SYSTEMD" = yes ] && ogf_have journalctl; then
		$TMO ${TMO:+20} journalctl -u ollama -b --no-pager -o short-iso -n 400 2>&1 |
			tail -c 1048576
	fi
}

# Before anything runs (the output filters below included): a PATH of root's tools only.
PATH="${PATH:-/usr/bin:/bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LC_ALL=C
export PATH LC_ALL
SELF_UID=$(ogf_status_field /proc/self/status Uid)
UNSAFE_PATH=
LS=
for ogf_l in /usr/bin/ls /bin/ls; do
	[ -x "$ogf_l" ] && LS=$ogf_l && break
done
if [ -n "$LS" ]; then
	ogf_safe_path
else
	PATH=/usr/sbin:/usr/bin:/sbin:/bin # nothing to check directories with: the system's own
	UNSAFE_PATH=unchecked
fi
ogf_init_tmo
if ogf_have iconv; then
	ogf_main </dev/null 2>&1 | tr -d '\000' | iconv -c -f UTF-8 -t UTF-8 2>/dev/null
else
	ogf_main </dev/null 2>&1 | LC_ALL=C tr -d '\000\200-\377'
fi
exit 0
