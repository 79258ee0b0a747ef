"""A launch from a BinderHub ``gh/`` spec, end to end: a real JupyterHub + proxy, the Docker engine,
repo2docker and the tests' git daemon on 127.0.0.1. GitHub's API is not reachable here, so the hub's
GitHubProvider talks to tests/support/apifixtures.py (a local server answering like GitHub's
documented REST API) and clones from the git daemon (clone_base_url); banned specs are refused
through the REST API before anything is resolved or built."""

import os
import re

import pytest

from tests.conftest import EXAMPLES, serving
from tests.support.hub import Hub

ORG = "e2elab"


@pytest.fixture(scope="module")
def gh_hub(docker_client, git_server, api, tmp_path_factory):
    sha = git_server.add_repo(f"{ORG}/requirements", os.path.join(EXAMPLES, "requirements"))
    api.state.github[f"{ORG}/requirements"] = {"refs": {"main": sha}, "default": "main"}
    extra = "\n".join([
        f'c.GitHubProvider.api_base_url = "{api.url("/github")}"',
        'c.GitHubProvider.html_base_url = "https://github.com"',
        f'c.GitHubProvider.clone_base_url = "git://127.0.0.1:{git_server.port}"',
        'c.GitHubProvider.allowed_private_hosts = ["127.0.0.1"]',
        'c.SpecControl.banned_specs = ["^gh/banned-org/"]',
    ])
    hub = Hub(str(tmp_path_factory.mktemp("ghhub")), extra_config=extra)
    hub.image_prefix = "bstest-gh-"
    with serving(hub, docker_client):
        yield hub, sha


def test_launch_from_a_gh_spec(gh_hub, api):
    hub, sha = gh_hub
    r, events = hub.launch("octo", {"repo": f"gh/{ORG}/requirements/main"})
    assert r.status_code in (201, 202), r.text
    text = "\n".join(e.get("message", "") for e in events)
    assert events and events[-1].get("ready"), text[-3000:]
    assert f"ref main is at {sha[:12]}" in text
    assert [c[1] for c in api.calls("/github")] == [f"/github/repos/{ORG}/requirements/commits/main"]
    container = [c for c in hub.containers() if "JUPYTERHUB_USER=octo" in c.attrs["Config"]["Env"]][0]
    labels = container.labels
    assert labels["binderspawner.provider"] == "github"
    assert labels["binderspawner.spec"] == f"gh/{ORG}/requirements/main"
    assert labels["binderspawner.repo"] == f"https://github.com/{ORG}/requirements"
    assert labels["binderspawner.commit"] == sha
    assert re.fullmatch(
        rf"bstest-gh-github-com-{ORG}-requirements-[0-9a-f]{{8}}:{sha}",
        labels["binderspawner.image"])
    assert hub.server_get("octo", "api/status").status_code == 200
    hub.stop_server("octo")


def test_banned_spec_is_refused_with_403(gh_hub, api):
    hub, _ = gh_hub
    before = len(api.calls("/github"))
    r = hub.spawn("mallory", {"repo": "https://github.com/banned-org/tool"})
    assert r.status_code == 403, r.text
    assert "gh/banned-org/tool/HEAD is not allowed on this hub" in r.json()["message"]
    assert len(api.calls("/github")) == before  # refused before any lookup


def test_conflicting_refs_are_refused(gh_hub):
    hub, _ = gh_hub
    r = hub.spawn("mallory", {"repo": f"gh/{ORG}/requirements/main", "ref": "dev"})
    assert r.status_code == 400 and "already names the ref 'main'" in r.json()["message"]
