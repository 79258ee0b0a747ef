"""Opt-in, against a REAL Kubernetes cluster: build an example in a build pod, push it to the
registry, and start a user pod from it with KubeBinderSpawner. Never run on this machine (no cluster
can run here); skipped unless KUBECONFIG is set. Run it alone, so nothing else configured the client:

    KUBECONFIG=~/.kube/config BINDERSPAWNER_KUBE_REPO=https://git.example.org/lab/requirements.git \\
    BINDERSPAWNER_KUBE_IMAGE_PREFIX=registry.example.org/binder/ \\
    BINDERSPAWNER_KUBE_BUILD_IMAGE=registry.example.org/binderspawner-builder:0.1.0 \\
    [BINDERSPAWNER_KUBE_NAMESPACE=binder BINDERSPAWNER_KUBE_PUSH_SECRET=registry-push] \\
    python -m pytest -m kubernetes tests/cluster/test_kubernetes.py

The repository (a copy of examples/requirements) must be reachable from the cluster's build nodes,
and the registry from the hub (this machine) and the nodes.
"""

import os

import pytest
from traitlets.config import Config

pytestmark = [
    pytest.mark.kubernetes,
    pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="needs a cluster: set KUBECONFIG"),
]


def setting(name):
    value = os.environ.get(f"BINDERSPAWNER_KUBE_{name}")
    if not value:
        pytest.skip(f"set BINDERSPAWNER_KUBE_{name}")
    return value


async def test_launch_an_example_end_to_end():
    from binderspawner.kubernetes import KubeBinderSpawner

    config = Config()
    config.KubeSpawner.namespace = os.environ.get("BINDERSPAWNER_KUBE_NAMESPACE", "default")
    config.BinderSpawner.image_prefix = setting("IMAGE_PREFIX")
    config.KubernetesBuilder.build_image = setting("BUILD_IMAGE")
    config.KubernetesBuilder.push_secret = os.environ.get("BINDERSPAWNER_KUBE_PUSH_SECRET", "")
    config.GitProvider.allowed_hosts = []
    spawner = KubeBinderSpawner(_mock=True, config=config)
    spawner.user.name = "binderspawner-e2e"
    spawner.user_options = {"repo": setting("REPO"), "urlpath": "lab/tree/index.ipynb"}
    try:
        ip_port = await spawner.start()
        assert ip_port
        events = [e["message"] for e in spawner.progress_log.events]
        assert any("image" in m for m in events)
        pod = await spawner.api.read_namespaced_pod(spawner.pod_name, spawner.namespace)
        assert pod.spec.containers[0].image == spawner.launch.image
        assert pod.metadata.annotations["binderspawner.repo"] == setting("REPO")
    finally:
        await spawner.stop(now=True)
