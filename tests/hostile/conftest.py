"""Hostile-input tests: the local-user attacks need root and mount namespaces.

Where they cannot run they are skipped with the reason printed; with CI set they fail
instead, so CI never skips them silently (as the lab does)."""

from __future__ import annotations

import os
import sys

import pytest

from tests.hostile import attacks


@pytest.fixture(scope="session")
def sandbox() -> None:
    why = attacks.can_use_namespaces()
    if not why:
        return
    msg = f"local-user attack tests cannot run here: {why}"
    print(f"\n*** {msg} ***", file=sys.stderr)
    if os.environ.get("CI"):
        pytest.fail(msg + " (CI is set: they must run, not be skipped)")
    pytest.skip(msg)
