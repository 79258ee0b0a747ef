"""Launches real users make (issue 15): refs git allows, paths with spaces and non-ASCII letters,
servers that cannot start, commits that do not exist, nothing left running.

Real parts only: a hub of our own with binderspawner's handlers, configurable-http-proxy, the
Docker engine, repo2docker, a git daemon on 127.0.0.1 and Chromium. Each repository is made here;
the working ones share one Dockerfile (and so Docker's build cache with examples/dockerfile).
"""

import os
import re
import signal
import uuid
from urllib.parse import quote

import pytest
import requests

from tests.conftest import ARTIFACTS, serving
from tests.support import procs
from tests.support.gitserver import GitServer, git
from tests.support.browser import chromium
from tests.support.hub import Hub
from tests.support.images import SERVER_DOCKERFILE
from tests.support.lfsserver import DATA, LfsServer, add_lfs_repo

EXTRA = """
from binderspawner.web.handlers import binder_handlers, TEMPLATE_PATH
c.JupyterHub.extra_handlers = binder_handlers()
c.JupyterHub.template_paths = [TEMPLATE_PATH]
c.Spawner.http_timeout = 600  # a dead server must fail on its own, not by this timeout
"""
SERVER_IMAGE = SERVER_DOCKERFILE
NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
ODD_REFS = ["issue#7147", "a,b!=c", "café-ветка"]
SPACED = "Tutorials/Signals - Sampling.ipynb"
UNICODE = "Données/résumé.ipynb"


@pytest.fixture(scope="module")
def repos(git_server):
    suffix = uuid.uuid4().hex[:6]
    names = {key: f"i15-{key}-{suffix}" for key in ("good", "start", "nosingleuser")}
    git_server.add_repo(names["good"], files={"Dockerfile": SERVER_IMAGE, SPACED: NOTEBOOK})
    git_server.commit(names["good"], {UNICODE: NOTEBOOK})
    for ref in ODD_REFS:  # branches git allows, on the same commit (one image)
        git("push", "-q", "origin", f"HEAD:refs/heads/{ref}",
            cwd=os.path.join(git_server.work, names["good"]))
    git_server.add_repo(names["start"], files={
        "Dockerfile": SERVER_IMAGE + 'ENTRYPOINT ["/bin/sh", "/home/jovyan/start"]\n',
        "start": "#!/bin/sh\necho 'start: preparing the data'\n"
                 "echo 'start: data/missing.csv: no such file' >&2\nexit 3\n"})
    git_server.add_repo(names["nosingleuser"], files={"Dockerfile": (
        "FROM binderspawner-base:bookworm\nRUN useradd --create-home --uid 1000 jovyan\nUSER jovyan\n")})
    return {key: git_server.url(name) for key, name in names.items()}


@pytest.fixture(scope="module")
def lhub(docker_client, git_server, tmp_path_factory):
    hub = Hub(str(tmp_path_factory.mktemp("i15hub")), extra_config=EXTRA,
              run_id="i15" + uuid.uuid4().hex[:6])
    hub.image_prefix = "bstest-i15-"
    with serving(hub, docker_client, "jupyterhub-i15.log"):
        yield hub


def base(hub):
    return f"http://127.0.0.1:{hub.port}"


def link(repo, ref, query=""):
    return f"v2/git/{quote(repo, safe='')}/{quote(ref, safe='')}" + (f"?{query}" if query else "")


def user_containers(hub, user):
    return [c for c in hub.containers() if f"JUPYTERHUB_USER={user}" in c.attrs["Config"]["Env"]]


def workdir(git_server, url):
    return os.path.join(git_server.work, url.rsplit("/", 1)[1].removesuffix(".git"))


def launched(hub, user, options):
    response, events = hub.launch(user, options)
    assert response.status_code in (201, 202), response.text
    assert events and events[-1].get("ready"), events
    return events


# 1. refs git allows ---------------------------------------------------------------------------------

def test_refs_git_allows_launch_and_unknown_commits_cost_nothing(lhub, git_server, repos):
    sha = git("rev-parse", "HEAD", cwd=workdir(git_server, repos["good"]))
    for i, ref in enumerate(ODD_REFS):
        user = f"refs{i}"
        events = launched(lhub, user, {"repo": repos["good"], "ref": ref})
        assert any(f"branch {ref} is at {sha[:12]}" in e.get("message", "") for e in events), events
        state = lhub.api("GET", f"/users/{user}").json()["servers"][""]
        assert state["ready"]
        lhub.stop_server(user)
    # what git refuses is refused with git's reason
    r = lhub.spawn("refs-bad", {"repo": repos["good"], "ref": "main:x"})
    assert r.status_code == 400 and "':'" in r.json()["message"], r.text

    # 7. a full sha that is not in the repository: refused like an unknown ref, nothing built
    missing = "0123456789abcdef0123456789abcdef01234567"
    log_before = len(lhub.log())
    r = lhub.spawn("nosha", {"repo": repos["good"], "ref": missing})
    assert r.status_code == 400, r.text
    assert f"has no commit '{missing}'" in r.json()["message"]
    assert lhub.api("GET", "/users/nosha").json()["servers"] == {}
    assert "Building" not in lhub.log()[log_before:] and "repo2docker" not in lhub.log()[log_before:]
    # (a commit that exists but is no branch tip: tests/integration/test_launch_refs.py)


# 2. paths with spaces and non-ASCII letters ------------------------------------------------------------

@pytest.mark.parametrize("urlpath, opened", [
    ("lab/tree/" + SPACED, "lab/tree/Tutorials/Signals%20-%20Sampling.ipynb"),
    ("lab/tree/Tutorials/Signals%20-%20Sampling.ipynb", "lab/tree/Tutorials/Signals%20-%20Sampling.ipynb"),
    ("lab/tree/" + UNICODE, "lab/tree/Donn%C3%A9es/r%C3%A9sum%C3%A9.ipynb"),
])
def test_urlpath_with_spaces_and_unicode_opens_that_file(lhub, repos, urlpath, opened):
    user = "paths"
    launched(lhub, user, {"repo": repos["good"], "urlpath": urlpath})
    try:
        r = lhub.server_get(user, "")
        assert r.status_code in (301, 302), r.text
        assert r.headers["Location"].rstrip("?").endswith(f"/user/{user}/{opened}"), r.headers["Location"]
        contents = lhub.server_get(user, "api/contents/" + opened[len("lab/tree/"):])
        assert contents.status_code == 200 and contents.json()["type"] == "notebook"
    finally:
        lhub.stop_server(user)


# 3. a server that cannot start fails in seconds, saying why --------------------------------------------

def _assert_exit_reported(message):
    first = message.splitlines()[0]
    assert "stopped before it was ready (exit code 3)" in first and "'start' script" in first, message
    assert "start: data/missing.csv: no such file" in message and "start: preparing the data" in message


def test_failing_start_script_fails_with_its_exit_code_and_output(lhub, repos):
    # the first launch builds (the POST may answer 202 first); the stream ends in 'failed'
    response, events = lhub.launch("crash1", {"repo": repos["start"]})
    assert events[-1].get("failed"), events
    _assert_exit_reported(events[-1]["message"])
    if response.status_code != 202:
        assert response.status_code == 422, response.text
    # the image exists now: the request is still open when the server dies, so it says whose
    # fault it is (422: what the repository asks for)
    r = lhub.spawn("crash2", {"repo": repos["start"]})
    assert r.status_code == 422, r.text
    _assert_exit_reported(r.json()["message"])
    for user in ("crash1", "crash2"):
        assert user_containers(lhub, user) == []  # removed, its log read first
        model = lhub.api("GET", f"/users/{user}").json()
        assert not model["servers"] or not any(s["pending"] for s in model["servers"].values()), model
    # the same launch works again once the cause is gone? (a new launch is a new try, not stuck)
    r = lhub.spawn("crash2", {"repo": repos["start"]})
    assert r.status_code == 422, r.text


def test_image_without_jupyterhub_singleuser_fails_saying_so(lhub, repos):
    response, events = lhub.launch("nosu1", {"repo": repos["nosingleuser"]})
    assert events[-1].get("failed"), events
    message = events[-1]["message"]
    assert "no 'jupyterhub-singleuser' command" in message.splitlines()[0], message
    r = lhub.spawn("nosu2", {"repo": repos["nosingleuser"]})
    assert r.status_code == 422, r.text
    assert "jupyterhub-singleuser" in r.json()["message"]
    assert user_containers(lhub, "nosu1") == [] and user_containers(lhub, "nosu2") == []


# 4. Git LFS ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lfs_server(tmp_path_factory):
    server = LfsServer(str(tmp_path_factory.mktemp("i15lfs"))).start()
    yield server
    server.stop()


def test_lfs_files_are_in_the_launched_server(lhub, git_server, lfs_server):
    name = f"i15-lfs-{uuid.uuid4().hex[:6]}"
    url = add_lfs_repo(git_server, lfs_server, name, files={"Dockerfile": SERVER_IMAGE})
    assert git("show", "HEAD:data.csv", cwd=workdir(git_server, url)).startswith("version https://git-lfs")
    events = launched(lhub, "lfs", {"repo": url})
    assert any("Fetched 1 Git LFS file(s) (*.csv): data.csv" in e.get("message", "") for e in events), events
    try:
        r = lhub.server_get("lfs", "api/contents/data.csv?content=1&format=text")
        assert r.status_code == 200 and r.json()["content"] == f"{DATA}{name}\n"
    finally:
        lhub.stop_server("lfs")


# 1, 2 and 3 in a browser ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


def login(page, hub, user, next_url):
    page.goto(next_url)
    page.wait_for_url(re.compile(r".*/hub/login.*"))
    page.fill("#username_input", user)
    page.fill("#password_input", "any")
    page.click("#login_submit")


def shot(page, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"i15-{name}.png"), full_page=True)


def test_link_with_escaped_ref_and_spaced_path_lands_on_the_file(lhub, repos, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    url = f"{base(lhub)}/hub/" + link(repos["good"], "issue#7147",
                                      "urlpath=lab/tree/Tutorials/Signals%20-%20Sampling.ipynb")
    assert "issue%237147" in url
    try:
        login(page, lhub, "bella", url)
        page.wait_for_url(re.compile(r".*/user/bella/[^/]+/lab/tree/Tutorials/Signals%20-%20Sampling\.ipynb"),
                          timeout=600_000)
        page.wait_for_selector(".lm-TabBar-tab:has-text('Signals - Sampling.ipynb')", timeout=120_000)
        shot(page, "1-spaced-path")
    finally:
        context.close()
    (name,) = lhub.api("GET", "/users/bella").json()["servers"]
    lhub.stop_server("bella", name)


def test_failed_start_shows_why_on_the_progress_page(lhub, repos, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    launch = f"{base(lhub)}/hub/{link(repos['start'], 'main')}"
    try:
        login(page, lhub, "clara", launch)  # built first: the failure arrives on the open progress page
        page.wait_for_url(re.compile(r".*/hub/spawn-pending/clara/.*"), timeout=60_000)
        page.wait_for_selector("text=exit code 3", timeout=300_000)
        assert "data/missing.csv: no such file" in page.content()
        shot(page, "2-failed-start")
        # the image is cached now: the server fails within the launch request's first second, and
        # the link still lands on the progress page with the reason (not on the hub's error page)
        page.goto(launch)
        page.wait_for_url(re.compile(r".*/hub/spawn-pending/clara/.*"), timeout=60_000)
        page.wait_for_selector("text=exit code 3", timeout=120_000)
        assert "data/missing.csv: no such file" in page.content()
    finally:
        context.close()


# 8. nothing left running --------------------------------------------------------------------------------

def test_git_server_stops_its_daemon(tmp_path):
    server = GitServer(str(tmp_path)).start()
    server.add_repo("x", files={"a": "b"})
    git("ls-remote", server.url("x"))
    port = f"--port={server.port}"
    assert [p for p in procs.of_session() if port in p[1]]
    server.stop()
    assert [p for p in procs.of_session() if port in p[1]] == []
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{server.port}/", timeout=2)


def test_killed_hub_leaves_nothing_after_cleanup(docker_client, tmp_path):
    hub = Hub(str(tmp_path), run_id="i15k" + uuid.uuid4().hex[:6])
    try:
        hub.start()
        hub.stop(signal.SIGKILL)
        left = procs.of_hub(hub.run_id, hub.hub_port)
        assert any("configurable-http-proxy" in cmd for _, cmd in left), left  # what a kill leaves
    finally:
        hub.cleanup()
    assert procs.of_hub(hub.run_id, hub.hub_port) == []
