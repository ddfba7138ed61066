"""change.sh, the one way the fix writes as root, run for real: as root in a private mount
namespace (tmpfs over /mnt and /var/lib, so nothing outside is touched), with an unprivileged
uid 4242 as the other local user. Each test is what that user can set up, and what root must
then do or refuse.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import time

import pytest

from ollama_gpu_fix.deploy.rootfiles import parse_read
from tests.hostile.attacks import can_use_namespaces

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "ollama_gpu_fix", "change.sh")
ATTACKER = "setpriv --reuid=4242 --regid=4242 --clear-groups --"


@pytest.fixture(scope="module", autouse=True)
def namespaces() -> None:
    why = can_use_namespaces()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"change.sh tests cannot run here: {why} (CI is set)")
        pytest.skip(f"change.sh tests cannot run here: {why}")


def ns(body: str, shell: str = "dash", timeout: float = 60) -> subprocess.CompletedProcess:
    """Run BODY (sh) as root in a private mount namespace; C runs change.sh."""
    prelude = (
        "set -u\nmount -t tmpfs -o mode=755 tmpfs /mnt\nmount -t tmpfs -o mode=755 tmpfs /var/lib\n"
        f"C() {{ {shell} {os.path.abspath(SCRIPT)} \"$@\"; }}\n"
        f"A() {{ {ATTACKER} \"$@\"; }}\n"
        "b64() { printf '%s' \"$1\" | base64 -w0; }\n"
    )
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                           prelude + body], capture_output=True, text=True, timeout=timeout)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("shell", ["dash", "bash", "busybox sh"])
def test_put_creates_replaces_and_journals(shell: str) -> None:
    if shell.startswith("busybox") and not shutil.which("busybox"):
        pytest.skip("no busybox")
    new = "[Service]\nEnvironment=A=1\n"
    second = b64("v2\n")
    res = ns(f"""
mkdir -m 755 /mnt/etc
C begin run1
C put /mnt/etc/ollama.d/a.conf 644 0 absent {b64(new)} || exit 9
cat /mnt/etc/ollama.d/a.conf; ls -ln /mnt/etc/ollama.d/a.conf
C put /mnt/etc/ollama.d/a.conf 640 0 {sha(new)} {second} || exit 9
cat /mnt/etc/ollama.d/a.conf; ls -ln /mnt/etc/ollama.d/a.conf
cat /var/lib/ollama-gpu-fix/txn/journal
ls -ld /var/lib/ollama-gpu-fix /var/lib/ollama-gpu-fix/txn | cut -c1-10
""", shell=shell)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert new in out and "v2" in out
    assert "-rw-r-----" in out  # the mode asked for, root's
    assert out.count("backup 1 /mnt/etc/ollama.d/a.conf absent") == 1  # the first backup wins
    assert out.count("drwx------") == 2


def test_compare_and_swap_refuses_a_file_changed_since_it_was_read() -> None:
    res = ns(f"""
printf 'old\\n' > /mnt/f
C begin r; C put /mnt/f 644 0 {sha("something else")} {b64("new")}; echo rc=$?
cat /mnt/f
""")
    assert "rc=2" in res.stdout and "changed since it was read" in res.stdout
    assert res.stdout.rstrip().endswith("old")


def test_never_through_a_link_nor_into_another_users_directory() -> None:
    """The attacker owns a directory on the path, or puts a link where the file goes: root
    writes nothing, anywhere (the victim stays root's, 0600, with its content)."""
    res = ns(f"""
printf 'secret\\n' > /mnt/victim; chmod 600 /mnt/victim
mkdir -m 755 /mnt/theirs; chown 4242:4242 /mnt/theirs
A sh -c 'ln -s /mnt/victim /mnt/theirs/ollama.env'
mkdir -m 755 /mnt/ours; ln -s /mnt/victim /mnt/ours/link.conf
mkdir -m 775 /mnt/groupw
C begin r
C put /mnt/theirs/ollama.env 644 0 absent {b64("x")}; echo rc1=$?
C put /mnt/ours/link.conf 644 0 absent {b64("x")}; echo rc2=$?
C put /mnt/groupw/f 644 0 absent {b64("x")}; echo rc3=$?
C check /mnt/theirs/ollama.env /mnt/ours/link.conf /mnt/groupw/f /mnt/ours/new.conf
ls -ln /mnt/victim; cat /mnt/victim
""")
    out = res.stdout
    assert "rc1=2" in out and "rc2=2" in out and "rc3=2" in out, out
    assert "/mnt/theirs belongs to uid 4242, not root" in out
    assert "/mnt/ours/link.conf is a symbolic link" in out
    assert "/mnt/groupw is writable by other users" in out
    assert "ok\t/mnt/ours/new.conf" in out
    assert "-rw------- 1 0 0 7" in out and out.rstrip().endswith("secret")


def test_a_file_another_user_owns_is_never_edited_and_a_fifo_never_opened() -> None:
    res = ns("""
mkdir -m 755 /mnt/d
printf 'CUDA_VISIBLE_DEVICES=-1\\n' > /mnt/d/env; chown 4242 /mnt/d/env
mkfifo /mnt/d/fifo
C read /mnt/d/env /mnt/d/fifo /mnt/d/none
""", timeout=20)
    files = parse_read(res.stdout.splitlines())
    assert files["/mnt/d/env"].state == "unsafe" and "uid 4242" in files["/mnt/d/env"].why
    assert files["/mnt/d/fifo"].why == "/mnt/d/fifo is not a regular file"
    assert files["/mnt/d/none"].state == "absent"


def test_read_gives_content_mode_owner_and_a_checkable_sha() -> None:
    res = ns("""
mkdir -m 755 /mnt/d; printf 'A=1\\n# c\\n' > /mnt/d/env; chgrp 4242 /mnt/d/env; chmod 640 /mnt/d/env
C read /mnt/d/env
""")
    state = parse_read(res.stdout.splitlines())["/mnt/d/env"]
    assert state.editable and state.text() == "A=1\n# c\n"
    assert (state.octal_mode, state.uid, state.gid) == ("640", 0, 4242)


def test_read_only_mount_and_immutable_flag_are_named() -> None:
    res = ns(f"""
mkdir -m 755 /mnt/ro /mnt/imm; touch /mnt/imm/f
mount --bind /mnt/ro /mnt/ro; mount -o remount,bind,ro /mnt/ro
chattr +i /mnt/imm 2>/dev/null || echo no-chattr
C begin r
C put /mnt/ro/a.conf 644 0 absent {b64("x")}; echo rc1=$?
C put /mnt/imm/f 644 0 {sha("")} {b64("x")}; echo rc2=$?
chattr -i /mnt/imm 2>/dev/null; true
""")
    out = res.stdout
    assert "rc1=2" in out and "read-only mount /mnt/ro" in out, out
    if "no-chattr" not in out:
        assert "rc2=2" in out and "immutable" in out, out


def test_rollback_puts_every_file_back_as_found() -> None:
    res = ns(f"""
mkdir -m 755 /mnt/d; printf 'orig\\n' > /mnt/d/kept; chgrp 4242 /mnt/d/kept; chmod 640 /mnt/d/kept
C begin r1
C put /mnt/d/kept 600 0 {sha("orig" + chr(10))} {b64("changed")}
C put /mnt/d/new 644 0 absent {b64("new")}
C begin r2   # an interrupted run resumes: its backups stay the state the host was found in
C put /mnt/d/kept 644 0 {sha("changed")} {b64("changed twice")}
C rollback
ls -ln /mnt/d; cat /mnt/d/kept
C commit rolled-back; C status
""")
    out = res.stdout
    assert "resumed" in out
    assert "-rw-r----- 1 0 4242" in out and "new" not in out.split("restored")[-1].split("\n", 1)[1]
    assert "orig" in out and "none" in out.splitlines()[-1], out


def test_an_attacker_swapping_links_during_writes_gains_nothing() -> None:
    """While root writes a hundred times, the attacker keeps renaming a link to the victim
    over the file in a directory they own: every write is refused, the victim is untouched."""
    res = ns(f"""
printf 'secret\\n' > /mnt/victim; chmod 600 /mnt/victim
mkdir -m 755 /mnt/theirs; chown 4242:4242 /mnt/theirs
setpriv --reuid=4242 --regid=4242 --clear-groups -- sh -c 'while :; do
  ln -sf /mnt/victim /mnt/theirs/.l; mv -f /mnt/theirs/.l /mnt/theirs/env
  echo x > /mnt/theirs/.f; mv -f /mnt/theirs/.f /mnt/theirs/env; done' >/dev/null 2>&1 &
loop=$!
C begin r
i=0; wrote=0
while [ $i -lt 100 ]; do
  C put /mnt/theirs/env 644 0 absent {b64("pwned")} >/dev/null && wrote=$((wrote+1))
  i=$((i+1))
done
kill $loop; echo wrote=$wrote; ls -ln /mnt/victim; cat /mnt/victim
""", timeout=120)
    assert "wrote=0" in res.stdout, res.stdout
    assert "-rw------- 1 0 0 7" in res.stdout and res.stdout.rstrip().endswith("secret")


def test_reload_uvm_starts_ollama_again_when_modprobe_fails() -> None:
    """Every path that stops Ollama starts it again, in one command that keeps the status."""
    res = ns("""
mkdir -m 755 /mnt/bin
cat > /mnt/bin/systemctl <<'EOF'
#!/bin/sh
echo "systemctl $*" >> /mnt/calls
EOF
printf '#!/bin/sh\\necho "modprobe $*" >> /mnt/calls; exit 1\\n' > /mnt/bin/modprobe
chmod 755 /mnt/bin/*
mount --bind /mnt/bin/systemctl /usr/bin/systemctl 2>/dev/null || mount --bind /mnt/bin/systemctl /bin/systemctl
for m in /usr/sbin/modprobe /sbin/modprobe; do [ -e $m ] && mount --bind /mnt/bin/modprobe $m; done
C reload-uvm; echo rc=$?
cat /mnt/calls
""")
    out = res.stdout
    assert "rc=1" in out and "ollama.service started again" in out, out + res.stderr
    calls = [line for line in out.splitlines() if line.startswith(("systemctl", "modprobe"))]
    assert calls[0] == "systemctl stop ollama.service" and calls[-1] == "systemctl start ollama.service"


def test_checks_take_milliseconds() -> None:
    start = time.monotonic()
    ns("C check " + " ".join(f"/mnt/a/b/c/{i}" for i in range(50)))
    assert time.monotonic() - start < 10
