"""The merge helper against a launch image whose python3 the repository replaced (real Docker, no
hub): its output may not fill the hub's memory or the host's disk, and its result is not trusted.

A stand-in for the spawner hands run_merge the Docker calls (each recorded) and the names it reads;
the image is the base image with a hostile /usr/local/bin/python3 committed on top (no build).
"""

import asyncio
import uuid
from types import SimpleNamespace

import docker
import pytest

from binderspawner.dockerhost import homes as dockerhomes
from binderspawner.homes import PersistentHome, home_for, merge_message

FLOOD = """#!/bin/sh
head -c 30000000 /dev/zero | tr '\\0' 'A' | fold -w 100; echo
echo 'binder-home-merge: {"conflicts": ["not a conflict"], "taken": "many"}'
"""


@pytest.fixture
def hostile_image(docker_client):
    tag = f"binderspawner-attack-helper:{uuid.uuid4().hex[:8]}"
    container = docker_client.containers.create("binderspawner-base:bookworm", ["true"], network_disabled=True)
    try:
        container.put_archive("/usr/local/bin", _tar("python3", FLOOD.encode()))
        container.commit(*tag.split(":"))
    finally:
        container.remove(force=True)
    yield tag
    docker_client.images.remove(tag, force=True)


def _tar(name, data):
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class SpawnerStandIn:
    """What run_merge reads from DockerBinderSpawner; every Docker call is real and recorded."""

    def __init__(self, api):
        self.client = api
        self.container_name = "attack-" + uuid.uuid4().hex[:8]
        self.lifecycle = SimpleNamespace(hub_id="attack-" + uuid.uuid4().hex[:8])
        self.calls = []

    async def docker(self, method, *args, **kwargs):
        result = await asyncio.get_running_loop().run_in_executor(
            None, lambda: getattr(self.client, method)(*args, **kwargs))
        self.calls.append((method, kwargs, result))
        return result


async def test_a_replaced_python3_can_neither_flood_the_hub_nor_fake_a_summary(docker_client, hostile_image):
    spawner = SpawnerStandIn(docker_client.api)
    home = home_for("binder-home-attack-", spawner.lifecycle.hub_id, "ann", "git/attack")
    docker_client.volumes.create(home.name, labels=home.labels)
    try:
        summary = await dockerhomes.run_merge(spawner, PersistentHome(merge_timeout=120), home, hostile_image,
                                              "/mnt/binder-home", "/home/jovyan", "a" * 40)
    finally:
        for container in docker_client.containers.list(all=True, filters={"volume": home.name}):
            container.remove(force=True)
        docker_client.volumes.get(home.name).remove(force=True)
    created = next(kwargs for method, kwargs, _ in spawner.calls if method == "create_container")
    assert created["host_config"]["LogConfig"]["Config"]["max-size"] == "1m"  # the host's disk
    logs = [result for method, _, result in spawner.calls if method == "logs"]
    assert len(logs) == 1 and len(logs[0]) < 1 << 20  # 30 MB written, a few lines read
    assert "not a merge summary" in summary["error"]
    assert "could not be merged" in merge_message(summary, "a" * 40)
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_container(f"{spawner.container_name}-home-merge")
