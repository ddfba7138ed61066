"""Long waits say what they wait for and for how long, in pyinfra's style (`[host] ...`).

A restart that waits for Ollama's API, a generation, an apt install: each is one remote command
whose output pyinfra shows only when it ends, so without this a fleet run sits silent for
minutes. A greenlet per wait prints a line every EVERY seconds until the wait ends; it only
logs (the command runs as before). Installed as a pyinfra state callback, so every operation
of a run is covered, and as a context manager around the facts the prepare stage waits on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import gevent
from pyinfra import logger
from pyinfra.api.host import Host
from pyinfra.api.state import BaseStateCallback, State

EVERY = float(os.environ.get("OGF_PROGRESS_EVERY", "15"))


def _ticker(host: Host, what: str, every: float) -> gevent.Greenlet:
    started = time.monotonic()

    def tick() -> None:
        while True:
            gevent.sleep(every)
            waited = int(time.monotonic() - started)
            host.log_styled(f"still waiting for {what} ({waited} s)", dim=True,
                            log_func=logger.info)

    return gevent.spawn(tick)


@contextmanager
def waiting(host: Host, what: str, every: float | None = None) -> Iterator[None]:
    """Print `[host] still waiting for WHAT (N s)` every EVERY seconds while the block runs."""
    ticker = _ticker(host, what, every or EVERY)
    try:
        yield
    finally:
        ticker.kill(block=False)


class Waits(BaseStateCallback):
    """One ticker per running operation of each host (pyinfra's callbacks start and end it)."""

    def __init__(self, every: float | None = None) -> None:
        self.every = every or EVERY
        self.tickers: dict[tuple[str, str], gevent.Greenlet] = {}

    def operation_host_start(self, state: State, host: Host, op_hash: str) -> None:  # type: ignore[override]
        try:
            name = ", ".join(state.get_op_meta(op_hash).names) or "an operation"
        except (KeyError, AttributeError):
            name = "an operation"
        self.tickers[(host.name, op_hash)] = _ticker(host, name, self.every)

    def _end(self, host: Host, op_hash: str) -> None:
        ticker = self.tickers.pop((host.name, op_hash), None)
        if ticker is not None:
            ticker.kill(block=False)

    def operation_host_success(self, state: State, host: Host, op_hash: str,  # type: ignore[override]
                               retry_count: int = 0) -> None:
        self._end(host, op_hash)

    def operation_host_error(self, state: State, host: Host, op_hash: str,  # type: ignore[override]
                             retry_count: int = 0, max_retries: int = 0) -> None:
        self._end(host, op_hash)


def install(state: State) -> None:
    """Add the callback to STATE once."""
    if not any(isinstance(h, Waits) for h in state.callback_handlers):
        state.add_callback_handler(Waits())
