"""Lock files through the builder, from the hub's checked clone, with the real repo2docker, uv and
Docker engine: uv.lock installs exactly (its pins, not what a resolution would pick today), a uv.lock
that disagrees with pyproject.toml fails naming it and leaves nothing behind, and a Pipfile.lock
made from another Pipfile is installed as it is with a warning naming both files."""

import json
import os
import uuid

import docker
import pytest
from pip._internal.models.index import PyPI

from binderspawner.builders.environment import pipfile_hashes
from binderspawner.errors import BuildFailed
from tests.support.builds import build_events, git_build_request, local_builder

RUN = uuid.uuid4().hex[:8]

# A packaged project whose dependencies allow any pyjokes >= 0.5 and any six; its lock (made by
# `uv lock` when these pins were chosen) pins pyjokes 0.6.0 and six 1.16.0, older than the newest
# releases and than the six the single-user server brings: only the lock gives these versions.
PYPROJECT = """\
[project]
name = "lockedproject"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["pyjokes>=0.5", "six"{extra}]

[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[tool.setuptools]
packages = ["lockedproject"]
"""
# the index a uv.lock made against pip's own default index records (read from pip, not written here)
_INDEX = PyPI.simple_url
_FILES = f"https://{PyPI.file_storage_domain}/packages"
UV_LOCK = f"""\
version = 1
revision = 5
requires-python = ">=3.11"

[[package]]
name = "lockedproject"
version = "0.1.0"
source = {{ editable = "." }}
dependencies = [
    {{ name = "pyjokes" }},
    {{ name = "six" }},
]

[package.metadata]
requires-dist = [
    {{ name = "pyjokes", specifier = ">=0.5" }},
    {{ name = "six" }},
]

[[package]]
name = "pyjokes"
version = "0.6.0"
source = {{ registry = "{_INDEX}" }}
sdist = {{ url = "{_FILES}/c2/82/faa0a9676ba148de181793a81f193f4a5a9eb344b4faf80fa28d8b1c8f3f/pyjokes-0.6.0.tar.gz", \
hash = "sha256:08860eedb78cbfa4618243c8db088f21c39823ece1fdaf0133e52d9c56e981a5", size = 24439, \
upload-time = "2019-08-14T20:47:16.4Z" }}
wheels = [
    {{ url = "{_FILES}/6a/0e/4a824a4fc93b9725a985fcea7115927b72f2ca6966008300a982cb869720/\
pyjokes-0.6.0-py2.py3-none-any.whl", \
hash = "sha256:70b6125186dee5845038505cd16b5e09250da46c730e36b44ffd870e3c81aaaa", size = 26606, \
upload-time = "2019-08-14T20:47:05.345Z" }},
]

[[package]]
name = "six"
version = "1.16.0"
source = {{ registry = "{_INDEX}" }}
sdist = {{ url = "{_FILES}/71/39/171f1c67cd00715f190ba0b100d606d440a28c93c7714febeca8b79af85e/six-1.16.0.tar.gz", \
hash = "sha256:1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926", size = 34041, \
upload-time = "2021-05-05T14:18:18.379Z" }}
wheels = [
    {{ url = "{_FILES}/d9/5a/e7c31adbe875f2abbb91bd84cf2dc52d792b5a01506781dbcf25c91daf11/\
six-1.16.0-py2.py3-none-any.whl", \
hash = "sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254", size = 11053, \
upload-time = "2021-05-05T14:18:17.237Z" }},
]
"""
SIX_1_16_WHEEL = "sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"


def uv_project(extra=""):
    return {"pyproject.toml": PYPROJECT.format(extra=extra), "uv.lock": UV_LOCK,
            "lockedproject/__init__.py": "ANSWER = 42\n", "index.ipynb": "{}"}


def request_for(git_server, name, files, scratch):
    return git_build_request(git_server, name, files, scratch, "bstest-locks")


def facts(client, image, script):
    """Python code run in the image as the server runs it (repo2docker's login shell entrypoint)."""
    out = client.containers.run(image, ["python", "-c", script], remove=True).decode()
    return json.loads(out.strip().splitlines()[-1])


def remove_image(client, image):
    try:
        client.images.remove(image, force=True)
    except docker.errors.ImageNotFound:
        pass


def warnings_of(events):
    return [message for phase, message in events if phase == "warning"]


async def test_uv_lock_is_installed_exactly_with_its_project(docker_client, git_server, tmp_path):
    files = {**uv_project(), "requirements.txt": "six==1.17.0\n", "poetry.lock": "# poetry's\n"}
    request = request_for(git_server, f"uvlock-{RUN}", files, tmp_path)
    try:
        events, error = await build_events(local_builder(), request)
        assert error is None, error
        warnings = warnings_of(events)
        assert any(w.startswith("Warning: requirements.txt is ignored: uv.lock lists the packages")
                   for w in warnings), warnings
        assert any(w.startswith("Warning: poetry.lock is ignored") and "installs uv.lock instead" in w
                   for w in warnings), warnings
        assert any(m.startswith("Building with uv.lock, exactly, on Python 3.11") for _, m in events)
        found = facts(docker_client, request.image, """if True:
            import json, os; os.chdir("/tmp")
            from importlib.metadata import version
            import lockedproject, jupyterhub
            print(json.dumps([version("six"), version("pyjokes"), lockedproject.ANSWER,
                              lockedproject.__file__]))""")
        # the lock's pins, not the newest releases nor the server's six; the project installed
        # (editable, uv's default: from the repository directory)
        assert found == ["1.16.0", "0.6.0", 42, "/home/jovyan/lockedproject/__init__.py"]
        assert os.listdir(tmp_path) == []
    finally:
        remove_image(docker_client, request.image)


async def test_uv_lock_disagreeing_with_pyproject_fails_naming_it(docker_client, git_server, tmp_path):
    request = request_for(git_server, f"uvstale-{RUN}", uv_project(extra=', "attrs"'), tmp_path)
    try:
        events, error = await build_events(local_builder(), request)
        assert isinstance(error, BuildFailed)
        first = str(error).splitlines()[0]
        assert first.startswith(f"Building {git_server.url(f'uvstale-{RUN}')} failed: uv.lock does not "
                                "match pyproject.toml (uv sync --locked: "), first
        assert "Run `uv lock` and commit uv.lock" in first
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(request.image)
        assert not [c for c in docker_client.containers.list(all=True)
                    if c.attrs["Config"]["Image"] == request.image]
        assert os.listdir(tmp_path) == []
    finally:
        remove_image(docker_client, request.image)


async def test_stale_pipfile_lock_is_installed_as_it_is_with_a_warning(docker_client, git_server, tmp_path):
    locked_from = '[packages]\nsix = "==1.16.0"\n\n[requires]\npython_version = "3.11"\n'
    lock = {"_meta": {"hash": {"sha256": sorted(pipfile_hashes(locked_from))[0]}, "pipfile-spec": 6,
                      "requires": {"python_version": "3.11"}, "sources": []},
            "default": {"six": {"version": "==1.16.0", "hashes": [SIX_1_16_WHEEL]}}, "develop": {}}
    files = {"Pipfile": locked_from.replace("1.16.0", "1.17.0"), "Pipfile.lock": json.dumps(lock)}
    request = request_for(git_server, f"pipstale-{RUN}", files, tmp_path)
    try:
        events, error = await build_events(local_builder(), request)
        assert error is None, error
        assert any(w.startswith("Warning: Pipfile.lock was not made from this Pipfile") for w in warnings_of(events))
        found = facts(docker_client, request.image,
                      "import json; from importlib.metadata import version; print(json.dumps(version('six')))")
        assert found == "1.16.0"
    finally:
        remove_image(docker_client, request.image)
