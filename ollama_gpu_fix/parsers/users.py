"""groups.txt: `id ollama`, `id` of the unit's User= and of the login user.

ROCm and Vulkan need the service user in `render` (and often `video`) to open /dev/kfd and
/dev/dri/renderD*; the group list is read from `id`'s own output in any locale (the
`groups=` word is translated: Gruppen=, groupes=, ...). `id: 'ollama': no such user` gives a
UserIds with uid None and no groups: the user does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ollama_gpu_fix.parsers.kernel import section_lines
from ollama_gpu_fix.snapshot import UserIds

_ID = re.compile(
    r"uid=(?P<uid>\d+)(?:\((?P<user>[^)]{0,64})\))?\s+gid=(?P<gid>\d+)(?:\([^)]{0,64}\))?(?P<rest>.*)$"
)
_GROUP = re.compile(r"(\d+)(?:\(([^)]{0,64})\))?")
_NO_USER = re.compile(r"^id:\s*['‘’\"„“«]?(?P<user>[^'‘’\"“”»:]+)['‘’\"“”»]?:\s*(?P<msg>.+)$")
_GROUPS_CMD = re.compile(r"^(?P<user>[\w.@-]+)\s+:\s+(?P<groups>[\w.@ -]+)$")  # `groups ollama`


def parse(sections: Mapping[str, str]) -> list[UserIds] | None:
    if "groups.txt" not in sections:
        return None
    users: list[UserIds] = []
    for line, text in section_lines(sections, "groups.txt"):
        match = _ID.search(text)
        if match:
            rest = match.group("rest")
            rest = re.split(r"\s+context=", rest)[0]
            groups_part = rest.partition("=")[2] if "=" in rest else ""
            groups = [name or gid for gid, name in _GROUP.findall(groups_part)]
            users.append(
                UserIds(
                    user=match.group("user") or match.group("uid"),
                    uid=int(match.group("uid")),
                    gid=int(match.group("gid")),
                    groups=groups,
                    raw=line,
                )
            )
            continue
        match = _NO_USER.match(text)
        if match:
            users.append(UserIds(user=match.group("user").strip(), raw=line))
            continue
        match = _GROUPS_CMD.match(text)
        if match:
            users.append(
                UserIds(user=match.group("user"), groups=match.group("groups").split(), raw=line)
            )
    return users
