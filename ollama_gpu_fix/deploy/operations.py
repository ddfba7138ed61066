"""Custom pyinfra operations, where no built-in one fits (as pyinfra's own operations/).

Each reads the host through facts, yields nothing when the host already is as wanted (so a
second run reports no change), and composes pyinfra's own operations (`files.put`,
`apt.packages`, `server.user`, ...) for the work. Tested in pyinfra's fixture style:
tests/operations/<module>.<operation>/*.json, facts in, commands out, each with a no-op twin.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from io import StringIO

from pyinfra import host, logger, state
from pyinfra.api import FunctionCommand, OperationError, QuoteString, StringCommand, operation
from pyinfra.connectors.util import clear_askpass_cache, remove_any_sudo_askpass_file
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import File, FileContents, Sha1File
from pyinfra.facts.server import Groups, Users
from pyinfra.operations import apt, files, server

from ollama_gpu_fix.deploy.facts import (
    AptLockHolders,
    AptSimulatedRemovals,
    BootIdentity,
    UrlProblem,
)
from ollama_gpu_fix.dropin import BACKUP_DIR, remove_assignments

CACHE_DIR = "/var/cache/ollama-gpu-fix"
CUDA_KEYRING = "cuda-keyring_1.1-1_all.deb"  # NVIDIA's keyring package (writes source + pin)


def fail_host(state, host, reason: str, on_fail=None) -> bool:  # noqa: ANN001
    """A FunctionCommand (pyinfra's callback signature) that fails this host with one line
    (other hosts go on); ON_FAIL(reason) records it first (the fix's JSON report)."""
    host.log_styled(reason, fg="red", log_func=logger.error)
    if on_fail is not None:
        on_fail(reason)
    return False


def backup_path(path: str) -> str:
    return f"{BACKUP_DIR}/{path.strip('/').replace('/', '__')}"


def _backup(path: str, exists: bool):
    """Keep the current version of PATH (or a marker that it did not exist) for a rollback."""
    yield from files.directory._inner(path=BACKUP_DIR, mode="700", user="root", group="root")
    if exists:
        yield StringCommand("cp", "-p", QuoteString(path), QuoteString(backup_path(path)))
        yield StringCommand("rm", "-f", QuoteString(backup_path(path) + ".absent"))
    else:
        yield StringCommand("touch", QuoteString(backup_path(path) + ".absent"))
        yield StringCommand("rm", "-f", QuoteString(backup_path(path)))


def restore_commands(path: str) -> list[StringCommand]:
    """Put PATH back as it was before the last change (rollback)."""
    backup = QuoteString(backup_path(path))
    absent = QuoteString(backup_path(path) + ".absent")
    target = QuoteString(path)
    return [StringCommand(
        "if", "[", "-e", absent, "];", "then", "rm", "-f", target, ";",
        "elif", "[", "-e", backup, "];", "then", "cp", "-p", backup, target, ";", "fi",
    )]


@operation()
def refuse(why: str, on_fail: Callable[[str], None] | None = None):
    """Fail this host with WHY (one line): a step the policy or the platform forbids, or a
    cause only a person can fix. Nothing else runs on the host.

    + why: the reason, naming the knob or the manual step
    + on_fail: called with the reason before the host fails
    """
    if state.is_executing:
        yield FunctionCommand(fail_host, (why, on_fail), {})


@operation()
def managed_file(path: str, content: str, mode: str = "644"):
    """PATH holds exactly CONTENT; its previous version is kept for a rollback.

    + path: the file (the managed drop-in)
    + content: what it must hold
    + mode: its permissions
    """
    current = host.get_fact(Sha1File, path=path)
    if current == hashlib.sha1(content.encode()).hexdigest():
        host.noop(f"{path} is up to date")
        return
    yield from _backup(path, exists=current is not None)
    yield from files.put._inner(
        src=StringIO(content), dest=path, mode=mode, user="root", group="root"
    )


@operation()
def remove_env_assignments(path: str, names: list[str], why: str):
    """Remove the assignments of NAMES from a drop-in or an EnvironmentFile, where they are set.

    Each removal stays visible as a comment naming why; the previous file is kept for a
    rollback. The file's owner and mode stay as they were.

    + path: the drop-in or environment file
    + names: the variables to remove
    + why: the reason written beside each removal
    """
    lines = host.get_fact(FileContents, path=path)
    if lines is None:
        host.noop(f"{path} does not exist")
        return
    text = "\n".join(lines) + "\n"
    new = remove_assignments(text, names, why)
    if new == text:
        host.noop(f"{path} sets none of {', '.join(names)}")
        return
    info = host.get_fact(File, path=path) or {}
    yield from _backup(path, exists=True)
    yield from files.put._inner(
        src=StringIO(new),
        dest=path,
        mode=str(info.get("mode") or "644"),
        user=info.get("user") or "root",
        group=info.get("group") or "root",
    )


@operation()
def group_members(users: list[str], groups: list[str]):
    """USERS are members of GROUPS (added, never removed); a user that does not exist is an
    error, never created.

    + users: the service user, and the login user when set
    + groups: the groups that own the GPU device nodes
    """
    existing = host.get_fact(Users)
    known_groups = host.get_fact(Groups)
    missing_groups = [g for g in groups if g not in known_groups]
    if missing_groups:
        raise OperationError(f"group(s) {', '.join(missing_groups)} do not exist")
    changed = False
    for user in users:
        if user not in existing:
            raise OperationError(f"user {user} does not exist (the unit's User=?)")
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
    while holders and time.monotonic() < deadline:
        time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))
        holders = host.get_fact(AptLockHolders)
    if holders:
        who = "; ".join(holders[:2])
        yield FunctionCommand(fail_host, (
            f"apt is busy (lock held: {who}) after {timeout} s: nothing was changed; run again"
            " when it is done (apt_lock_timeout sets the wait)", on_fail), {})
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
        yield FunctionCommand(fail_host, (
            f"{url} does not answer ({problem[:160]}): nothing was changed (set {knob} to a"
            " mirror this host can reach)", on_fail), {})
        return
    host.noop(f"{url} answers")


@operation()
def apt_purge(packages: list[str], protect: list[str], lock_timeout: int = 120):
    """Purge the installed ones of PACKAGES, unless apt would take a PROTECTED package with
    them (the driver in use, its libraries): then fail before anything is removed.

    + packages: what to remove
    + protect: prefixes of packages that must survive (nvidia-driver, libnvidia-, ...)
    + lock_timeout: seconds apt waits for its lock
    """
    installed = host.get_fact(DebPackages)
    present = sorted(p for p in packages if p in installed)
    if not present:
        host.noop(f"none of {', '.join(packages)} is installed")
        return
    taken = host.get_fact(AptSimulatedRemovals, packages=present)
    hurt = sorted(p for p in taken if p not in present and p.startswith(tuple(protect)))
    if hurt:
        raise OperationError(
            f"purging {', '.join(present)} would also remove {', '.join(hurt)}: refused"
        )
    yield from apt.packages._inner(
        packages=present,
        present=False,
        purge=True,
        extra_uninstall_args=f"-o DPkg::Lock::Timeout={lock_timeout}",
    )


@operation()
def cuda_keyring(repo_url: str):
    """NVIDIA's repository through its cuda-keyring package, which writes the signed-by
    source and the pin itself (adding a second source line breaks apt update:
    NVIDIA/ansible-role-nvidia-driver PR #59). Downloaded under a `.deb` name: pyinfra 3.10's
    apt.deb is idempotent only for a local file whose name ends in .deb.

    + repo_url: NVIDIA's repository for this distribution and architecture
    """
    deb = f"{CACHE_DIR}/{CUDA_KEYRING}"
    yield from files.directory._inner(path=CACHE_DIR, mode="755", user="root", group="root")
    yield from files.download._inner(src=repo_url.rstrip("/") + "/" + CUDA_KEYRING, dest=deb,
                                     mode="644")
    yield from apt.deb._inner(src=deb)


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
        host.log_styled(f"the host did not come back from its reboot within {timeout} s",
                        fg="red", log_func=logger.error)
        return False

    yield FunctionCommand(wait_and_reconnect, (), {})
