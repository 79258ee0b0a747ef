"""binderspawner: a JupyterHub spawner that turns any JupyterHub into a private BinderHub."""

from binderspawner.errors import BuildFailed, LaunchError
from binderspawner.dockerhost import DockerBinderSpawner
from binderspawner.spawner import BinderSpawner, BinderSpawnerMixin

__all__ = ["BinderSpawner", "BinderSpawnerMixin", "BuildFailed", "DockerBinderSpawner", "KubeBinderSpawner",
           "LaunchError"]


def __getattr__(name):
    # Imported on first use, so a Docker-only hub never loads the Kubernetes client.
    if name == "KubeBinderSpawner":
        from binderspawner.kubernetes import KubeBinderSpawner

        return KubeBinderSpawner
    raise AttributeError(f"module 'binderspawner' has no attribute {name!r}")


__version__ = "0.1.0"
