"""The Docker backend: the spawner, per-container limits, the egress firewall and the user network."""

__all__ = ["DockerBinderSpawner"]


def __getattr__(name):
    # Imported on first use: the builders import fence.py from here without pulling in the spawner
    # (which imports the builders).
    if name == "DockerBinderSpawner":
        from binderspawner.dockerhost.spawner import DockerBinderSpawner

        return DockerBinderSpawner
    raise AttributeError(f"module 'binderspawner.dockerhost' has no attribute {name!r}")
