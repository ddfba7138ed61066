"""The lab network: one bridge and, per host, a network namespace joined to it by a veth pair.

Only names with the lab prefix are created or deleted, and only private 10.213.0.0/24 addresses
on the bridge and inside those namespaces are used. Nothing gets a default route, so a host can
reach its own loopback, the bridge (where the apt repository listens) and its lab peers only.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from tests.lab import config


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and res.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {res.stderr.strip() or res.returncode}")
    return res


@dataclass(frozen=True)
class HostNet:
    """Names and address of one host's namespace and veth pair."""

    index: int

    @property
    def netns(self) -> str:
        return f"{config.PREFIX}-h{self.index}"

    @property
    def veth(self) -> str:
        return f"{config.PREFIX}-v{self.index}"

    @property
    def address(self) -> str:
        return f"{config.SUBNET_PREFIX}.{config.FIRST_HOST_OCTET + self.index}"

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"


def create_bridge() -> None:
    ip("link", "add", config.BRIDGE, "type", "bridge")
    ip("addr", "add", f"{config.BRIDGE_ADDR}/{config.NETMASK_BITS}", "dev", config.BRIDGE)
    ip("link", "set", config.BRIDGE, "up")


def create_host(net: HostNet) -> None:
    """Namespace with lo up and eth0 (the peer of a veth enslaved to the bridge)."""
    peer = f"{config.PREFIX}-p{net.index}"
    ip("netns", "add", net.netns)
    ip("link", "add", net.veth, "type", "veth", "peer", "name", peer)
    ip("link", "set", peer, "netns", net.netns)
    ip("link", "set", net.veth, "master", config.BRIDGE)
    ip("link", "set", net.veth, "up")
    ns = ["-n", net.netns]
    ip(*ns, "link", "set", "lo", "up")
    ip(*ns, "link", "set", peer, "name", "eth0")
    ip(*ns, "addr", "add", f"{net.address}/{config.NETMASK_BITS}", "dev", "eth0")
    ip(*ns, "link", "set", "eth0", "up")


def delete_host(net: HostNet) -> None:
    """Deleting the namespace destroys eth0 and with it the veth pair; delete the root end too."""
    ip("netns", "del", net.netns, check=False)
    ip("link", "del", net.veth, check=False)


def delete_bridge() -> None:
    ip("link", "del", config.BRIDGE, check=False)


def leftovers() -> list[str]:
    """Lab-prefixed namespaces and links still present (empty after a clean teardown)."""
    found = []
    out = ip("netns", "list", check=False).stdout
    found += [line.split()[0] for line in out.splitlines() if line.startswith(config.PREFIX + "-")]
    out = ip("-o", "link", "show", check=False).stdout
    for line in out.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(config.PREFIX + "-"):
            found.append(name)
    return found
