"""The Kubernetes backend: KubeBinderSpawner (user pods), KubernetesBuilder (build pods) and the
pure manifests they create (objects)."""

from binderspawner.kubernetes.builder import KubernetesBuilder
from binderspawner.kubernetes.spawner import KubeBinderSpawner

__all__ = ["KubeBinderSpawner", "KubernetesBuilder"]
