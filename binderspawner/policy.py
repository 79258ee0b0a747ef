"""Resource limits as plain data, rendered for each backend (pure)."""

from dataclasses import dataclass
from typing import Optional

GiB = 1024**3


@dataclass(frozen=True)
class Resources:
    """Limits for one user server. Defaults are mybinder.org's published limits (1 CPU, 1 GiB)."""

    cpu_limit: Optional[float] = 1.0
    mem_limit: Optional[int] = 1 * GiB
    pids_limit: Optional[int] = 1024
    # Swap allowed on top of mem_limit. 0 means none: Docker would otherwise allow as much swap
    # as memory again, so a server could use twice its limit.
    swap: int = 0


def docker_host_config(resources):
    """The HostConfig fields DockerSpawner does not set itself (it sets cpu_quota and mem_limit)."""
    config = {}
    if resources.mem_limit:
        config["memswap_limit"] = resources.mem_limit + resources.swap
    if resources.pids_limit:
        config["pids_limit"] = resources.pids_limit
    return config
