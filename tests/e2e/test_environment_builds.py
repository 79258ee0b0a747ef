"""Builds through the builder alone, from the hub's checked clone, with the real repo2docker and
Docker engine: what is decided before the build reaches the image, and a refusal costs no Docker
work and leaves nothing behind (builders/checkout.py, builders/environment.py)."""

import os
import uuid

import docker
import pytest

from binderspawner.errors import RepositoryRefused
from tests.support.builds import build_events, git_build_request, local_builder

RUN = uuid.uuid4().hex[:8]


def request_for(git_server, name, files, scratch):
    return git_build_request(git_server, name, files, scratch, "bstest-envdetect")


def run_in(client, image, *argv):
    return client.containers.run(image, list(argv), remove=True, entrypoint=[]).decode().strip()


async def test_binder_directory_build_uses_only_the_binder_files(docker_client, git_server, tmp_path):
    request = request_for(git_server, f"binderdir-{RUN}", {
        "binder/requirements.txt": "six\n",
        "binder/runtime.txt": "python-3.11\n",
        "binder/postBuild": "echo built-by-postbuild > $HOME/postbuild-marker\n",  # not executable
        "requirements.txt": "this-package-does-not-exist-anywhere\n",  # ignored: binder/ wins
        "setup.py": "raise SystemExit('setup.py must not run')\n",
        "notebook.ipynb": "{}",
    }, tmp_path)
    try:
        events, error = await build_events(local_builder(), request)
        assert error is None, error
        warnings = [m for phase, m in events if phase == "warning"]
        assert any(w.startswith("Warning: requirements.txt is ignored") for w in warnings)
        assert any(w.startswith("Warning: setup.py is ignored") for w in warnings)
        out = run_in(docker_client, request.image, "python3", "-c",
                     "import six, sys, os; print('%d.%d' % sys.version_info[:2]); "
                     "print(sorted(os.listdir(os.path.expanduser('~'))))")
        version, listing = out.splitlines()[-2:]
        assert version == "3.11"
        assert "notebook.ipynb" in listing and "postbuild-marker" in listing
        assert os.listdir(tmp_path) == []
    finally:
        try:
            docker_client.images.remove(request.image, force=True)
        except docker.errors.ImageNotFound:
            pass


@pytest.mark.parametrize("files, first", [
    ({"runtime.txt": "python-3.10\n", "requirements.txt": "six\n"}, "runtime.txt asks for Python 3.10"),
    ({"binder/apt.txt": "sudo apt-get install ffmpeg\n"}, "binder/apt.txt line 1:"),
])
async def test_refusal_builds_nothing_and_leaves_nothing(docker_client, git_server, tmp_path, files, first):
    request = request_for(git_server, f"refused-{uuid.uuid4().hex[:8]}", files, tmp_path)
    events, error = await build_events(local_builder(), request)
    assert isinstance(error, RepositoryRefused) and str(error).startswith(first)
    assert not any(phase == "building" for phase, _ in events)
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(request.image)
    assert not [c for c in docker_client.containers.list(all=True)
                if c.attrs["Config"]["Image"] == request.image]
    assert os.listdir(tmp_path) == []
