"""systemctl cat/show parser; Environment= split exactly as systemd's extract_first_word."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollama_gpu_fix.parsers import systemd

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sections"


def sample(name: str, case: str) -> dict[str, str]:
    return {name: (FIXTURES / name / case).read_text(encoding="utf-8")}


def test_absent_files_give_none() -> None:
    assert systemd.parse({"ollama-serve.log": ""}) is None


@pytest.mark.parametrize(
    ("value", "env"),
    [
        ('"A=1" B=2', {"A": "1", "B": "2"}),
        ("A=1 B=2", {"A": "1", "B": "2"}),
        ('"OLLAMA_HOST=0.0.0.0:11434"', {"OLLAMA_HOST": "0.0.0.0:11434"}),
        ('"VAR1=word1 word2" VAR2=word3', {"VAR1": "word1 word2", "VAR2": "word3"}),
        # systemd removes quotes anywhere in a word (test-extract-word.c: yay'foo'bar)
        ('HSA_OVERRIDE_GFX_VERSION="10.3.0"', {"HSA_OVERRIDE_GFX_VERSION": "10.3.0"}),
        # ...but a quote of the other kind inside a quoted word, or an escaped quote, stays
        ("\"HSA_OVERRIDE_GFX_VERSION='10.3.0'\"", {"HSA_OVERRIDE_GFX_VERSION": "'10.3.0'"}),
        ('"HSA_OVERRIDE_GFX_VERSION=\\"10.3.0\\""', {"HSA_OVERRIDE_GFX_VERSION": '"10.3.0"'}),
        ("\"TWO='two two' too\"", {"TWO": "'two two' too"}),
        ("ONE='one'", {"ONE": "one"}),
        ("A=a\\x41b", {"A": "aAb"}),
        ("A=1 =bad 1BAD=x NOEQ", {"A": "1"}),  # invalid assignments are ignored
        ('A=1 B="unbalanced', {"A": "1"}),  # systemd stops at the syntax error
        ("CUDA_VISIBLE_DEVICES=", {"CUDA_VISIBLE_DEVICES": ""}),
        ("P=100%%", {"P": "100%"}),
    ],
)
def test_environment_splitting(value: str, env: dict[str, str]) -> None:
    assert systemd.parse_environment(value) == env


def test_empty_environment_resets() -> None:
    env = {"A": "1"}
    assert systemd.parse_environment("", env) == {}


def test_cat_fragment_and_dropin() -> None:
    unit = systemd.parse(sample("systemctl-cat.txt", "override.txt"))
    assert unit is not None and unit.missing is None
    assert unit.fragment is not None
    assert unit.fragment.path == "/etc/systemd/system/ollama.service"
    assert unit.fragment.environment == {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    }
    assert [d.path for d in unit.dropins] == ["/etc/systemd/system/ollama.service.d/override.conf"]
    env = unit.dropins[0].environment
    assert env["OLLAMA_HOST"] == "0.0.0.0:11434" and env["OLLAMA_KEEP_ALIVE"] == "24h"
    assert env["HSA_OVERRIDE_GFX_VERSION"] == "10.3.0"
    assert env["HSA_OVERRIDE_GFX_VERSION_1"] == "'11.0.0'"  # quotes ROCm will choke on
    assert env["OLLAMA_DEBUG"] == "1" and env["OLLAMA_VULKAN"] == "1"  # continuation line
    assert (unit.exec_start, unit.user, unit.group) == (
        "/usr/local/bin/ollama serve",
        "ollama",
        "ollama",
    )
    assert unit.environment == {}  # effective environment comes from `show` only
    assert any(line.text.startswith("# /etc/systemd") for line in unit.dropins[0].lines)


def test_cat_missing_unit() -> None:
    unit = systemd.parse(sample("systemctl-cat.txt", "missing.txt"))
    assert unit is not None and unit.missing is True and unit.fragment is None


def test_cat_changed_on_disk() -> None:
    unit = systemd.parse(sample("systemctl-cat.txt", "changed-on-disk.txt"))
    assert unit is not None and unit.need_daemon_reload is True
    assert unit.fragment is not None and unit.fragment.path == "/etc/systemd/system/ollama.service"
    assert unit.dropins[0].environment == {"CUDA_VISIBLE_DEVICES": "-1"}


def test_cat_other_sections_ignored_and_exec_start_reset() -> None:
    text = (
        "# /etc/systemd/system/ollama.service\n[Unit]\nEnvironment=NOT=this\n[Service]\n"
        "ExecStart=/usr/bin/ollama serve\n"
        "# /etc/systemd/system/ollama.service.d/exec.conf\n[Service]\nExecStart=\n"
        "ExecStart=/opt/ollama/bin/ollama serve\nUser=\n"
    )
    unit = systemd.parse({"systemctl-cat.txt": text})
    assert unit is not None
    assert unit.fragment is not None and unit.fragment.environment == {}
    assert unit.exec_start == "/opt/ollama/bin/ollama serve" and unit.user is None


def test_cat_comment_lines_inside_a_continuation_are_skipped() -> None:
    # systemd skips a comment line inside a continuation, so User= joins the Environment= value
    text = (
        "# /etc/systemd/system/ollama.service.d/override.conf\n[Service]\n"
        "Environment=OLLAMA_KEEP_ALIVE=1h \\\n# CUDA_VISIBLE_DEVICES=-1\nUser=ollama\n"
        "Environment=A=1 \\\n; note\n  B=2\n"
    )
    unit = systemd.parse({"systemctl-cat.txt": text})
    assert unit is not None and len(unit.dropins) == 1
    env = unit.dropins[0].environment
    assert env == {"OLLAMA_KEEP_ALIVE": "1h", "User": "ollama", "A": "1", "B": "2"}
    assert unit.user is None  # "User=ollama" became a word of the Environment= value


def test_cat_a_continuation_stops_at_the_next_file() -> None:
    text = (
        "# /etc/systemd/system/ollama.service\n[Service]\nEnvironment=A=1 \\\n"
        "# /etc/systemd/system/ollama.service.d/override.conf\n[Service]\nUser=ollama\n"
    )
    unit = systemd.parse({"systemctl-cat.txt": text})
    assert unit is not None and unit.fragment is not None
    assert unit.fragment.environment == {"A": "1"}
    assert [d.path for d in unit.dropins] == ["/etc/systemd/system/ollama.service.d/override.conf"]
    assert unit.user == "ollama"


def test_show_effective_state() -> None:
    unit = systemd.parse(sample("systemctl-show.txt", "active.txt"))
    assert unit is not None
    assert (unit.active_state, unit.sub_state) == ("active", "running")
    assert (unit.user, unit.group) == ("ollama", "ollama")
    assert unit.environment["OLLAMA_HOST"] == "0.0.0.0:11434"
    assert unit.environment["HSA_OVERRIDE_GFX_VERSION"] == '"10.3.0"'
    assert unit.dropin_paths == ["/etc/systemd/system/ollama.service.d/override.conf"]
    assert unit.exec_start == "/usr/local/bin/ollama serve"
    assert unit.need_daemon_reload is False and unit.missing is False


def test_show_not_found() -> None:
    unit = systemd.parse(sample("systemctl-show.txt", "not-found.txt"))
    assert unit is not None and unit.missing is True
    assert unit.user is None and unit.environment == {} and unit.dropin_paths == []


def test_cat_and_show_together() -> None:
    sections = sample("systemctl-cat.txt", "override.txt")
    sections.update(sample("systemctl-show.txt", "active.txt"))
    unit = systemd.parse(sections)
    assert unit is not None
    assert unit.dropins[0].environment["HSA_OVERRIDE_GFX_VERSION"] == "10.3.0"
    assert unit.environment["HSA_OVERRIDE_GFX_VERSION"] == '"10.3.0"'
    assert unit.active_state == "active" and unit.fragment is not None


# What journalctl -u ollama -o short-iso printed on a host whose ollama binary was missing,
# after an HTTP client had asked for a model named like systemd's failure line.
JOURNAL = """\
2025-08-08T09:02:30+0000 master ollama[812]: time=2025-08-08T09:02:30.101Z level=INFO source=images.go:743 msg="model systemd[1]: ollama.service: Failed with result 'exit-code'. not found"
2025-08-08T09:02:31+0000 master ollama[812]: systemd[1]: ollama.service: Main process exited, code=exited, status=1/FAILURE
                                            systemd[1]: Failed to start ollama.service - Ollama Service.
ollama.service: Failed with result 'exit-code'.
2025-08-08T09:02:33+0000 master systemd[1]: ollama.service: Main process exited, code=exited, status=127/n/a
Aug 08 09:02:33 master systemd[1]: ollama.service: Failed with result 'exit-code'.
Aug 08 09:02:36 master systemd[1]: Started ollama.service - Ollama Service.
"""


def test_unit_failures_only_from_pid_1() -> None:
    found = systemd.parse_unit_failures({"ollama-serve.log": JOURNAL})
    assert [line.text.split(" ", 1)[1] for line in found] == [
        "master systemd[1]: ollama.service: Main process exited, code=exited, status=127/n/a",
        "08 09:02:33 master systemd[1]: ollama.service: Failed with result 'exit-code'.",
    ]


def test_unit_failures_not_read_from_a_server_log_without_systemd() -> None:
    sections = {"ollama-serve.log": JOURNAL, "probe-meta.txt": "probe=1\nsystemd=no\n"}
    assert not systemd.parse_unit_failures(sections)
    sections["probe-meta.txt"] = "probe=1\nsystemd=yes\n"
    assert len(systemd.parse_unit_failures(sections) or []) == 2
