"""An edit of the unit may change only the variables it meant to: systemd's own view before and
after `daemon-reload` (systemctl show), compared property by property."""

from __future__ import annotations

from ollama_gpu_fix.unitprops import parse_show, unexpected_changes

DROPIN = "/etc/systemd/system/ollama.service.d/zz-ollama-gpu-fix.conf"
BEFORE = parse_show("""\
Type=simple
Restart=always
NoNewPrivileges=yes
Environment=PATH=/usr/bin OLLAMA_KEEP_ALIVE=1h CUDA_VISIBLE_DEVICES=-1
UnsetEnvironment=
DropInPaths=/etc/systemd/system/ollama.service.d/cpu-only.conf
ExecStart={ path=/usr/local/bin/ollama ; argv[]=/usr/local/bin/ollama serve ; ignore_errors=no ; start_time=[Sat 2026-12-06 20:01:02 UTC] ; stop_time=[n/a] ; pid=640 ; code=(null) ; status=0/0 }
MainPID=640
MemoryCurrent=104857600
ActiveEnterTimestamp=Sat 2026-12-06 20:01:02 UTC
InvocationID=aaaa
""".splitlines())


def after(**changes: str) -> dict[str, str]:
    return {**BEFORE, **changes}


def test_only_the_intended_variable_moved() -> None:
    new = after(Environment="PATH=/usr/bin OLLAMA_KEEP_ALIVE=1h",
                DropInPaths=BEFORE["DropInPaths"] + " " + DROPIN,
                MemoryCurrent="99999", InvocationID="bbbb",
                ExecStart=BEFORE["ExecStart"].replace("pid=640", "pid=650"))
    assert unexpected_changes(BEFORE, new, {"CUDA_VISIBLE_DEVICES"}, DROPIN) == []


def test_a_continuation_that_swallowed_a_directive_is_caught() -> None:
    """NoNewPrivileges=yes glued into an Environment= value: two properties moved."""
    new = after(Environment="PATH=/usr/bin OLLAMA_KEEP_ALIVE=1h NoNewPrivileges=yes",
                NoNewPrivileges="no")
    moved = unexpected_changes(BEFORE, new, {"CUDA_VISIBLE_DEVICES"}, DROPIN)
    assert moved == ["Environment (NoNewPrivileges)", "NoNewPrivileges (yes -> no)"]


def test_another_drop_in_or_command_is_caught() -> None:
    new = after(DropInPaths=BEFORE["DropInPaths"] + " /etc/systemd/system/ollama.service.d/x.conf",
                ExecStart=BEFORE["ExecStart"].replace("ollama serve", "ollama serve --evil"))
    moved = unexpected_changes(BEFORE, new, set(), DROPIN)
    assert [m.split(" ")[0] for m in moved] == ["DropInPaths", "ExecStart"]


def test_unset_names_are_compared_as_words() -> None:
    new = after(UnsetEnvironment="CUDA_VISIBLE_DEVICES LD_PRELOAD")
    assert unexpected_changes(BEFORE, new, {"CUDA_VISIBLE_DEVICES"}, DROPIN) == [
        "UnsetEnvironment (LD_PRELOAD)"]


def test_dependency_lists_reordered_by_a_reload_are_not_a_change() -> None:
    before = {**BEFORE, "After": "network-online.target basic.target system.slice",
              "Wants": "network-online.target"}
    new = {**before, "After": "system.slice basic.target network-online.target"}
    assert unexpected_changes(before, new, set(), DROPIN) == []
    new["Wants"] = "network-online.target evil.service"
    assert unexpected_changes(before, new, set(), DROPIN)[0].startswith("Wants")
