"""Issue 6, item 1 and 6: `collect` never follows what another user planted in its target,
never mixes two runs, and writes a bundle only its owner can read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.hostile import attacks


def test_planted_symlinks_are_not_followed() -> None:
    result = attacks.collect_symlink()
    assert not result.succeeded, result.row()
    assert result.exit_code == 2, result.row()


def test_a_directory_of_an_earlier_run_is_refused_not_mixed() -> None:
    result = attacks.collect_stale_files()
    assert not result.succeeded, result.row()
    assert result.exit_code == 2


def test_bundle_is_private(tmp_path: Path) -> None:
    target = tmp_path / "b"
    run = attacks.cli("collect", str(target))
    assert run.returncode == 0, run.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in target.iterdir()}
    assert modes and set(modes.values()) == {0o600}, modes


def test_refusals_are_one_line(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    for target, why in ((link, "symbolic link"), (Path("/proc/1"), "not empty")):
        run = attacks.cli("collect", str(target))
        assert run.returncode == 2
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and why in lines[0], run.stderr
    assert not any(p.name != "link" for p in tmp_path.iterdir())


def test_a_parent_another_user_owns_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        return  # only root can make a directory that belongs to someone else
    parent = tmp_path / "theirs"
    parent.mkdir()
    os.chown(parent, attacks.ATTACKER_UID, attacks.ATTACKER_UID)
    run = attacks.cli("collect", str(parent / "bundle"))
    assert run.returncode == 2 and "another user" in run.stderr, run.stderr
