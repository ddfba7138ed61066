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
	ogf_verify_run
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
