"""ollama_gpu_fix.fleet: one row per host from its report, and the table across hosts."""

from __future__ import annotations

from ollama_gpu_fix import fleet


def _report(result: str, primary: str = "env-forces-cpu", **more) -> dict:
    return {
        "mode": "fix", "result": result, "primary": primary,
        "started_at": "2026-12-07T10:00:00+00:00", "ended_at": "2026-12-07T10:00:42+00:00",
        "diagnosis_before": {
            "summary": {"nvidia_gpus": [{"name": "NVIDIA GeForce RTX 4090"}], "gpus": []},
            "findings": [{"code": primary, "summary": "CUDA_VISIBLE_DEVICES=-1 hides the GPU",
                          "evidence": ["Environment=CUDA_VISIBLE_DEVICES=-1"]}]},
        "plan": {"steps": [{"action": "service-env", "summary": "remove the variable"}],
                 "advice": []},
        "steps_applied": [{"operation": "Write the drop-in", "changed": True}],
        "snapshot": {"observation": {"tokens_per_s": 3.1}},
        "verification": {"reason": "100% GPU", "tokens_per_s": 44.8},
        **more,
    }


def test_a_row_says_what_the_host_has_what_was_wrong_what_was_done_and_the_proof():
    row = fleet.row("gpu-01", _report("verified"))
    assert row["gpu"] == "NVIDIA GeForce RTX 4090" and row["cause"] == "env-forces-cpu"
    assert row["steps"] == ["service-env"] and row["result"] == "verified"
    assert (row["tokens_before"], row["tokens_after"], row["seconds"]) == (3.1, 44.8, 42.0)
    assert row["evidence"][0].startswith("env-forces-cpu:")
    assert row["plan"] == ["service-env: remove the variable"]


def test_steps_say_what_was_done_planned_or_refused():
    nothing = fleet.row("h", _report("refused", steps_applied=[], plan={"steps": [
        {"action": "nvidia-driver", "refused": "allow_driver_change is off"}]}))
    assert nothing["steps"] == ["nvidia-driver (refused)"]
    dry = fleet.row("h", _report("planned", mode="dry", steps_applied=[]))
    assert dry["steps"] == ["service-env (planned)"]


def test_the_gpu_is_named_as_a_person_knows_it():
    amd = _report("verified")
    amd["diagnosis_before"]["summary"] = {"nvidia_gpus": [], "gpus": [
        {"vendor": "AMD", "name": "Advanced Micro Devices, Inc. [AMD/ATI] Navi 22 [Radeon RX "
         "6700/6700 XT/6750 XT / 6800M/6850M XT]"}]}
    assert fleet.row("h", amd)["gpu"].startswith("AMD Navi 22 [Radeon RX 6700")
    both = _report("verified")
    both["diagnosis_before"]["summary"]["gpus"] = [{"vendor": "NVIDIA", "name": "AD102"}]
    assert fleet.row("h", both)["gpu"] == "NVIDIA GeForce RTX 4090"  # one GPU, not two


def test_a_host_the_rollout_never_reached_is_listed_as_untouched():
    row = fleet.row("gpu-09", None)
    assert row["result"] == "not run" and row["state"] == "untouched"


def test_the_table_lists_every_host_failures_first_and_counts_outcomes():
    table = fleet.rows({"b-ok": _report("verified"), "a-ok": _report("verified"),
                        "c-bad": _report("rolled back"), "d-later": None})
    assert [r["host"] for r in table] == ["c-bad", "a-ok", "b-ok", "d-later"]
    text = fleet.text_table(table)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["host", "GPU", "cause"]
    assert all(any(line.startswith(h) for line in lines) for h in ("a-ok", "b-ok", "c-bad"))
    assert "3.1" in text and "44.8" in text and "42 s" in text
    assert lines[-1] == "4 hosts: 2 verified, 1 not run, 1 rolled back"


def test_text_from_a_host_cannot_drive_the_terminal():
    row = fleet.row("evil", _report("failed", reason="\x1b[2J\x1b]0;owned\x07gone"))
    assert "\x1b" not in row["reason"] and "\x07" not in row["reason"]
    assert "\x1b" not in fleet.text_table([fleet.row("\x1b[31mred", _report("failed"))])


def test_garbage_in_a_report_gives_blanks_not_a_crash():
    odd = {"result": 7, "diagnosis_before": [], "verification": "x", "plan": {"steps": "no"},
           "steps_applied": [None], "started_at": "yesterday", "snapshot": None}
    row = fleet.row("odd", odd)
    assert row["gpu"] == "none found" and row["seconds"] is None and row["steps"] == []
    assert fleet.text_table([row])


def test_the_page_command_builds_the_latest_runs_page_from_its_reports(tmp_path):
    import os
    import subprocess
    import sys

    from ollama_gpu_fix import runs

    os.chmod(tmp_path, 0o700)
    run = runs.Run("20261207T101500Z-abcdef", "fix", "2026-12-07T10:15:00+00:00")
    for host, result in (("gpu-01", "verified"), ("gpu-02", "rolled back")):
        runs.write(run, run.path_for(tmp_path, host),
                   {**runs.envelope(run, host), **_report(result)})
    proc = subprocess.run([sys.executable, "-m", "ollama_gpu_fix.cli", "page", "--report-dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    page = tmp_path / "pages" / "20261207T101500Z-abcdef-fix.html"
    assert f"fleet page: {page}" in proc.stdout
    html = page.read_text()
    assert 'data-host="gpu-01"' in html and 'data-host="gpu-02"' in html
    assert proc.stdout.splitlines()[2].startswith("gpu-02")  # the rolled-back host first
    missing = subprocess.run([sys.executable, "-m", "ollama_gpu_fix.cli", "page", "--report-dir",
                              str(tmp_path), "--run", "nope"], capture_output=True, text=True)
    assert missing.returncode == 2 and "lists no run nope" in missing.stderr
