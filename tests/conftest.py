"""Fixtures with real parts: the Docker engine, a git server and JupyterHub on this machine.

Nothing here is mocked. If the engine is not running the Docker tests fail (they are not skipped):
run scripts/provision.sh first, as scripts/test.sh does.
"""

import contextlib
import os
import shutil

import docker
import pytest

from tests.support import procs

procs.session_id()  # every process the tests start from here on carries this session's marker

from tests.support.apifixtures import ApiFixtures  # noqa: E402
from tests.support.gitserver import GitServer  # noqa: E402
from tests.support.hub import HUB_IDS, Hub  # noqa: E402
from binderspawner.services.cleanup import LABEL_HUB  # noqa: E402

from tests.support import EXAMPLES, ROOT  # noqa: E402

ARTIFACTS = os.path.join(ROOT, "test-artifacts")


@pytest.fixture(scope="session")
def docker_client():
    try:
        client = docker.from_env(version="auto")
        client.ping()
    except Exception as e:  # noqa: BLE001 - any failure means the same thing here
        pytest.fail(f"The Docker engine is not reachable ({e}); run scripts/provision.sh first.")
    return client


@pytest.fixture(scope="session")
async def kube_api(tmp_path_factory):
    """The stand-in Kubernetes API (tests/support/kubeapi.py) on 127.0.0.1, with KUBECONFIG
    pointing at it for the session (kubespawner loads the client configuration once per process)."""
    import kubernetes_asyncio.config.kube_config as kube_config

    from tests.support.kubeapi import FakeKubeAPI

    api = await FakeKubeAPI().start()
    path = api.kubeconfig(str(tmp_path_factory.mktemp("kube") / "config"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", path)
        patch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", path)  # read at import time
        patch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        yield api
    await api.stop()


@pytest.fixture(scope="module")
def api():
    """The local stand-in for GitHub, GitLab, Zenodo & co. (tests/support/apifixtures.py)."""
    server = ApiFixtures().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def git_server(tmp_path_factory):
    server = GitServer(str(tmp_path_factory.mktemp("git"))).start()
    for name in os.listdir(EXAMPLES):
        if os.path.isdir(os.path.join(EXAMPLES, name)):
            server.add_repo(name, os.path.join(EXAMPLES, name))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def hub(docker_client, git_server, tmp_path_factory):
    with serving(Hub(str(tmp_path_factory.mktemp("hub"))), docker_client, "jupyterhub.log") as hub:
        yield hub


@contextlib.contextmanager
def serving(hub, docker_client, log_name=None):
    """Run ``hub``; afterwards keep its log as a test artifact and remove what it created."""
    try:
        yield hub.start()
    finally:
        hub.stop()
        if log_name and os.path.exists(hub.log_path):
            os.makedirs(ARTIFACTS, exist_ok=True)
            shutil.copy(hub.log_path, os.path.join(ARTIFACTS, log_name))
        hub.cleanup()
        _remove_test_images(docker_client, hub.image_prefix)


def _remove_test_images(client, prefix=""):
    """Built test images (tagged ``prefix``...) go; Docker's build cache stays, so the next run's
    builds are quick. Only images of hubs this session started: another test run on the same engine
    (a helper's, the CI's) may be using its own at this moment, and a removed image means a test
    there builds it again. An environment image goes once the content layers made on it are gone."""
    for _ in range(3):
        for image in client.images.list(filters={"label": LABEL_HUB}):
            if image.labels.get(LABEL_HUB) in HUB_IDS and any(t.startswith(prefix) for t in image.tags):
                try:
                    client.images.remove(image.id, force=True)
                except docker.errors.APIError:
                    pass


def _remove_session_images():
    """Every image a hub of this session built, also those of hubs started outside serving()."""
    try:
        _remove_test_images(docker.from_env(version="auto"))
    except docker.errors.DockerException:
        pass  # no engine: the tests that needed one have said so


def pytest_sessionfinish(session, exitstatus):
    """Nothing the tests started may outlive them (every fixture has been torn down by now): list
    what is left, stop it, and fail the run. The Docker engine is not the tests' to stop."""
    _remove_session_images()
    left = procs.of_session()
    if not left:
        return
    lines = "\n".join(f"  pid {pid}: {cmd[:200]}" for pid, cmd in left)
    procs.stop(left)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = f"Processes started by the tests were still running at the end (now stopped):\n{lines}"
    if reporter:
        reporter.write_line(message, red=True)
    else:
        print(message)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
