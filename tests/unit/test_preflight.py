"""Preflight: what the plan needs is checked before the first change, and each failure refuses
the host with one line naming the reason. The outputs below are preflight.sh's shape with
apt's and the kernel's own wording (apt 2.6, Debian 12)."""

from __future__ import annotations

from pathlib import Path

from ollama_gpu_fix import preflight as pf
from ollama_gpu_fix.parsers import build_snapshot
from ollama_gpu_fix.plan import plan
from ollama_gpu_fix.policy import policy_from_host_data
from ollama_gpu_fix.rules import diagnose
from tests.unit.test_plan import OS_DEBIAN, _amd, _nvidia
from tests.unit.test_rules import CPU_ONLY, KFD_1100, META_NATIVE, SMI_580, UNIT, _log

N = "ogf-preflight v1 nonce=abc123\n"
DROPIN = "/etc/systemd/system/ollama.service.d/zz-ollama-gpu-fix.conf"


def out(**sections: str) -> str:
    return N + "".join(f"--ogf-abc123-- {name.replace('_', '-')}\n{body}"
                       for name, body in sections.items())


def _plan_of(sections: dict[str, str], **data: object):
    snapshot = build_snapshot(sections)
    return plan(diagnose(snapshot), snapshot, policy_from_host_data(data, Path("/tmp"))), snapshot


CUDA11 = ("nvidia-cuda-toolkit 11.8.89~11.8.0-5~deb12u1\ncuda-toolkit-11-8 11.8.0-1\n"
          "cuda-drivers 580.159.04-1\nnvidia-driver 535.183.01-1\n")
LD_DROPIN = ("\n# /etc/systemd/system/ollama.service.d/cuda.conf\n[Service]\n"
             'Environment="LD_LIBRARY_PATH=/usr/local/cuda-11.8/lib64"\n')


def _cuda11():
    return _plan_of(_nvidia(**{"nvidia-smi.txt": SMI_580, "packages.txt": CUDA11,
                               "systemctl-cat.txt": UNIT + LD_DROPIN,
                               "ollama-serve.log": _log(CPU_ONLY)}))


def test_the_spec_asks_for_what_the_steps_need() -> None:
    the_plan, snapshot = _cuda11()
    want = pf.spec(the_plan, snapshot, "http://127.0.0.1:11500")
    assert want.apt and want.purge == ["cuda-toolkit-11-8", "nvidia-cuda-toolkit"]
    assert want.install == ["cuda-toolkit-12-4"] and want.repo_kind == "keyring-deb"
    assert want.repo_fetch.endswith("/debian12/x86_64/cuda-keyring_1.1-1_all.deb")
    assert "/etc/systemd/system/ollama.service.d/zz-ollama-gpu-fix.conf" in want.files
    assert want.port == "127.0.0.1:11500"
    env = want.environment()
    assert env["OGF_APT"] == "1" and env["OGF_PURGE"] == "cuda-toolkit-11-8 nvidia-cuda-toolkit"


UPDATE_OK = "== apt-get update\nHit:1 http://mirror bookworm InRelease\nReading package lists...\nrc=0\n"


def _apt(sim: str, update: str = UPDATE_OK, extra: str = "") -> str:
    return (f"added cuda-debian12-x86_64.list\n{update}== apt-get simulate: cuda-toolkit-12-4"
            f" cuda-toolkit-11-8- nvidia-cuda-toolkit-\n{sim}== held\n{extra}== audit\n"
            "== writable\n")


def _judge(apt: str, sources: str = "", match: str = "", **more: str) -> pf.Verdict:
    the_plan, snapshot = _cuda11()
    want = pf.spec(the_plan, snapshot, None)
    return pf.judge(want, out(files="", envfiles="", port="systemd=yes\nmainpid=640\n"
                              "listener=none\n", accounts="", sources=sources,
                              repo_match=match, apt=apt, **more), snapshot.packages)


SIM_OK = ("Reading package lists...\nThe following packages will be REMOVED:\n"
          "  cuda-toolkit-11-8* nvidia-cuda-toolkit*\nPurg cuda-toolkit-11-8 [11.8.0-1]\n"
          "Purg nvidia-cuda-toolkit [11.8.89~11.8.0-5~deb12u1]\n"
          "Inst cuda-toolkit-12-4 (12.4.1-1 cuda:debian12)\nConf cuda-toolkit-12-4\nrc=0\n")


def test_a_plan_apt_can_carry_out_passes() -> None:
    verdict = _judge(_apt(SIM_OK))
    assert verdict.passed, verdict.problems
    assert verdict.reuse is None


def test_a_package_of_the_user_that_needs_cuda_11_refuses_naming_it() -> None:
    sim = SIM_OK.replace("rc=0", "Purg acme-vision [1.0]\nrc=0")
    verdict = _judge(_apt(sim))
    assert verdict.problems == [
        "the plan would also remove acme-vision (which depend on what it purges): refused;"
        " remove them yourself first, or keep the old toolkit"]


def test_a_held_package_refuses() -> None:
    sim = ("The following held packages will be changed:\n  cuda-toolkit-11-8\n" + SIM_OK)
    verdict = _judge(_apt(sim, extra="cuda-toolkit-11-8\n"))
    assert any("held package(s) cuda-toolkit-11-8" in p for p in verdict.problems)


def test_a_broken_third_party_source_is_named_by_its_file() -> None:
    update = ("== apt-get update\nErr:3 http://10.213.0.1:8089/does-not-exist bookworm Release\n"
              "  404  Not Found [IP: 10.213.0.1 8089]\n"
              "E: The repository 'http://10.213.0.1:8089/does-not-exist bookworm Release' does"
              " not have a Release file.\nrc=100\n")
    sources = ("/etc/apt/sources.list.d/vendor-x.list\tdeb [signed-by=/k.gpg]"
               " http://10.213.0.1:8089/does-not-exist bookworm main\n"
               "/etc/apt/sources.list.d/debian.sources\tURIs: http://10.213.0.1:8089/debian\n")
    verdict = _judge(_apt(SIM_OK, update=update), sources=sources)
    assert verdict.problems[0].startswith("apt-get update fails: vendor-x.list: ")


def test_conflicting_signed_by_is_refused() -> None:
    update = ("== apt-get update\nE: Conflicting values set for option Signed-By regarding source"
              " https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/ /:"
              " /etc/apt/keyrings/nvidia.gpg != /usr/share/keyrings/cuda-archive-keyring.gpg\n"
              "E: The list of sources could not be read.\nrc=100\n")
    verdict = _judge(_apt(SIM_OK, update=update))
    assert "Conflicting values set for option Signed-By" in verdict.problems[0]


def test_the_users_own_source_is_reused() -> None:
    verdict = _judge(_apt(SIM_OK), match="match /etc/apt/sources.list.d/nvidia-cuda.list\n")
    assert verdict.passed and verdict.reuse == "/etc/apt/sources.list.d/nvidia-cuda.list"
    the_plan, _ = _cuda11()
    pf.apply(the_plan, verdict)
    toolkit = next(s for s in the_plan.steps if s.action == "cuda_toolkit")
    assert toolkit.params["source"] == "reuse:/etc/apt/sources.list.d/nvidia-cuda.list"


def test_missing_kernel_headers_are_named() -> None:
    sim = ("Reading package lists...\nE: Unable to locate package linux-headers-6.1.0-31-amd64\n"
           "rc=100\n")
    verdict = _judge(_apt(sim))
    assert verdict.problems[0].startswith("the kernel headers linux-headers-6.1.0-31-amd64")


def test_unfinished_dpkg_and_read_only_usr_refuse() -> None:
    apt = _apt(SIM_OK).replace("== audit\n", "== audit\nThe following packages are only half"
                               " configured:\n cuda-toolkit-11-8\n").replace(
        "== writable\n", "== writable\n/usr read-only mount /usr\n")
    problems = _judge(apt).problems
    assert any(p.startswith("dpkg reports unfinished packages") for p in problems)
    assert "apt cannot write /usr read-only mount /usr" in problems


def test_files_root_may_not_write_refuse_and_another_users_file_is_unset_instead() -> None:
    envfile = "/srv/mallory/ollama.env"
    show = "ActiveState=active\nSubState=running\nUser=ollama\nMainPID=1180\n" \
           f"EnvironmentFiles={envfile} (ignore_errors=no)\n"
    dropin = ("\n# /etc/systemd/system/ollama.service.d/env.conf\n[Service]\n"
              f"EnvironmentFile={envfile}\n")
    sections = _nvidia(**{"nvidia-smi.txt": SMI_580, "ollama-serve.log": _log(CPU_ONLY),
                          "systemctl-cat.txt": UNIT + dropin, "systemctl-show.txt": show,
                          "ollama-process.txt": "pid=1180\nuser=ollama\ntrusted=yes\n"
                          "trust=mainpid\nenv CUDA_VISIBLE_DEVICES=-1\n"})
    the_plan, snapshot = _plan_of(sections)
    step = the_plan.runnable[0]
    assert step.params["edit"] == {envfile: ["CUDA_VISIBLE_DEVICES"]}
    want = pf.spec(the_plan, snapshot)
    verdict = pf.judge(want, out(files=f"ok\t/etc/systemd/system/ollama.service.d/zz-ollama-gpu"
                                 f"-fix.conf\nunsafe\t/srv/mallory belongs to uid 4242, not root"
                                 f"\t{envfile}\n",
                                 envfiles=f"regular\t{envfile}\tother: /srv/mallory belongs to"
                                 " uid 4242, not root\n"))
    assert verdict.passed and envfile in verdict.unsafe_edits
    assert "controlled by someone other than root" in verdict.notes[0]
    pf.apply(the_plan, verdict)
    assert step.params["edit"] == {} and step.params["unset"] == ["CUDA_VISIBLE_DEVICES"]
    assert envfile not in step.files
    # the drop-in was only the fallback: a read-only drop-in directory alone is no problem
    assert pf.judge(want, out(files="unsafe\tread-only\t" + DROPIN + "\n")).passed
    the_plan, snapshot = _plan_of(_amd())  # the override is written into the drop-in itself
    read_only = pf.judge(pf.spec(the_plan, snapshot), out(
        files="unsafe\t/etc/systemd/system/ollama.service.d is not writable (read-only mount"
        " /etc/systemd/system)\t" + DROPIN + "\n"))
    assert read_only.problems == [f"cannot write {DROPIN}: /etc/systemd/system/ollama.service.d"
                                  " is not writable (read-only mount /etc/systemd/system)"]


def test_a_fifo_environment_file_refuses() -> None:
    the_plan, snapshot = _plan_of(_amd())
    want = pf.spec(the_plan, snapshot)
    verdict = pf.judge(want, out(envfiles="fifo\t/srv/mallory/ollama.env\tother: x\n"))
    assert "is not a regular file (a fifo)" in verdict.problems[0]


def test_another_users_server_on_the_port_refuses_naming_it() -> None:
    the_plan, snapshot = _plan_of(_amd())
    want = pf.spec(the_plan, snapshot)
    port = ("systemd=yes\nmainpid=\napi=http://127.0.0.1:11434 preflight\nollama_uid=999\n"
            "listener=4242 1001 ollama\nexe=4242 0 -rwxr-xr-x\n4242 1 ollama\n1 0 systemd\n\n"
            "owner=4242 alice\n")
    verdict = pf.judge(want, out(port=port))
    assert verdict.problems == [
        "port 11434 is held by pid 4242 (user alice, uid 1001: ollama), not by ollama.service:"
        " stop it first (this tool never stops another user's process)"]
    own = port.replace("mainpid=", "mainpid=4242")
    assert pf.judge(want, out(port=own)).passed


def test_a_missing_login_user_refuses_naming_the_knob() -> None:
    sections = {"probe-meta.txt": META_NATIVE, "os-release.txt": OS_DEBIAN,
                "kfd-topology.txt": KFD_1100, "systemctl-cat.txt": UNIT,
                "groups.txt": "uid=998(ollama) gid=998(ollama) groups=998(ollama)\n",
                "dev-nodes.txt": "crw-rw---- 1 root render 235, 0 Nov 21 10:00 /dev/kfd\n",
                "ollama-version.txt": "ollama version is 0.33.0\n"}
    the_plan, snapshot = _plan_of(sections, login_user="alice")
    want = pf.spec(the_plan, snapshot)
    assert want.users == ["ollama", "alice"] and want.groups == ["render"]
    verdict = pf.judge(want, out(accounts="user ollama present\nuser alice absent\n"
                                 "group render present\n"))
    assert verdict.problems == ["user alice does not exist on this host (host data login_user)"]


def test_garbage_output_refuses() -> None:
    the_plan, snapshot = _plan_of(_amd())
    verdict = pf.judge(pf.spec(the_plan, snapshot), "sh: 1: syntax error\n")
    assert verdict.problems == ["the preflight printed nothing (sh, or the connection, failed)"]


def test_the_port_comes_from_the_units_own_ollama_host() -> None:
    """A disabled service on another port: its own OLLAMA_HOST, not 11434 by assumption."""
    dropin = ("\n# /etc/systemd/system/ollama.service.d/override.conf\n[Service]\n"
              'Environment="OLLAMA_HOST=127.0.0.1:11500"\n')
    sections = _amd(**{"systemctl-cat.txt": UNIT + dropin})
    the_plan, snapshot = _plan_of(sections)
    assert pf.spec(the_plan, snapshot).port == "127.0.0.1:11500"
    assert pf.ollama_hostport("http://0.0.0.0:8080") == "127.0.0.1:8080"
    assert pf.ollama_hostport("[::]") == "[::1]:11434"
