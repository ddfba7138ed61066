"""No host left worse: every host is recorded right before the first real fix run and again
after both fix runs, and the two are compared (issue 12).

(a) apt still works: `apt-get update -q` exits 0 and says nothing of conflicting Signed-By
    values (where it already failed before, it fails with the same error lines, no new ones),
    and `dpkg --audit` reports nothing new;
(b) no unit is failed that was not failed before (a profile's allow_failed names the units an
    attacker is expected to break);
(c) no file outside the managed set changed owner, group or permissions: /etc, /root, /home,
    /srv, /opt and /var/lib are walked from this machine through the host's merged overlay
    (lstat, links never followed). Managed: the ollama.service.d drop-in directory,
    /etc/ld.so.cache, files dpkg owns (asked inside the host), and every path a plan step of
    the host's reports lists under `files`.
(a) and (b) need systemd and apt's own service files: a WSL host without systemd skips them.

Also here: the profile's protected paths (lstat and content hash, before and after) and its
after_checks (shell lines that must exit 0 once both fix runs are done).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab.hosts import Host

WALK = ("etc", "root", "home", "srv", "opt", "var/lib")
SKIP = {"var/lib/dpkg", "var/lib/apt", "var/lib/systemd", "var/lib/ollama-gpu-fix"}
MANAGED_DIR = "etc/systemd/system/ollama.service.d"
ALWAYS_MANAGED = {"etc/ld.so.cache"}
SIGNED_BY = "Conflicting values set for option Signed-By"
SAFE_PATH = "PATH=/usr/sbin:/usr/bin:/sbin:/bin; export PATH; export LC_ALL=C"
# One SSH session per host: apt, dpkg and systemd as the host's root sees them.
# Units a container's boot can fail in a race (seen once in about ten full lab runs: on a host
# the fix had rebooted while the machine was loaded, systemd-remount-fs and systemd-sysusers
# failed; the fix touches neither). Each is started once more, on both sides of the comparison,
# before failed units are listed: one that stays failed still counts.
# systemd-tmpfiles-setup-dev.service and then systemd-user-sessions.service joined them in CI
# runs of issues 14 and 15, both on rocm-kernel-missing, which its fix reboots: so every failed
# unit but ollama.service is started once more too (one the fix broke fails again and counts).
BOOT_RACES = " ".join(("systemd-remount-fs.service", "systemd-sysusers.service",
                       "systemd-tmpfiles-setup.service", "systemd-tmpfiles-setup-dev.service",
                       "systemd-journal-flush.service"))
REMOTE = f"""{SAFE_PATH}
echo '@@ apt'; apt-get update -q 2>&1 </dev/null; echo "@@rc $?"
echo '@@ audit'; dpkg --audit 2>&1 </dev/null
for u in {BOOT_RACES} $(systemctl list-units --failed --plain --no-legend </dev/null 2>/dev/null | awk '$1 != "ollama.service" {{print $1}}'); do
  if systemctl is-failed --quiet "$u" </dev/null; then systemctl restart "$u" </dev/null >/dev/null 2>&1; fi
done
echo '@@ failed'; systemctl list-units --failed --plain --no-legend 2>&1 </dev/null
true"""


@dataclass
class HostState:
    """One host at one moment, as far as the no-worse checks look."""

    perms: dict[str, tuple[int, int, int, bool]]  # path -> (uid, gid, permission bits, link)
    protected: dict[str, tuple]  # path -> its fingerprint
    apt_rc: int | None = None  # None: not checked (WSL without systemd, or no SSH)
    apt_out: str = ""
    audit: list[str] = field(default_factory=list)
    failed_units: set[str] | None = None
    error: str = ""  # why the host could not be asked (SSH)


def capture_all(lab, workers: int = 8) -> dict[str, HostState]:  # noqa: ANN001 - lab.Lab
    """Every host of LAB, in parallel (the walks run here, the apt runs on the hosts)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {h.name: pool.submit(capture, lab, h) for h in lab.hosts}
    return {name: f.result() for name, f in futures.items()}


def capture(lab, host: Host) -> HostState:  # noqa: ANN001
    state = HostState(perms=walk(host.merged), protected={
        path: fingerprint(host.merged, path) for path in host.profile.protect})
    if host.profile.init == "wsl":
        return state
    try:
        res = lab.ssh.run(host.net.address, REMOTE, timeout=180)
    except Exception as err:  # noqa: BLE001 - a host that cannot be asked is reported, not fatal
        state.error = f"could not ask the host: {err}"
        return state
    if res.returncode != 0:
        state.error = f"ssh exit {res.returncode}: {res.stderr.decode(errors='replace')[-200:]}"
        return state
    parts = sections(res.stdout.decode(errors="replace"))
    apt, rc = split_rc(parts.get("apt", ""))
    state.apt_rc, state.apt_out = rc, apt
    state.audit = [line for line in parts.get("audit", "").splitlines() if line.strip()]
    state.failed_units = {line.split()[0] for line in parts.get("failed", "").splitlines()
                          if line.strip()}
    return state


def sections(text: str) -> dict[str, str]:
    """`@@ NAME` delimited output -> NAME: text."""
    out: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if line.startswith("@@ "):
            name = line[3:].strip()
            out[name] = ""
        elif name:
            out[name] += line + "\n"
    return out


def split_rc(text: str) -> tuple[str, int | None]:
    """A section's text without its trailing `@@rc N` line, and N."""
    match = re.search(r"(?m)^@@rc (\d+)\s*$", text)
    if not match:
        return text, None
    return text[: match.start()], int(match.group(1))


def walk(root: Path) -> dict[str, tuple[int, int, int, bool]]:
    """lstat of everything under WALK (minus SKIP), relative to ROOT; links are not followed."""
    out: dict[str, tuple[int, int, int, bool]] = {}

    def visit(rel: str) -> None:
        try:
            entries = list(os.scandir(root / rel))
        except OSError:
            return
        for entry in entries:
            path = f"{rel}/{entry.name}"
            if path in SKIP:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            out[path] = (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode),
                         stat.S_ISLNK(st.st_mode))
            if stat.S_ISDIR(st.st_mode):
                visit(path)

    for top in WALK:
        visit(top)
    return out


def fingerprint(root: Path, path: str) -> tuple:
    """(type, uid, gid, mode, sha256 or link target) of PATH inside the host, read through its
    overlay without following any link (a link in a parent is reported, never followed)."""
    parts = path.strip("/").split("/")
    for i in range(1, len(parts)):
        parent = root.joinpath(*parts[:i])
        if parent.is_symlink():
            return ("parent is a link", "/" + "/".join(parts[:i]))
    full = root.joinpath(*parts)
    try:
        st = full.lstat()
    except FileNotFoundError:
        return ("absent",)
    kind = stat.S_IFMT(st.st_mode)
    content = ""
    if stat.S_ISREG(st.st_mode):
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            content = hashlib.sha256(f.read()).hexdigest()
    elif stat.S_ISLNK(st.st_mode):
        content = "-> " + os.readlink(full)
    return (TYPES.get(kind, oct(kind)), st.st_uid, st.st_gid, oct(stat.S_IMODE(st.st_mode)),
            content)


TYPES = {stat.S_IFREG: "file", stat.S_IFDIR: "directory", stat.S_IFLNK: "link",
         stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFCHR: "char device",
         stat.S_IFBLK: "block device"}


def protect_problems(before: HostState, after: HostState) -> list[str]:
    return [f"protected {path} changed: {before.protected[path]} -> {after.protected.get(path)}"
            for path in before.protected if before.protected[path] != after.protected.get(path)]


def error_lines(apt_out: str) -> set[str]:
    """apt-get update's error lines, without the item counters that differ between runs."""
    lines = set()
    for line in apt_out.splitlines():
        if line.startswith(("E:", "Err:")):
            lines.add(re.sub(r"^Err:\d+ ", "Err: ", line.strip()))
    return lines


def apt_problems(before: HostState, after: HostState) -> list[str]:
    if before.apt_rc is None or before.error:
        return []
    if after.error or after.apt_rc is None:
        return [f"apt could not be checked after the fix: {after.error or 'no exit status'}"]
    out = []
    if SIGNED_BY in after.apt_out and SIGNED_BY not in before.apt_out:
        line = next(ln for ln in after.apt_out.splitlines() if SIGNED_BY in ln)
        out.append(f"apt-get update: {line.strip()[:300]}")
    if after.apt_rc != 0:
        if before.apt_rc == 0:
            first = sorted(error_lines(after.apt_out))[:2]
            out.append(f"apt-get update now fails (exit {after.apt_rc}): {' | '.join(first)}")
        else:
            new = sorted(error_lines(after.apt_out) - error_lines(before.apt_out))
            if new:
                out.append(f"apt-get update fails differently: {' | '.join(new)[:400]}")
    new_audit = [line for line in after.audit if line not in before.audit]
    if new_audit:
        out.append(f"dpkg --audit: {' | '.join(new_audit)[:300]}")
    return out


def unit_problems(before: HostState, after: HostState, allowed: list[str]) -> list[str]:
    if before.failed_units is None or after.failed_units is None:
        return []
    new = sorted(after.failed_units - before.failed_units - set(allowed))
    return [f"unit {unit} failed (it was not before)" for unit in new]


def changed_perms(before: HostState, after: HostState) -> dict[str, str]:
    """Paths present both times whose owner, group or permissions differ (a link's
    permission bits mean nothing on Linux and are not compared)."""
    out = {}
    for path in before.perms.keys() & after.perms.keys():
        b, a = before.perms[path], after.perms[path]
        if b[:2] != a[:2] or (not b[3] and not a[3] and b[2] != a[2]):
            out[path] = f"{b[0]}:{b[1]} {b[2]:o} -> {a[0]}:{a[1]} {a[2]:o}"
    return out


def step_files(reports: list[dict]) -> set[str]:
    """Every path listed under `files` of a plan step of REPORTS (relative, no leading /)."""
    out = set()
    for report in reports:
        for step in (report.get("plan") or {}).get("steps") or []:
            for path in step.get("files") or []:
                out.add(str(path).lstrip("/"))
    return out


def is_managed(path: str, listed: set[str]) -> bool:
    return (path == MANAGED_DIR or path.startswith(MANAGED_DIR + "/") or path in ALWAYS_MANAGED
            or path in listed)


def dpkg_owned(lab, host: Host, paths: list[str]) -> set[str]:  # noqa: ANN001
    """Which of PATHS (relative) a package owns, as the host's dpkg says."""
    if not paths:
        return set()
    args = " ".join(shlex.quote("/" + p) for p in paths)
    try:
        res = lab.ssh.run(host.net.address, f"{SAFE_PATH}; dpkg -S {args} 2>/dev/null; true",
                          timeout=60)
    except Exception:  # noqa: BLE001
        return set()
    owned = set()
    for line in res.stdout.decode(errors="replace").splitlines():
        if line.startswith("diversion by") or ": " not in line:
            continue
        owned.add(line.split(": ", 1)[1].strip().lstrip("/"))
    return owned


def perm_problems(lab, host: Host, before: HostState, after: HostState,  # noqa: ANN001
                  reports: list[dict]) -> list[str]:
    changed = changed_perms(before, after)
    listed = step_files(reports)
    left = {p: why for p, why in changed.items() if not is_managed(p, listed)}
    owned = dpkg_owned(lab, host, sorted(left))
    return [f"/{path}: owner/mode {why}" for path, why in sorted(left.items())
            if path not in owned]


def problems(lab, host: Host, before: HostState, after: HostState,  # noqa: ANN001
             reports: list[dict]) -> list[str]:
    """Everything that is worse on HOST after the fix than right before it."""
    out = []
    if before.error:
        out.append(f"before the fix: {before.error}")
    out += apt_problems(before, after)
    out += unit_problems(before, after, host.profile.allow_failed)
    out += perm_problems(lab, host, before, after, reports)
    return out


def run_checks(lab, host: Host) -> list[tuple[str, int | None, str]]:  # noqa: ANN001
    """The profile's after_checks as root in one SSH session: (line, exit status, output)."""
    lines = host.profile.after_checks
    if not lines:
        return []
    script = [SAFE_PATH]
    for i, line in enumerate(lines):
        script.append(f"echo '@@ {i}'; sh -c {shlex.quote(line)} </dev/null 2>&1; "
                      "printf '\\n@@rc %s\\n' $?")
    try:
        res = lab.ssh.run(host.net.address, "\n".join(script), timeout=120)
    except Exception as err:  # noqa: BLE001
        return [(line, None, f"could not run: {err}") for line in lines]
    parts = sections(res.stdout.decode(errors="replace"))
    out = []
    for i, line in enumerate(lines):
        text, rc = split_rc(parts.get(str(i), ""))
        out.append((line, rc, text.strip()[-300:]))
    return out


def checks_all(lab, workers: int = 8) -> dict[str, list[tuple[str, int | None, str]]]:  # noqa: ANN001
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {h.name: pool.submit(run_checks, lab, h) for h in lab.hosts}
    return {name: f.result() for name, f in futures.items()}


def failed_checks(results: list[tuple[str, int | None, str]]) -> list[str]:
    return [f"after_check failed (exit {rc}): {line}"
            + (f": {' | '.join(out.splitlines())}" if out else "")
            for line, rc, out in results if rc != 0]
