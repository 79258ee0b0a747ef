"""The Docker backend: the spawner, per-container limits, the egress firewall and the user network."""

from binderspawner.dockerhost.spawner import DockerBinderSpawner

__all__ = ["DockerBinderSpawner"]
