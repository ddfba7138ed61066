# ollama-gpu-fix preflight v1: before the first change, everything the plan will need, checked
# by simulation; nothing on the host changes. Composed after change.sh (OGF_CHANGE_LIB=1), so
# "may root write this file" is answered by the very function that writes it.
#
# Settings (exported in front of it by the Preflight fact; words separated by spaces):
# OGF_FILES     files the plan writes or edits (change.sh `target` on each)
# OGF_ENVFILES  every EnvironmentFile= of ollama.service (a FIFO or a device hangs its start)
# OGF_PORT      host:port of Ollama's API (from the unit's OLLAMA_HOST)
# OGF_USERS, OGF_GROUPS   accounts the plan names
# OGF_APT=1     simulate the plan's apt work: OGF_INSTALL, OGF_PURGE (package names)
# OGF_REPO_URI  a repository the plan adds (reused when the host already has a source for it)
# OGF_REPO_KIND keyring-deb (NVIDIA's cuda-keyring) or key (AMD's key + one source line)
# OGF_REPO_FETCH the keyring package's or key's URL; OGF_REPO_SUITE (key kind)
# It prints named sections (like probe.sh) and always exits 0; ollama_gpu_fix/preflight.py
# judges them. The apt simulation runs in a scratch apt configuration under /var/tmp (a copy
# of the host's sources plus the one the plan would add, lists hard-linked), removed after.

pf_sec() {
	printf '%s\n' "--ogf-$PF_NONCE-- $1"
	shift
	"$@" 2>&1 | head -c 1048576
	return 0
}

pf_files() {
	# shellcheck disable=SC2086 # words on purpose
	[ -n "${OGF_FILES:-}" ] && cmd_check $OGF_FILES
	return 0
}

pf_envfiles() {
	for pf_f in ${OGF_ENVFILES:-}; do
		pf_f=${pf_f#-}
		if [ -L "$pf_f" ]; then
			pf_t='link'
		elif [ ! -e "$pf_f" ]; then
			pf_t=absent
		elif [ -f "$pf_f" ]; then
			pf_t=regular
		elif [ -p "$pf_f" ]; then
			pf_t=fifo
		elif [ -d "$pf_f" ]; then
			pf_t=directory
		else
			pf_t=device
		fi
		if target "$pf_f"; then pf_w=root; else pf_w="other: $WHY"; fi
		printf '%s\t%s\t%s\n' "$pf_t" "$pf_f" "$pf_w"
	done
}

# Who listens on the API's port, in verify.sh's `server` shape (shlib.sh's ogf_listeners: the
# socket inodes from /proc/net/tcp{,6}, then the fd naming each, checked link by link), so the
# preflight and the verification trust the same processes: ollama.service's MainPID and its
# descendants, or without systemd root's or the ollama account's root-owned binary.
pf_port() {
	API_PORT=${OGF_PORT##*:}
	MAINPID=
	pf_sd=no
	if [ -d /run/systemd/system ]; then
		pf_sd=yes
		MAINPID=$(systemctl show -p MainPID --value ollama.service 2>/dev/null)
		case $MAINPID in 0 | *[!0-9]*) MAINPID= ;; esac
		printf 'load=%s\nactive=%s\n' \
			"$(systemctl show -p LoadState --value ollama.service 2>/dev/null)" \
			"$(systemctl show -p ActiveState --value ollama.service 2>/dev/null)"
	fi
	LS=
	for pf_l in /usr/bin/ls /bin/ls; do
		[ -x "$pf_l" ] && LS=$pf_l && break
	done
	ogf_init_tmo
	LISTENERS=
	LISTENER_OUT=
	ogf_listeners
	printf 'systemd=%s\nmainpid=%s\napi=http://%s preflight\nollama_uid=%s\n' "$pf_sd" \
		"$MAINPID" "${OGF_PORT:-127.0.0.1:11434}" "$(ogf_user_uid ollama)"
	if [ -n "$LISTENER_OUT" ]; then printf '%s' "$LISTENER_OUT"; else echo "listener=none"; fi
	for pf_pid in $LISTENERS; do # who they are, by name (/etc/passwd)
		pf_uid=$(ogf_status_field "/proc/$pf_pid/status" Uid)
		pf_name=$(awk -F: -v u="$pf_uid" '$3 == u { print $1; exit }' /etc/passwd 2>/dev/null)
		printf 'owner=%s %s\n' "$pf_pid" "${pf_name:-?}"
	done
}

pf_accounts() {
	for pf_u in ${OGF_USERS:-}; do
		if id -u -- "$pf_u" >/dev/null 2>&1; then echo "user $pf_u present"; else echo "user $pf_u absent"; fi
	done
	for pf_g in ${OGF_GROUPS:-}; do
		if getent group -- "$pf_g" >/dev/null 2>&1; then echo "group $pf_g present"; else echo "group $pf_g absent"; fi
	done
}

pf_secureboot() {
	if command -v mokutil >/dev/null 2>&1; then
		timeout 10 mokutil --sb-state 2>&1 | head -n 3
	fi
	for pf_v in /sys/firmware/efi/efivars/SecureBoot-*; do
		[ -r "$pf_v" ] || continue
		printf 'efivar %s\n' "$(od -An -tu1 -j4 -N1 "$pf_v" 2>/dev/null | tr -d ' ')"
	done
	[ -d /sys/firmware/efi ] || echo "no-efi"
}

pf_sources() { # every source of the host: FILE<TAB>line (one-line) or FILE<TAB>Key: value
	for pf_f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -f "$pf_f" ] || continue
		head -c 65536 -- "$pf_f" | while IFS= read -r pf_l || [ -n "$pf_l" ]; do
			case $pf_l in '' | '#'*) continue ;; esac
			printf '%s\t%s\n' "$pf_f" "$pf_l"
		done
	done
}

pf_norm() { # a repository URI as apt compares them: no trailing slash
	pf_u=$1
	while :; do
		case $pf_u in */) pf_u=${pf_u%/} ;; *) break ;; esac
	done
	printf '%s\n' "$pf_u"
}

# The host's own source for OGF_REPO_URI, if it has one (one-line or deb822 URIs:).
pf_match() {
	[ -n "${OGF_REPO_URI:-}" ] || return 0
	pf_want=$(pf_norm "$OGF_REPO_URI")
	pf_sources | while IFS="$(printf '\t')" read -r pf_f pf_l; do
		case $pf_l in
		deb\ * | deb-src\ *) pf_words=${pf_l#* } ;;
		URIs:* | uris:*) pf_words=${pf_l#*:} ;;
		*) continue ;;
		esac
		case $pf_words in \[*\]*) pf_words=${pf_words#*]} ;; esac
		for pf_w in $pf_words; do
			[ "$(pf_norm "$pf_w")" = "$pf_want" ] && echo "match $pf_f" && break
		done
	done | head -n 4
}

# Wait (at most OGF_LOCK_WAIT seconds) for another apt or dpkg to finish; name it if it does not.
pf_lock() {
	pf_w=0
	while [ -n "$(ogf_lock_holders)" ] && [ "$pf_w" -lt "${OGF_LOCK_WAIT:-120}" ]; do
		sleep 1
		pf_w=$((pf_w + 1))
	done
	echo "waited=$pf_w"
	ogf_lock_holders | sed 's/^/holder /'
}

pf_apt() {
	PF_T=$(mktemp -d /var/tmp/ogf-preflight.XXXXXXXX) || {
		echo "error: cannot create a scratch directory"
		return 0
	}
	trap 'rm -rf -- "$PF_T"' EXIT
	mkdir -p "$PF_T/lists/partial" "$PF_T/cache/archives/partial" "$PF_T/etc/sources.list.d" \
		"$PF_T/etc/preferences.d" "$PF_T/repo"
	cp -p /etc/apt/sources.list "$PF_T/etc/sources.list" 2>/dev/null || : >"$PF_T/etc/sources.list"
	for pf_f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
		/etc/apt/preferences.d/*; do
		[ -f "$pf_f" ] || continue
		case $pf_f in
		*/preferences.d/*) cp -p "$pf_f" "$PF_T/etc/preferences.d/" ;;
		*) cp -p "$pf_f" "$PF_T/etc/sources.list.d/" ;;
		esac
	done
	[ -f /etc/apt/preferences ] && cp -p /etc/apt/preferences "$PF_T/etc/preferences"
	for pf_f in /var/lib/apt/lists/*; do
		[ -f "$pf_f" ] || continue
		ln "$pf_f" "$PF_T/lists/" 2>/dev/null || cp -p "$pf_f" "$PF_T/lists/"
	done
	pf_added=
	if [ -n "${OGF_REPO_URI:-}" ] && [ -z "$(pf_match)" ]; then
		case ${OGF_REPO_KIND:-} in
		keyring-deb)
			if curl -fsSL --proto '=https,http' --max-filesize 1048576 -m 60 \
				-o "$PF_T/repo/keyring.deb" -- "$OGF_REPO_FETCH" 2>"$PF_T/repo/err" &&
				dpkg-deb -x "$PF_T/repo/keyring.deb" "$PF_T/repo/root" 2>>"$PF_T/repo/err"; then
				for pf_f in "$PF_T"/repo/root/etc/apt/sources.list.d/*; do
					[ -f "$pf_f" ] || continue
					sed "s|signed-by=/|signed-by=$PF_T/repo/root/|" "$pf_f" \
						>"$PF_T/etc/sources.list.d/${pf_f##*/}"
					pf_added="$pf_added ${pf_f##*/}"
				done
				for pf_f in "$PF_T"/repo/root/etc/apt/preferences.d/*; do
					[ -f "$pf_f" ] && cp "$pf_f" "$PF_T/etc/preferences.d/"
				done
			else
				echo "fetch-failed $OGF_REPO_FETCH $(head -c 300 "$PF_T/repo/err" | tr '\n' ' ')"
			fi
			;;
		key)
			if curl -fsSL --proto '=https,http' --max-filesize 1048576 -m 60 \
				-o "$PF_T/repo/key.asc" -- "$OGF_REPO_FETCH" 2>"$PF_T/repo/err"; then
				printf 'deb [arch=%s signed-by=%s] %s %s main\n' "${OGF_REPO_ARCH:-amd64}" \
					"$PF_T/repo/key.asc" "$OGF_REPO_URI" "${OGF_REPO_SUITE:-}" \
					>"$PF_T/etc/sources.list.d/ogf-preflight.list"
				pf_added=ogf-preflight.list
			else
				echo "fetch-failed $OGF_REPO_FETCH $(head -c 300 "$PF_T/repo/err" | tr '\n' ' ')"
			fi
			;;
		esac
	fi
	echo "added${pf_added}"
	PF_APT="-o Dir::Etc::SourceList=$PF_T/etc/sources.list -o Dir::Etc::SourceParts=$PF_T/etc/sources.list.d"
	PF_APT="$PF_APT -o Dir::Etc::Preferences=$PF_T/etc/preferences -o Dir::Etc::PreferencesParts=$PF_T/etc/preferences.d"
	PF_APT="$PF_APT -o Dir::State::Lists=$PF_T/lists -o Dir::Cache=$PF_T/cache -o Debug::NoLocking=1"
	PF_APT="$PF_APT -o APT::Sandbox::User=root -o Acquire::Retries=1"
	if [ -n "${OGF_INSTALL:-}" ]; then
		echo "== apt-get update"
		{
			# shellcheck disable=SC2086 # options are words
			timeout 300 apt-get $PF_APT -q update 2>&1
			echo "rc=$?"
		} | tail -n 60
	fi
	pf_args=
	for pf_p in ${OGF_INSTALL:-}; do pf_args="$pf_args $pf_p"; done
	for pf_p in ${OGF_PURGE:-}; do pf_args="$pf_args $pf_p-"; done
	echo "== apt-get simulate:$pf_args"
	if [ -n "$pf_args" ]; then
		{
			# shellcheck disable=SC2086 # options and packages are words
			timeout 120 apt-get $PF_APT -s -q --purge --no-install-recommends install $pf_args 2>&1
			echo "rc=$?"
		} | tail -n 400
	fi
	echo "== held"
	dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' 2>/dev/null | awk '$1 ~ /^h/ { print $2 }'
	echo "== audit"
	dpkg --audit 2>&1 | head -n 20
	echo "== writable"
	for pf_d in /usr /etc /var/lib/dpkg /var/cache/apt; do
		[ -w "$pf_d" ] || echo "$pf_d $(why_not_writable "$pf_d")"
	done
}

pf_main() {
	PF_NONCE=
	[ -r /proc/sys/kernel/random/uuid ] && read -r PF_NONCE </proc/sys/kernel/random/uuid
	PF_NONCE=$(printf '%s' "$PF_NONCE" | tr -cd 'A-Za-z0-9')
	[ -n "$PF_NONCE" ] || PF_NONCE="pf$$"
	echo "ogf-preflight v1 nonce=$PF_NONCE"
	pf_sec files pf_files
	pf_sec envfiles pf_envfiles
	pf_sec port pf_port
	pf_sec accounts pf_accounts
	pf_sec secureboot pf_secureboot
	pf_sec kernel uname -r
	if [ -d /run/systemd/system ]; then
		pf_sec systemd systemctl show -p LoadState,ActiveState,UnitFileState ollama.service
	fi
	if [ "${OGF_APT:-0}" = 1 ]; then
		pf_sec lock pf_lock
		pf_sec sources pf_sources
		pf_sec repo-match pf_match
		pf_sec apt pf_apt
	fi
}

pf_main </dev/null
exit 0
