"""Environment images and a registry shared by Docker hosts: the builder pushes the environment
image and each launch image; a second host (the images gone from the engine) pulls the environment
image from the registry for a content-only commit instead of building it, and pushes its launch
image. Real registry (Debian's docker-registry on 127.0.0.1), git daemon, repo2docker, engine."""

import uuid

import docker
import pytest
from traitlets.config import Config

from binderspawner.builders import BuildRequest, Repo2DockerBuilder
from binderspawner.builders.contentlayer import LABEL_ENVIRONMENT
from binderspawner.builders.registry import RegistryClient
from binderspawner.messages import ENVKEY_BUILDING
from binderspawner.providers import RepoSource, ResolvedRepo
from tests.e2e.test_registry import Registry
from tests.support.builds import build_events

RUN = uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    server = Registry(str(tmp_path_factory.mktemp("envkey-registry"))).start()
    yield server
    server.stop()


def builder():
    config = Config()
    config.GitProvider.allowed_private_hosts = ["127.0.0.1"]
    return Repo2DockerBuilder(push=True, check_registry=True, config=config)


def remove(client, *images):
    for image in images:
        try:
            client.images.remove(image, force=True)
        except docker.errors.ImageNotFound:
            pass


async def test_environment_and_launch_images_go_through_the_registry(registry, docker_client, git_server, tmp_path):
    name = f"envkey-registry-{RUN}"
    first = git_server.add_repo(name, files={"requirements.txt": "six\n", "index.ipynb": "{}"})
    url = git_server.url(name)
    source = RepoSource(provider="git", spec=url, fetch_url=url, slug=f"127.0.0.1/{name}", display_name=url)

    def request(sha):
        return BuildRequest(f"{registry.host}/bstest-envkey/{name}:{sha}", ResolvedRepo(source, "main", sha, "main"),
                            {"binderspawner.commit": sha, "binderspawner.hub": f"envkey-{RUN}"},
                            {"TMPDIR": str(tmp_path)})

    a = request(first)
    created = [a.image]
    try:
        events, error = await build_events(builder(), a)
        assert error is None, error
        env_image = next(m.split()[-1].rstrip(".") for _, m in events if m.startswith("Built the environment image"))
        created.append(env_image)
        assert docker_client.images.get(a.image).labels[LABEL_ENVIRONMENT] in env_image
        client = RegistryClient()
        assert await client.manifest_exists(env_image) and await client.manifest_exists(a.image)

        remove(docker_client, a.image, env_image)  # a second Docker host: nothing local
        b = request(git_server.commit(name, {"index.ipynb": '{"cells": []}'}))
        created.append(b.image)
        events, error = await build_events(builder(), b)
        assert error is None, error
        assert not any(ENVKEY_BUILDING.split("{")[0] in m for _, m in events)
        assert any(m.startswith("Found the environment image") for _, m in events)
        assert docker_client.images.get(env_image)  # pulled
        assert await client.manifest_exists(b.image)
        assert docker_client.images.get(b.image).labels["binderspawner.commit"] == b.resolved.version
    finally:
        remove(docker_client, *created)
