"""A host that drops its SSH connection mid-run fails alone; the others go on.

pyinfra 3.10 lets paramiko's EOFError out of a command when a connection dies mid-run
(pyinfra-dev/pyinfra#1220, open): the exception leaves the host's greenlet and stops the
whole run, for every host of the fleet. Until pyinfra handles it, the SSH connector's
command, upload and download methods turn it into a failed command of that host with one
line saying so. Installed once, when a deploy of this package starts.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from pyinfra import logger
from pyinfra.connectors.ssh import SSHConnector
from pyinfra.connectors.util import CommandOutput

LOST = "the SSH connection to this host was lost; nothing more was done on it"
_ON_LOST: dict[str, Callable[[str], None]] = {}


def on_lost(host, listener: Callable[[str], None]) -> None:  # noqa: ANN001 - pyinfra's Host
    """LISTENER(reason) is called when HOST's connection dies mid-run (its report: interrupted)."""
    _ON_LOST[host.name] = listener


def tolerate_lost_connections() -> None:
    for name in ("run_shell_command", "put_file", "get_file"):
        original = getattr(SSHConnector, name)
        if getattr(original, "_ogf_tolerant", False):
            continue

        def make(original=original, name=name):
            @wraps(original)
            def method(self, *args, **kwargs):
                try:
                    return original(self, *args, **kwargs)
                except EOFError:
                    self.host.log_styled(LOST, fg="red", log_func=logger.error)
                    self.host.connected = False
                    listener = _ON_LOST.get(self.host.name)
                    if listener is not None:
                        listener(LOST)
                    if name == "run_shell_command":
                        return False, CommandOutput([])
                    return False

            method._ogf_tolerant = True  # type: ignore[attr-defined]
            return method

        setattr(SSHConnector, name, make())


def absolute_shell(host) -> None:  # noqa: ANN001 - pyinfra's Host
    """Every remote command of this host runs /bin/sh by its absolute path (pyinfra's
    `_shell_executable`), never the first `sh` on the login PATH: pam_env's /etc/environment
    or WSL's PATH line can put a directory another user owns in front of /bin, and that user's
    `sh` would then run all our commands as root. Host data that names a shell wins."""
    if not str(host.data.get("_shell_executable") or "").startswith("/"):
        host.data._shell_executable = "/bin/sh"
