"""watchdog.json: the watchdog's last check, as its timer wrote it on the host (root's file).

Read bounded and typed: only the fields the fleet shows, each of its type; anything else in
the file is dropped, and a file that is not such a JSON object reads as nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

MAX_BYTES = 65536
_TEXT = {"status": 16, "summary": 300, "code": 64}
_TIMES = ("checked_at", "fell_back_at", "verified_at", "tokens_per_s", "cpu_seconds")


def parse(sections: Mapping[str, str]) -> dict[str, Any] | None:
    text = sections.get("watchdog.json")
    if not text:
        return None
    try:
        data = json.loads(text[:MAX_BYTES])
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    out: dict[str, Any] = {}
    for key, limit in _TEXT.items():
        if isinstance(data.get(key), str):
            out[key] = data[key][:limit]
    for key in _TIMES:
        value = data.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value):
            out[key] = float(value)
    if isinstance(data.get("fallback"), bool):
        out["fallback"] = data["fallback"]
    models = data.get("models")
    if isinstance(models, dict):
        out["models"] = {str(k)[:128]: float(v) for k, v in list(models.items())[:32]
                         if isinstance(v, (int, float)) and not isinstance(v, bool)
                         and math.isfinite(v)}
    return out or None
