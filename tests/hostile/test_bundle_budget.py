"""Issue 6, items 9 and 10 and the inputs beyond the list: `diagnose-bundle` is bounded as a
whole, reads only regular files, says what it skipped, and prints no control characters."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.hostile import attacks


def test_hard_links_do_not_multiply_the_read() -> None:
    result = attacks.hardlinked_copies(500, 4)
    assert not result.succeeded, result.row()
    assert result.exit_code == 0


@pytest.mark.parametrize(
    "attack",
    [attacks.fifo_in_bundle, attacks.device_link_in_bundle, attacks.many_files,
     attacks.deep_json, attacks.terminal_injection, attacks.bidi_names],
    ids=lambda a: a.__name__,
)
def test_odd_bundles(attack) -> None:
    result = attack()
    assert not result.succeeded, result.row()


def test_what_was_skipped_is_named(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "ollama-serve.log")
    (tmp_path / "nvidia-smi.txt").symlink_to("/etc/passwd")
    (tmp_path / "dmesg.txt").write_text("x\n")
    os.link(tmp_path / "dmesg.txt", tmp_path / "copy.log")
    run = attacks.cli("diagnose-bundle", str(tmp_path), "--json")
    problems = json.loads(run.stdout)["problems"]
    assert any("ollama-serve.log: not a regular file" in p for p in problems), problems
    assert any("nvidia-smi.txt: a symbolic link" in p for p in problems), problems
    assert any("the same file as dmesg.txt" in p for p in problems), problems
    text = attacks.cli("diagnose-bundle", str(tmp_path)).stdout
    assert "Not read:" in text and "symbolic link" in text


def test_secrets_never_reach_a_report() -> None:
    result = attacks.secrets_printed()
    assert not result.succeeded, result.row()
