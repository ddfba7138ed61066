"""One host's failure is that host's outcome, never an exception that stops the fleet.

pyinfra 3.10 lets an exception raised while an operation generates its commands escape the
run (ollama_gpu_fix saw a missing `login_user` stop every host half-changed), so every
operation of this package is a `host_operation`: an error inside it becomes a command that
fails this host with one line, and the host's report hears of it (`on_failure`). The other
hosts go on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

from pyinfra import logger
from pyinfra.api import FunctionCommand, operation
from pyinfra.api.host import Host

from ollama_gpu_fix.report import printable

_LISTENERS: dict[str, Callable[[str], None]] = {}


def on_failure(host: Host, listener: Callable[[str], None]) -> None:
    """LISTENER(reason) is called when an operation of this package fails HOST."""
    _LISTENERS[host.name] = listener


def fail(state, host, reason: str, quiet: bool = False) -> bool:  # noqa: ANN001 - pyinfra's
    """A FunctionCommand target: fail this host with one line (other hosts go on); QUIET: the
    line was printed already."""
    line = printable(reason)
    if not quiet:
        host.log_styled(line, fg="red", log_func=logger.error)
    listener = _LISTENERS.get(host.name)
    if listener is not None:
        listener(line)
    return False


def fail_host(reason: str) -> Iterator[FunctionCommand]:
    yield FunctionCommand(fail, (reason,), {})


def host_operation(**kwargs: object) -> Callable:
    """`pyinfra.api.operation(**kwargs)` whose errors fail only this host, with one line."""

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def contained(*args: object, **op_kwargs: object) -> Iterator:
            try:
                yield from func(*args, **op_kwargs)
            except Exception as exc:  # noqa: BLE001 - any error is this host's outcome
                what = func.__name__.replace("_", " ")
                yield from fail_host(f"{what} failed: {type(exc).__name__}: {exc}")

        return operation(**kwargs)(contained)

    return decorate
