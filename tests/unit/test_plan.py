"""Diagnosis + snapshot + policy -> Plan: the steps, their literal arguments, the refusals."""

from __future__ import annotations

from pathlib import Path

from ollama_gpu_fix.parsers import build_snapshot
from ollama_gpu_fix.plan import Plan, plan
from ollama_gpu_fix.policy import policy_from_host_data
from ollama_gpu_fix.rules import diagnose
from tests.unit.test_rules import (
    CPU_ONLY,
    KFD_1031,
    META_NATIVE,
    PCI_4090,
    PCI_6700XT,
    PROC_NATIVE,
    SMI_535,
    SMI_580,
    UNIT,
    _log,
)

OS_DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12"\nID=debian\nVERSION_ID="12"\n'
OS_ROCKY = 'NAME="Rocky Linux"\nID="rocky"\nVERSION_ID="9.4"\n'
SHOW = "ActiveState=active\nSubState=running\nUser=ollama\nMainPID=1180\n"
AMD_LOG = _log(
    'time=2024-08-13T16:46:10Z level=WARN source=amd_linux.go:378 msg="amdgpu is not supported'
    ' (supported types:[gfx1030 gfx1100 gfx1101 gfx1102 gfx900 gfx906 gfx908 gfx90a gfx940'
    ' gfx941 gfx942])" gpu_type=gfx1031 gpu=0 library=/usr/lib/ollama', CPU_ONLY,
    version="0.11.10",
)
TOO_OLD = _log(
    'time=2026-11-20T10:00:01Z level=WARN source=cuda_compat.go:71 msg="NVIDIA driver too old"'
    ' device=GPU-1 compute=8.9 driver=535 required_driver="550 or newer"', CPU_ONLY,
)


def _plan(sections: dict[str, str], **data: object) -> Plan:
    snapshot = build_snapshot(sections)
    return plan(diagnose(snapshot), snapshot, policy_from_host_data(data, Path("/tmp")))


def _amd(**extra: str) -> dict[str, str]:
    return {"probe-meta.txt": META_NATIVE, "os-release.txt": OS_DEBIAN,
            "proc-version.txt": PROC_NATIVE, "pci-devices.txt": PCI_6700XT,
            "kfd-topology.txt": KFD_1031, "systemctl-cat.txt": UNIT,
            "systemctl-show.txt": SHOW, "ollama-serve.log": AMD_LOG, **extra}


def _nvidia(**extra: str) -> dict[str, str]:
    return {"probe-meta.txt": META_NATIVE, "os-release.txt": OS_DEBIAN,
            "proc-version.txt": PROC_NATIVE, "pci-devices.txt": PCI_4090,
            "nvidia-smi.txt": SMI_535, "systemctl-cat.txt": UNIT, "systemctl-show.txt": SHOW,
            "ollama-serve.log": TOO_OLD, **extra}


def test_override_goes_into_the_managed_dropin() -> None:
    result = _plan(_amd())
    (step,) = result.steps
    assert step.action == "service_env" and step.refused is None
    assert step.params["env"] == {"HSA_OVERRIDE_GFX_VERSION": "10.3.0"}
    assert step.params["edit"] == {} and step.params["unset"] == []
    assert step.changes == "service" and "rolled back" in step.undo


def test_a_variable_that_hides_the_gpu_is_removed_where_it_is_set() -> None:
    dropin = ("\n# /etc/systemd/system/ollama.service.d/cpu-only.conf\n[Service]\n"
              'Environment="CUDA_VISIBLE_DEVICES=-1"\n')
    show = SHOW + 'Environment="PATH=/usr/bin" CUDA_VISIBLE_DEVICES=-1\n'
    result = _plan(_nvidia(**{"nvidia-smi.txt": SMI_580, "systemctl-cat.txt": UNIT + dropin,
                              "systemctl-show.txt": show, "ollama-serve.log": _log(CPU_ONLY)}))
    (step,) = result.runnable
    assert step.params["edit"] == {
        "/etc/systemd/system/ollama.service.d/cpu-only.conf": ["CUDA_VISIBLE_DEVICES"]}
    assert step.params["env"] == {} and step.params["unset"] == []


def test_what_the_vendor_unit_sets_is_unset_in_the_dropin() -> None:
    unit = UNIT.replace('Environment="PATH', 'Environment="OLLAMA_LLM_LIBRARY=cpu" "PATH')
    show = SHOW + 'Environment="PATH=/usr/bin" OLLAMA_LLM_LIBRARY=cpu\n'
    result = _plan(_nvidia(**{"nvidia-smi.txt": SMI_580, "systemctl-cat.txt": unit,
                              "systemctl-show.txt": show, "ollama-serve.log": _log(CPU_ONLY)}))
    (step,) = result.runnable
    assert step.params["unset"] == ["OLLAMA_LLM_LIBRARY"] and step.params["edit"] == {}


def test_the_dropin_keeps_what_it_already_holds() -> None:
    managed = ("\n# /etc/systemd/system/ollama.service.d/zz-ollama-gpu-fix.conf\n[Service]\n"
               'Environment="OLLAMA_IGPU_ENABLE=1"\n')
    result = _plan(_amd(**{"systemctl-cat.txt": UNIT + managed}))
    assert result.steps[0].params["env"] == {
        "HSA_OVERRIDE_GFX_VERSION": "10.3.0", "OLLAMA_IGPU_ENABLE": "1"}


def test_driver_change_needs_its_knob() -> None:
    result = _plan(_nvidia())
    assert result.blocked and "allow_driver_change" in result.blocked
    assert result.runnable == []


def test_driver_for_turing_and_newer_is_open_and_then_reboot() -> None:
    result = _plan(_nvidia(), allow_driver_change=True, allow_reboot=True)
    driver, reboot = result.runnable
    assert driver.action == "nvidia_driver" and driver.needs_reboot
    assert driver.params["packages"] == ["nvidia-driver-pinning-580", "nvidia-open"]
    assert driver.params["headers"] == ["linux-headers-6.8.0-45-generic"]
    assert driver.params["repo_url"].endswith("/repos/debian12/x86_64/")
    assert reboot.action == "reboot" and not result.reboot_required


def test_driver_for_pascal_is_580_proprietary() -> None:
    query = ("index, name, driver_version, memory.total [MiB], memory.used [MiB], compute_cap,"
             " pci.bus_id, uuid\n0, NVIDIA GeForce GTX 1080, 535.183.01, 8192 MiB, 0 MiB, 6.1,"
             " 00000000:01:00.0, GPU-1\n")
    result = _plan(_nvidia(**{"nvidia-smi-query.csv": query}), allow_driver_change=True,
                   nvidia_driver_branch=595)
    assert result.steps[0].params["packages"] == ["cuda-drivers-580"]


def test_without_allow_reboot_a_reboot_is_required_not_claimed() -> None:
    result = _plan(_nvidia(), allow_driver_change=True)
    assert result.reboot_required
    reboot = next(s for s in result.steps if s.action == "reboot")
    assert "allow_reboot" in (reboot.refused or "")


def test_secure_boot_refuses_the_driver_with_the_mok_steps() -> None:
    result = _plan(_nvidia(**{"mokutil.txt": "SecureBoot enabled\n"}), allow_driver_change=True)
    assert "Machine Owner Key" in (result.blocked or "")


def test_unknown_distribution_refuses_packages_naming_it() -> None:
    result = _plan(_nvidia(**{"os-release.txt": OS_ROCKY}), allow_driver_change=True)
    assert "rocky 9.4 is not supported" in (result.blocked or "")


def test_no_systemd_and_containers_change_nothing() -> None:
    meta = META_NATIVE.replace("systemd=yes", "systemd=no")
    sections = _amd(**{"probe-meta.txt": meta})
    del sections["systemctl-show.txt"]
    assert "no systemd" in (_plan(sections).blocked or "")
    container = META_NATIVE.replace("container=none", "container=docker")
    assert "container" in (_plan(_amd(**{"probe-meta.txt": container})).blocked or "")


def test_a_rolled_back_change_is_not_retried() -> None:
    first = _plan(_amd()).steps[0]
    meta = META_NATIVE + f"rolled-back={first.fingerprint}\n"
    result = _plan(_amd(**{"probe-meta.txt": meta}))
    assert "rolled it back" in (result.blocked or "")


def test_advice_only_primary_blocks_everything() -> None:
    sections = {"probe-meta.txt": META_NATIVE.replace("/usr/local/bin/ollama", ""),
                "pci-devices.txt": PCI_4090, "nvidia-smi.txt": SMI_580}
    result = _plan(sections)
    assert result.blocked and result.blocked.startswith("ollama-not-installed needs a person")


def test_params_are_the_deploy_keyword_arguments() -> None:
    import inspect

    from ollama_gpu_fix.deploy.remedies import registry

    remedies = registry()
    for result in (_plan(_amd()), _plan(_nvidia(), allow_driver_change=True, allow_reboot=True)):
        for step in result.runnable:
            if step.action == "reboot":
                continue
            signature = inspect.signature(remedies[step.action].__wrapped__)
            signature.bind(**step.params)  # raises when the plan and the deploy disagree


# ---- no change without evidence a user cannot plant (issue 12) -------------------------------

BASHRC = ("/home/mallory/.bashrc:export CUDA_VISIBLE_DEVICES=7\n"
          "/home/mallory/.bashrc:export HSA_OVERRIDE_GFX_VERSION=11.0.0\n")


def test_another_users_bashrc_is_never_written_into_the_service() -> None:
    result = _plan(_amd(**{"shell-env.txt": BASHRC}))
    (step,) = result.runnable
    assert step.params["env"] == {"HSA_OVERRIDE_GFX_VERSION": "10.3.0"}  # from the gfx table
    assert step.codes == ["rocm-gfx-unsupported"]  # mallory's wishes are no finding at all


def test_an_override_of_the_wrong_family_is_not_written_even_from_root() -> None:
    shell = "/etc/profile.d/zz-gfx.sh:export HSA_OVERRIDE_GFX_VERSION=11.0.0\n"
    result = _plan(_amd(**{"shell-env.txt": shell}))
    step = result.runnable[0]
    assert step.params["env"]["HSA_OVERRIDE_GFX_VERSION"] == "10.3.0"
    assert any("11.0.0 is not written (not the override for this host's GPUs (gfx1031:"
               " 10.3.0))" in a for a in result.advice), result.advice


def test_roots_own_profile_value_of_the_right_family_is_written() -> None:
    shell = "/root/.bashrc:export HSA_OVERRIDE_GFX_VERSION=10.3.0\n"
    sections = _amd(**{"shell-env.txt": shell})
    result = _plan(sections)
    assert result.runnable[0].params["env"] == {"HSA_OVERRIDE_GFX_VERSION": "10.3.0"}


def test_a_cuda_12_path_is_not_cuda_11() -> None:
    """`cuda-1` is a prefix of cuda-12.2: a substring test installed NVIDIA's repository."""
    dropin = ("\n# /etc/systemd/system/ollama.service.d/cuda.conf\n[Service]\n"
              'Environment="LD_LIBRARY_PATH=/usr/local/cuda-12.2/lib64"\n')
    result = _plan(_nvidia(**{"nvidia-smi.txt": SMI_580, "systemctl-cat.txt": UNIT + dropin,
                              "ollama-serve.log": _log(CPU_ONLY, version="0.9.0")}))
    assert not any(s.action == "cuda_toolkit" for s in result.steps)


def test_stale_cuda_is_told_by_release_not_by_name() -> None:
    packages = ("nvidia-cuda-toolkit 12.4.131~12.4.1-2\nlibcudart12 12.4.127~12.4.1-2\n"
                "cuda-toolkit-11-8 11.8.0-1\nlibcufft10 11.8.89~11.8.0-5~deb12u1\n")
    dropin = ("\n# /etc/systemd/system/ollama.service.d/cuda.conf\n[Service]\n"
              'Environment="LD_LIBRARY_PATH=/usr/local/cuda-11.8/lib64"\n')
    result = _plan(_nvidia(**{"nvidia-smi.txt": SMI_580, "packages.txt": packages,
                              "systemctl-cat.txt": UNIT + dropin,
                              "ollama-serve.log": _log(CPU_ONLY)}))
    toolkit = next(s for s in result.steps if s.action == "cuda_toolkit")
    assert toolkit.params["purge"] == ["cuda-toolkit-11-8"]  # Debian 13's 12.4 toolkit stays
    assert toolkit.evidence and all("knowledge" not in e for e in toolkit.evidence)


def test_a_ld_so_conf_line_is_removed_not_the_file() -> None:
    toolkits = ("ldconf /etc/ld.so.conf /usr/local/cuda-11.8/lib64\n"
                "ldconf /etc/ld.so.conf include /etc/ld.so.conf.d/*.conf\n")
    result = _plan(_nvidia(**{"nvidia-smi.txt": SMI_580, "cuda-toolkits.txt": toolkits,
                              "packages.txt": "cuda-toolkit-11-8 11.8.0-1\n",
                              "ollama-serve.log": _log(CPU_ONLY)}))
    toolkit = next(s for s in result.steps if s.action == "cuda_toolkit")
    assert toolkit.params["ldconf_remove"] == {"/etc/ld.so.conf": ["/usr/local/cuda-11.8/lib64"]}
    assert toolkit.files == ["/etc/ld.so.conf"]


def test_every_step_names_its_files_and_evidence() -> None:
    from ollama_gpu_fix.deploy.fix import render_plan

    dropin = ("\n# /etc/systemd/system/ollama.service.d/cpu-only.conf\n[Service]\n"
              'Environment="CUDA_VISIBLE_DEVICES=-1"\n')
    show = SHOW + 'Environment="PATH=/usr/bin" CUDA_VISIBLE_DEVICES=-1\n'
    result = _plan(_nvidia(**{"nvidia-smi.txt": SMI_580, "systemctl-cat.txt": UNIT + dropin,
                              "systemctl-show.txt": show, "ollama-serve.log": _log(CPU_ONLY)}))
    (step,) = result.runnable
    assert step.files == ["/etc/systemd/system/ollama.service.d/cpu-only.conf"]
    text = render_plan(result, "h")
    assert "files: /etc/systemd/system/ollama.service.d/cpu-only.conf" in text
    assert "because: systemctl-" in text


def test_a_step_without_host_state_evidence_is_refused() -> None:
    """Log text alone (which HTTP clients can put in Ollama's log) never installs packages."""
    from ollama_gpu_fix.findings import Diagnosis, Finding, Remedy
    from ollama_gpu_fix.snapshot import Line

    snapshot = build_snapshot(_nvidia(**{"nvidia-smi.txt": SMI_580,
                                         "packages.txt": "cuda-toolkit-11-8 11.8.0-1\n"}))
    finding = Finding("cuda-runtime-mismatch", "error", "x",
                      [Line("ollama-serve.log", "cudart 11 picked")],
                      Remedy("cuda_toolkit", "x", True))
    result = plan(Diagnosis([finding], "cuda-runtime-mismatch"), snapshot,
                  policy_from_host_data({}, Path("/tmp")))
    toolkit = next(s for s in result.steps if s.action == "cuda_toolkit")
    assert toolkit.refused and "no line of this host's own state" in toolkit.refused
    assert result.blocked


def test_secure_boot_refuses_amdgpu_dkms_too() -> None:
    sections = {"probe-meta.txt": META_NATIVE + "absent=/dev/kfd\n", "os-release.txt": OS_DEBIAN,
                "proc-version.txt": PROC_NATIVE, "pci-devices.txt": PCI_6700XT,
                "mokutil.txt": "SecureBoot enabled\n", "systemctl-cat.txt": UNIT,
                "systemctl-show.txt": SHOW, "ollama-serve.log": _log(
                    'time=2024-08-13T16:46:10Z level=INFO source=amd_linux.go:90 msg="amdgpu'
                    ' devices detected but kfd driver not loaded"', CPU_ONLY, version="0.11.10")}
    result = _plan(sections, allow_driver_change=True, allow_reboot=True)
    amd = next(s for s in result.steps if s.action == "amdgpu_driver")
    assert amd.refused and "Secure Boot" in amd.refused
