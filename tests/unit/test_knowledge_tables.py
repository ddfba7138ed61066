"""Every knowledge table at once: ranges contiguous, overrides landing on bundled targets,
every signature id a rule asks for present, and probe.sh's filters held to the one table of
what is collected (ollama_gpu_fix/knowledge/collection.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from packaging.version import Version

from ollama_gpu_fix.knowledge import amd, collection, nvidia
from ollama_gpu_fix.knowledge import log_signatures as sig

ROOT = Path(__file__).resolve().parents[2]
PROBE = (ROOT / "ollama_gpu_fix" / "probe.sh").read_text()


def _contiguous(rows: list[tuple[str | None, str | None]]) -> None:
    assert rows[0][0] is None, "the first range starts at the beginning"
    assert rows[-1][1] is None, "the last range is open"
    for (_, before), (first, _) in zip(rows, rows[1:], strict=False):
        assert before == first, f"gap or overlap between {before} and {first}"
        assert Version(first) > Version("0.0.0")


@pytest.mark.parametrize("table", [nvidia.DRIVER_FLOORS, amd.GFX_BUNDLES],
                         ids=["driver floors", "gfx bundles"])
def test_version_ranges_are_contiguous_and_sourced(table) -> None:
    _contiguous([(row.first, row.before) for row in table])
    for row in table:
        assert row.source and ("ollama/ollama@" in row.source or "https://" in row.source)


def test_every_override_lands_on_a_bundled_target_of_some_release() -> None:
    bundled = set().union(*(b.targets for b in amd.GFX_BUNDLES))
    for gfx, override in amd.OVERRIDES.items():
        assert override.target in bundled, gfx
        assert amd.gfx_from_override(override.value) == override.target, gfx
        assert override.confidence in ("high", "medium", "inferred"), gfx
        assert override.source, gfx
        assert override.value in amd.OVERRIDE_VALUES


def _asked_ids() -> set[str]:
    """String literals the rules pass to ctx.events / ctx.lines."""
    ids: set[str] = set()
    for path in (ROOT / "ollama_gpu_fix" / "rules").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("events", "lines")):
                ids |= {a.value for a in node.args if isinstance(a, ast.Constant)
                        and isinstance(a.value, str)}
    return ids


def test_every_signature_id_a_rule_asks_for_exists() -> None:
    asked = _asked_ids() | set(sig.NVIDIA_EVENTS) | set(sig.AMD_EVENTS) | set(sig.GFX_NAMED)
    assert len(asked) > 30
    assert asked <= set(sig.BY_ID), sorted(asked - set(sig.BY_ID))


def test_rules_do_not_import_the_presentation_layer() -> None:
    for path in (ROOT / "ollama_gpu_fix" / "rules").glob("*.py"):
        assert "report" not in re.findall(r"^from ollama_gpu_fix(?:\.| import )(\w+)",
                                           path.read_text(), re.M), path.name


def _case_patterns(function: str) -> list[str]:
    """The patterns of the first `case` arm that prints in a probe.sh function."""
    body = PROBE[PROBE.index(f"{function}() {{"):]
    body = body[: body.index("\n}\n")]
    arm = re.search(r"case \$\w+ in\n\s*(.*?)\)\n", body, re.S)
    assert arm, function
    return [p.strip() for p in arm.group(1).replace("\\\n", " ").split("|")]


def test_probe_keeps_exactly_the_packages_of_the_table() -> None:
    patterns = _case_patterns("ogf_pkg_filter")
    assert all(p.endswith("*") for p in patterns)
    assert sorted(p[:-1] for p in patterns) == sorted(collection.GPU_PACKAGE_PREFIXES)


def test_probe_keeps_exactly_the_dmesg_words_of_the_table() -> None:
    patterns = _case_patterns("ogf_dmesg_filter")
    words = [p.strip("*").replace("\\[", "[").replace("\\]", "]") for p in patterns]
    assert sorted(words) == sorted(collection.DMESG_WORDS)


def test_probe_keeps_exactly_the_environment_of_the_table() -> None:
    block = PROBE[PROBE.index("CUDA_*=* |"):]
    block = block[: block.index(")\n")]
    names = [p.strip().removesuffix("=*").removesuffix("*") for p in
             block.replace("\\\n", " ").split("|")]
    assert sorted(names) == sorted(collection.GPU_ENV_PREFIXES)


def test_every_collected_variable_name_the_tool_knows_is_kept_by_the_probe() -> None:
    from ollama_gpu_fix.knowledge.environment import GPU_ENV_NAMES

    for name in GPU_ENV_NAMES:
        assert name.startswith(collection.GPU_ENV_PREFIXES), name


def test_signature_families_are_known_ids() -> None:
    for family in (sig.GFX_UNSUPPORTED, sig.GFX_NAMED, sig.NVIDIA_EVENTS, sig.AMD_EVENTS):
        assert set(family) <= set(sig.BY_ID)
        assert len(set(family)) == len(family)


def test_shell_profile_filter_keeps_only_table_variables() -> None:
    """The profiles are searched for the settings a user writes there; each is in the table."""
    block = PROBE[PROBE.index("OGF_PROFILE_SH="):]
    block = block[block.index('"#"*) continue ;;') :]
    block = block[block.index("\n") + 1 : block.index(")\n")]
    names = [p.strip().strip("*").removesuffix("=*").rstrip("*").removesuffix("=")
             for p in block.replace("\\\n", " ").split("|")]
    assert len(names) >= 5
    for name in names:
        assert name.startswith(collection.GPU_ENV_PREFIXES), name


def test_every_code_of_the_failure_modes_doc_is_spoken_and_back() -> None:
    from ollama_gpu_fix.findings import CODES

    table = (ROOT / "docs" / "failure-modes.md").read_text()
    documented = set(re.findall(r"^\| ([a-z0-9-]+) \|", table, re.M)) - {"code"}
    assert documented == set(CODES)
