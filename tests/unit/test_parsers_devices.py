"""mokutil, device nodes, loader cache, Jetson release and `id` parsers."""

from __future__ import annotations

from pathlib import Path

from ollama_gpu_fix.parsers import devices, users

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sections"


def sample(name: str, case: str) -> dict[str, str]:
    return {name: (FIXTURES / name / case).read_text(encoding="utf-8")}


def test_absent_files_give_none() -> None:
    for parser in (
        devices.parse_secure_boot,
        devices.parse_dev_nodes,
        devices.parse_ldconfig,
        devices.parse_tegra,
        users.parse,
    ):
        assert parser({}) is None


def test_secure_boot_states() -> None:
    enabled = devices.parse_secure_boot(sample("mokutil.txt", "enabled.txt"))
    assert enabled is not None and enabled.enabled is True
    disabled = devices.parse_secure_boot(sample("mokutil.txt", "disabled.txt"))
    assert disabled is not None and disabled.enabled is False
    no_efi = devices.parse_secure_boot(sample("mokutil.txt", "no-efi.txt"))
    assert no_efi is not None and no_efi.enabled is None and len(no_efi.raw) == 1
    shim = devices.parse_secure_boot(
        {"mokutil.txt": "SecureBoot enabled\nSecureBoot validation is disabled in shim\n"}
    )
    assert shim is not None and shim.enabled is False


def test_dev_nodes_files_and_directory_listing() -> None:
    nodes = devices.parse_dev_nodes(sample("dev-nodes.txt", "amd.txt"))
    assert nodes is not None
    by_path = {n.path: n for n in nodes}
    assert set(by_path) == {"/dev/kfd", "/dev/dri/card0", "/dev/dri/renderD128"}
    assert by_path["/dev/kfd"].group == "render" and by_path["/dev/kfd"].mode == "crw-rw----"
    assert by_path["/dev/dri/renderD128"].group == "render"
    assert by_path["/dev/dri/card0"].group == "video" and by_path["/dev/dri/card0"].owner == "root"


def test_dev_nodes_nvidia_wsl_and_ls_errors() -> None:
    nodes = devices.parse_dev_nodes(sample("dev-nodes.txt", "nvidia-wsl.txt"))
    assert nodes is not None
    assert [n.path for n in nodes] == [
        "/dev/dxg",
        "/dev/nvidia0",
        "/dev/nvidiactl",
        "/dev/nvidia-uvm",
    ]


def test_dev_nodes_bare_dri_listing_and_long_iso_dates() -> None:
    text = (
        "total 0\n"
        "crw-rw----+ 1 root render 226, 128 2025-11-21 10:00 renderD128\n"
        "crw-rw---- 1 root 44 226, 1 21. Nov 10:00 card1\n"
    )
    nodes = devices.parse_dev_nodes({"dev-nodes.txt": text})
    assert nodes is not None
    assert [(n.path, n.group) for n in nodes] == [
        ("/dev/dri/renderD128", "render"),
        ("/dev/dri/card1", "44"),
    ]


def test_ldconfig_wsl_shadowing_library() -> None:
    libs = devices.parse_ldconfig(sample("ldconfig.txt", "wsl-shadowed.txt"))
    assert libs is not None
    paths = [lib.path for lib in libs]
    assert "/usr/lib/wsl/lib/libcuda.so.1" in paths
    assert "/usr/lib/x86_64-linux-gnu/libcuda.so.535.183.01" in paths  # from a `file` line
    assert len(paths) == len(set(paths))  # file lines for known paths are not duplicated
    by_path = {lib.path: lib for lib in libs}
    guest = by_path["/usr/lib/x86_64-linux-gnu/libcuda.so.1"]
    assert guest.soname == "libcuda.so.1" and guest.arch == "x86-64"
    assert by_path["/usr/lib/i386-linux-gnu/libcuda.so.1"].arch is None
    assert by_path["/usr/lib/x86_64-linux-gnu/libcuda.so.535.183.01"].soname == (
        "libcuda.so.535.183.01"
    )


def test_ldconfig_file_output_lines() -> None:
    text = (
        "/usr/lib/wsl/lib/libcuda.so.1: ELF 64-bit LSB shared object, x86-64, version 1 (SYSV)\n"
        "/usr/lib/aarch64-linux-gnu/libcuda.so: symbolic link to libcuda.so.1\n"
    )
    libs = devices.parse_ldconfig({"ldconfig.txt": text})
    assert libs is not None
    assert [(lib.path, lib.arch) for lib in libs] == [
        ("/usr/lib/wsl/lib/libcuda.so.1", "x86-64"),
        ("/usr/lib/aarch64-linux-gnu/libcuda.so", None),
    ]


def test_tegra_release() -> None:
    tegra = devices.parse_tegra(sample("nv-tegra-release.txt", "r36.txt"))
    assert tegra is not None and tegra.release == "R36" and tegra.revision == "4.0"
    r35 = devices.parse_tegra({"nv-tegra-release.txt": "# R35 (release), REVISION: 4.1, GCID: 1"})
    assert r35 is not None and (r35.release, r35.revision) == ("R35", "4.1")


def test_users_groups() -> None:
    found = users.parse(sample("groups.txt", "ollama-missing-render.txt"))
    assert found is not None
    ollama, alice = found
    assert (ollama.user, ollama.uid, ollama.gid) == ("ollama", 998, 998)
    assert "video" in ollama.groups and "render" not in ollama.groups
    assert alice.user == "alice" and "render" in alice.groups


def test_users_no_such_user_other_locale_and_selinux_context() -> None:
    found = users.parse(sample("groups.txt", "no-such-user-de.txt"))
    assert found is not None
    missing, bob = found
    assert missing.user == "ollama" and missing.uid is None and missing.groups == []
    assert bob.groups == ["bob", "sudo", "domain users"]


def test_users_groups_command_and_numeric_groups() -> None:
    found = users.parse(
        {"groups.txt": "ollama : ollama video render\nuid=999 gid=999 groups=999,44\n"}
    )
    assert found is not None
    assert found[0].user == "ollama" and found[0].groups == ["ollama", "video", "render"]
    assert found[1].user == "999" and found[1].groups == ["999", "44"]
