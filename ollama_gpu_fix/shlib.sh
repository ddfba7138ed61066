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
# (scheme://host:port), API_HOSTPORT and API_PORT. The parsing of probe.sh's ogf_api_host.
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
