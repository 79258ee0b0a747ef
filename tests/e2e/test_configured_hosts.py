"""A hub set up for GitHub Enterprise and a self-hosted GitLab, end to end: BinderHub's build API
events carry those hosts' URLs (repo_url, binder_ref_url), whatever spelling of the repository the
link used; and no spelling of a banned repository gets past its ban (issue 12, issue 14 item 17).

Real parts: JupyterHub + proxy, the Docker engine, repo2docker and the tests' git daemon on
127.0.0.1. The GHE and GitLab APIs are tests/support/apifixtures.py (they cannot be reached here);
their web hosts are only named, never contacted: builds clone from the git daemon
(clone_base_url). One tiny Dockerfile repository, built once per host."""

import uuid
from urllib.parse import quote

import pytest
import requests

from tests.conftest import serving
from tests.e2e.test_binder_links import EXTRA, base, read_events, user_token
from tests.support.hub import Hub

GHE = "https://ghe.example.org"
GITLAB = "https://gitlab.lab.example"


@pytest.fixture(scope="module")
def hosts(docker_client, git_server, api, tmp_path_factory):
    org = f"hosts-{uuid.uuid4().hex[:6]}"
    sha = git_server.add_repo(f"{org}/tiny", files={"Dockerfile": "FROM binderspawner-base:bookworm\n"})
    api.state.github[f"{org}/tiny"] = {"refs": {"main": sha}, "default": "main"}
    api.state.gitlab[f"{org}/tiny"] = {"refs": {"main": sha}, "default": "main"}
    clone = f"git://127.0.0.1:{git_server.port}"
    extra = EXTRA + "\n".join([
        f'c.GitHubProvider.api_base_url = "{api.url("/github")}"',
        f'c.GitHubProvider.html_base_url = "{GHE}"',
        f'c.GitLabProvider.api_base_url = "{api.url("/gitlab")}/api/v4"',
        f'c.GitLabProvider.html_base_url = "{GITLAB}"',
        f'c.GitHubProvider.clone_base_url = c.GitLabProvider.clone_base_url = "{clone}"',
        'c.GitHubProvider.allowed_private_hosts = c.GitLabProvider.allowed_private_hosts = ["127.0.0.1"]',
        'c.SpecControl.banned_specs = ["^gh/evil-org/", "^gl/evil-group%2F"]',
    ])
    hub = Hub(str(tmp_path_factory.mktemp("hostshub")), extra_config=extra)
    hub.image_prefix = "bstest-hosts-"
    with serving(hub, docker_client, "jupyterhub-hosts.log"):
        yield hub, org, sha


def build_only(hub, token, path):
    """The build API's events for 'v2/…' with build_only (no server), to ready/failed."""
    with requests.get(f"{base(hub)}/hub/build/{path[len('v2/'):]}", params={"build_only": "true"},
                      headers={"Authorization": f"token {token}"}, stream=True, timeout=600) as r:
        return r.status_code, (read_events(r) if r.status_code == 200 else r.text)


def test_build_api_events_carry_the_configured_hosts_urls(hosts):
    hub, org, sha = hosts
    token = user_token(hub, "hosts-builder")
    ghe_url, gl_url = f"{GHE}/{org}/tiny", f"{GITLAB}/{org}/tiny"
    cases = [
        # BinderHub's own spec, and a git link to a URL on the GHE host (GitHub's repository too)
        (f"v2/gh/{org}/tiny/main", ghe_url, f"{ghe_url}/tree/{sha}"),
        (f"v2/git/{quote(f'https://www.ghe.example.org/{org}/tiny.git', safe='')}/main",
         ghe_url, f"{ghe_url}/tree/{sha}"),
        (f"v2/gl/{quote(f'{org}/tiny', safe='')}/main", gl_url, f"{gl_url}/-/tree/{sha}"),
    ]
    for path, repo_url, ref_url in cases:
        status, events = build_only(hub, token, path)
        assert status == 200, events
        last = events[-1]
        assert last["phase"] == "ready", (path, events[-3:])
        assert (last["repo_url"], last["binder_ref_url"]) == (repo_url, ref_url), path
        assert last["binder_request"] == path.split("?")[0]
    assert hub.api("GET", "/users/hosts-builder").json()["servers"] == {}


def test_no_spelling_of_a_banned_repository_gets_past_the_ban(hosts, api):
    hub, _, _ = hosts
    before = len(api.calls())
    spellings = ["gh/evil-org/r", "gh/Evil-Org/R.git", "https://www.ghe.example.org/evil-org/r",
                 "https://GHE.example.org:443/Evil-Org/r.git/", "git://ghe.example.org./evil-org/r",
                 "git/" + quote("https://ghe.example.org/evil-org/r", safe=""),
                 "git/" + quote("http://www.ghe.example.org/evil-org/r.git", safe="") + "/main",
                 "https://gitlab.lab.example/Evil-Group/r.git", "gl/evil-group%2Fsub%2Fr/main"]
    for repo in spellings:
        r = hub.spawn("hosts-mallory", {"repo": repo})
        assert r.status_code == 403 and "banned" in r.json()["message"], (repo, r.status_code, r.text)
    # the same through launch links of the build API
    token = user_token(hub, "hosts-mallory")
    for repo in spellings[2:5]:
        status, events = build_only(hub, token, f"v2/git/{quote(repo, safe='')}/HEAD")
        refused = status == 403 or (status == 200 and events[-1]["phase"] == "failed")
        assert refused and "banned" in str(events), (repo, status, events)
    assert len(api.calls()) == before, "a banned repository was looked up"
    assert hub.api("GET", "/users/hosts-mallory").json()["servers"] == {}
    assert not [c for c in hub.containers() if "hosts-mallory" in c.name]
