"""The log signature table stays usable: ids unique, prefilter covers every signature."""

from __future__ import annotations

import pytest

from ollama_gpu_fix.knowledge.log_signatures import KEYWORDS, SIGNATURES
from ollama_gpu_fix.parsers.kernel import strip_prefix
from ollama_gpu_fix.parsers.log_lines import classify
from ollama_gpu_fix.parsers.ollama_log import parse_server_env


def test_ids_are_unique_and_sourced() -> None:
    ids = [s.id for s in SIGNATURES]
    assert len(ids) == len(set(ids))
    assert all(s.source for s in SIGNATURES)


@pytest.mark.parametrize("signature", SIGNATURES, ids=[s.id for s in SIGNATURES])
def test_every_signature_passes_the_keyword_prefilter(signature) -> None:
    """A signature whose words are not in KEYWORDS would silently never match."""
    assert KEYWORDS.search(signature.pattern.pattern.lower()), signature.id


def test_journald_prefix_and_key_values() -> None:
    text = strip_prefix(
        'Apr 19 16:54:17 quorra ollama[1180]: time=2024-04-19T16:54:17Z level=WARN msg="NVIDIA driver too old" driver=535 required_driver="550 or newer"'
    )
    assert text.startswith("time=")
    record = classify(text)
    assert record is not None and record.msg == "NVIDIA driver too old"
    assert record.fields["required_driver"] == "550 or newer"
    assert record.fields["driver"] == "535"


def test_server_config_map() -> None:
    env = parse_server_env(
        "CUDA_VISIBLE_DEVICES: HSA_OVERRIDE_GFX_VERSION:10.3.0 OLLAMA_HOST:http://127.0.0.1:11434 OLLAMA_ORIGINS:[http://localhost *] OLLAMA_VULKAN:false"
    )
    assert env["HSA_OVERRIDE_GFX_VERSION"] == "10.3.0"
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert env["OLLAMA_VULKAN"] == "false"
    assert env["OLLAMA_ORIGINS"].startswith("[")
