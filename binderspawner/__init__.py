"""binderspawner: a JupyterHub spawner that turns any JupyterHub into a private BinderHub."""

from .errors import BuildFailed, LaunchError
from .spawner import BinderSpawnerMixin, DockerBinderSpawner

__all__ = ["BinderSpawnerMixin", "BuildFailed", "DockerBinderSpawner", "LaunchError"]
__version__ = "0.1.0"
