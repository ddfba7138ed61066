"""ollama_gpu_fix.runs: one file per host per run that never overwrites another, an index,
and a report a run left unfinished says `interrupted`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ollama_gpu_fix import runs


def _run(mode: str = "fix", run_id: str = "20261207T101500Z-abcdef") -> runs.Run:
    return runs.Run(run_id, mode, "2026-12-07T10:15:00+00:00")


def test_each_run_writes_its_own_file_and_a_rewrite_of_the_same_run_keeps_it(tmp_path: Path):
    first, second = _run(), _run(run_id="20261207T101500Z-123456")  # the same second
    path1 = first.path_for(tmp_path, "gpu-01")
    runs.write(first, path1, {**runs.envelope(first, "gpu-01"), "result": "verified"})
    path2 = second.path_for(tmp_path, "gpu-01")
    runs.write(second, path2, {**runs.envelope(second, "gpu-01"), "result": "failed"})
    assert path1 != path2 and path1.parent == path2.parent == tmp_path / "gpu-01"
    assert path1.name == "20261207T101500Z-fix.json" and path2.name.endswith("-fix-2.json")
    assert first.path_for(tmp_path, "gpu-01") == path1  # the same run: the same file
    assert json.loads(path1.read_text())["result"] == "verified"  # not overwritten
    assert oct(path1.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "gpu-01").stat().st_mode & 0o777) == "0o700"


def test_the_index_lists_every_run_and_reads_back_each_hosts_report(tmp_path: Path):
    diag, fix = _run("diagnose", "20261207T090000Z-aaaaaa"), _run("fix")
    for host in ("a", "b"):
        runs.write(diag, diag.path_for(tmp_path, host),
                   {**runs.envelope(diag, host), "result": "diagnosed", "primary": "no-gpu"})
    runs.write(fix, fix.path_for(tmp_path, "a"), {**runs.envelope(fix, "a"), "result": "planned"})
    runs.write(fix, fix.path_for(tmp_path, "a"), {**runs.envelope(fix, "a"), "result": "verified"})
    index = json.loads((tmp_path / runs.INDEX).read_text())
    assert [(r["run_id"], r["mode"]) for r in index["runs"]] == [
        ("20261207T090000Z-aaaaaa", "diagnose"), ("20261207T101500Z-abcdef", "fix")]
    assert index["runs"][1]["hosts"]["a"]["result"] == "verified"
    assert index["runs"][1]["ended_at"]  # a final result ends the run's line
    assert set(runs.run_reports(tmp_path, mode="diagnose")) == {"a", "b"}
    latest = runs.run_reports(tmp_path)
    assert set(latest) == {"a"} and latest["a"]["result"] == "verified"
    assert latest["a"]["started_at"] and latest["a"]["ended_at"]


def test_a_fix_left_planned_at_exit_is_interrupted_and_a_dry_run_stays_planned(tmp_path: Path,
                                                                                monkeypatch):
    monkeypatch.setattr(runs, "_RUNS", {})
    monkeypatch.setitem(runs._INTERRUPT, "reason", None)
    monkeypatch.delenv("OGF_RUN_ID", raising=False)
    monkeypatch.delenv("OGF_ROLLOUT_WAVE", raising=False)
    fix, dry = runs.current("fix"), runs.current("dry")
    assert fix.run_id != dry.run_id and runs.valid_run_id(fix.run_id)
    fix_path, dry_path = fix.path_for(tmp_path, "h"), dry.path_for(tmp_path, "h")
    runs.write(fix, fix_path, {**runs.envelope(fix, "h"), "result": "planned"})
    runs.write(dry, dry_path, {**runs.envelope(dry, "h"), "result": "planned"})
    seen = []
    fix.on_interrupt[fix_path] = lambda data: seen.append(data["result"])
    runs.interrupted("interrupted by the user (Ctrl-C)")
    runs.finish_open_reports()
    fixed, dried = json.loads(fix_path.read_text()), json.loads(dry_path.read_text())
    assert fixed["result"] == "interrupted" and "Ctrl-C" in fixed["reason"]
    assert seen == ["interrupted"]  # the fix's hook recorded what had been applied
    assert dried["result"] == "planned" and dried["mode"] == "dry"


def test_a_rollout_wave_shares_the_rollouts_id_and_says_so(monkeypatch):
    monkeypatch.setattr(runs, "_RUNS", {})
    monkeypatch.setenv("OGF_RUN_ID", "20261207T101500Z-abcdef")
    monkeypatch.setenv("OGF_ROLLOUT_WAVE", "2")
    run = runs.current("fix")
    assert run.run_id == "20261207T101500Z-abcdef" and run.mode == "rollout"
    assert runs.envelope(run, "h")["rollout"] == {"id": run.run_id, "wave": "2"}
    monkeypatch.setenv("OGF_RUN_ID", "../../etc")  # not an id: a fresh one instead
    monkeypatch.setattr(runs, "_RUNS", {})
    assert runs.valid_run_id(runs.current("diagnose").run_id)


def test_reports_are_refused_in_a_directory_another_user_could_swap(tmp_path: Path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    run = _run()
    with pytest.raises(OSError, match="refusing"):
        runs.write(run, run.path_for(link, "h"), {**runs.envelope(run, "h"), "result": "x"})
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    with pytest.raises(OSError, match="refusing"):
        runs.write(run, run.path_for(open_dir, "h"), {**runs.envelope(run, "h"), "result": "x"})
    assert list(real.iterdir()) == []


def test_host_names_become_file_names_that_cannot_escape_or_collide():
    assert runs.safe_file_name("@local") == "local"
    assert runs.safe_file_name("@vagrant/ubuntu2404") == "vagrant_ubuntu2404"
    assert runs.safe_file_name("../../etc/passwd") == "etc_passwd"
    assert runs.safe_file_name("index.json") != runs.INDEX  # the index is not a host's folder
    assert runs.safe_file_name("@@") == "host"


def test_a_damaged_index_is_started_again_not_trusted(tmp_path: Path):
    (tmp_path / runs.INDEX).write_text("{not json")
    assert runs.read_index(tmp_path)["runs"] == []
    (tmp_path / runs.INDEX).write_text(json.dumps({"runs": [{"run_id": "x", "hosts": {
        "h": {"file": "../../../etc/shadow"}}}]}))
    assert runs.run_reports(tmp_path) == {}  # not a report: nothing read


def test_the_index_of_a_big_run_is_rewritten_a_bounded_number_of_times(tmp_path: Path,
                                                                       monkeypatch):
    """Rewriting index.json at every write made a run of N hosts cost O(N^2) (bench/scale.py):
    a process batches its lines, a small index is still rewritten at every write, and every
    line is there for a reader in this process and, after flush_index (at exit), on disk."""
    rewrites = []
    atomic = runs._atomic

    def counting(path: Path, text: str) -> None:
        if path.name == runs.INDEX:
            rewrites.append(text.count('"result"'))
        atomic(path, text)

    monkeypatch.setattr(runs, "_atomic", counting)
    monkeypatch.setattr(runs, "INDEX_MAX_LAG", 3600.0)  # the count rule alone
    run = _run()
    for host in ("a", "b", "c"):
        runs.write(run, run.path_for(tmp_path, host), {**runs.envelope(run, host), "result": "planned"})
    assert rewrites == [1, 2, 3]  # small: at every write, as before
    hosts = [f"h{i}" for i in range(600)]
    for result in ("planned", "verified"):  # a fix writes each host twice
        for host in hosts:
            runs.write(run, run.path_for(tmp_path, host), {**runs.envelope(run, host), "result": result})
    assert len(rewrites) < 80, len(rewrites)  # 1,203 writes; every write rewrote it before
    assert len({run.path_for(tmp_path, h) for h in hosts}) == 600
    listed = runs.read_index(tmp_path)["runs"][0]["hosts"]  # this process sees every line
    assert len(listed) == 603 and {listed[h]["result"] for h in hosts} == {"verified"}
    runs.flush_index()
    on_disk = json.loads((tmp_path / runs.INDEX).read_text())["runs"][0]["hosts"]
    assert on_disk == listed


def test_an_index_of_many_big_runs_keeps_the_newest_whole_and_stays_readable(tmp_path: Path,
                                                                           monkeypatch):
    monkeypatch.setattr(runs, "INDEX_MAX_LINES", 25)
    for n in range(4):
        run = _run(run_id=f"20261207T10150{n}Z-abcdef")
        for i in range(10 if n < 3 else 40):
            runs.write(run, run.path_for(tmp_path, f"h{i}"),
                       {**runs.envelope(run, f"h{i}"), "result": "diagnosed"})
        runs.flush_index()
    kept = runs.read_index(tmp_path)["runs"]
    # the newest run whole (40 lines), then older runs while their lines fit the 25 beyond it
    assert [len(r["hosts"]) for r in kept] == [10, 10, 40]
