"""Example fleet. Copy to inventories/fleet.py and edit; every host here is a placeholder.

A host may sit in several groups. `canary` holds the hosts that go first:

    pyinfra -y inventories/fleet.py deploys/diagnose.py       # every host, read-only
    ollama-gpu-fix rollout inventories/fleet.py --canary canary --wave-size 25% --dry
    ollama-gpu-fix rollout inventories/fleet.py --canary canary --wave-size 25%

The rollout fixes the canary, then waves of a quarter of the fleet, each verified before the
next starts; it stops at the first failed host (--max-failed 0) and resumes when run again.
"""

_ssh = {"ssh_user": "ops", "_sudo": True}

canary = (["gpu-01.example.lan"], {})

gpu_nvidia = (
    [
        "gpu-01.example.lan",
        ("gpu-02.example.lan", {"ssh_port": 2222}),
        "gpu-03.example.lan",
    ],
    dict(_ssh),
)

gpu_amd = (["rx-01.example.lan"], dict(_ssh))
