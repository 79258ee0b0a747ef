"""Build tools run as root: their home, Docker config and Python user site are the build's own."""

import os
import stat
from types import SimpleNamespace

from binderspawner.builders.repo2docker import Repo2DockerBuilder


def test_build_tools_get_a_private_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", "/tmp/.docker")  # a shared directory must not win
    home = str(tmp_path / "home")
    os.mkdir(home, 0o700)
    request = SimpleNamespace(resolved=SimpleNamespace(source=SimpleNamespace(content_provider="Git")),
                              env={"TMPDIR": str(tmp_path)}, credentials=None, labels={})
    env = Repo2DockerBuilder().environment(request, home=home)
    assert env["HOME"] == home and env["DOCKER_CONFIG"] == os.path.join(home, ".docker")
    assert env["PYTHONNOUSERSITE"] == "1"
    assert env["XDG_CONFIG_HOME"].startswith(home) and env["XDG_CACHE_HOME"].startswith(home)
    assert not any(value.startswith("/tmp/.") for value in env.values())
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700


def test_hub_side_git_does_not_use_the_shared_tmp_as_home():
    from binderspawner.providers.git import git_environment

    home = git_environment(["https"])["HOME"]
    assert home not in ("/tmp", "/var/tmp") and os.path.isdir(home)
    info = os.stat(home)
    assert info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) == 0o700
