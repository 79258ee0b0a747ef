"""A lab's private Binder, end to end with real parts: members log in through a real OpenID Connect
provider (oidc-provider on 127.0.0.1, the authorization-code flow followed with a cookie jar), a
real git server over HTTP with basic auth serves a private repository and accepts the provider's
access tokens, and the hub builds and runs servers on the local Docker engine.

Accounts: alice, carol and dave are lab members who may read the private repository (alice may
push); bob is a lab member who may not read it; mallory is not in the lab.
"""

import base64
import json
import os
import secrets
import subprocess
import uuid
from urllib.parse import quote

import pytest
import requests

from tests.conftest import serving
from tests.support.githttp import GitHttpServer, userinfo_tokens
from tests.support.hub import Hub
from tests.support.oidc import LoginFailed, OidcProvider, login_through_hub

PASSWORDS = {name: secrets.token_urlsafe(12) for name in ("alice", "bob", "carol", "dave", "mallory")}
GROUPS = {"alice": ["lab"], "bob": ["lab"], "carol": ["lab"], "dave": ["lab"], "mallory": ["visitors"]}
NOT_FOUND = "was not found, or you do not have access to it"

EXTRA = """
from binderspawner.web.handlers import binder_handlers
c.JupyterHub.extra_handlers = binder_handlers()
c.JupyterHub.authenticator_class = "lab-oidc"
c.Authenticator.allow_all = False
c.LabOIDCAuthenticator.client_id = lab["client_id"]
c.LabOIDCAuthenticator.client_secret = lab["client_secret"]
c.LabOIDCAuthenticator.authorize_url = lab["issuer"] + "/auth"
c.LabOIDCAuthenticator.token_url = lab["issuer"] + "/token"
c.LabOIDCAuthenticator.userdata_url = lab["issuer"] + "/me"
c.LabOIDCAuthenticator.oauth_callback_url = lab["callback"]
c.LabOIDCAuthenticator.allowed_groups = {{"lab"}}
c.LabOIDCAuthenticator.credential_hosts = [lab["git_host"]]
c.GitProvider.allowed_hosts = ["127.0.0.1", lab["git_ip"]]
c.RepoProvider.allowed_private_hosts = [lab["git_ip"]]
# the lab's git server speaks plain http on this host's bridge: members' tokens may go there
c.RepoProvider.plain_http_hosts = [lab["git_ip"]]
c.JupyterHub.load_roles.append(
    {{"name": "user", "scopes": ["self", "shares!user", "read:users:name", "read:groups:name"]}})
c.PushBack.enabled = True
# the lab's git server runs on this host, at the user network's gateway: let servers reach it
c.EgressPolicy.extra_rules = [{{"name": "lab-git", "action": "allow", "to": "host", "protocol": "tcp",
                               "ports": [lab["git_port"]]}}]
"""


@pytest.fixture(scope="module")
def lab(docker_client, tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    hub = Hub(str(root / "hub"), env={"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)})
    os.makedirs(hub.dir, exist_ok=True)
    hub.create_network()  # the git server listens on its gateway, reachable from user servers
    client = {"client_id": "binder-" + uuid.uuid4().hex[:8], "client_secret": secrets.token_urlsafe(24),
              "redirect_uris": [f"http://127.0.0.1:{hub.port}/hub/oauth_callback"]}
    oidc = OidcProvider(str(root / "oidc"), [client],
                        {name: {"password": PASSWORDS[name], "groups": GROUPS[name],
                                "email": f"{name}@lab.invalid"} for name in PASSWORDS}).start()
    seen_tokens = set()  # every token the git server was sent, to look for them everywhere else
    check = userinfo_tokens(oidc.url("/me"))

    def authorize(username, password):
        seen_tokens.add(password)
        return check(username, password)

    git = GitHttpServer(str(root / "git"), authorize, host=hub.gateway).start()
    repo = "private-notebooks"
    sha = git.add_repo(repo, files={"requirements.txt": "", "analysis.ipynb": "{}",
                                    "README.md": "lab secrets\n"},
                       readers={"alice", "carol", "dave"}, writers={"alice"})
    git.add_repo("unbuilt-private", files={"requirements.txt": ""}, readers={"alice"})
    settings = {"client_id": client["client_id"], "client_secret": client["client_secret"],
                "issuer": oidc.issuer, "callback": client["redirect_uris"][0],
                "git_host": f"{hub.gateway}:{git.port}", "git_ip": hub.gateway, "git_port": git.port}
    hub.extra_config = f"lab = json.loads({json.dumps(settings)!r})\n" + EXTRA.format()
    try:
        with serving(hub, docker_client, "jupyterhub-private-lab.log"):
            yield Lab(hub, oidc, git, repo, sha, seen_tokens, client)
    finally:
        git.stop()
        oidc.stop()


class Lab:
    def __init__(self, hub, oidc, git, repo, sha, seen_tokens, client):
        self.hub, self.oidc, self.git, self.repo, self.sha = hub, oidc, git, repo, sha
        self.seen_tokens, self.client = seen_tokens, client
        self.sessions = {}

    @property
    def base(self):
        return f"http://127.0.0.1:{self.hub.port}"

    def login(self, name):
        if name not in self.sessions:
            self.sessions[name] = login_through_hub(self.base, name, PASSWORDS[name])
        return self.sessions[name]

    def options(self, repo=None, ref="main"):
        return {"repo": self.git.url(repo or self.repo), "ref": ref}

    def auth_state(self, name):
        return self.hub.api("GET", f"/users/{name}").json()["auth_state"]

    def token_for(self, name):
        """A new API token of ``name`` (as if they made it on the token page): their own rights."""
        r = self.hub.api("POST", f"/users/{name}/tokens", json={"note": "test", "expires_in": 600})
        r.raise_for_status()
        return r.json()["token"]

    def as_user(self, token, method, path, **kwargs):
        return requests.request(method, self.base + path, headers={"Authorization": f"token {token}"},
                                timeout=60, allow_redirects=False, **kwargs)


def _launch_ok(lab, user, **kwargs):
    response, events = lab.hub.launch(user, lab.options(**kwargs))
    assert response.status_code in (201, 202), response.text
    assert events and events[-1].get("ready"), events[-3:]
    return events


def _alices_server(lab):
    """Alice's running server of the private repository (launched if this test runs alone)."""
    lab.login("alice")
    if not lab.hub.api("GET", "/users/alice").json()["servers"]:
        _launch_ok(lab, "alice")
    return next(c for c in lab.hub.containers() if c.labels.get(
        "binderspawner.repo") == lab.git.url(lab.repo))


def test_only_lab_members_log_in(lab):
    alice = lab.login("alice")
    assert alice.get(lab.base + "/hub/home", timeout=30).ok
    model = lab.hub.api("GET", "/users/alice").json()
    assert "lab" in model["groups"]
    assert model["auth_state"]["access_token"]
    with pytest.raises(LoginFailed):
        login_through_hub(lab.base, "mallory", PASSWORDS["mallory"])
    assert lab.hub.api("GET", "/users/mallory").status_code == 404


def test_member_launches_private_repo_with_own_token(lab):
    lab.login("alice")
    lab.git.clear_requests()
    _launch_ok(lab, "alice")
    assert lab.hub.server_get("alice", "api/status").status_code == 200
    reads = [r for r in lab.git.requests if r["user"] == "alice"]
    assert reads and all(r["had_authorization"] for r in reads)
    assert {r["user"] for r in lab.git.requests if r["status"] == 200} == {"alice"}


def test_member_without_access_is_refused_before_and_after_the_image_exists(lab, docker_client):
    _alices_server(lab)
    lab.login("bob")
    images_before = {tuple(i.tags) for i in docker_client.images.list()}
    answers = []
    # the built image, by branch and by full sha; a repository not built yet; one that does not exist
    for options in (lab.options(), lab.options(ref=lab.sha), lab.options(repo="unbuilt-private"),
                    lab.options(repo="no-such-repo")):
        response, _ = lab.hub.launch("bob", options)
        assert response.status_code == 404, response.text
        answers.append(response.json()["message"].replace(options["repo"], "<repo>"))
    assert len(set(answers)) == 1 and NOT_FOUND in answers[0]
    assert lab.hub.api("GET", "/users/bob").json()["servers"] == {}
    assert {tuple(i.tags) for i in docker_client.images.list()} == images_before  # nothing built
    assert not [c for c in lab.hub.containers() if "bob" in c.name]


def test_member_tokens_are_stored_encrypted_and_leak_nowhere(lab, docker_client):
    container = _alices_server(lab)
    token = lab.auth_state("alice")["access_token"]
    assert token in lab.seen_tokens  # the git server was sent exactly this member's token
    needles = [t.encode() for t in lab.seen_tokens]
    needles += [base64.b64encode(f"oauth2:{t}".encode()) for t in lab.seen_tokens]

    def assert_clean(what, data):
        for needle in needles:
            assert needle not in data, f"a member's token appears in {what}"

    container.reload()
    image = docker_client.images.get(container.image.id)
    assert_clean("the container's environment", "\n".join(container.attrs["Config"]["Env"]).encode())
    assert_clean("the container's labels", json.dumps(container.labels).encode())
    assert_clean("the image's labels", json.dumps(image.labels).encode())
    assert_clean("the image history", json.dumps(image.history()).encode())
    saved = b"".join(image.save(named=False))  # every layer of the image
    assert b"lab secrets" in saved  # the repository is in there, so the search looks at the right bytes
    assert_clean("the image's layers (docker save)", saved)
    log = lab.login("alice").get(f"{lab.base}/hub/binder/logs/{image.tags[0]}", timeout=30)
    assert log.status_code == 200 and lab.sha[:12] in log.text, log.text[:500]
    assert_clean("the build log", log.content)
    assert_clean("the hub log", lab.hub.log().encode())
    assert_clean("the git server's request log", json.dumps(lab.git.requests).encode())
    with open(os.path.join(lab.hub.dir, "jupyterhub.sqlite"), "rb") as f:
        assert_clean("the hub database (auth_state is encrypted)", f.read())


def test_sharing_with_a_member_and_the_lab_then_revoking(lab):
    _alices_server(lab)
    for name in ("bob", "carol"):
        lab.login(name)
    alice = lab.token_for("alice")

    def bob_opens():
        return lab.as_user(lab.token_for("bob"), "GET", "/user/alice/api/status").status_code

    def carol_opens():
        return lab.as_user(lab.token_for("carol"), "GET", "/user/alice/api/status").status_code

    assert bob_opens() == 403
    r = lab.as_user(alice, "POST", "/hub/api/shares/alice/", json={"user": "bob"})
    assert r.status_code == 200, r.text
    assert bob_opens() == 200 and carol_opens() == 403
    r = lab.as_user(alice, "DELETE", "/hub/api/shares/alice/", json={"user": "bob"})
    assert r.status_code == 204, r.text
    assert bob_opens() == 403
    # with the lab: JupyterHub's own group share reaches no member's token (JupyterHub 6.1), so
    # binderspawner shares with each member of the group
    r = lab.as_user(alice, "POST", "/hub/api/shares/alice/", json={"group": "lab"})
    assert r.status_code == 200 and bob_opens() == 403, "JupyterHub's group shares work now: drop the workaround"
    lab.as_user(alice, "DELETE", "/hub/api/shares/alice/", json={"group": "lab"})
    r = lab.as_user(alice, "POST", "/hub/binder/group-shares/alice/?group=lab")
    assert r.status_code == 200, r.text
    assert {"bob", "carol"} <= set(r.json()["shared_with"]) and "alice" not in r.json()["shared_with"]
    assert bob_opens() == 200 and carol_opens() == 200
    r = lab.as_user(alice, "GET", "/hub/api/shares/alice/")
    assert {s["user"]["name"] for s in r.json()["items"] if s["user"]} >= {"bob", "carol"}
    assert lab.as_user(alice, "DELETE", "/hub/binder/group-shares/alice/?group=lab").status_code == 200
    assert bob_opens() == 403 and carol_opens() == 403
    # not a group of hers, and not her server: refused
    assert lab.as_user(alice, "POST", "/hub/binder/group-shares/alice/?group=visitors").status_code == 404
    assert lab.as_user(lab.token_for("bob"), "POST",
                       "/hub/binder/group-shares/alice/?group=lab").status_code in (403, 404)
    # bob cannot share alice's server onward
    r = lab.as_user(lab.token_for("bob"), "POST", "/hub/api/shares/alice/", json={"user": "carol"})
    assert r.status_code in (403, 404)


def _exec(container, script):
    exit_code, output = container.exec_run(["sh", "-c", script], user="jovyan", workdir="/home/jovyan",
                                           demux=False)
    return exit_code, output.decode("utf-8", "replace")


PUSH = ("git -c user.name=alice -c user.email=alice@lab.invalid commit -q --allow-empty -m 'from binder' "
        "&& git push origin HEAD:refs/heads/from-binder 2>&1")


def _push_server(lab, name):
    """A fresh named server of alice's for the private repository (never shared)."""
    lab.login("alice")
    response, events = lab.hub.launch("alice", lab.options(), server=name)
    assert response.status_code in (201, 202) and events and events[-1].get("ready"), events[-3:]
    return next(c for c in lab.hub.containers() if c.name.endswith("-" + name))


def _remote_branch(lab, branch):
    bare = os.path.join(lab.git.repos, f"{lab.repo}.git")
    out = subprocess.run(["git", "-C", bare, "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
                         capture_output=True, text=True)
    return out.stdout.strip()


def _holds_token(lab, text):
    return any(token in text for token in {lab.auth_state("alice")["access_token"], *lab.seen_tokens})


def test_push_back_goes_through_the_hub_and_never_hands_out_the_token(lab):
    container = _push_server(lab, "push")
    member_token = lab.auth_state("alice")["access_token"]
    try:
        # every credential a process in the server can get for the repository: not the member's
        code, output = _exec(container, f"printf 'url={lab.git.url(lab.repo)}\\n\\n' | git credential fill")
        assert not _holds_token(lab, output), "git in the server hands out the member's token"
        code, output = _exec(container, (
            "python3 -c \"import os, urllib.request; h = os.environ['JUPYTERHUB_API_URL']"
            ".rsplit('/api', 1)[0]; print(urllib.request.urlopen(urllib.request.Request("
            "h + '/binder/git-credential', headers={'Authorization': 'token ' + "
            "os.environ['JUPYTERHUB_API_TOKEN']})).read().decode())\" 2>&1"))
        assert not _holds_token(lab, output), "the hub hands the member's token to the server's API token"
        container.reload()
        assert not _holds_token(lab, "\n".join(container.attrs["Config"]["Env"]))

        lab.git.clear_requests()
        code, output = _exec(container, PUSH)
        assert code == 0, output
        pushes = [r for r in lab.git.requests
                  if "receive-pack" in r["path"] + r["query"] and r["status"] == 200]
        assert pushes and {r["user"] for r in pushes} == {"alice"}
        commit = _exec(container, "git rev-parse HEAD")[1].strip()
        assert _remote_branch(lab, "from-binder") == commit  # the push landed
        # the hub relays only allowed ref updates: no deletions
        code, output = _exec(container, "git push origin :refs/heads/from-binder 2>&1")
        assert code != 0, output
        assert "Deleting refs/heads/from-binder from a Binder server is not allowed" in output, output
        assert _remote_branch(lab, "from-binder") == commit
        # nothing in the server's files holds the member's token
        for token in {member_token, *lab.seen_tokens}:
            code, output = _exec(container,
                                 f"grep -rlF -e '{token}' /home /tmp /srv /etc /opt /var 2>/dev/null")
            assert code != 0 and not output.strip(), output

        # shared once: refused, also after the share is revoked
        lab.login("bob")
        alice = lab.token_for("alice")
        r = lab.as_user(alice, "POST", "/hub/api/shares/alice/push", json={"user": "bob"})
        assert r.status_code == 200, r.text
        code, output = _exec(container, PUSH)
        assert code != 0 and "is or was shared" in output, output
        assert lab.as_user(alice, "DELETE", "/hub/api/shares/alice/push").status_code == 204
        code, output = _exec(container, PUSH)
        assert code != 0 and "is or was shared" in output, output
        assert _remote_branch(lab, "from-binder") == commit
    finally:
        lab.hub.stop_server("alice", "push")
        lab.hub.api("DELETE", "/users/alice/servers/push", json={"remove": True})
    # a new server (the old one deleted) may push again
    container = _push_server(lab, "push")
    try:
        code, output = _exec(container, PUSH.replace("refs/heads/from-binder", "refs/heads/from-binder-2"))
        assert code == 0, output
        assert _remote_branch(lab, "from-binder-2")
    finally:
        lab.hub.stop_server("alice", "push")
        lab.hub.api("DELETE", "/users/alice/servers/push", json={"remove": True})


def test_token_is_refreshed_before_a_launch(lab):
    """Dave's access token expires at the provider: the next launch gets a new one with the refresh
    token, before resolving, and launches with it."""
    lab.login("dave")
    old = lab.auth_state("dave")["access_token"]
    lab.oidc.expire_access_token(old)
    assert requests.get(
        lab.oidc.url("/me"),
        headers={
            "Authorization": f"Bearer {old}"},
        timeout=10).status_code == 401
    _launch_ok(lab, "dave")
    new = lab.auth_state("dave")["access_token"]
    assert new != old and new in lab.seen_tokens
    lab.hub.stop_server("dave")


def test_member_removed_from_the_lab_cannot_launch_on_an_old_login(lab):
    lab.login("dave")
    lab.oidc.set_groups("dave", ["alumni"])
    try:
        response, _ = lab.hub.launch("dave", lab.options())
        assert response.status_code in (400, 403), response.text
        assert "authentication has expired" in response.text or "login again" in response.text
        assert lab.hub.api("GET", "/users/dave").json()["servers"] == {}
    finally:
        lab.oidc.set_groups("dave", ["lab"])


def _build_only(lab, name, repo):
    """BinderHub's build API with build_only, as the member (their own API token)."""
    path = f"git/{quote(lab.git.url(repo), safe='')}/main"
    with requests.get(f"{lab.base}/hub/build/{path}", params={"build_only": "true"}, stream=True, timeout=900,
                      headers={"Authorization": f"token {lab.token_for(name)}"}) as r:
        assert r.status_code == 200, r.text
        events = [json.loads(line[len("data:"):]) for line in r.iter_lines(decode_unicode=True)
                  if line and line.startswith("data:")]
    return events[-1]


def test_build_api_uses_the_members_own_credentials(lab):
    lab.login("alice")
    lab.login("bob")
    refused = _build_only(lab, "bob", "unbuilt-private")
    assert refused["phase"] == "failed" and NOT_FOUND in refused["message"]
    built = _build_only(lab, "alice", "unbuilt-private")
    assert built["phase"] == "ready" and built["imageName"].startswith(lab.hub.image_prefix), built
    assert lab.hub.api("GET", "/users/alice").json()["servers"].keys() <= {""}  # built, not launched
    # now that it exists: still refused to bob, from the same access check
    again = _build_only(lab, "bob", "unbuilt-private")
    assert again["phase"] == "failed" and again["message"] == refused["message"]
