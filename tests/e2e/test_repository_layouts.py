"""Layouts lab members bring, launched through the real hub: the server has exactly what the files
ask for (versions, extras, markers, includes, the repository itself, the Python of runtime.txt),
written the way editors on Windows write them (byte-order mark, CRLF), and what is not honoured is
named on the progress page. Two builds; the other checks reuse their images or build nothing."""

import re
import uuid

import pytest

BOM = "\ufeff"
RICH = {
    "runtime.txt": BOM + "python-3.13-2024-05-01\r\n",
    "requirements.txt": BOM + "# pinned, as a lab writes them\r\n\r\nsix==1.16.0   # a comment\r\n"
                              "urllib3[socks]==2.2.1\r\ntomli==2.0.1; python_version < '3.11'\r\n"
                              "-r more.txt\r\n-e .\r\n",
    "more.txt": "idna==3.6 ; python_version >= '3.11'\n",
    "setup.py": "from setuptools import setup\nsetup(name='layoutpkg', version='0.1', py_modules=['layoutpkg'])\n",
    "layoutpkg.py": "VALUE = 42\n",
}
CHECK = ("import sys, importlib.util, six, urllib3, socks, idna, layoutpkg; "
         "print(sys.version_info[:2], six.__version__, urllib3.__version__, idna.__version__, layoutpkg.VALUE, "
         "layoutpkg.__file__, importlib.util.find_spec('tomli'))")


def messages(events):
    return [e.get("message", "") for e in events]


def assert_ready(events):
    assert events and events[-1].get("ready"), "\n".join(messages(events)[-30:])


def run_in_server(hub, user, command):
    [container] = [c for c in hub.containers() if f"JUPYTERHUB_USER={user}" in c.attrs["Config"]["Env"]]
    result = container.exec_run(command)
    assert result.exit_code == 0, result.output
    return result.output.decode()


@pytest.fixture(scope="module")
def rich(hub, git_server):
    name = f"layout-{uuid.uuid4().hex[:8]}"
    git_server.add_repo(name, files=RICH)
    user = f"lay{uuid.uuid4().hex[:6]}"
    response, events = hub.launch(user, {"repo": git_server.url(name)})
    assert_ready(events)
    yield name, user, events
    hub.stop_server(user)


def test_requirements_and_runtime_txt_as_windows_editors_write_them(hub, rich):
    name, user, events = rich
    out = run_in_server(hub, user, ["/srv/venv/bin/python", "-c", CHECK])
    # Python of runtime.txt; pins; the extra's package; the marker that is false skipped; -r; -e .
    assert out.strip() == "(3, 13) 1.16.0 2.2.1 3.6 42 /home/jovyan/layoutpkg.py None", out
    assert any("Building with Python 3.13 (from runtime.txt), then `pip install .`" in m for m in messages(events))
    [date] = [m for m in messages(events) if "runtime.txt's date 2024-05-01 is not used" in m]
    assert "write python-3.13 in runtime.txt" in date


def test_a_trailing_slash_finds_the_same_image(hub, git_server, rich):
    name, _, first = rich
    image = re.search(r"image (\S+:[0-9a-f]{40})", "\n".join(messages(first))).group(1)
    user = f"lay{uuid.uuid4().hex[:6]}"
    response, events = hub.launch(user, {"repo": git_server.url(name) + "/"})
    assert_ready(events)
    try:
        assert any(f"image {image}" in m for m in messages(events)), messages(events)[:5]
        assert not [m for m in messages(events) if m.startswith("[building]")]
    finally:
        hub.stop_server(user)


def test_a_repository_that_installs_nothing_says_so_and_names_its_pyproject(hub, git_server):
    name = f"layout-{uuid.uuid4().hex[:8]}"
    git_server.add_repo(name, files={"README.md": "Notebooks only.\n",
                                     "pyproject.toml": "[tool.black]\nline-length = 100\n"})
    user = f"lay{uuid.uuid4().hex[:6]}"
    response, events = hub.launch(user, {"repo": git_server.url(name)})
    assert_ready(events)
    try:
        assert any("pyproject.toml is not installed (no `pip install .`)" in m and
                   "no [project] table and no [build-system] table" in m for m in messages(events))
        assert any("No requirements.txt, Pipfile, environment.yml, setup.py or installable pyproject.toml" in m
                   for m in messages(events))
    finally:
        hub.stop_server(user)


def test_a_postbuild_with_windows_line_endings_is_refused_before_building(hub, git_server):
    name = f"layout-{uuid.uuid4().hex[:8]}"
    git_server.add_repo(name, files={"binder/postBuild": "#!/bin/bash\r\necho hi\r\n",
                                     "binder/requirements.txt": "six\n"})
    user = f"lay{uuid.uuid4().hex[:6]}"
    response, events = hub.launch(user, {"repo": git_server.url(name)}, timeout=120)
    said = [response.json().get("message", "")] if response.status_code >= 400 else []
    said += [e.get("message", "") for e in events if e.get("failed")]
    assert any(m.startswith("binder/postBuild has Windows line endings (CRLF)") for m in said), said
    assert not [m for m in messages(events) if m.startswith("[building]")]
    assert [c for c in hub.containers() if f"JUPYTERHUB_USER={user}" in c.attrs["Config"]["Env"]] == []
