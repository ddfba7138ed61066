"""Issue 6, items 4, 6, 7 and 8: the probe as root on a host where another local user acts.

Each test runs the real probe (through `collect`) as root in a private mount namespace; the
attacker is uid 4242, the ollama account uid 4300. Every attack is paired with the honest
version of the same evidence, which must still arrive."""

from __future__ import annotations

from tests.hostile import attacks

TRUSTED_SERVER = (
    "mkdir -p /home/rootbin && cp " + attacks.SYSTEM_PYTHON + " /home/rootbin/ollama\n"
    f"cat > /home/rootbin/srv.py <<'EOF'\n{attacks.ATTACKER_SERVER.replace('18434', '18435')}EOF\n"
    "setpriv --reuid 4300 --regid 4300 --clear-groups env -i PATH=/usr/bin:/bin "
    "HSA_OVERRIDE_GFX_VERSION=10.3.0 OLLAMA_HOST=127.0.0.1:18435 HF_TOKEN=hf_SECRET "
    "/home/rootbin/ollama /home/rootbin/srv.py serve &\n"
    "SRV=$!\ntrap 'kill $SRV 2>/dev/null' EXIT\n"
    "for i in $(seq 100); do curl -s -m 1 127.0.0.1:18435/api/version >/dev/null 2>&1 "
    "&& break; sleep 0.1; done\n"
)


def test_another_users_ollama_serve_is_reported_not_trusted(sandbox) -> None:
    result = attacks.fake_server()
    assert not result.succeeded, result.row()
    run, files = attacks.collect_in_sandbox(attacks.start_attacker_server())
    record = files["ollama-process.txt"]["text"]
    assert "trusted=no" in record and "env " not in record, record
    assert "api=skipped" in files["probe-meta.txt"]["text"]


def test_newlines_in_arguments_stay_in_one_line(sandbox) -> None:
    result = attacks.fake_server_newline()
    assert not result.succeeded, result.row()


def test_the_service_accounts_server_is_trusted_and_asked(sandbox) -> None:
    run, files = attacks.collect_in_sandbox(TRUSTED_SERVER)
    record = files["ollama-process.txt"]["text"]
    assert "trusted=yes" in record and "trust=uid" in record, record
    assert "env HSA_OVERRIDE_GFX_VERSION=10.3.0" in record
    assert "env HF_TOKEN" not in record  # not a GPU variable: never collected
    assert "size_vram" in files["api-ps.json"]["text"]
    assert "api=http://127.0.0.1:18435" in files["probe-meta.txt"]["text"]


def test_secrets_are_redacted_names_kept_files_private(sandbox) -> None:
    result = attacks.secrets_collected()
    assert not result.succeeded, result.row()
    run, files = attacks.collect_in_sandbox(
        f"cat > /etc/systemd/system/ollama.service <<'EOF'\n{attacks.SECRET_UNIT}EOF\n")
    unit = files["systemctl-cat.txt"]["text"]
    assert '"HF_TOKEN=<redacted>"' in unit and "PATH=/usr/bin:/bin" in unit, unit
    assert "User=ollama" in unit


def test_links_in_homes_read_nothing_real_profiles_still_read(sandbox) -> None:
    result = attacks.probe_follows_links()
    assert not result.succeeded, result.row()
    run, files = attacks.collect_in_sandbox(
        "printf 'export HSA_OVERRIDE_GFX_VERSION=10.3.0\\n' > /home/evil/.profile\n"
        "chown 4242:4242 /home/evil/.profile\n"
        "printf 'time=2026 level=INFO source=routes.go:1 msg=\"Listening on 127.0.0.1:11434 "
        "(version 0.33.0)\"\\n' > /home/ollama/.ollama/logs/server.log\n"
        "chown 4300:4300 /home/ollama/.ollama/logs/server.log\n")
    assert "/home/evil/.profile:export HSA_OVERRIDE_GFX_VERSION=10.3.0" in files["shell-env.txt"]["text"]
    assert "version 0.33.0" in files["ollama-serve.log"]["text"]


def test_a_huge_sparse_profile_costs_nothing(sandbox) -> None:
    result = attacks.sparse_bashrc(256)
    assert not result.succeeded, result.row()


def test_a_hanging_probe_ends_in_one_line() -> None:
    result = attacks.collect_timeout_message()
    assert not result.succeeded, result.row()
