"""Example fleet. Copy to inventories/fleet.py and edit; every host here is a placeholder.

A host may sit in several groups. `canary` holds the hosts that go first: diagnose (and, once
fixes exist, fix) them, check the result, then run on the rest:

    pyinfra inventories/fleet.py deploys/diagnose.py --limit canary
    pyinfra inventories/fleet.py deploys/diagnose.py --exclude canary
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
