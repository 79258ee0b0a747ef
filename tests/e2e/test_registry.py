"""The registry: RegistryClient against a REAL registry (Debian's docker-registry, started by the test
on 127.0.0.1 with a config file, open or with htpasswd basic auth), and the Docker builder pushing
to it and checking it before building.

Bearer token auth is tested against a small local token service on 127.0.0.1 that follows the
distribution token spec's documented exchange (no public registry is reachable from here).
"""

import asyncio
import base64
import io
import os
import shutil
import subprocess
import tarfile
import uuid

import docker
import pytest
from aiohttp import web

from binderspawner.builders import BuildQueue, BuildRequest, Repo2DockerBuilder
from binderspawner.errors import BuildFailed
from binderspawner.providers import RepoSource, ResolvedRepo
from binderspawner.builders.registry import RegistryClient, RegistryError, parse_challenge, parse_image
from tests.support.net import free_port, wait_for_port

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
RUN = uuid.uuid4().hex[:8]


class Registry:
    def __init__(self, root, users=None):
        self.port = free_port()
        self.root = root
        config = [
            "version: 0.1",
            "log: {level: error}",
            f"storage: {{filesystem: {{rootdirectory: {root}/data}}, delete: {{enabled: true}}}}",
            f"http: {{addr: '127.0.0.1:{self.port}'}}",
        ]
        if users:
            htpasswd = os.path.join(root, "htpasswd")
            for i, (user, password) in enumerate(users.items()):
                subprocess.run(["htpasswd", "-B", "-b", *(["-c"] if i == 0 else []), htpasswd, user, password],
                               check=True, capture_output=True)
            config.append(f"auth: {{htpasswd: {{realm: binderspawner-test, path: {htpasswd}}}}}")
        self.config = os.path.join(root, "config.yml")
        with open(self.config, "w") as f:
            f.write("\n".join(config) + "\n")
        self.proc = None

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen([REGISTRY, "serve", self.config], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for_port("127.0.0.1", self.port)
        return self

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    server = Registry(str(tmp_path_factory.mktemp("registry"))).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory):
    server = Registry(str(tmp_path_factory.mktemp("registry-auth")), {"alice": "s3cret-pass"}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tiny_image(docker_client):
    """A one-file image made here (nothing can be pulled), removed afterwards."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        content = RUN.encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    name = f"bstest-registry-tiny:{RUN}"
    docker_client.api.import_image_from_data(data.getvalue(), repository=name.split(":")[0], tag=RUN)
    yield name
    _remove(docker_client, name)


def _remove(client, image):
    try:
        client.images.remove(image, force=True)
    except docker.errors.ImageNotFound:
        pass


# pure ---------------------------------------------------------------------------------------------


def test_parse_image():
    assert parse_image(
        "127.0.0.1:5000/binder/repo-1a2b:abc").reference == "127.0.0.1:5000/binder/repo-1a2b:abc"
    assert parse_image("registry.example.org/binder/x:1").repository == "binder/x"
    assert parse_image("localhost/x").tag == "latest"
    hub = parse_image("binder-repo-1a2b:abc")
    assert (hub.registry, hub.repository) == ("docker.io", "library/binder-repo-1a2b")
    assert parse_image("org/name:tag").repository == "org/name"


def test_parse_challenge():
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example.org/token",service="registry.example.org",'
        'scope="repository:binder/x:pull,push"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.example.org/token", "service": "registry.example.org",
                      "scope": "repository:binder/x:pull,push"}
    assert parse_challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})


# a real registry ----------------------------------------------------------------------------------


async def test_missing_and_present_tags(registry, docker_client, tiny_image):
    client = RegistryClient()
    image = f"{registry.host}/bstest/tiny:{RUN}"
    assert await client.manifest_exists(image) is False
    docker_client.images.get(tiny_image).tag(image)
    try:
        events = []
        await Repo2DockerBuilder(push=True).push_image(image, lambda *a: events.append(a))
        assert any("Pushed" in m or "digest" in m for _, m, *_ in events), events
        assert await client.manifest_exists(image) is True
        assert await client.manifest_exists(image.replace(RUN, "other")) is False
    finally:
        _remove(docker_client, image)


async def test_basic_auth_failures_are_clear_and_credentials_work(auth_registry, docker_client, tiny_image):
    image = f"{auth_registry.host}/bstest/tiny:{RUN}"
    with pytest.raises(RegistryError) as anonymous:
        await RegistryClient(docker_config="/nonexistent").manifest_exists(image)
    assert f"The registry {auth_registry.host} refused anonymous access (HTTP 401)" in anonymous.value.message
    assert "c.RegistryClient.username" in anonymous.value.message

    with pytest.raises(RegistryError) as wrong:
        await RegistryClient(username="alice", password="wrong-pass").manifest_exists(image)
    assert "refused the credentials of user 'alice' (HTTP 401)" in wrong.value.message
    assert "wrong-pass" not in wrong.value.message

    right = RegistryClient(username="alice", password="s3cret-pass")
    assert await right.manifest_exists(image) is False

    docker_client.images.get(tiny_image).tag(image)
    try:
        with pytest.raises(BuildFailed) as push_refused:
            await Repo2DockerBuilder(push=True, config=_config(username="alice", password="nope")).push_image(
                image, lambda *a: None)
        assert f"pushing it to {auth_registry.host} failed" in push_refused.value.message
        assert "refused the credentials" in push_refused.value.message
        assert "nope" not in push_refused.value.message

        await Repo2DockerBuilder(push=True, config=_config(username="alice", password="s3cret-pass")).push_image(
            image, lambda *a: None)
        assert await right.manifest_exists(image) is True
    finally:
        _remove(docker_client, image)


def _config(**registry):
    from traitlets.config import Config

    config = Config()
    for key, value in registry.items():
        setattr(config.RegistryClient, key, value)
    return config


async def test_bearer_token_flow():
    """The distribution token spec's exchange: 401 + Bearer challenge, token from the realm with the
    user's basic credentials, then the request with the token."""
    port = free_port()
    seen = []

    async def manifest(request):
        seen.append(("manifest", request.headers.get("Authorization", "")))
        if request.headers.get("Authorization") != "Bearer tok-123":
            return web.Response(status=401, headers={"WWW-Authenticate": (
                f'Bearer realm="http://127.0.0.1:{port}/token",service="test-registry",'
                'scope="repository:binder/x:pull"')})
        return web.Response(status=200 if request.match_info["tag"] == "present" else 404)

    async def token(request):
        seen.append(("token", dict(request.query)))
        if request.headers.get("Authorization") != "Basic " + base64.b64encode(b"bob:pw").decode():
            return web.Response(status=401)
        return web.json_response({"token": "tok-123", "expires_in": 300})

    app = web.Application()
    app.router.add_route("HEAD", "/v2/binder/x/manifests/{tag}", manifest)
    app.router.add_get("/token", token)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        client = RegistryClient(username="bob", password="pw")
        RegistryClient._tokens.clear()
        assert await client.manifest_exists(f"127.0.0.1:{port}/binder/x:present") is True
        assert await client.manifest_exists(f"127.0.0.1:{port}/binder/x:absent") is False
        assert ("token", {"service": "test-registry", "scope": "repository:binder/x:pull"}) in seen
        assert [kind for kind, _ in seen].count("token") == 1, "the token is reused until it expires"
        RegistryClient._tokens.clear()
        with pytest.raises(RegistryError, match="refused the credentials of user 'eve'"):
            await RegistryClient(username="eve", password="x").manifest_exists(f"127.0.0.1:{port}/binder/x:present")
    finally:
        await runner.cleanup()


# the Docker builder sharing one registry ----------------------------------------------------------

DOCKERFILE = """FROM binderspawner-base:bookworm
RUN useradd --create-home --uid 1000 jovyan
USER jovyan
"""


async def test_push_after_build_and_registry_check_before_build(registry, docker_client, git_server):
    """Hub A builds and pushes; the image then leaves the local engine (as on a second Docker host);
    hub B's builder finds it in the registry and builds nothing."""
    name = f"registry-{RUN}"
    sha = git_server.add_repo(name, files={"Dockerfile": DOCKERFILE})
    url = git_server.url(name)
    source = RepoSource(provider="git", spec=url, fetch_url=url, slug=f"127.0.0.1/{name}", display_name=url)
    image = f"{registry.host}/bstest-registry/{name}:{sha}"
    request = BuildRequest(image, ResolvedRepo(source, None, sha, "default branch main"),
                           {"binderspawner.commit": sha})
    try:
        first = Repo2DockerBuilder(push=True, check_registry=True, config=_config())
        first.config.GitProvider.allowed_private_hosts = ["127.0.0.1"]  # the test git server
        assert await first.image_exists(image) is False
        events = []
        build = BuildQueue(1).ensure(image, lambda: first.image_exists(image),
                                     lambda emit: first.build(request, emit))
        async for event in build.follow():
            events.append(event)
        assert await build.wait() is True, "\n".join(e.message for e in events[-20:])
        assert any(e.phase == "pushing" for e in events)
        assert await RegistryClient().manifest_exists(image) is True

        _remove(docker_client, image)  # hub B's engine: the image is not there
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(image)
        second = Repo2DockerBuilder(check_registry=True)
        builds = []

        async def must_not_build(emit):
            builds.append(emit)

        outcome = BuildQueue(1).ensure(image, lambda: second.image_exists(image), must_not_build)
        assert await outcome.wait() is False and builds == []
        # and the engine can pull what the registry has (DockerSpawner pulls a missing image)
        await asyncio.get_running_loop().run_in_executor(None, docker_client.images.pull, image)
        assert docker_client.images.get(image).labels["binderspawner.commit"] == sha
    finally:
        _remove(docker_client, image)
