"""probe-meta.txt: the probe's own bookkeeping (docs/probe-sections.md).

Only a live probe can say that a tool or file is *absent* (a bundle's missing file means
"not known"), so these `key=value` lines are read exactly; unknown keys stay in `raw`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ollama_gpu_fix.parsers.kernel import section_lines
from ollama_gpu_fix.snapshot import ProbeMeta

_YES = {"yes", "true", "1"}
_NO = {"no", "false", "0"}


def parse(sections: Mapping[str, str]) -> ProbeMeta | None:
    if "probe-meta.txt" not in sections:
        return None
    meta = ProbeMeta()
    for line, text in section_lines(sections, "probe-meta.txt"):
        meta.raw.append(line)
        key, sep, value = text.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "probe":
            meta.version = value or None
        elif key == "uid":
            meta.uid = int(value) if value.isdigit() else None
        elif key == "arch":
            meta.arch = value or None
        elif key == "container":
            meta.container = value or None
        elif key == "systemd":
            low = value.lower()
            meta.systemd = True if low in _YES else False if low in _NO else None
        elif key.startswith("tool.") and len(key) > 5:
            meta.tools[key[5:]] = value or None
        elif key == "absent" and value:
            meta.absent_files.append(value)
        elif key == "rolled-back" and re.fullmatch(r"[0-9a-f]{12}", value):
            meta.rolled_back.append(value)
        elif key == "txn":
            meta.transaction = value if value in ("open", "none") else None
        elif key == "watchdog.file":
            digest, _, path = value.partition(" ")
            if re.fullmatch(r"[0-9a-f]{64}", digest) and path.startswith("/"):
                meta.watchdog_files[path] = digest
        elif key == "watchdog.timer" and re.fullmatch(r"[a-z-]{0,20}/[a-z-]{0,20}", value):
            meta.watchdog_timer = value
        elif key == "python3.version" and re.fullmatch(r"\d{1,2}\.\d{1,3}", value):
            meta.python3 = value
        elif key == "api-owner" and (value == "server" or re.fullmatch(r"foreign:\d{1,10}", value)):
            meta.api_owner = value
    return meta
