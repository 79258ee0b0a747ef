"""The lab authenticators (binderspawner/auth/) against GitHub and GitLab stand-ins.

GitHub.com and GitLab.com cannot be reached here; tests/support/oauthfixtures.py serves their
documented OAuth and REST responses on 127.0.0.1. Sign-in runs oauthenticator's real code inside a
real JupyterHub (tests/support/hub.py) behind its proxy; no user server is started (launches are
made to fail while resolving, after the member's token was used). The provider tests need no hub.
"""

import secrets
import uuid
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import requests

from binderspawner.auth import LabGitHubAuthenticator, LabGitLabAuthenticator
from binderspawner.errors import LaunchError
from binderspawner.providers import GitHubProvider, GitLabProvider, TokenCredentials
from binderspawner.dockerhost import DockerBinderSpawner
from tests.conftest import serving
from tests.support.apifixtures import fresh_provider_caches
from tests.support.hub import Hub
from tests.support.oauthfixtures import GitHubStandIn, GitLabStandIn

SHA = "5" * 40
ORG, TEAM, GROUP = "lab-org", "members", "lab-group"
EXPIRED = "auth has expired for {}, login again"


@pytest.fixture(scope="module")
def github():
    server = GitHubStandIn().start()
    server.state.add_repo(f"{ORG}/secret", {"main": SHA}, teams={f"{ORG}:{TEAM}"})
    for login in ("ada", "alice", "amy", "carl", "cleo", "cody"):
        server.state.add_team_member(ORG, TEAM, login)
    server.state.add_org_member(ORG, "bob")  # in the org, not in the team
    server.state.add_user("ben")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gitlab():
    server = GitLabStandIn().start()
    server.state.add_project(f"{GROUP}/secret", {"main": SHA})
    for login in ("ada", "dana", "frank", "gina"):
        server.state.add_group_member(GROUP, login, access_level=30)  # Developer
    server.state.add_group_member("other-group", "eve")
    server.state.add_project("other-group/tool", {"main": SHA}, members={"gus": 10})  # a Guest
    server.state.add_user("ben")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def cold_caches():
    fresh_provider_caches()


def host_of(url):
    return urlsplit(url).netloc


def assert_no_token_in_urls(standin, *tokens):
    for request in standin.state.requests:
        assert not any(token in request.uri for token in tokens), request.uri


# the hubs ----------------------------------------------------------------------------------------


def lab_hub(tmp_path_factory, name, config, client_env):
    """A Hub whose users sign in at a stand-in; auth_state encrypted with a fresh key."""
    hub = Hub(str(tmp_path_factory.mktemp(name)), run_id=f"auth{uuid.uuid4().hex[:6]}",
              env={"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32), **client_env})
    hub.image_prefix = "bstest-auth-"
    callback = f"http://127.0.0.1:{hub.port}/hub/oauth_callback"
    hub.extra_config = "\n".join([
        "c.Authenticator.allow_all = False",
        "c.JupyterHub.redirect_to_server = False",  # land on /hub/home after login, spawn nothing
        *config(callback),
    ])
    return hub, callback


@pytest.fixture(scope="module")
def github_hub(docker_client, github, tmp_path_factory):
    hub, callback = lab_hub(tmp_path_factory, "authgh", lambda callback: [
        'c.JupyterHub.authenticator_class = "lab-github"',
        f'c.LabGitHubAuthenticator.github_url = "{github.url()}"',
        f'c.LabGitHubAuthenticator.allowed_organizations = {{"{ORG}:{TEAM}"}}',
        f'c.LabGitHubAuthenticator.oauth_callback_url = "{callback}"',
        f'c.GitHubProvider.api_base_url = "{github.api_url()}"',
        'c.GitHubProvider.allowed_private_hosts = ["127.0.0.1"]',
    ], {"GITHUB_CLIENT_ID": github.client_id, "GITHUB_CLIENT_SECRET": github.client_secret})
    github.state.callback_url = callback
    with serving(hub, docker_client, "jupyterhub-auth-github.log"):
        yield hub


@pytest.fixture(scope="module")
def gitlab_hub(docker_client, gitlab, tmp_path_factory):
    hub, callback = lab_hub(tmp_path_factory, "authgl", lambda callback: [
        'c.JupyterHub.authenticator_class = "lab-gitlab"',
        f'c.LabGitLabAuthenticator.gitlab_url = "{gitlab.url()}"',
        f'c.LabGitLabAuthenticator.allowed_gitlab_groups = {{"{GROUP}"}}',
        f'c.LabGitLabAuthenticator.oauth_callback_url = "{callback}"',
        f'c.GitLabProvider.html_base_url = "{gitlab.url()}"',
        'c.GitLabProvider.allowed_private_hosts = ["127.0.0.1"]',
    ], {"GITLAB_CLIENT_ID": gitlab.client_id, "GITLAB_CLIENT_SECRET": gitlab.client_secret})
    gitlab.state.callback_url = callback
    with serving(hub, docker_client, "jupyterhub-auth-gitlab.log"):
        yield hub


def log_in(hub, standin, login):
    """Sign in through the proxy as a browser would: hub -> provider (approves ``login`` at once)
    -> hub callback. Returns the session and the last response."""
    standin.state.signed_in = login
    try:
        session = requests.Session()
        return session, session.get(f"http://127.0.0.1:{hub.port}/hub/oauth_login", timeout=60)
    finally:
        standin.state.signed_in = None


def launch_as(session, hub, name, options):
    """The member's own spawn request (cookie-authenticated, with the xsrf token pages set)."""
    xsrf = session.cookies.get("_xsrf", path="/hub/")
    return session.post(hub.api_url(f"/users/{name}/server"), json=options,
                        headers={"X-XSRFToken": xsrf}, timeout=60)


def user_model(hub, name):
    r = hub.api("GET", f"/users/{name}")  # the tests' service has admin:users, so auth_state too
    return r.json() if r.status_code == 200 else None


def assert_admitted(hub, r, name):
    assert r.status_code == 200 and urlsplit(r.url).path == "/hub/home", (r.status_code, r.url)
    assert [h.status_code for h in r.history][:1] == [302]
    model = user_model(hub, name)
    assert model["groups"] == ["lab"]
    return model["auth_state"]


def assert_refused(hub, r, name):
    assert r.status_code == 403, (r.status_code, r.url, r.text[:500])
    assert urlsplit(r.url).path == "/hub/oauth_callback"
    assert user_model(hub, name) is None  # no user was created


# GitHub through the hub -------------------------------------------------------------------------


def test_github_team_member_signs_in_and_joins_the_lab_group(github_hub, github):
    _, r = log_in(github_hub, github, "alice")
    auth_state = assert_admitted(github_hub, r, "alice")
    token = auth_state["access_token"]
    assert github.state.holder(token) == "alice"  # the token GitHub issued, kept in auth_state
    assert auth_state["token_response"]["token_type"] == "bearer"
    assert auth_state["github_user"]["login"] == "alice"
    assert ("GET", f"/api/v3/orgs/{ORG}/teams/{TEAM}/members/alice", True, "alice") in github.state.requests
    assert_no_token_in_urls(github, token)


@pytest.mark.parametrize("login", ["bob", "mallory"])  # in the org but not the team; in neither
def test_github_non_member_is_refused_and_not_created(github_hub, github, login):
    _, r = log_in(github_hub, github, login)
    assert_refused(github_hub, r, login)


def test_github_member_launches_with_their_own_token(github_hub, github):
    session, r = log_in(github_hub, github, "amy")
    assert_admitted(github_hub, r, "amy")
    r = launch_as(session, github_hub, "amy", {"repo": f"gh/{ORG}/secret", "ref": "no-such-ref"})
    # GitHub let amy's token see the private repository (a missing ref, not "not found"): the
    # launch carried her credentials, bound to the host that issued them.
    assert r.status_code == 404, r.text
    assert r.json()["message"].startswith(f"{ORG}/secret has no branch, tag or commit 'no-such-ref'")
    assert ("GET", f"/api/v3/repos/{ORG}/secret/commits/no-such-ref", True, "amy") in github.state.requests


def assert_refused_before_resolving(hub, standin, r, name, before, membership):
    """The launch was refused at the membership check: nothing resolved, no server."""
    assert r.status_code >= 400, r.text
    asked = standin.state.requests[before:]
    assert ("GET", membership, True, name) in asked
    assert not any("/repos/" in q.uri or "/repository/" in q.uri for q in asked)
    assert user_model(hub, name)["servers"] == {}
    assert f"{name} is no longer a member of the lab" in hub.log()


def remove_and_launch(hub, github, name, launch):
    session, r = log_in(hub, github, name)
    assert_admitted(hub, r, name)
    github.state.remove_team_member(ORG, TEAM, name)
    before = len(github.state.requests)
    return launch(session), before


def test_github_member_removed_from_the_team_must_sign_in_again(github_hub, github):
    r, before = remove_and_launch(github_hub, github, "carl", lambda session: launch_as(
        session, github_hub, "carl", {"repo": f"gh/{ORG}/secret", "ref": "main"}))
    assert_refused_before_resolving(github_hub, github, r, "carl", before,
                                    f"/api/v3/orgs/{ORG}/teams/{TEAM}/members/carl")
    _, r = log_in(github_hub, github, "carl")
    assert r.status_code == 403 and urlsplit(r.url).path == "/hub/oauth_callback"


def test_github_removed_member_is_told_to_sign_in_again(github_hub, github):
    r, _ = remove_and_launch(github_hub, github, "cleo", lambda session: launch_as(
        session, github_hub, "cleo", {"repo": f"gh/{ORG}/secret", "ref": "main"}))
    assert (r.status_code, r.json()["message"]) == (403, EXPIRED.format("cleo"))


def test_github_removed_member_is_refused_on_a_token_authenticated_spawn(github_hub, github):
    r, _ = remove_and_launch(github_hub, github, "cody", lambda session: github_hub.api(
        "POST", "/users/cody/server", json={"repo": f"gh/{ORG}/secret", "ref": "no-such-ref"}))
    assert (r.status_code, r.json()["message"]) == (403, EXPIRED.format("cody")), r.text


# GitLab through the hub -------------------------------------------------------------------------


def test_gitlab_group_member_signs_in_and_joins_the_lab_group(gitlab_hub, gitlab):
    _, r = log_in(gitlab_hub, gitlab, "dana")
    auth_state = assert_admitted(gitlab_hub, r, "dana")
    assert gitlab.state.holder(auth_state["access_token"]) == "dana"
    assert auth_state["refresh_token"] and auth_state["gitlab_user"]["username"] == "dana"
    dana = gitlab.state.users["dana"]["id"]
    assert ("GET", f"/api/v4/groups/{GROUP}/members/all/{dana}", True, "dana") in gitlab.state.requests
    assert_no_token_in_urls(gitlab, auth_state["access_token"], auth_state["refresh_token"])


def test_gitlab_non_member_is_refused_and_not_created(gitlab_hub, gitlab):
    _, r = log_in(gitlab_hub, gitlab, "eve")
    assert_refused(gitlab_hub, r, "eve")


def test_gitlab_expired_token_is_renewed_before_a_launch(gitlab_hub, gitlab):
    session, r = log_in(gitlab_hub, gitlab, "frank")
    old = assert_admitted(gitlab_hub, r, "frank")
    gitlab.state.expire_tokens("frank")
    before = len(gitlab.state.requests)
    r = launch_as(session, gitlab_hub, "frank", {"repo": f"gl/{GROUP}%2Fsecret", "ref": "no-such-ref"})
    assert r.status_code == 404, r.text
    assert f"{GROUP}/secret has no branch, tag or commit 'no-such-ref'" in r.json()["message"]
    new = user_model(gitlab_hub, "frank")["auth_state"]
    assert new["access_token"] != old["access_token"] and new["refresh_token"] != old["refresh_token"]
    assert gitlab.state.holder(new["access_token"]) == "frank"
    assert gitlab.state.holder(old["access_token"]) is None
    asked = [(q.method, q.uri.split("?")[0], q.authorized, q.who) for q in gitlab.state.requests[before:]]
    expired_user = asked.index(("GET", "/api/v4/user", True, None))  # 401: the token expired
    assert expired_user < asked.index(("POST", "/oauth/token", False, None))
    # resolved with the renewed token (the expired one no longer names anyone)
    commits = f"/api/v4/projects/{GROUP}%2Fsecret/repository/commits/no-such-ref"
    assert ("GET", commits, True, "frank") in asked
    assert_no_token_in_urls(gitlab, old["access_token"], new["access_token"], new["refresh_token"])


def test_gitlab_member_removed_from_the_group_must_sign_in_again(gitlab_hub, gitlab):
    session, r = log_in(gitlab_hub, gitlab, "gina")
    assert_admitted(gitlab_hub, r, "gina")
    gitlab.state.remove_group_member(GROUP, "gina")
    before = len(gitlab.state.requests)
    r = launch_as(session, gitlab_hub, "gina", {"repo": f"gl/{GROUP}%2Fsecret", "ref": "main"})
    gina = gitlab.state.users["gina"]["id"]
    assert_refused_before_resolving(gitlab_hub, gitlab, r, "gina", before,
                                    f"/api/v4/groups/{GROUP}/members/all/{gina}")
    _, r = log_in(gitlab_hub, gitlab, "gina")
    assert r.status_code == 403 and urlsplit(r.url).path == "/hub/oauth_callback"


# providers with members' tokens (no hub) --------------------------------------------------------


def github_provider(github):
    return GitHubProvider(api_base_url=github.api_url(), allowed_private_hosts=["127.0.0.1"])


def gitlab_provider(gitlab):
    return GitLabProvider(html_base_url=gitlab.url(), allowed_private_hosts=["127.0.0.1"])


def credentials(standin, login):
    return TokenCredentials(token=standin.issue_token(login), hosts=(host_of(standin.url()),))


async def refusal(provider, repo, ref, creds):
    with pytest.raises(LaunchError) as caught:
        await provider.resolve(provider.parse(repo), ref, credentials=creds)
    return caught.value.status_code, str(caught.value)


@pytest.mark.parametrize("ref", ["main", SHA])
async def test_github_private_repo_reads_only_with_a_readers_token(github, ref):
    provider = github_provider(github)
    ada, ben = credentials(github, "ada"), credentials(github, "ben")
    resolved = await provider.resolve(provider.parse(f"gh/{ORG}/secret"), ref, credentials=ada)
    assert resolved.version == SHA
    # A full sha is asked about too: an image built for ada is no way in for ben.
    assert ("GET", f"/api/v3/repos/{ORG}/secret/commits/{ref}", True, "ada") in github.state.requests
    forbidden = await refusal(provider, f"gh/{ORG}/secret", ref, ben)
    missing = await refusal(provider, f"gh/{ORG}/nothing", ref, ada)
    anonymous = await refusal(provider, f"gh/{ORG}/secret", ref, None)
    # Nothing tells ben whether the repository exists.
    assert forbidden == anonymous == (404, missing[1].replace(f"{ORG}/nothing", f"{ORG}/secret"))
    assert ("GET", f"/api/v3/repos/{ORG}/secret/commits/{ref}", True, "ben") in github.state.requests
    assert_no_token_in_urls(github, ada.token, ben.token)


@pytest.mark.parametrize("outsider", ["ben", "gus"])  # not a member; a Guest of another project
@pytest.mark.parametrize("ref", [None, "main", SHA])
async def test_gitlab_private_project_reads_only_with_a_members_token(gitlab, ref, outsider):
    provider = gitlab_provider(gitlab)
    ada, other = credentials(gitlab, "ada"), credentials(gitlab, outsider)
    resolved = await provider.resolve(provider.parse(f"gl/{GROUP}%2Fsecret"), ref, credentials=ada)
    assert resolved.version == SHA
    asked = ref or "main"  # the default branch, after GET /projects/:id
    assert ("GET", f"/api/v4/projects/{GROUP}%2Fsecret/repository/commits/{asked}", True, "ada") \
        in gitlab.state.requests
    forbidden = await refusal(provider, f"gl/{GROUP}%2Fsecret", ref, other)
    missing = await refusal(provider, f"gl/{GROUP}%2Fnothing", ref, ada)
    anonymous = await refusal(provider, f"gl/{GROUP}%2Fsecret", ref, None)
    assert forbidden == anonymous == (404, missing[1].replace(f"{GROUP}/nothing", f"{GROUP}/secret"))
    assert_no_token_in_urls(gitlab, ada.token, other.token)


async def test_gitlab_guest_sees_the_project_but_not_its_code(gitlab):
    """GitLab's own rule, which the refusal above relies on: Guests get the project, not commits."""
    provider = gitlab_provider(gitlab)
    gus = credentials(gitlab, "gus")
    project = f"{gitlab.api_url()}/projects/other-group%2Ftool"
    status, _, _ = await provider.api_get(project, credentials=gus)
    assert status == 200
    status, _, _ = await provider.api_get(f"{project}/repository/commits/main", credentials=gus)
    assert status == 404


# which hosts a member's token goes to ----------------------------------------------------------


@pytest.mark.parametrize("url, covered", [
    ("https://github.example:443/org/repo", True),
    ("https://GitHub.Example:443/org/repo.git", True),
    ("https://github.example:8443/org/repo", False),
    ("http://github.example:80/org/repo", False),
    ("https://api.github.example:443/repos/org/repo", False),
    ("https://github.example.evil.test:443/org/repo", False),
    ("https://github.example:443@evil.test/org/repo", False),
    ("https://evil.test/?next=https://github.example:443/", False),
    ("https://github.example:notaport/org/repo", False),
])
def test_token_bound_to_host_and_port(url, covered):
    creds = TokenCredentials(token="t0ken", hosts=("github.example:443",))
    assert creds.covers(url) is covered


@pytest.mark.parametrize("hosts, url, covered", [
    (("github.example",), "https://github.example:8443/org/repo", True),  # a bare host: any port
    (("*.github.example",), "https://api.github.example/repos", True),
    (("*.github.example",), "https://github.example/org/repo", False),
    (("*.github.example",), "https://evilgithub.example/org/repo", False),
    (None, "https://anywhere.example/", True),  # unbound: a hub-wide token an admin set
])
def test_host_patterns(hosts, url, covered):
    assert TokenCredentials(token="t0ken", hosts=hosts).covers(url) is covered


def test_explicit_default_port_covers_a_url_without_one():
    creds = TokenCredentials(token="t0ken", hosts=("github.example:443",))
    assert creds.covers("https://github.example/org/repo")


def auth_state(token):
    return {"access_token": token, "token_response": {"access_token": token, "token_type": "bearer"}}


def launch_credentials(creds, provider, repo):
    """What the spawner passes to ``provider`` for ``repo`` (its real credentials_for)."""
    spawner = SimpleNamespace(member_credentials=creds)
    return DockerBinderSpawner.credentials_for(spawner, provider, provider.parse(repo))


def test_github_member_token_goes_to_github_only():
    creds = LabGitHubAuthenticator().member_credentials(auth_state("gho_member"))
    assert (creds.token, creds.username) == ("gho_member", "x-access-token")
    assert "gho_member" not in repr(creds)
    assert creds.covers("https://github.com/org/repo")
    assert creds.covers("https://api.github.com/repos/org/repo")
    assert not creds.covers("https://gitlab.com/org/repo")
    assert not creds.covers("https://github.com.evil.test/org/repo")
    assert launch_credentials(creds, GitHubProvider(), "gh/org/repo") is creds
    assert launch_credentials(creds, GitLabProvider(), "https://gitlab.com/org/repo") is None
    # a GitHub Enterprise hub's provider is another host: the github.com token stays home
    ghe = GitHubProvider(api_base_url="https://ghe.lab.example/api/v3")
    assert launch_credentials(creds, ghe, "gh/org/repo") is None


def test_gitlab_member_token_goes_to_gitlab_only():
    creds = LabGitLabAuthenticator().member_credentials(auth_state("glmember"))
    assert (creds.username, creds.hosts) == ("oauth2", ("gitlab.com",))
    assert creds.covers("https://gitlab.com/group/project.git")
    assert not creds.covers("https://github.com/org/repo")
    assert launch_credentials(creds, GitLabProvider(), "https://gitlab.com/group/project") is creds
    assert launch_credentials(creds, GitHubProvider(), "gh/org/repo") is None


def test_no_token_or_passing_turned_off_gives_no_credentials():
    assert LabGitHubAuthenticator().member_credentials(None) is None
    assert LabGitHubAuthenticator().member_credentials({"token_response": {}}) is None
    off = LabGitHubAuthenticator(pass_credentials_to_launches=False)
    assert off.member_credentials(auth_state("gho_member")) is None


def test_stand_in_hosts_keep_tokens_apart(github, gitlab):
    """Configured for the stand-ins (as the hubs above are), each token covers its own server."""
    gh = LabGitHubAuthenticator(github_url=github.url()).member_credentials(auth_state("gho_x"))
    gl = LabGitLabAuthenticator(gitlab_url=gitlab.url()).member_credentials(auth_state("glx"))
    assert gh.hosts == (host_of(github.url()),) and gl.hosts == (host_of(gitlab.url()),)
    assert launch_credentials(gh, github_provider(github), f"gh/{ORG}/secret") is gh
    assert launch_credentials(gl, gitlab_provider(gitlab), f"gl/{GROUP}%2Fsecret") is gl
    assert launch_credentials(gh, gitlab_provider(gitlab), f"gl/{GROUP}%2Fsecret") is None
    assert launch_credentials(gl, github_provider(github), f"gh/{ORG}/secret") is None
