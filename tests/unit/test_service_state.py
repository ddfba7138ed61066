"""Restarts follow the running service's state, not whether this run wrote a file."""

from __future__ import annotations

from ollama_gpu_fix.deploy.service import RunningService, ServiceState, restart_reasons

RUNNING = {"NeedDaemonReload": "no", "ActiveState": "active", "MainPID": "640",
           "Environment": "PATH=/usr/bin", "UnsetEnvironment": ""}


def test_a_fixed_and_running_server_is_left_alone() -> None:
    now = ServiceState(RUNNING, {"HSA_OVERRIDE_GFX_VERSION": "10.3.0"}, {999, 105},
                       {"render": 105})
    assert restart_reasons(now, {"HSA_OVERRIDE_GFX_VERSION": "10.3.0"}, ["render"]) == []


def test_a_correct_dropin_never_loaded_restarts() -> None:
    now = ServiceState({**RUNNING, "NeedDaemonReload": "yes"}, {"CUDA_VISIBLE_DEVICES": "-1"})
    reasons = restart_reasons(now, {"CUDA_VISIBLE_DEVICES": None}, [])
    assert reasons == ["its unit files changed on disk since systemd read them",
                       "the running server has CUDA_VISIBLE_DEVICES=-1, its unit unsets it"]


def test_the_manager_and_the_process_disagree_on_a_gpu_variable() -> None:
    now = ServiceState({**RUNNING, "Environment": "PATH=/usr/bin OLLAMA_VULKAN=1"}, {})
    assert restart_reasons(now, {}, []) == [
        "the running server has OLLAMA_VULKAN=(unset), its unit says 1"]


def test_missing_group_and_stopped_service() -> None:
    now = ServiceState(RUNNING, {}, {999}, {"render": 105})
    assert restart_reasons(now, {}, ["render"]) == ["the running server is not in group render"]
    stopped = ServiceState({**RUNNING, "ActiveState": "failed"}, None)
    assert restart_reasons(stopped, {}, []) == ["it is failed"]


def test_the_fact_reads_systemd_and_proc() -> None:
    out = RunningService().process([
        "prop NeedDaemonReload=no", "prop ActiveState=active", "prop MainPID=640",
        "process", "env CUDA_VISIBLE_DEVICES=-1", "Gid:\t999\t999\t999\t999",
        "Groups:\t105 999", "group render:105"])
    state = ServiceState.from_json(out)
    assert state.environ == {"CUDA_VISIBLE_DEVICES": "-1"} and state.gids == {999, 105}
    assert state.groups == {"render": 105} and state.props["MainPID"] == "640"
