"""Launch failure messages (binderspawner/messages.py) and the pure helpers behind them."""

from types import SimpleNamespace

import pytest

from binderspawner import messages
from binderspawner.builders.lfs import endpoint_host_problem
from binderspawner.dockerhost.startup import server_api_url


@pytest.mark.parametrize("code, first", [
    (3, "check the repository's 'start' script"),
    (127, "no 'jupyterhub-singleuser' command"),
])
def test_exited_server_first_line_says_what_to_change_then_details(code, first):
    text = messages.server_exited("org/repo", code, ["one", "", "two: it broke"])
    head, blank, *details = text.splitlines()
    assert head.startswith(f"The server of org/repo stopped before it was ready (exit code {code})")
    assert first in head and blank == ""
    assert details == [f"Exit code {code}. Last lines of the server's output:", "one", "two: it broke"]


def test_server_that_wrote_nothing_says_so():
    assert messages.server_exited("r", 1, []).endswith("Exit code 1. The server wrote nothing.")


def test_docker_refusal_names_the_missing_command():
    text = messages.server_not_started(
        "r", 'failed to create task: exec: "jupyterhub-singleuser": executable file not found in $PATH')
    assert "no 'jupyterhub-singleuser' command" in text.splitlines()[0]
    assert text.splitlines()[-1].startswith("Docker said: failed to create task")


@pytest.mark.parametrize("started, url", [
    ("http://172.17.0.5:8888", "http://172.17.0.5:8888/user/a/api"),
    (("172.17.0.5", 8888), "http://172.17.0.5:8888/user/a/api"),
    (("fd00::5", 8888), "http://[fd00::5]:8888/user/a/api"),
])
def test_server_api_url_is_what_the_hub_checks(started, url):
    spawner = SimpleNamespace(server=SimpleNamespace(base_url="/user/a/"))
    assert server_api_url(spawner, started) == url


@pytest.mark.parametrize("origin, env, problem", [
    ("https://github.com/o/r", "Endpoint=https://github.com/o/r.git/info/lfs (auth=none)\n", None),
    ("git://127.0.0.1:9418/r.git", "Endpoint=http://127.0.0.1:5000/t/r (auth=none)\n", None),
    ("https://github.com/o/r", "Endpoint=http://169.254.169.254/x (auth=none)\n", "'169.254.169.254'"),
    ("https://github.com/o/r", "LocalWorkingDir=/x\n", "found no LFS server"),
])
def test_lfs_server_only_on_the_repository_host(origin, env, problem):
    found = endpoint_host_problem(origin, env)
    assert (found is None) if problem is None else (problem in found)
