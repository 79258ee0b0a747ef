"""environment.yml through the real hub: JupyterHub + proxy, the Docker engine, repo2docker, the
tests' git daemon and a conda channel on 127.0.0.1 (tests/support/condachannel.py) named in the
hub's conda_channels. One launch builds and runs; one unknown package fails with its message."""

import uuid

import pytest

from tests.conftest import serving
from tests.support.condachannel import ChannelServer, make_channel
from tests.support.hub import Hub

RUN = uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def channel(tmp_path_factory):
    server = ChannelServer(make_channel(str(tmp_path_factory.mktemp("hubchannel"))))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hub(docker_client, channel, tmp_path_factory):
    cache = tmp_path_factory.mktemp("rattler-cache")
    extra = (f'c.Repo2DockerBuilder.conda_channels = ["{channel.url}"]\n'
             f'c.Repo2DockerBuilder.conda_cache_dir = "{cache}"\n')
    hub = Hub(str(tmp_path_factory.mktemp("condahub")), extra_config=extra)
    hub.image_prefix = "bstest-condahub-"
    with serving(hub, docker_client, "jupyterhub-conda.log"):
        yield hub


def messages(events):
    return [e.get("message", "") for e in events]


def test_environment_yml_launches_with_its_conda_and_pip_packages(hub, git_server):
    git_server.add_repo(f"conda-hub-{RUN}", files={
        "environment.yml": "dependencies:\n  - bs-tool\n  - pip:\n    - six==1.16.0\n",
        "index.ipynb": "{}"})
    r, events = hub.launch("condauser", {"repo": git_server.url(f"conda-hub-{RUN}")})
    assert r.status_code in (201, 202), r.text
    assert events and events[-1].get("ready"), "\n".join(messages(events)[-30:])
    text = "\n".join(messages(events))
    assert "Solved: bs-data 1.0, bs-tool 2.1" in text and "checksums checked" in text
    [container] = [c for c in hub.containers() if "JUPYTERHUB_USER=condauser" in c.attrs["Config"]["Env"]]
    code, out = container.exec_run(["bash", "-lc", "cat $CONDA_PREFIX/share/bs-tool/tool.txt; bs-tool x; "
                                    "python -c 'import six; print(six.__version__)'"], user="jovyan")
    assert code == 0, out
    assert out.decode().split("\n")[:3] == ["tool from the conda channel", "bs-tool 2.1 x", "1.16.0"]
    hub.stop_server("condauser")


def test_an_unknown_conda_package_fails_the_launch_naming_it(hub, git_server):
    git_server.add_repo(f"conda-unknown-{RUN}", files={"environment.yml": "dependencies: [bs-nothing-like-it]\n"})
    r, events = hub.launch("condauser2", {"repo": git_server.url(f"conda-unknown-{RUN}")})
    failed = [e for e in events if e.get("failed")] or [{"message": r.text}]
    message = failed[-1]["message"]
    assert "environment.yml cannot be installed from this hub's channels" in message
    assert "bs-nothing-like-it" in message
    assert not [c for c in hub.containers() if "JUPYTERHUB_USER=condauser2" in c.attrs["Config"]["Env"]]
