#!/bin/sh
# ollama-gpu-fix probe v2: print every piece of evidence about why Ollama may run on the CPU
# as one stream of named sections (format: docs/probe-sections.md).
#
# Why it looks like this:
# - pyinfra runs it as ONE remote command (`sh -c '<this script>'`): one round trip per host.
# - POSIX sh only (dash, busybox ash): the targets range from Ubuntu to Alpine containers.
# - It ALWAYS exits 0 and prints valid UTF-8: pyinfra fails a host on a non-zero fact and
#   decodes output as strict UTF-8.
# - Read-only: it writes no file. Every external command is bounded by `timeout`.
# - Any tool may be missing: sysfs and /proc are read with shell builtins where possible.
# - It runs as root on text other users write: it runs tools only from PATH directories no
#   other user can write, trusts only the service's own process (its environment, its
#   address), reads files in other users' homes as their owner (a link to a root-only file
#   reads nothing) and bounds every read in bytes and time.
#
# Observation (asked by the fix, and by diagnose with observe_generate): OGF_OBSERVE=generate
# runs a bounded generation (OGF_OBSERVE_TOKENS tokens, OGF_OBSERVE_TIMEOUT seconds, the model
# OGF_OBSERVE_MODEL or else the smallest local one), then reads /api/ps, whom the API belongs
# to and the GPU's process list, with the verification's own code (shlib.sh ogf_verify_run);
# OGF_OBSERVE=look reads the same without generating (also what `generate` does on a host with
# no GPU device at all). Only when the trusted server holds the API's socket. The `observation.txt` section holds that output as verify.sh prints it.
#
# Test hooks: OGF_PROBE_PATH, when set, replaces PATH as is (no standard directories added);
# OGF_PROBE_ASSUME_GPU=1 observes with a generation on a machine without a GPU;
# OGF_PROBE_LIB=1 when sourcing defines the functions only (OGF_SHLIB_DIR: where shlib.sh is).

# Run on its own (`sh probe.sh`, not composed by scripts.py): read the helpers beside it.
if [ "${OGF_SHLIB:-}" != 1 ]; then
	case $0 in */*) ogf_dir=${0%/*} ;; *) ogf_dir=. ;; esac
	# shellcheck source=ollama_gpu_fix/shlib.sh
	. "${OGF_SHLIB_DIR:-$ogf_dir}/shlib.sh"
fi

ogf_main() {
	# ---- setup -------------------------------------------------------------------------
	NONCE=
	if [ -r /proc/sys/kernel/random/uuid ]; then
		read -r NONCE </proc/sys/kernel/random/uuid 2>/dev/null
		ogf_ifs=$IFS
		IFS=-
		# shellcheck disable=SC2086
		set -- $NONCE
		IFS=$ogf_ifs
		NONCE="$1$2$3$4$5"
	fi
	case $NONCE in
	'' | *[!A-Za-z0-9]*) NONCE="p$$t$(date +%s 2>/dev/null)" ;;
	esac
	case $NONCE in
	*[!A-Za-z0-9]*) NONCE="p$$" ;;
	esac

	SELF_UID=$(ogf_status_field /proc/self/status Uid)
	UNSAFE_PATH=
	UNSAFE_BINS=
	LS=
	for ogf_l in /usr/bin/ls /bin/ls; do
		[ -x "$ogf_l" ] && LS=$ogf_l && break
	done
	ogf_safe_path

	TMO=
	if ogf_have timeout; then
		if timeout 10 true >/dev/null 2>&1; then
			TMO=timeout
		elif timeout -t 10 true >/dev/null 2>&1; then
			TMO="timeout -t" # busybox before 1.30
		fi
	fi
	CAT=
	ogf_have cat && CAT="cat"
	HEAD=
	ogf_have head && HEAD="head"
	NVCC=$(command -v nvcc 2>/dev/null)
	[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && ogf_safe_file /usr/local/cuda/bin/nvcc &&
		NVCC=/usr/local/cuda/bin/nvcc

	printf '%s\n' "ogf-probe v2 nonce=$NONCE"

	OLLAMA_BIN=$(command -v ollama 2>/dev/null)
	if [ -n "$OLLAMA_BIN" ] && ! ogf_safe_file "$OLLAMA_BIN"; then
		UNSAFE_BINS="$UNSAFE_BINS $OLLAMA_BIN" # another user could have put it there
		OLLAMA_BIN=
	fi

	ogf_scan_unit
	ogf_scan_processes
	ogf_api_host

	# ---- sections, in the order of ollama_gpu_fix.bundle.SECTIONS ----------------------------
	ogf_sec probe-meta.txt ogf_meta

	if [ -r /etc/os-release ]; then
		ogf_sec os-release.txt ogf_rd /etc/os-release
	elif [ -r /usr/lib/os-release ]; then
		ogf_sec os-release.txt ogf_rd /usr/lib/os-release
	fi

	if [ -r /proc/version ]; then
		ogf_sec proc-version.txt ogf_rd /proc/version
	elif ogf_have uname; then
		ogf_sec proc-version.txt ogf_run uname -a
	fi

	ogf_have lspci && ogf_sec lspci.txt ogf_run lspci -nn
	[ -d /sys/bus/pci/devices ] && ogf_sec pci-devices.txt ogf_pci
	[ -r /proc/modules ] && ogf_sec lsmod.txt ogf_modules

	# Observe before disturbing: NVML (nvidia-smi) runs the setuid nvidia-modprobe, which may
	# load the module and create /dev/nvidia* nodes whose absence is the evidence.
	NV_VERSION=
	ogf_nv_seen=
	if [ -r /proc/driver/nvidia/version ]; then
		NV_VERSION=$(ogf_rd /proc/driver/nvidia/version)
		ogf_nv_seen=1
	fi
	DEV_NODES=$(ogf_dev_nodes)

	if ogf_have nvidia-smi; then
		ogf_sec nvidia-smi.txt ogf_run2 nvidia-smi
		ogf_sec nvidia-smi-query.csv ogf_run2 nvidia-smi \
			--query-gpu=index,name,driver_version,memory.total,memory.used,compute_cap,pci.bus_id,uuid \
			--format=csv
		ogf_sec nvidia-smi-apps.csv ogf_run2 nvidia-smi \
			--query-compute-apps=pid,process_name,used_memory --format=csv
	fi
	[ -n "$ogf_nv_seen" ] && ogf_sec proc-driver-nvidia-version.txt printf '%s\n' "$NV_VERSION"

	[ -n "$NVCC" ] && ogf_sec nvcc-version.txt ogf_run2 "$NVCC" --version
	ogf_sec cuda-toolkits.txt ogf_cuda_toolkits
	if ogf_have dpkg-query || ogf_have rpm || ogf_have pacman; then
		ogf_sec packages.txt ogf_packages
	fi

	ogf_have rocminfo && ogf_sec rocminfo.txt ogf_run2 rocminfo
	ogf_have rocm-smi && ogf_sec rocm-smi.txt ogf_run2 rocm-smi
	[ -r /opt/rocm/.info/version ] && ogf_sec rocm-version.txt ogf_rd /opt/rocm/.info/version
	[ -d /sys/class/kfd/kfd/topology/nodes ] && ogf_sec kfd-topology.txt ogf_kfd
	ogf_have vulkaninfo && ogf_sec vulkaninfo.txt ogf_run2 vulkaninfo --summary
	ogf_have mokutil && ogf_sec mokutil.txt ogf_run2 mokutil --sb-state

	ogf_have id && ogf_sec groups.txt ogf_groups
	ogf_sec dev-nodes.txt printf '%s\n' "$DEV_NODES"
	ogf_sec ldconfig.txt ogf_ldconfig
	[ -r /etc/nv_tegra_release ] && ogf_sec nv-tegra-release.txt ogf_rd /etc/nv_tegra_release

	[ -n "$OLLAMA_BIN" ] && ogf_sec ollama-version.txt ogf_ollama -v
	ogf_sec ollama-libs.txt ogf_ollama_libs

	if [ -n "$UNIT_CAT" ]; then
		ogf_sec systemctl-cat.txt printf '%s\n' "$UNIT_CAT"
	fi
	if [ -n "$UNIT_SHOW" ]; then
		ogf_sec systemctl-show.txt printf '%s\n' "$UNIT_SHOW"
	fi
	[ -n "$PROC_OUT" ] && ogf_sec ollama-process.txt printf '%s\n' "$PROC_OUT"
	ogf_sec shell-env.txt ogf_shell_env

	[ -n "$OLLAMA_BIN" ] && [ -n "$API_OK" ] && ogf_sec ollama-ps.txt ogf_ollama ps
	[ -n "$API_OK" ] && ogf_api_ps
	case ${OGF_OBSERVE:-} in generate | look) ogf_sec observation.txt ogf_observe ;; esac
	ogf_serve_log
	ogf_dmesg
	# the watchdog's last check (root's own file, written by its timer)
	ogf_f=/var/lib/ollama-gpu-fix/watchdog/last-check.json
	if [ -f "$ogf_f" ] && [ ! -L "$ogf_f" ]; then
		ogf_sec watchdog.json ogf_rd "$ogf_f"
	fi
}

# ---- helpers -------------------------------------------------------------------------------

# Bounded external command: stdout only / stdout and stderr.
ogf_run() { $TMO ${TMO:+10} "$@" 2>/dev/null; }
ogf_run2() { $TMO ${TMO:+10} "$@" 2>&1; }

# Read a root-owned file (at most 1 MiB) without needing cat.
ogf_rd() {
	if [ -n "$HEAD" ]; then
		$TMO ${TMO:+10} head -c 1048576 -- "$1" 2>/dev/null
	elif [ -n "$CAT" ]; then
		$TMO ${TMO:+10} cat -- "$1" 2>/dev/null
	else
		while IFS= read -r ogf_l || [ -n "$ogf_l" ]; do
			printf '%s\n' "$ogf_l"
		done <"$1"
	fi
}

# Print a section: header, then what the command printed (a final newline guaranteed), at
# most 4 MiB of it.
ogf_sec() {
	ogf_name=$1
	shift
	if [ -n "$HEAD" ]; then
		ogf_out=$("$@" | head -c 4194304)
	else
		ogf_out=$("$@")
	fi
	printf '%s\n' "--ogf-$NONCE-- $ogf_name"
	[ -n "$ogf_out" ] && printf '%s\n' "$ogf_out"
	return 0
}

# Last N lines of a command's output (all of them when tail is missing).
ogf_tail() {
	if ogf_have tail; then tail -n "$1"; else ogf_rd /dev/stdin; fi
}

ogf_user_name() { # uid -> name, from /etc/passwd
	ogf_un=$1
	while IFS=: read -r ogf_pn ogf_pp ogf_pu ogf_rest; do
		if [ "$ogf_pu" = "$1" ]; then
			ogf_un=$ogf_pn
			break
		fi
	done </etc/passwd 2>/dev/null
	printf '%s\n' "$ogf_un"
}

# Run a command as UID:GID (root only; else as ourselves): a file another user controls is
# read with that user's rights, so a link to a root-only file gives nothing. 1 when unable.
ogf_as() {
	ogf_asu=$1
	ogf_asg=$2
	shift 2
	if [ "$SELF_UID" != 0 ] || [ "$ogf_asu" = 0 ]; then
		$TMO ${TMO:+10} "$@"
	elif ogf_have setpriv; then
		$TMO ${TMO:+10} setpriv --reuid="$ogf_asu" --regid="$ogf_asg" --clear-groups -- "$@"
	elif ogf_have chroot && chroot --help 2>&1 | grep -q userspec; then
		$TMO ${TMO:+10} chroot --userspec="$ogf_asu:$ogf_asg" / "$@"
	else
		return 1
	fi
}

ogf_user_home() { # name -> home, from /etc/passwd
	# shellcheck disable=SC2034 # fields read only to skip them
	while IFS=: read -r ogf_pn ogf_pp ogf_pu ogf_pg ogf_pc ogf_ph ogf_rest; do
		if [ "$ogf_pn" = "$1" ]; then
			printf '%s\n' "$ogf_ph"
			return 0
		fi
	done </etc/passwd 2>/dev/null
	return 1
}

# ---- probe-meta.txt ------------------------------------------------------------------------

ogf_container() {
	if [ -f /.dockerenv ]; then
		echo docker
		return
	fi
	if [ -f /run/.containerenv ]; then
		echo podman
		return
	fi
	if [ -r /run/systemd/container ]; then
		read -r ogf_c </run/systemd/container 2>/dev/null
		if [ -n "$ogf_c" ]; then
			echo "$ogf_c"
			return
		fi
	fi
	if [ -n "${container:-}" ]; then
		echo "$container"
		return
	fi
	if [ -r /proc/1/cgroup ]; then
		while IFS= read -r ogf_l; do
			case $ogf_l in
			*/docker[/-]* | */docker) echo docker && return ;;
			*/kubepods*) echo kubernetes && return ;;
			*/lxc/* | */lxc.payload*) echo lxc && return ;;
			*libpod*) echo podman && return ;;
			esac
		done </proc/1/cgroup
	fi
	if [ -r /proc/version ]; then
		read -r ogf_l </proc/version
		case $ogf_l in
		*[Mm]icrosoft*)
			echo wsl
			return
			;;
		esac
	fi
	echo none
}

ogf_meta() {
	echo probe=2
	ogf_uid=$(ogf_status_field /proc/self/status Uid)
	[ -z "$ogf_uid" ] && ogf_have id && ogf_uid=$(id -u 2>/dev/null)
	echo "uid=$ogf_uid"
	ogf_arch=
	ogf_have uname && ogf_arch=$(uname -m 2>/dev/null)
	[ -z "$ogf_arch" ] && [ -r /proc/sys/kernel/arch ] && read -r ogf_arch </proc/sys/kernel/arch
	echo "arch=$ogf_arch"
	if [ -d /run/systemd/system ]; then echo systemd=yes; else echo systemd=no; fi
	echo "container=$(ogf_container)"
	for ogf_t in nvidia-smi nvcc rocminfo rocm-smi vulkaninfo mokutil lspci systemctl \
		journalctl ollama curl wget dpkg-query rpm pacman ldconfig timeout python3 sudo; do
		if [ "$ogf_t" = nvcc ]; then
			echo "tool.nvcc=$NVCC"
		elif [ "$ogf_t" = ollama ]; then
			echo "tool.ollama=$OLLAMA_BIN"
		else
			echo "tool.$ogf_t=$(command -v "$ogf_t" 2>/dev/null)"
		fi
	done
	for ogf_f in /proc/driver/nvidia/version /dev/kfd /dev/dxg /usr/lib/wsl/lib \
		/etc/nv_tegra_release /sys/class/kfd; do
		[ -e "$ogf_f" ] || echo "absent=$ogf_f"
	done
	[ -n "$LS" ] || echo "path=unchecked"
	for ogf_f in $UNSAFE_PATH; do echo "unsafe-path=$ogf_f"; done
	for ogf_f in $UNSAFE_BINS; do echo "unsafe-exe=$ogf_f"; done
	# fixes this tool made and a failed verification undid (root's own state file)
	if [ -f /var/lib/ollama-gpu-fix/rolled-back ] && [ ! -L /var/lib/ollama-gpu-fix/rolled-back ]; then
		ogf_rd /var/lib/ollama-gpu-fix/rolled-back | while read -r ogf_fp ogf_rest; do
			case $ogf_fp in ????????????) echo "rolled-back=$ogf_fp" ;; esac
		done
	fi
	# an earlier fix that never committed its transaction (root's own journal)
	ogf_j=/var/lib/ollama-gpu-fix/txn/journal
	if [ -f "$ogf_j" ] && [ ! -L "$ogf_j" ]; then
		ogf_t=open
		while IFS= read -r ogf_l; do
			case $ogf_l in 'commit '*) ogf_t=none ;; esac
		done <"$ogf_j"
		echo "txn=$ogf_t"
	fi
	# the watchdog this tool installs (root's own files; README "Watchdog"): the fix compares
	# their sha256 with what it would install, and needs Python 3.10+ for it
	for ogf_f in /usr/local/lib/ollama-gpu-fix/ogf-check.pyz \
		/etc/systemd/system/ollama-gpu-fix-watchdog.service \
		/etc/systemd/system/ollama-gpu-fix-watchdog.timer; do
		if [ -f "$ogf_f" ] && [ ! -L "$ogf_f" ] && ogf_have sha256sum; then
			ogf_h=$(ogf_run sha256sum -- "$ogf_f")
			echo "watchdog.file=${ogf_h%% *} $ogf_f"
		fi
	done
	if [ -d /run/systemd/system ] && ogf_have systemctl; then
		echo "watchdog.timer=$(ogf_run systemctl is-enabled ollama-gpu-fix-watchdog.timer)/$(ogf_run systemctl is-active ollama-gpu-fix-watchdog.timer)"
	fi
	[ -x /usr/bin/python3 ] &&
		echo "python3.version=$(ogf_run /usr/bin/python3 -I -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
	echo "mainpid=$MAINPID"
	echo "server=${TRUSTED_SERVER:-none}"
	if [ -n "$API_OK" ]; then echo "api=$API_URL"; else echo "api=skipped"; fi
	[ -n "$API_OWNER" ] && echo "api-owner=$API_OWNER"
}

# ---- PCI, modules --------------------------------------------------------------------------

ogf_pci() {
	for ogf_d in /sys/bus/pci/devices/*; do
		[ -e "$ogf_d" ] || continue
		ogf_a=${ogf_d##*/}
		ogf_v=-
		ogf_i=-
		ogf_c=-
		[ -r "$ogf_d/vendor" ] && read -r ogf_v <"$ogf_d/vendor"
		[ -r "$ogf_d/device" ] && read -r ogf_i <"$ogf_d/device"
		[ -r "$ogf_d/class" ] && read -r ogf_c <"$ogf_d/class"
		ogf_drv=-
		if [ -e "$ogf_d/driver" ]; then
			for ogf_dd in /sys/bus/pci/drivers/*; do
				if [ -e "$ogf_dd/$ogf_a" ]; then
					ogf_drv=${ogf_dd##*/}
					break
				fi
			done
		fi
		echo "$ogf_a ${ogf_v:--} ${ogf_i:--} ${ogf_c:--} $ogf_drv"
	done
}

ogf_modules() {
	while IFS= read -r ogf_l; do
		case $ogf_l in
		"nvidia "* | "nvidia_uvm "* | "nvidia_drm "* | "nvidia_modeset "* | "nouveau "* | \
			"amdgpu "* | "i915 "* | "xe "*) printf '%s\n' "$ogf_l" ;;
		esac
	done </proc/modules
}

# ---- CUDA toolkits, packages ---------------------------------------------------------------

ogf_cuda_version_of() { # DIR -> version or -
	if [ -r "$1/version.json" ]; then
		ogf_in=
		while IFS= read -r ogf_l; do
			case $ogf_l in
			*'"cuda"'*:*) ogf_in=1 ;;
			*'"version"'*)
				if [ -n "$ogf_in" ]; then
					ogf_l=${ogf_l#*\"version\"}
					ogf_l=${ogf_l#*\"}
					printf '%s\n' "${ogf_l%%\"*}"
					return
				fi
				;;
			esac
		done <"$1/version.json"
	fi
	if [ -r "$1/version.txt" ]; then
		read -r ogf_l <"$1/version.txt"
		printf '%s\n' "${ogf_l##* }"
		return
	fi
	echo -
}

ogf_cuda_toolkits() {
	for ogf_d in /usr/local/cuda /usr/local/cuda-* /opt/cuda /opt/cuda-*; do
		[ -d "$ogf_d" ] || continue
		ogf_v=$(ogf_cuda_version_of "$ogf_d")
		echo "dir $ogf_d ${ogf_v:--}"
	done
	for ogf_f in /etc/ld.so.conf /etc/ld.so.conf.d/*; do
		[ -f "$ogf_f" ] && [ -r "$ogf_f" ] || continue
		while IFS= read -r ogf_l || [ -n "$ogf_l" ]; do
			case $ogf_l in
			*cuda*) echo "ldconf $ogf_f $ogf_l" ;;
			esac
		done <"$ogf_f"
	done
}

ogf_pkg_filter() { # "NAME VERSION" lines in, GPU-related ones out
	# shellcheck disable=SC2034 # fields read only to skip them
	while read -r ogf_n ogf_v ogf_rest; do
		case $ogf_n in
		cuda* | nvidia* | libnvidia* | libcuda* | kmod-nvidia* | akmod-nvidia* | \
			xserver-xorg-video-nvidia* | rocm* | hip* | amdgpu* | rocblas* | hsa* | \
			comgr* | libamd* | mesa-vulkan* | vulkan* | libvulkan* | ollama*)
			echo "$ogf_n $ogf_v"
			;;
		esac
	done
}

ogf_packages() {
	if ogf_have dpkg-query; then
		ogf_run dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version}\n' |
			while read -r ogf_s ogf_n ogf_v; do
				case $ogf_s in
				ii | hi | iU | iF) echo "$ogf_n $ogf_v" ;;
				esac
			done | ogf_pkg_filter
	elif ogf_have rpm; then
		ogf_run rpm -qa --qf '%{NAME} %{VERSION}-%{RELEASE}\n' | ogf_pkg_filter
	elif ogf_have pacman; then
		ogf_run pacman -Q | ogf_pkg_filter
	fi
}

# ---- AMD, devices, libraries ---------------------------------------------------------------

ogf_kfd() {
	for ogf_d in /sys/class/kfd/kfd/topology/nodes/*; do
		[ -d "$ogf_d" ] || continue
		echo "== node ${ogf_d##*/}"
		[ -r "$ogf_d/properties" ] && ogf_rd "$ogf_d/properties"
	done
}

ogf_groups() {
	ogf_run2 id ollama
	if [ -n "$UNIT_USER" ] && [ "$UNIT_USER" != ollama ] && [ "$UNIT_USER" != root ]; then
		ogf_run2 id "$UNIT_USER"
	fi
	if [ -n "${SUDO_USER:-}" ]; then
		ogf_run2 id "$SUDO_USER"
	else
		ogf_run2 id
	fi
}

ogf_dev_nodes() {
	set --
	for ogf_f in /dev/kfd /dev/dri /dev/nvidia* /dev/dxg /dev/nvmap; do
		[ -e "$ogf_f" ] && set -- "$@" "$ogf_f"
	done
	[ $# -gt 0 ] && ogf_have ls && ogf_run ls -l "$@"
}

ogf_ldconfig() {
	if ogf_have ldconfig; then
		ogf_run ldconfig -p | while IFS= read -r ogf_l; do
			case $ogf_l in
			*libcuda* | *libnvidia-ml* | *libamdhip64* | *libamd_comgr* | *libvulkan*)
				printf '%s\n' "$ogf_l"
				;;
			esac
		done
	fi
	for ogf_d in /usr/lib /usr/lib64 /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu \
		/usr/lib/wsl/lib /usr/local/cuda*/lib64; do
		[ -d "$ogf_d" ] || continue
		for ogf_f in "$ogf_d"/libcuda.so* "$ogf_d"/libnvidia-ml.so* "$ogf_d"/libcudart.so*; do
			[ -e "$ogf_f" ] || [ -L "$ogf_f" ] || continue
			echo "file $ogf_f"
		done
	done
}

# ---- Ollama --------------------------------------------------------------------------------

# The ollama client, talking to the server the service actually listens on; with no trusted
# server it talks to nothing (port 0 refuses), so only the client's own version comes back.
ogf_ollama() {
	if [ -n "$API_OK" ]; then
		OLLAMA_HOST=$API_URL $TMO ${TMO:+10} "$OLLAMA_BIN" "$@" 2>&1
	else
		OLLAMA_HOST=http://127.0.0.1:0 $TMO ${TMO:+10} "$OLLAMA_BIN" "$@" 2>&1
	fi
}

ogf_ollama_libs() {
	ogf_roots="/usr/local/lib/ollama /usr/lib/ollama /usr/share/ollama/lib"
	for ogf_b in "$OLLAMA_BIN" $PROC_EXES; do
		[ -n "$ogf_b" ] || continue
		if ogf_have readlink; then
			ogf_r=$($TMO ${TMO:+10} readlink -f "$ogf_b" 2>/dev/null)
			[ -n "$ogf_r" ] && ogf_b=$ogf_r
		fi
		ogf_bd=${ogf_b%/*}
		ogf_roots="$ogf_roots ${ogf_bd%/*}/lib/ollama $ogf_bd/lib/ollama"
	done
	ogf_seen=" "
	ogf_n=0
	for ogf_r in $ogf_roots; do
		case $ogf_seen in *" $ogf_r "*) continue ;; esac
		ogf_seen="$ogf_seen$ogf_r "
		[ -d "$ogf_r" ] || continue
		for ogf_a in "$ogf_r"/*; do
			[ -e "$ogf_a" ] || [ -L "$ogf_a" ] || continue
			ogf_n=$((ogf_n + 1))
			[ "$ogf_n" -gt 4000 ] && return 0 # a listing, not an inventory of the disk
			printf '%s\n' "$ogf_a"
			[ -d "$ogf_a" ] && [ ! -L "$ogf_a" ] || continue
			for ogf_c in "$ogf_a"/*; do
				[ -e "$ogf_c" ] || [ -L "$ogf_c" ] || continue
				ogf_n=$((ogf_n + 1))
				[ "$ogf_n" -gt 4000 ] && return 0
				printf '%s\n' "$ogf_c"
			done
			case ${ogf_a##*/} in
			rocm*)
				for ogf_c in "$ogf_a"/rocblas/library/TensileLibrary_lazy_*.dat; do
					[ -e "$ogf_c" ] && printf '%s\n' "$ogf_c"
				done
				;;
			esac
		done
	done
}

# One line, printable ASCII only: a process or file name cannot add lines to a record.
# With FILE, read it bounded in time (another process's memory can block the read).
ogf_oneline() {
	if ogf_have tr; then
		if [ $# -gt 0 ]; then
			$TMO ${TMO:+10} tr '\000' ' ' <"$1" 2>/dev/null | tr -c '[:print:]' '?'
		else
			tr '\000' ' ' | tr -c '[:print:]' '?'
		fi
	else
		ogf_l=
		if [ $# -gt 0 ]; then IFS= read -r ogf_l <"$1"; else IFS= read -r ogf_l; fi
		printf '%s' "$ogf_l"
	fi 2>/dev/null
}

# Is this `ollama serve` the service's own? Prints why (mainpid, cgroup, uid) and returns 0,
# else returns 1. Args: PID UID EXE. Only root, the ollama account, the unit's User= and the
# prober itself can start a process that a local user cannot; its binary must be root's too.
ogf_trusted() {
	if [ -n "$MAINPID" ] && [ "$MAINPID" != 0 ] && [ "$1" = "$MAINPID" ]; then
		echo mainpid
		return 0
	fi
	if [ -r "/proc/$1/cgroup" ]; then
		while IFS= read -r ogf_l; do
			case $ogf_l in
			*::/system.slice/ollama.service | *:/system.slice/ollama.service)
				echo cgroup
				return 0
				;;
			esac
		done <"/proc/$1/cgroup"
	fi
	case $2 in
	0 | "$SELF_UID" | "$OLLAMA_UID" | "$UNIT_UID") ;;
	*) return 1 ;;
	esac
	[ -n "$2" ] || return 1
	if ogf_ls -L "/proc/$1/exe" && ogf_safe_mode; then
		echo uid
		return 0
	fi
	return 1
}

# Every running `ollama serve`: pid, user, parent, trust; for the service's own process also
# its cgroup, command line, binary and GPU environment. Sets PROC_OUT (the section),
# PROC_EXES, PROC_HOST (OLLAMA_HOST of the trusted server) and TRUSTED_SERVER (its pid).
ogf_scan_processes() {
	PROC_OUT=
	PROC_EXES=
	PROC_HOST=
	TRUSTED_SERVER=
	OLLAMA_UID=$(ogf_user_uid ollama)
	UNIT_UID=
	[ -n "$UNIT_USER" ] && UNIT_UID=$(ogf_user_uid "$UNIT_USER")
	for ogf_p in /proc/[0-9]*; do
		[ -r "$ogf_p/comm" ] || continue
		ogf_comm=
		read -r ogf_comm <"$ogf_p/comm" 2>/dev/null
		case $ogf_comm in ollama*) ;; *) continue ;; esac
		ogf_cl=$(ogf_oneline "$ogf_p/cmdline")
		case $ogf_cl in *runner*) continue ;; *serve*) ;; *) continue ;; esac
		ogf_pid=${ogf_p##*/}
		ogf_uid=$(ogf_status_field "$ogf_p/status" Uid)
		ogf_ppid=$(ogf_status_field "$ogf_p/status" PPid)
		ogf_parent=
		[ -n "$ogf_ppid" ] && read -r ogf_parent <"/proc/$ogf_ppid/comm" 2>/dev/null
		ogf_rec="pid=$ogf_pid
user=$(ogf_user_name "$ogf_uid")
ppid=$ogf_ppid
parent=$ogf_parent"
		if ! ogf_why=$(ogf_trusted "$ogf_pid" "$ogf_uid"); then
			# another user's process: reported, never believed (not its environment, not
			# its address, not its files)
			ogf_rec="$ogf_rec
cmdline=$(printf '%.200s' "$ogf_cl")
trusted=no"
			PROC_OUT="${PROC_OUT:+$PROC_OUT
}$ogf_rec"
			continue
		fi
		if [ -r "$ogf_p/cgroup" ]; then
			while IFS= read -r ogf_l; do
				ogf_rec="$ogf_rec
cgroup=$ogf_l"
			done <"$ogf_p/cgroup"
		fi
		ogf_rec="$ogf_rec
cmdline=${ogf_cl% }
trusted=yes
trust=$ogf_why"
		if ogf_have readlink; then
			# readlink's own newline ends the line (dropped by $(...)); one inside the
			# name becomes '?' like any unprintable byte
			ogf_exe=$($TMO ${TMO:+10} readlink "$ogf_p/exe" 2>/dev/null)
			ogf_exe=$(printf '%s' "$ogf_exe" | ogf_oneline)
			if [ -n "$ogf_exe" ]; then
				ogf_rec="$ogf_rec
exe=$ogf_exe"
				PROC_EXES="$PROC_EXES $ogf_exe"
			fi
		fi
		if ogf_have tr && [ -r "$ogf_p/environ" ]; then
			ogf_env=$($TMO ${TMO:+10} tr '\n\000' '?\n' <"$ogf_p/environ" 2>/dev/null | while IFS= read -r ogf_l; do
				case $ogf_l in
				CUDA_*=* | NVIDIA_*=* | HIP_*=* | ROCR_*=* | HSA_*=* | GPU_DEVICE_ORDINAL=* | \
					GGML_*=* | OLLAMA_*=* | LD_LIBRARY_PATH=* | JETSON_JETPACK=* | AMD_LOG_LEVEL=*)
					printf 'env %.4096s\n' "$ogf_l"
					;;
				esac
			done)
			if [ -n "$ogf_env" ]; then
				ogf_rec="$ogf_rec
$ogf_env"
				if [ -z "$TRUSTED_SERVER" ]; then
					case "
$ogf_env" in
					*"
env OLLAMA_HOST="*)
						ogf_h=${ogf_env#*env OLLAMA_HOST=}
						PROC_HOST=${ogf_h%%
*}
						;;
					esac
				fi
			fi
		fi
		[ -n "$TRUSTED_SERVER" ] || TRUSTED_SERVER=$ogf_pid
		PROC_OUT="${PROC_OUT:+$PROC_OUT
}$ogf_rec"
	done
}

# systemctl cat / show for ollama. Without a running systemd, the unit files themselves in
# `systemctl cat` layout. Sets UNIT_CAT, UNIT_SHOW, UNIT_USER, UNIT_HOST, MAINPID.
ogf_scan_unit() {
	UNIT_CAT=
	UNIT_SHOW=
	UNIT_USER=
	UNIT_HOST=
	MAINPID=
	if [ -d /run/systemd/system ] && ogf_have systemctl; then
		UNIT_CAT=$(ogf_run2 systemctl --no-pager cat ollama)
		UNIT_SHOW=$(ogf_run2 systemctl --no-pager show ollama -p \
			ActiveState,SubState,User,Group,Environment,DropInPaths,FragmentPath,ExecStart,NeedDaemonReload,LoadState,MainPID,EnvironmentFiles)
	else
		UNIT_CAT=$(ogf_unit_files)
	fi
	UNIT_USER=$(printf '%s\n' "$UNIT_SHOW" | ogf_key User | ogf_last)
	if [ -z "$UNIT_USER" ] && [ -n "$UNIT_CAT" ]; then
		UNIT_USER=$(printf '%s\n' "$UNIT_CAT" | ogf_key User | ogf_last)
	fi
	MAINPID=$(printf '%s\n' "$UNIT_SHOW" | ogf_key MainPID | ogf_last)
	case $MAINPID in '' | *[!0-9]*) MAINPID= ;; esac
	# OLLAMA_HOST from Environment= (show) or Environment="OLLAMA_HOST=..." lines (cat)
	UNIT_HOST=$(printf '%s\n%s\n' "$UNIT_SHOW" "$UNIT_CAT" | ogf_env_host)
}

ogf_unit_files() {
	ogf_first=1
	for ogf_f in /etc/systemd/system/ollama.service /run/systemd/system/ollama.service \
		/usr/local/lib/systemd/system/ollama.service /usr/lib/systemd/system/ollama.service \
		/lib/systemd/system/ollama.service; do
		[ -r "$ogf_f" ] || continue
		echo "# $ogf_f"
		ogf_rd "$ogf_f"
		ogf_first=
		break
	done
	for ogf_f in /etc/systemd/system/ollama.service.d/*.conf \
		/run/systemd/system/ollama.service.d/*.conf /usr/lib/systemd/system/ollama.service.d/*.conf; do
		[ -r "$ogf_f" ] || continue
		[ -z "$ogf_first" ] && echo
		echo "# $ogf_f"
		ogf_rd "$ogf_f"
		ogf_first=
	done
}

# Where the API listens, as Ollama's envconfig.Host() reads OLLAMA_HOST; never 0.0.0.0.
# Sets API_URL (scheme://host:port, also the ollama client's OLLAMA_HOST), API_HOSTPORT and
# API_OK (set only when the service's own process runs: another user could be listening).
ogf_api_host() {
	API_OK=
	[ -n "$TRUSTED_SERVER" ] && API_OK=1
	ogf_h=$PROC_HOST
	[ -z "$ogf_h" ] && ogf_h=$UNIT_HOST
	ogf_host_url "$ogf_h" # sets API_URL, API_HOSTPORT, API_PORT (shlib.sh)
	# The API is the service's only when the process listening on its port is the trusted
	# server or a child of it: another user can take the port while the service restarts.
	API_OWNER=
	[ -n "$API_OK" ] || return 0
	# shellcheck disable=SC2034 # read and written by ogf_listeners (shlib.sh)
	LISTENERS='' LISTENER_OUT=''
	ogf_listeners
	for ogf_p in $LISTENERS; do
		ogf_x=$ogf_p
		ogf_n=0
		while [ -n "$ogf_x" ] && [ "$ogf_x" != 0 ] && [ "$ogf_n" -lt 32 ]; do
			[ "$ogf_x" = "$TRUSTED_SERVER" ] && break
			ogf_x=$(ogf_status_field "/proc/$ogf_x/status" PPid)
			ogf_n=$((ogf_n + 1))
		done
		if [ "$ogf_x" != "$TRUSTED_SERVER" ]; then
			API_OWNER="foreign:$ogf_p"
			break
		fi
		API_OWNER=server
	done
	[ "$API_OWNER" = server ] || API_OK=
}

ogf_api_ps() {
	TAGS_BODY=
	ogf_body=
	if ogf_have curl; then
		ogf_body=$($TMO ${TMO:+3} curl -s -m 3 --max-filesize 1048576 "$API_URL/api/ps" 2>/dev/null)
	elif ogf_have wget; then
		ogf_body=$($TMO ${TMO:+3} wget -q -T 3 -O - "$API_URL/api/ps" 2>/dev/null)
	fi
	[ -n "$ogf_body" ] && ogf_sec api-ps.json printf '%s\n' "$ogf_body"
	ogf_body=
	if ogf_have curl; then
		ogf_body=$($TMO ${TMO:+3} curl -s -m 3 --max-filesize 1048576 "$API_URL/api/tags" 2>/dev/null)
	elif ogf_have wget; then
		ogf_body=$($TMO ${TMO:+3} wget -q -T 3 -O - "$API_URL/api/tags" 2>/dev/null)
	fi
	[ -n "$ogf_body" ] && ogf_sec api-tags.json printf '%s\n' "$ogf_body"
	TAGS_BODY=$ogf_body
	return 0
}

# ---- observation: where the model runs, measured (OGF_OBSERVE, see the header) --------------

# The smallest model in the /api/tags body TAGS_BODY (the verification's default model): each
# entry's "name" comes before its "size"; names outside Ollama's model-name characters are
# skipped, so nothing read here reaches the JSON of a request unchecked.
ogf_smallest_model() {
	printf '%s\n' "$TAGS_BODY" | tr -d ' \t' | tr '{},' '\n\n\n' | {
		ogf_best=
		ogf_bsize=
		ogf_name=
		ogf_n=0
		while IFS= read -r ogf_x && [ "$ogf_n" -lt 100000 ]; do
			ogf_n=$((ogf_n + 1))
			case $ogf_x in
			'"name":"'*'"')
				ogf_name=${ogf_x#'"name":"'}
				ogf_name=${ogf_name%'"'}
				case $ogf_name in [!A-Za-z0-9]* | *[!A-Za-z0-9._:/-]*) ogf_name= ;; esac
				[ "${#ogf_name}" -le 128 ] || ogf_name=
				;;
			'"size":'[0-9]*)
				ogf_s=${ogf_x#'"size":'}
				case $ogf_s in *[!0-9]* | ?????????????????*) ogf_s= ;; esac
				if [ -n "$ogf_name" ] && [ -n "$ogf_s" ] &&
					{ [ -z "$ogf_bsize" ] || [ "$ogf_s" -lt "$ogf_bsize" ]; }; then
					ogf_best=$ogf_name
					ogf_bsize=$ogf_s
				fi
				ogf_name=
				;;
			esac
		done
		[ -n "$ogf_best" ] && printf '%s\n' "$ogf_best"
	}
	return 0
}

# Any GPU a runner could use: a device node of a GPU driver, or a display-class PCI device of
# NVIDIA, AMD or Intel (the driver may be what is missing).
ogf_gpu_present() {
	[ "${OGF_PROBE_ASSUME_GPU:-}" = 1 ] && return 0
	for ogf_f in /dev/nvidiactl /dev/nvidia0 /dev/kfd /dev/dxg /dev/nvmap /dev/dri/renderD*; do
		[ -e "$ogf_f" ] && return 0
	done
	for ogf_d in /sys/bus/pci/devices/*; do
		[ -r "$ogf_d/class" ] && [ -r "$ogf_d/vendor" ] || continue
		read -r ogf_c <"$ogf_d/class"
		read -r ogf_v <"$ogf_d/vendor"
		case $ogf_c:$ogf_v in 0x03*:0x10de | 0x03*:0x1002 | 0x03*:0x8086) return 0 ;; esac
	done
	return 1
}

# The `observation.txt` section: verify.sh's output (its header, its sections) for the service
# as it is now. A subshell: the verification's variables and its ogf_sec stay in it.
ogf_observe() {
	if [ -z "$API_OK" ]; then
		echo "skipped=the API is not answered by the service's own process"
		return 0
	fi
	if ! ogf_have curl; then
		echo "skipped=curl is not installed"
		return 0
	fi
	ogf_mode=$OGF_OBSERVE
	ogf_model=${OGF_OBSERVE_MODEL:-}
	case $ogf_model in [!A-Za-z0-9]* | *[!A-Za-z0-9._:/-]*) ogf_model= ;; esac
	[ -n "$ogf_model" ] || ogf_model=$(ogf_smallest_model)
	if [ "$ogf_mode" = generate ] && [ -z "$ogf_model" ]; then
		echo "skipped=no local model to run"
		return 0
	fi
	if [ "$ogf_mode" = generate ] && ! ogf_gpu_present; then
		ogf_mode=look # a model can only run on the CPU here: nothing to measure by running it
	fi
	ogf_tokens=${OGF_OBSERVE_TOKENS:-4}
	case $ogf_tokens in '' | *[!0-9]* | ???*) ogf_tokens=4 ;; esac
	ogf_limit=${OGF_OBSERVE_TIMEOUT:-60}
	case $ogf_limit in '' | *[!0-9]* | ????*) ogf_limit=60 ;; esac
	(
		ogf_sec() {
			ogf_name=$1
			shift
			ogf_out=$("$@" 2>&1 | head -c 1048576)
			printf '%s\n' "--ogf-$NONCE-- $ogf_name"
			[ -n "$ogf_out" ] && printf '%s\n' "$ogf_out"
			return 0
		}
		NONCE=o$NONCE
		printf '%s\n' "ogf-verify v2 nonce=$NONCE"
		ogf_sec observe printf 'mode=%s\nmodel=%s\ntokens=%s\n' "$ogf_mode" "$ogf_model" \
			"$ogf_tokens"
		OGF_API=$API_URL
		OGF_MODEL=$ogf_model
		OGF_TOKENS=$ogf_tokens
		OGF_GEN_TIMEOUT=$ogf_limit
		OGF_WAIT=1
		OGF_PULL=0
		OGF_BASELINE=0
		OGF_GENERATE=1
		[ "$ogf_mode" = generate ] || OGF_GENERATE=0
		ogf_verify_run
	)
}

ogf_serve_log() {
	if [ -d /run/systemd/system ] && ogf_have journalctl; then
		# journald's _SYSTEMD_UNIT match: no other user can write into this unit's log
		ogf_sec ollama-serve.log ogf_journal
		return 0
	fi
	# without systemd: the ollama account's own server.log, read as that account
	ogf_home=$(ogf_user_home ollama)
	ogf_f="${ogf_home:-/usr/share/ollama}/.ollama/logs/server.log"
	ogf_ls "" "$ogf_f" || return 0
	ogf_sec ollama-serve.log ogf_as "$LS_UID" "$LS_GID" sh -c "$OGF_TAIL_SH" ogf "$ogf_f"
	return 0
}

ogf_journal() {
	ogf_run2 journalctl -u ollama -b --no-pager -o short-iso -n 3000 | ogf_tail_bytes
}

ogf_tail_bytes() { # the last 4 MiB of stdin
	if ogf_have tail; then tail -c 4194304; else ogf_rd /dev/stdin; fi
}

ogf_dmesg() {
	ogf_have dmesg || return 0
	ogf_dm=$(ogf_run dmesg | ogf_tail_bytes) || return 0
	[ -n "$ogf_dm" ] || return 0
	ogf_sec dmesg.txt ogf_dmesg_filter
}

ogf_dmesg_filter() {
	printf '%s\n' "$ogf_dm" | while IFS= read -r ogf_l; do
		case $ogf_l in
		*nvidia* | *NVIDIA* | *Nvidia* | *NVRM* | *nouveau* | *Xid* | *amdgpu* | *AMDGPU* | \
			*kfd* | *KFD* | *i915* | *\[drm\]*)
			printf '%s\n' "$ogf_l"
			;;
		esac
	done | ogf_tail 200
}

# Scripts run in a child shell, as the owner of the files they read (ogf_as). Both read only
# a regular file that is not a link, and at most a bounded number of bytes of it.
# shellcheck disable=SC2016 # expanded by the child shell
OGF_TAIL_SH='f=$1; [ -f "$f" ] && [ ! -L "$f" ] || exit 0
tail -c 4194304 -- "$f" 2>/dev/null | tail -n 3000'
# shellcheck disable=SC2016 # expanded by the child shell
OGF_PROFILE_SH='for f in "$@"; do
	[ -f "$f" ] && [ ! -L "$f" ] && [ -r "$f" ] || continue
	head -c 65536 -- "$f" 2>/dev/null | while IFS= read -r l || [ -n "$l" ]; do
		t=${l#"${l%%[! 	]*}"}
		case $t in
		"#"*) continue ;;
		*HSA_OVERRIDE_GFX_VERSION*=* | *OLLAMA_*=* | *CUDA_VISIBLE_DEVICES=* | \
			*HIP_VISIBLE_DEVICES=* | *ROCR_VISIBLE_DEVICES=* | *GGML_VK_VISIBLE_DEVICES=* | \
			*LD_LIBRARY_PATH=*)
			printf "%s:%.4096s\n" "$f" "$l"
			;;
		esac
	done
done'

ogf_shell_env() {
	[ -n "$HEAD" ] || return 0 # no way to bound a read
	# root's and the system's own files
	ogf_as 0 0 sh -c "$OGF_PROFILE_SH" ogf /etc/environment /etc/profile /etc/profile.d/*.sh \
		/etc/bash.bashrc /root/.bashrc /root/.profile /root/.bash_profile /root/.zshrc
	# every other user's, read as that user
	ogf_n=0
	for ogf_home in /home/*; do
		[ -d "$ogf_home" ] && [ ! -L "$ogf_home" ] || continue
		ogf_n=$((ogf_n + 1))
		[ "$ogf_n" -gt 200 ] && break
		ogf_ls "" "$ogf_home" || continue
		ogf_as "$LS_UID" "$LS_GID" sh -c "$OGF_PROFILE_SH" ogf "$ogf_home/.bashrc" \
			"$ogf_home/.profile" "$ogf_home/.bash_profile" "$ogf_home/.zshrc"
	done
	return 0
}

# ---- output: always valid UTF-8 (pyinfra decodes strictly), always exit 0 --------------------

ogf_utf8() {
	if command -v iconv >/dev/null 2>&1 &&
		[ "$(printf 'a\377b' | iconv -c -f UTF-8 -t UTF-8 2>/dev/null)" = ab ]; then
		iconv -c -f UTF-8 -t UTF-8 2>/dev/null
	elif command -v python3 >/dev/null 2>&1; then
		python3 -c 'import sys; sys.stdout.buffer.write(sys.stdin.buffer.read().decode("utf-8", "replace").encode("utf-8"))' 2>/dev/null
	elif command -v tr >/dev/null 2>&1; then
		LC_ALL=C tr -d '\200-\377'
	else
		while IFS= read -r ogf_l || [ -n "$ogf_l" ]; do
			printf '%s\n' "$ogf_l"
		done
	fi
}

if [ -n "${OGF_PROBE_PATH:-}" ]; then
	PATH=$OGF_PROBE_PATH
else
	# sbin and vendor directories are often missing from a non-login SSH PATH
	PATH="${PATH:-/usr/bin:/bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	PATH="$PATH:/usr/lib/wsl/lib:/opt/rocm/bin"
fi
LC_ALL=C
SYSTEMD_PAGER=
PAGER="cat"
export PATH LC_ALL SYSTEMD_PAGER PAGER

# Test hook: `OGF_PROBE_LIB=1 . probe.sh` defines the functions and runs nothing.
if [ "${OGF_PROBE_LIB:-}" = 1 ]; then
	return 0 2>/dev/null || exit 0
fi

ogf_main </dev/null | ogf_utf8
exit 0
