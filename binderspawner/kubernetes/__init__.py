"""The Kubernetes backend: KubeBinderSpawner (user pods), KubernetesBuilder (build pods) and the
pure manifests they create (objects)."""

from .builder import KubernetesBuilder
from .spawner import KubeBinderSpawner

__all__ = ["KubeBinderSpawner", "KubernetesBuilder"]
