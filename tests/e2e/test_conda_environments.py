"""Conda environments built through the builder with the real repo2docker and Docker engine, from
a conda channel the test serves on 127.0.0.1 (tests/support/condachannel.py; conda-forge is not
reachable here): the hub solves and fetches, the image installs offline with py-rattler."""

import hashlib
import os
import uuid

import docker
import pytest
import rattler

from binderspawner.errors import BuildFailed, RepositoryRefused
from tests.support.builds import build_events, git_build_request, local_builder
from tests.support.condachannel import ChannelServer, free_url, make_channel

RUN = uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def channel(tmp_path_factory):
    server = ChannelServer(make_channel(str(tmp_path_factory.mktemp("channel"))))
    yield server
    server.stop()


def builder(channels, **settings):
    return local_builder(conda_channels=list(channels), conda_cache_dir=str(settings.pop("cache")), **settings)


def request_for(git_server, name, files, scratch):
    return git_build_request(git_server, name, files, scratch, "bstest-conda")


def run_in(client, image, command):
    """A command in the image as the server runs (repo2docker's entrypoint: a login shell)."""
    return client.containers.run(image, ["bash", "-lc", command], remove=True).decode().strip()


def remove_image(client, image):
    try:
        client.images.remove(image, force=True)
    except docker.errors.ImageNotFound:
        pass


def assert_nothing_left(client, request, scratch):
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(request.image)
    assert not [c for c in client.containers.list(all=True) if c.attrs["Config"]["Image"] == request.image]
    assert os.listdir(scratch) == []


async def test_environment_yml_from_the_channel_with_pip_and_postbuild(docker_client, git_server, channel, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    request = request_for(git_server, f"envyml-{RUN}", {
        "binder/environment.yml": ("name: demo\nchannels:\n  - conda-forge\n  - defaults\ndependencies:\n"
                                   "  - bs-tool >=2\n  - pip\n  - pip:\n    - six==1.16.0\n    - -e ../localpkg\n"),
        "localpkg/pyproject.toml": ('[build-system]\nrequires = ["flit_core>=3.2"]\n'
                                    'build-backend = "flit_core.buildapi"\n'
                                    '[project]\nname = "bs_local"\nversion = "0.1"\ndescription = "x"\n'),
        "localpkg/bs_local.py": "VALUE = 'local package from the pip list'\n",
        "binder/requirements.txt": "this-package-does-not-exist-anywhere\n",
        "binder/postBuild": "#!/bin/bash\nbs-tool from-postbuild > $HOME/postbuild-out\n",
        "index.ipynb": "{}",
    }, scratch)
    try:
        events, error = await build_events(builder([channel.url], cache=tmp_path / "cache"), request)
        assert error is None, str(error)
        warnings = [m for phase, m in events if phase == "warning"]
        assert any("binder/requirements.txt is ignored" in w for w in warnings)
        assert any("'conda-forge'" in w and "not used" in w for w in warnings)
        out = run_in(docker_client, request.image,
                     "cat /srv/conda/envs/notebook/share/bs-data/data.txt; which bs-tool; cat postbuild-out; "
                     "python -c 'import six, sys, bs_local; print(six.__version__, sys.prefix, bs_local.VALUE)'; "
                     "echo $CONDA_PREFIX; ls -A . binder")
        lines = out.splitlines()
        assert lines[:5] == ["data from the conda channel", "/srv/conda/envs/notebook/bin/bs-tool",
                             "bs-tool 2.1 from-postbuild", "1.16.0 /srv/venv local package from the pip list",
                             "/srv/conda/envs/notebook"]
        assert "index.ipynb" in lines[5:] and not [n for n in lines[5:] if "binderspawner" in n]
        assert os.listdir(scratch) == []
    finally:
        remove_image(docker_client, request.image)


async def test_pixi_lock_installs_exactly(docker_client, git_server, channel, tmp_path):
    """A pixi.lock pinning the older bs-tool 1.5: installed as locked, not re-solved to 2.1."""
    gateway = rattler.Gateway(cache_dir=str(tmp_path / "cache"))
    solved = await rattler.solve([channel.url], ["bs-tool ==1.5"], gateway=gateway, platforms=["linux-64", "noarch"])
    records = {r.file_name: r for r in solved}
    platform = rattler.LockPlatform("linux-64")
    lock = rattler.LockFile([platform])
    for record in records.values():
        lock.add_conda_package("default", platform, record)
    lock.to_path(str(tmp_path / "pixi.lock"))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    request = request_for(git_server, f"pixi-{RUN}", {
        "pixi.lock": (tmp_path / "pixi.lock").read_text(),
        "pixi.toml": '[workspace]\nname = "x"\nchannels = []\nplatforms = ["linux-64"]\n'
                     '[dependencies]\nbs-tool = "*"\n',
        ".dockerignore": "binderspawner-*\n",  # the packages then enter as build-script files
    }, scratch)
    try:
        events, error = await build_events(builder([channel.url], cache=tmp_path / "cache"), request)
        assert error is None, str(error)
        out = run_in(docker_client, request.image,
                     "cat /srv/conda/envs/notebook/share/bs-tool/tool.txt; ls /srv/conda/envs/notebook/conda-meta")
        assert out.splitlines()[0] == "old tool"
        assert "bs-tool-1.5-0.json" in out and "bs-data-1.0-0.json" in out
    finally:
        remove_image(docker_client, request.image)


async def test_pixi_lock_that_disagrees_with_its_manifest_is_refused(docker_client, git_server, channel, tmp_path):
    gateway = rattler.Gateway(cache_dir=str(tmp_path / "cache"))
    platform = rattler.LockPlatform("linux-64")
    lock = rattler.LockFile([platform])
    for record in await rattler.solve([channel.url], ["bs-tool ==1.5"], gateway=gateway,
                                      platforms=["linux-64", "noarch"]):
        lock.add_conda_package("default", platform, record)
    lock.to_path(str(tmp_path / "pixi.lock"))
    request = request_for(git_server, f"pixi-bad-{RUN}", {
        "pixi.lock": (tmp_path / "pixi.lock").read_text(),
        "pixi.toml": '[workspace]\nname = "x"\n[dependencies]\nbs-tool = ">=2"\n'}, tmp_path / "s")
    (tmp_path / "s").mkdir()
    events, error = await build_events(builder([channel.url], cache=tmp_path / "cache"), request)
    assert isinstance(error, RepositoryRefused)
    assert str(error).startswith("pixi.lock does not agree with pixi.toml: pixi.toml asks for 'bs-tool >=2'")
    assert_nothing_left(docker_client, request, tmp_path / "s")


@pytest.mark.parametrize("case", ["unknown-package", "unreachable-channel", "python-package"])
async def test_failures_name_the_package_or_channel_and_leave_nothing(docker_client, git_server, channel,
                                                                      tmp_path, case):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    spec = {"unknown-package": "no-such-package-anywhere", "python-package": "bs-pylib"}.get(case, "bs-tool")
    channels = [free_url()] if case == "unreachable-channel" else [channel.url]
    request = request_for(git_server, f"{case}-{RUN}", {"environment.yml": f"dependencies:\n  - {spec}\n"}, scratch)
    events, error = await build_events(builder(channels, cache=tmp_path / "cache"), request)
    assert isinstance(error, BuildFailed)
    if case == "unknown-package":
        assert isinstance(error, RepositoryRefused)
        assert str(error).startswith("environment.yml cannot be installed from this hub's channels")
        assert "no-such-package-anywhere" in str(error)
    elif case == "python-package":  # conda_python = "base-image": no Python in the environment
        assert str(error).startswith("environment.yml: 'bs-pylib' is a Python package")
    else:
        assert not isinstance(error, RepositoryRefused)
        assert str(error).startswith(f"The conda channel {channels[0]}")
        assert "c.Repo2DockerBuilder.conda_channels" in str(error)
    assert not any(phase == "building" for phase, _ in events)
    assert_nothing_left(docker_client, request, scratch)


async def test_python_from_the_channel_is_a_setting(docker_client, git_server, channel, tmp_path):
    """conda_python = "channel": runtime.txt's 3.12 (no base image has it) is solved from the channel
    (a fake noarch python: a real CPython package cannot be made here) into the conda prefix."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    request = request_for(git_server, f"pychannel-{RUN}", {"runtime.txt": "python-3.12\n"}, scratch)
    try:
        events, error = await build_events(
            builder([channel.url], cache=tmp_path / "cache", conda_python="channel"), request)
        assert error is None, str(error)
        assert any("comes from the conda channel" in m for phase, m in events if phase == "warning")
        out = run_in(docker_client, request.image, "cat /srv/conda/envs/notebook/share/bs-fake-python/version.txt")
        assert out == "3.12.0"
    finally:
        remove_image(docker_client, request.image)


async def test_conda_lock_installs_exactly_with_its_pip_pins(docker_client, git_server, channel, tmp_path):
    """A conda-lock.yml (version 1, parsed by the hub: py-rattler does not read it) pinning the
    older bs-tool 1.5 and a pip package: installed as locked, checked against environment.yml."""
    def entry(name, version):
        path = os.path.join(channel.root, "noarch", f"{name}-{version}-0.tar.bz2")
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        return (f"- name: {name}\n  version: '{version}'\n  manager: conda\n  platform: linux-64\n"
                f"  url: {channel.url}/noarch/{name}-{version}-0.tar.bz2\n  hash:\n    sha256: {digest}\n")
    lock = ("version: 1\nmetadata:\n  platforms: [linux-64]\n  sources: [environment.yml]\npackage:\n"
            + entry("bs-tool", "1.5") + entry("bs-data", "1.0")
            + "- name: six\n  version: 1.16.0\n  manager: pip\n  platform: linux-64\n"
              "  url: https://files.example/six-1.16.0-py2.py3-none-any.whl\n"
              "  hash:\n    sha256: 8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    request = request_for(git_server, f"condalock-{RUN}", {
        "environment.yml": "dependencies:\n  - bs-tool\n  - pip:\n    - six\n", "conda-lock.yml": lock}, scratch)
    try:
        events, error = await build_events(builder([channel.url], cache=tmp_path / "cache"), request)
        assert error is None, str(error)
        assert any("Installing conda-lock.yml exactly: 2 conda packages" in m for _, m in events)
        out = run_in(docker_client, request.image, "cat $CONDA_PREFIX/share/bs-tool/tool.txt; "
                                                   "python -c 'import six; print(six.__version__)'")
        assert out.splitlines() == ["old tool", "1.16.0"]
    finally:
        remove_image(docker_client, request.image)
