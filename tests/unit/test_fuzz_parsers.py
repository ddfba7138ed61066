"""Every parser in PARSERS, fed garbage: it must not raise and must return its declared type.

The parsers are called directly (build_snapshot would swallow the exceptions this is meant
to find), with every bundle file name mapped to: random text, random bytes decoded as the
bundle reader decodes them, token soup built from the formats' own syntax, and truncated or
mutated copies of the real samples under tests/fixtures/sections and tests/cases. The result
is checked deeply against the return annotation, record fields included.
"""

from __future__ import annotations

import functools
import time
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ollama_gpu_fix import records
from ollama_gpu_fix.bundle import SECTIONS, decode
from ollama_gpu_fix.parsers import PARSERS

TESTS = Path(__file__).parents[1]
SAMPLES: list[str] = sorted(
    p.read_text(encoding="utf-8", errors="replace")
    for pattern in ("fixtures/sections/*/*", "cases/*/*")
    for p in TESTS.glob(pattern)
    if p.is_file()
)
NAMES = list(SECTIONS) + ["ollama-gpu-discover.txt", "notes.log"]
FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# pieces of the formats' own syntax, so random input reaches the parsers' deeper branches
TOKENS = [
    "=", ":", ": ", "|", '"', "'", "\\", " ", "\t", "\n", "#", "[", "]", "(", ")", ",", "-",
    "0", "1", "998", "100301", "90010", "0x1002", "10de", "a1", "580.95.05", "12.4", "N/A",
    "MiB", "GB", "%", "CPU", "GPU", "gfx1031", "/dev/kfd", "/dev/dri", "renderD128",
    "crw-rw----", "root", "render", "uid=", "gid=", "groups=", "Environment=", "[Service]",
    "# /etc/systemd/system/ollama.service", ".service.d/override.conf", "ExecStart=",
    "Driver Version:", "CUDA Version:", "NVIDIA-SMI", "Processes:", "== node ", "simd_count",
    "gfx_target_version", "GPU0:", "deviceType", "Agent 2", "Device Type:", "Name:",
    "docker run", "--gpus", "-e", "--device", "services:", "  ", "- ", "environment:",
    "deploy:", "devices:", "pid=", "env ", "cgroup=", "ollama.service", "tool.", "absent=",
    "dir ", "ldconf ", "file ", "ii  ", "=> ", "(libc6,x86-64)", "libcuda.so.1", "Linux version ",
    "microsoft-standard-WSL2", "-Microsoft", "R36 (release), REVISION:", "SecureBoot enabled",
    "ollama version is ", "client version is ", '{"models":[', '{"name":"m","size":', "}", "]",
    "TensileLibrary_lazy_gfx1030.dat", "/usr/local/lib/ollama/", "cuda_v12", "0000:01:00.0",
    "01:00.0 VGA compatible controller [0300]: ", "[10de:2684]", "release 12.4, V12.4.131",
    "NVRM version: NVIDIA UNIX Open Kernel Module", "Apr 19 16:54:17 host ollama[1180]: ",
]  # fmt: skip


def conforms(value: Any, tp: Any) -> bool:
    """Whether value matches a (resolved) type annotation, recursing into records."""
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(conforms(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if origin is list:
        return isinstance(value, list) and all(conforms(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            conforms(k, args[0]) and conforms(v, args[1]) for k, v in value.items()
        )
    if origin is tuple:
        return (
            isinstance(value, tuple)
            and len(value) == len(args)
            and all(conforms(v, a) for v, a in zip(value, args, strict=True))
        )
    if origin is not None:
        return isinstance(value, origin)
    if not isinstance(value, tp):
        return False
    if isinstance(tp, type) and tp is not bool and issubclass(tp, int) and isinstance(value, bool):
        return False
    if hasattr(tp, records.FIELDS):
        return all(conforms(getattr(value, name), hint) for name, hint in _fields(tp))
    return True


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, Any], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((name, hints[name]) for name in records.fields(cls))


def check(parser: Callable[[Mapping[str, str]], Any], sections: Mapping[str, str]) -> None:
    result = parser(sections)
    declared = typing.get_type_hints(parser)["return"]
    assert conforms(result, declared), f"{parser.__module__}.{parser.__name__} -> {result!r}"


PARSER_IDS = list(PARSERS)
PARSER_FUNCS = [PARSERS[k] for k in PARSER_IDS]


def everywhere(text: str) -> dict[str, str]:
    return {name: text for name in NAMES}


@st.composite
def mutated_sample(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SAMPLES))
    for _ in range(draw(st.integers(0, 3))):
        if not text:
            break
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 200)))
        kind = draw(st.sampled_from(["truncate", "cut", "insert", "dup", "lines", "case"]))
        if kind == "truncate":
            text = text[:i]
        elif kind == "cut":
            text = text[:i] + text[j:]
        elif kind == "insert":
            text = text[:i] + draw(st.text(max_size=40)) + text[i:]
        elif kind == "dup":
            text = text[:j] + text[i:j] + text[i:]
        elif kind == "lines":
            lines = text.split("\n")
            text = "\n".join(draw(st.permutations(lines))) if len(lines) < 60 else text
        else:
            text = text.swapcase()
    return text


token_soup = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)


@pytest.mark.parametrize("parser", PARSER_FUNCS, ids=PARSER_IDS)
@FUZZ
@given(text=st.text(max_size=400))
def test_random_text_everywhere(parser: Callable[..., Any], text: str) -> None:
    check(parser, everywhere(text))


@pytest.mark.parametrize("parser", PARSER_FUNCS, ids=PARSER_IDS)
@FUZZ
@given(data=st.binary(max_size=600))
def test_random_bytes_decoded(parser: Callable[..., Any], data: bytes) -> None:
    check(parser, everywhere(decode(data)))


@pytest.mark.parametrize("parser", PARSER_FUNCS, ids=PARSER_IDS)
@FUZZ
@given(sections=st.dictionaries(st.sampled_from(NAMES), token_soup, max_size=8))
def test_token_soup(parser: Callable[..., Any], sections: dict[str, str]) -> None:
    check(parser, sections)


@pytest.mark.parametrize("parser", PARSER_FUNCS, ids=PARSER_IDS)
@FUZZ
@given(text=mutated_sample())
def test_mutated_real_samples(parser: Callable[..., Any], text: str) -> None:
    check(parser, everywhere(text))


@pytest.mark.parametrize("parser", PARSER_FUNCS, ids=PARSER_IDS)
def test_every_sample_under_every_name(parser: Callable[..., Any]) -> None:
    for text in SAMPLES:
        check(parser, everywhere(text))
    check(parser, {})
    check(parser, everywhere(""))


PATHOLOGICAL = [
    "a" * 200_000,
    "| " * 100_000,
    "=" * 100_000 + "\n" + '"' * 100_000,
    ("1-" * 50_000) + ".x86_64",
    "Apr 19 16:54:17 " + "h:" * 50_000,
    "|   0  " + "N " * 50_000 + "|",
    "\\" * 100_001,
    "\n".join(["crw-rw---- 1 root render 235, 0 Nov 21 10:00 /dev/kfd"] * 5_000),
]


@pytest.mark.parametrize("parser", PARSER_FUNCS, ids=PARSER_IDS)
def test_huge_and_pathological_inputs_are_fast(parser: Callable[..., Any]) -> None:
    start = time.monotonic()
    for text in PATHOLOGICAL:
        check(parser, everywhere(text))
    assert time.monotonic() - start < 5.0
