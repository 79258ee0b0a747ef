"""Environment-keyed images through the real hub (builders/envkey.py, builders/contentlayer.py):
two commits with one environment share one environment build, a content-only commit launches from
the environment image plus its files (no environment build, files deleted in it gone), and a
changed requirements.txt makes a new environment image. Two environment builds in all."""

import concurrent.futures
import os
import re
import uuid

import pytest

from binderspawner.builders.contentlayer import LABEL_ENVIRONMENT
from binderspawner.messages import ENVKEY_BUILDING
from tests.conftest import serving
from tests.support.gitserver import git
from tests.support.hub import Hub

NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
BUILDING = ENVKEY_BUILDING.split("{", 1)[0]  # "Building the environment image "


@pytest.fixture(scope="module")
def ehub(docker_client, tmp_path_factory):
    hub = Hub(str(tmp_path_factory.mktemp("envkeyhub")), run_id="ek" + uuid.uuid4().hex[:6])
    hub.image_prefix = "bstest-ek-"
    with serving(hub, docker_client, "jupyterhub-envkey.log"):
        yield hub


def launched(hub, user, options):
    response, events = hub.launch(user, options)
    assert response.status_code in (201, 202), response.text
    assert events and events[-1].get("ready"), events[-5:]
    return [e.get("message", "") for e in events]


def image_of(hub, user):
    [container] = [c for c in hub.containers() if f"JUPYTERHUB_USER={user}" in c.attrs["Config"]["Env"]]
    return hub.docker.images.get(container.attrs["Config"]["Image"])


def listing(hub, user):
    r = hub.server_get(user, "api/contents/")
    assert r.status_code == 200, r.text
    return {entry["name"]: entry for entry in r.json()["content"]}


def environment_builds(hub):
    return re.findall(r"Building environment image (\S+) from", hub.log())


def test_content_only_commits_reuse_the_environment_image(ehub, git_server, docker_client):
    name = f"envkey-{uuid.uuid4().hex[:6]}"
    first = git_server.add_repo(name, files={"requirements.txt": "six\n", "index.ipynb": NOTEBOOK,
                                             "old.txt": "deleted later\n"})
    second = git_server.commit(name, {"index.ipynb": NOTEBOOK.replace("[]", "[ ]")})
    url = git_server.url(name)

    # two commits with one environment, launched at once: one environment build between them
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        a, a2 = pool.map(lambda job: launched(ehub, job[0], {"repo": url, "ref": job[1]}),
                         [("ek-a", first), ("ek-a2", second)])
    assert len(environment_builds(ehub)) == 1, environment_builds(ehub)
    env_image = environment_builds(ehub)[0]
    assert any(BUILDING in m for m in a + a2)
    key = image_of(ehub, "ek-a").labels[LABEL_ENVIRONMENT]
    assert image_of(ehub, "ek-a2").labels[LABEL_ENVIRONMENT] == key and env_image.endswith(key)
    env_id = docker_client.images.get(env_image).id
    assert "old.txt" in listing(ehub, "ek-a")

    # a notebook changes and a file is deleted: no environment build, the server has this commit
    work = os.path.join(git_server.work, name)
    os.remove(os.path.join(work, "old.txt"))
    content_only = git_server.commit(name, {"index.ipynb": NOTEBOOK.replace("[]", '[{"cell_type": "raw", '
                                                                            '"metadata": {}, "source": "B"}]'),
                                            "new.txt": "added in B\n"})
    b = launched(ehub, "ek-b", {"repo": url, "ref": "main"})
    assert len(environment_builds(ehub)) == 1, environment_builds(ehub)
    assert not any(BUILDING in m or m.startswith("[building] #") for m in b), b
    assert any(f"Found the environment image {env_image}" in m for m in b), b
    image = image_of(ehub, "ek-b")
    assert image.labels["binderspawner.commit"] == content_only and image.labels[LABEL_ENVIRONMENT] == key
    assert docker_client.images.get(env_image).id == env_id
    files = listing(ehub, "ek-b")
    assert "new.txt" in files and "old.txt" not in files
    notebook = ehub.server_get("ek-b", "api/contents/index.ipynb").json()
    assert notebook["content"]["cells"][0]["source"] == "B"
    assert git("rev-parse", "HEAD", cwd=work) == content_only

    # requirements.txt changes: a new environment image
    changed = git_server.commit(name, {"requirements.txt": "six\nattrs\n"})
    c = launched(ehub, "ek-c", {"repo": url, "ref": changed})
    builds = environment_builds(ehub)
    assert len(builds) == 2 and builds[1] != env_image, builds
    assert any(BUILDING in m for m in c)
    assert image_of(ehub, "ek-c").labels[LABEL_ENVIRONMENT] != key
    out = docker_client.containers.run(image_of(ehub, "ek-c").id, ["python", "-c", "import attrs, six; print('ok')"],
                                       remove=True)
    assert out.decode().strip().endswith("ok")
    for user in ("ek-a", "ek-a2", "ek-b", "ek-c"):
        ehub.stop_server(user)
