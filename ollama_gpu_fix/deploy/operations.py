"""Custom pyinfra operations, where no built-in one fits (as pyinfra's own operations/).

Each reads the host through facts, yields nothing when the host already is as wanted (so a
second run reports no change), and never raises: an error fails only its host
(deploy/guard.py). Files are written only through change.sh (deploy/rootfiles.py); apt runs
through pyinfra's own apt operations. Tested in pyinfra's fixture style:
tests/operations/<module>.<operation>/*.json, facts in, commands out, each with a no-op twin.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pyinfra import host, logger, state
from pyinfra.api import FunctionCommand, StringCommand, operation
from pyinfra.connectors.util import clear_askpass_cache, remove_any_sudo_askpass_file
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.server import Groups, Users
from pyinfra.operations import apt, server

from ollama_gpu_fix.deploy.facts import (
    AptLockHolders,
    AptSimulatedRemovals,
    BootIdentity,
    UrlProblem,
)
from ollama_gpu_fix.deploy.guard import fail, fail_host, host_operation
from ollama_gpu_fix.deploy.rootfiles import RootFiles, change, file_states, put
from ollama_gpu_fix.knowledge import packages as pk

CACHE_DIR = "/var/cache/ollama-gpu-fix"


@host_operation()
def refuse(why: str, on_fail: Callable[[str], None] | None = None, quiet: bool = False):
    """Fail this host with WHY (one line): a step the policy or the platform forbids, a
    preflight check that failed, or a cause only a person can fix. Nothing else runs on it.

    + why: the reason, naming the knob or the manual step
    + on_fail: called with the reason before the host fails
    + quiet: the line was already printed (a bad knob, at prepare): fail without repeating it
    """
    if state.is_executing:
        if on_fail is not None:
            on_fail(why)
        yield FunctionCommand(fail, (why,), {"quiet": quiet})


@host_operation()
def transaction(run_id: str):
    """Open this run's transaction in the host's journal, or resume one an interrupted run
    left (its backups stay: they are the state the host was found in).

    + run_id: names this run in the journal
    """
    yield change("begin", run_id)


@host_operation()
def remove_lines(path: str, lines: list[str]):
    """PATH no longer holds LINES (whole lines, compared without surrounding blanks); every
    other line stays as it is. Lines, not files: /etc/ld.so.conf keeps its include line.

    + path: a root-owned file (ld.so.conf or a file of ld.so.conf.d)
    + lines: the lines to remove
    """
    st = file_states(host.get_fact(RootFiles, paths=[path])).get(path)
    if st is None or st.state == "absent":
        host.noop(f"{path} does not exist")
        return
    if not st.editable:
        yield from fail_host(f"nothing was changed: {path}: {st.why or 'too large to edit'}")
        return
    text = st.text()
    wanted = {line.strip() for line in lines}
    kept = [ln for ln in text.splitlines(keepends=True) if ln.strip() not in wanted]
    new = "".join(kept)
    if new == text:
        host.noop(f"{path} holds none of {', '.join(sorted(wanted))}")
        return
    yield change("step", "remove_lines", "begin")
    yield put(path, new, st.octal_mode, st.gid or 0, st.sha256)
    yield change("step", "remove_lines", "done")


@host_operation()
def group_members(users: list[str], groups: list[str]):
    """USERS are members of GROUPS (added, never removed); a user or group that does not
    exist fails this host with one line (never created).

    + users: the service user, and the login user when set
    + groups: the groups that own the GPU device nodes
    """
    existing = host.get_fact(Users)
    known_groups = host.get_fact(Groups)
    missing_groups = [g for g in groups if g not in known_groups]
    if missing_groups:
        yield from fail_host(f"group(s) {', '.join(missing_groups)} do not exist on this host:"
                             " nothing was changed")
        return
    missing_users = [u for u in users if u not in existing]
    if missing_users:
        yield from fail_host(f"user(s) {', '.join(missing_users)} do not exist on this host"
                             " (the unit's User=, host data login_user): nothing was changed")
        return
    changed = False
    for user in users:
        info = existing[user]
        have = set(info.get("groups") or []) | {info.get("group")}
        need = [g for g in groups if g not in have]
        if need:
            changed = True
            yield from server.user._inner(user=user, groups=need, append=True, ensure_home=False)
    if not changed:
        host.noop(f"{', '.join(users)} already in {', '.join(groups)}")


@operation()
def apt_idle(timeout: int = 120, on_fail: Callable[[str], None] | None = None):
    """Wait (bounded) until no other apt or dpkg holds the lock; fail the host in one line.

    pyinfra 3.10 has no lock wait (pyinfra PR #1937 came later). Counts as no change.

    + timeout: seconds to wait
    + on_fail: called with the reason before the host fails
    """
    if not state.is_executing:
        return
    deadline = time.monotonic() + timeout
    holders = host.get_fact(AptLockHolders)
    waited = 0.0
    start = time.monotonic()
    while holders and time.monotonic() < deadline:
        if time.monotonic() - start - waited >= 10:
            waited = time.monotonic() - start
            host.log_styled(f"waiting for apt's lock ({holders[0]}), {waited:.0f}s of {timeout}s",
                            log_func=logger.info)
        time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))
        holders = host.get_fact(AptLockHolders)
    if holders:
        reason = (f"apt is busy (lock held: {'; '.join(holders[:2])}) after {timeout} s: nothing"
                  " was changed; run again when it is done (apt_lock_timeout sets the wait)")
        if on_fail is not None:
            on_fail(reason)
        yield FunctionCommand(fail, (reason,), {})
        return
    host.noop("apt and dpkg are idle")


@operation()
def reachable(url: str, knob: str, on_fail: Callable[[str], None] | None = None):
    """Fail the host in one line, before anything changes, when a repository does not answer.

    + url: a file in the repository (the keyring package, the signing key)
    + knob: the host data key that points elsewhere (a mirror)
    + on_fail: called with the reason before the host fails
    """
    if not state.is_executing:
        return
    problem = host.get_fact(UrlProblem, url=url)
    if problem:
        reason = (f"{url} does not answer ({problem[:160]}): nothing was changed (set {knob} to"
                  " a mirror this host can reach)")
        if on_fail is not None:
            on_fail(reason)
        yield FunctionCommand(fail, (reason,), {})
        return
    host.noop(f"{url} answers")


# What else a purge may take with it, by family (knowledge.packages is the one table): a stale
# CUDA toolkit's own packages, or a WSL2 guest's own driver packages; never anything else.
PURGE_FAMILIES = {
    "stale-cuda": lambda name, version: not pk.protected(name) and pk.is_stale(
        pk.cuda_release_of_package(name, version)),
    "wsl-guest-driver": lambda name, version: pk.wsl_guest_driver_part(name),
}


@host_operation()
def apt_purge(packages: list[str], family: str = "stale-cuda", lock_timeout: int = 120):
    """Purge the installed ones of PACKAGES, when apt's own simulation takes nothing else
    but packages of the same FAMILY: otherwise the host fails before anything is removed,
    naming what apt would have taken (a user's package that depends on CUDA 11, the driver).

    + packages: what to remove (the diagnosis named them)
    + family: stale-cuda or wsl-guest-driver (PURGE_FAMILIES)
    + lock_timeout: seconds apt waits for its lock
    """
    installed = host.get_fact(DebPackages)
    present = sorted(p for p in packages if p in installed)
    if not present:
        host.noop(f"none of {', '.join(packages)} is installed")
        return
    same = PURGE_FAMILIES[family]
    taken = host.get_fact(AptSimulatedRemovals, packages=present)
    others = sorted(p for p in taken if p not in present
                    and not same(p, (installed.get(p) or [""])[0]))
    if others:
        yield from fail_host(f"purging {', '.join(present)} would also remove"
                             f" {', '.join(others)}: refused, nothing was removed")
        return
    yield from apt.packages._inner(
        packages=present,
        present=False,
        purge=True,
        extra_uninstall_args=f"-o DPkg::Lock::Timeout={lock_timeout}",
    )


@host_operation()
def journal(action: str, phase: str):
    """Record in the host's journal that a step begins or is done (before its first change:
    a later run knows what an interrupted one was doing).

    + action: the step's action (ollama_gpu_fix.actions)
    + phase: begin or done
    """
    yield change("step", action, phase)


@host_operation()
def cuda_keyring(repo_url: str, source: str = "add"):
    """NVIDIA's repository through its cuda-keyring package, which writes the signed-by
    source and the pin itself (a second source line for the same repository breaks apt
    update: NVIDIA/ansible-role-nvidia-driver PR #59), unless the host already has a source
    for it (SOURCE "reuse:<file>", found by the preflight): then nothing is added. Fetched
    through change.sh into root's own cache under its `.deb` name (pyinfra 3.10's apt.deb is
    idempotent only for a local file whose name ends in .deb).

    + repo_url: NVIDIA's repository for this distribution and architecture
    + source: "add", or "reuse:<the host's own source file>"
    """
    if source.startswith("reuse:"):
        host.noop(f"the host's own {source[6:]} already names {repo_url}")
        return
    if "cuda-keyring" in host.get_fact(DebPackages):
        host.noop("cuda-keyring is installed")
        return
    name = str(pk.NVIDIA_CUDA.keyring_package)
    deb = f"{CACHE_DIR}/{name}"
    yield change("fetch", deb, "644", repo_url.rstrip("/") + "/" + name)
    yield from apt.deb._inner(src=deb)


@host_operation()
def amd_repository(repo_url: str, suite: str, key_url: str, source: str = "add"):
    """AMD's amdgpu repository: the armored key (apt reads .asc keyrings), a signed-by source
    and AMD's pin, each written through change.sh; nothing when the host already has a source
    for it (SOURCE "reuse:<file>").

    + repo_url: AMD's amdgpu repository (or a mirror)
    + suite: the Ubuntu suite (Debian uses Ubuntu's)
    + key_url: AMD's signing key
    + source: "add", or "reuse:<the host's own source file>"
    """
    if source.startswith("reuse:"):
        host.noop(f"the host's own {source[6:]} already names {repo_url}")
        return
    repo = pk.AMDGPU
    line = f"deb [arch=amd64 signed-by={repo.keyring}] {repo_url} {suite} main\n"
    pin_file = str(repo.pin_file)
    files = file_states(host.get_fact(RootFiles, paths=[repo.keyring, repo.source_file, pin_file]))
    for path in (repo.keyring, repo.source_file, pin_file):
        st = files.get(path)
        if st is None or st.state == "unsafe":
            yield from fail_host(f"nothing was changed: {path}: {st.why if st else 'no answer'}")
            return
    changed = False
    if files[repo.keyring].state == "absent":
        changed = True
        yield change("fetch", repo.keyring, "644", key_url)
    for path, want in ((repo.source_file, line), (pin_file, repo.pin or "")):
        st = files[path]
        if st.state == "absent" or st.text() != want:
            changed = True
            yield put(path, want, "644", 0, st.sha256)
    if not changed:
        host.noop(f"{repo.source_file} names {repo_url}")


@operation(is_idempotent=False)
def reboot(delay: int = 3, interval: int = 1, timeout: int = 300):
    """Reboot and wait until the host is back in a new boot (pyinfra's server.reboot, with
    the boot told apart by BootIdentity instead of uptime, which containers share).

    + delay: seconds before the first reconnect attempt
    + interval: seconds between attempts
    + timeout: seconds before giving up
    """
    before: list[str] = []

    def capture(state, host):  # noqa: ANN001 - pyinfra's callback signature
        remove_any_sudo_askpass_file(host)
        before.append(host.get_fact(BootIdentity))

    yield FunctionCommand(capture, (), {})
    yield StringCommand("( sleep 1 && reboot ) </dev/null >/dev/null 2>&1 &")

    def wait_and_reconnect(state, host):  # noqa: ANN001
        time.sleep(delay)
        clear_askpass_cache(host)
        host.disconnect()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            host.connect(show_errors=False)
            if host.connected and host.get_fact(BootIdentity) not in ("", before[0]):
                clear_askpass_cache(host)
                return True
            time.sleep(interval)
        return fail(state, host, f"the host did not come back from its reboot within {timeout} s")

    yield FunctionCommand(wait_and_reconnect, (), {})
