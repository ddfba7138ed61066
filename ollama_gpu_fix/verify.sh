#!/bin/sh
# ollama-gpu-fix verify v1: prove on the host that Ollama runs a model on the GPU.
#
# One remote command (pyinfra runs it as `sh -c '<this script>'` with the settings below in
# its environment); it prints named sections like probe.sh and always exits 0. The verdict is
# made by ollama_gpu_fix/verdict.py from what it prints. It writes nothing on the host; the
# only state it changes is Ollama's own (a model loaded, then unloaded after a CPU baseline).
#
# OGF_API      http://127.0.0.1:11434 (the address the probe established)
# OGF_MODEL    the model to run ("" = none is installed: only the startup log can tell)
# OGF_TOKENS   tokens to generate (<= 32, default 4)
# OGF_WAIT     seconds to wait for the API (after a restart)
# OGF_BASELINE 1 = also time the same prompt with num_gpu 0, then unload the model
# OGF_PULL     1 = pull OGF_MODEL when it is not installed
# OGF_GEN_TIMEOUT seconds one generation may take (a CPU may be slow)

ogf_main() {
	NONCE=
	[ -r /proc/sys/kernel/random/uuid ] && read -r NONCE </proc/sys/kernel/random/uuid
	NONCE=$(printf '%s' "$NONCE" | tr -cd 'A-Za-z0-9')
	[ -n "$NONCE" ] || NONCE="v$$"
	printf '%s\n' "ogf-verify v1 nonce=$NONCE"
	if ! command -v curl >/dev/null 2>&1; then
		ogf_sec error echo "curl is not installed: cannot talk to Ollama's API"
		return 0
	fi
	ogf_wait
	[ "$OGF_UP" = 1 ] || {
		ogf_sec log ogf_log
		return 0
	}
	ogf_sec version ogf_get /api/version
	if [ -n "$OGF_MODEL" ]; then
		if [ "${OGF_PULL:-0}" = 1 ]; then
			ogf_sec pull ogf_post /api/pull "{\"model\":\"$OGF_MODEL\",\"stream\":false}" 900
		fi
		ogf_sec generate ogf_post /api/generate "{\"model\":\"$OGF_MODEL\",\"prompt\":\"Why is the sky blue?\",\"stream\":false,\"keep_alive\":\"5m\",\"options\":{\"num_predict\":${OGF_TOKENS:-4},\"temperature\":0}}" "${OGF_GEN_TIMEOUT:-120}"
		ogf_sec ps ogf_get /api/ps
		ogf_gpu_processes
		if [ "${OGF_BASELINE:-0}" = 1 ]; then
			ogf_sec baseline ogf_post /api/generate "{\"model\":\"$OGF_MODEL\",\"prompt\":\"Why is the sky blue?\",\"stream\":false,\"keep_alive\":0,\"options\":{\"num_predict\":${OGF_TOKENS:-4},\"temperature\":0,\"num_gpu\":0}}" "${OGF_GEN_TIMEOUT:-120}"
		fi
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

ogf_get() { curl -s -m 10 --max-filesize 1048576 "$OGF_API$1"; }
ogf_post() {
	curl -s -m "${3:-60}" --max-filesize 1048576 -H 'Content-Type: application/json' \
		-d "$2" "$OGF_API$1"
}

# Wait for the API (a restart just happened, or a model is loading).
ogf_wait() {
	OGF_UP=0
	ogf_i=0
	ogf_max=$(( ${OGF_WAIT:-60} * 5 ))
	while [ "$ogf_i" -lt "$ogf_max" ]; do
		if curl -s -m 2 -o /dev/null "$OGF_API/api/version"; then
			OGF_UP=1
			break
		fi
		ogf_i=$((ogf_i + 1))
		sleep 0.2
	done
	ogf_sec wait echo "up=$OGF_UP after=$((ogf_i / 5))s"
}

# Who holds GPU memory, and the parent chain of each (is it Ollama's runner?).
ogf_gpu_processes() {
	ogf_main_pid=
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		ogf_main_pid=$(systemctl show -p MainPID --value ollama 2>/dev/null)
	fi
	ogf_sec server echo "mainpid=$ogf_main_pid"
	ogf_pids=
	if command -v nvidia-smi >/dev/null 2>&1; then
		ogf_apps=$($TMO nvidia-smi --query-compute-apps=pid,process_name,used_memory \
			--format=csv,noheader,nounits 2>&1)
		ogf_sec nvidia-apps printf '%s\n' "$ogf_apps"
		# shellcheck disable=SC2034 # the other fields are read only to skip them
		ogf_pids=$(printf '%s\n' "$ogf_apps" | while IFS=, read -r ogf_p ogf_rest; do
			case $ogf_p in '' | *[!0-9]*) ;; *) printf '%s ' "$ogf_p" ;; esac
		done)
	fi
	if [ -d /sys/class/kfd/kfd/proc ]; then
		ogf_kfd=$(ls /sys/class/kfd/kfd/proc 2>/dev/null)
		ogf_sec kfd-pids printf '%s\n' "$ogf_kfd"
		ogf_pids="$ogf_pids $ogf_kfd"
	fi
	if command -v rocm-smi >/dev/null 2>&1; then
		ogf_rocm=$($TMO rocm-smi --showpids 2>&1 | head -c 65536)
		ogf_sec rocm-pids printf '%s\n' "$ogf_rocm"
		# shellcheck disable=SC2034 # the other fields are read only to skip them
		ogf_pids="$ogf_pids $(printf '%s\n' "$ogf_rocm" | while read -r ogf_p ogf_rest; do
			case $ogf_p in '' | *[!0-9]*) ;; *) printf '%s ' "$ogf_p" ;; esac
		done)"
	fi
	# shellcheck disable=SC2086 # PIDs are words
	ogf_sec ancestry ogf_ancestry $ogf_pids
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

# Ollama's own log since it last started: what it detected (the fallback without a model).
ogf_log() {
	if [ -d /run/systemd/system ] && command -v journalctl >/dev/null 2>&1; then
		journalctl -u ollama -b --no-pager -o short-iso -n 400 2>&1 | tail -c 1048576
	fi
}

PATH="${PATH:-/usr/bin:/bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LC_ALL=C
export PATH LC_ALL
TMO=
command -v timeout >/dev/null 2>&1 && TMO="timeout 10"
if command -v iconv >/dev/null 2>&1; then
	ogf_main </dev/null 2>&1 | tr -d '\000' | iconv -c -f UTF-8 -t UTF-8 2>/dev/null
else
	ogf_main </dev/null 2>&1 | LC_ALL=C tr -d '\000\200-\377'
fi
exit 0
