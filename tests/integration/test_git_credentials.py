"""Where a member's token travels, and which addresses git may contact (issue 14, items 1, 2, 5, 7).

Real parts only: two smart-HTTP git servers with basic auth on 127.0.0.1 (tests/support/githttp.py)
that record every request and whether it carried an Authorization header, a local server that
answers every request with a redirect, the real git client and the real repo2docker (--no-build:
it runs the build's clone and stops). The one stand-in is DNS: a name ending in '.invalid' never
resolves, so ``hosts.lookup`` answers it here; git then reaches the server only if it was pinned
to the address the hub checked.
"""

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from binderspawner.builders import BuildRequest, Repo2DockerBuilder
from binderspawner.errors import LaunchError
from binderspawner.providers import GitProvider, TokenCredentials, hosts
from binderspawner.providers.base import ResolvedRepo
from binderspawner.providers.git import CheckoutFailed, checkout, git_access
from tests.support.apifixtures import fresh_provider_caches
from tests.support.githttp import GitHttpServer, static_tokens
from tests.support.gitserver import git
from tests.support.net import free_port

ALICE = "alice-secret-token-1"  # a member: reads lab/main and lab/private-lib
BOB = "bob-secret-token-2"  # another member: reads lab/main only
LOCAL = ["127.0.0.1"]


def with_submodule(server, name, sub_url, readers):
    """A private repo on ``server`` whose .gitmodules names ``sub_url`` (path 'sub'); its sha."""
    gitmodules = f'[submodule "sub"]\n\tpath = sub\n\turl = {sub_url}\n'
    sha = server.add_repo(name, files={".gitmodules": gitmodules}, readers=readers)
    work = os.path.join(server.work, name)
    git("update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},sub", cwd=work)
    return sha, work


def point_submodule(server, name, work, sub_sha):
    git("update-index", "--add", "--cacheinfo", f"160000,{sub_sha},sub", cwd=work)
    git("commit", "-q", "-m", "submodule", cwd=work)
    git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Server 'lab' (the member's git host) and server 'other' (a host a repository names)."""
    lab = GitHttpServer(str(tmp_path_factory.mktemp("lab")), static_tokens({ALICE: "alice", BOB: "bob"}))
    # 'other' would accept alice's token too: so it shows whether the token ever arrived there.
    other = GitHttpServer(str(tmp_path_factory.mktemp("other")), static_tokens({ALICE: "alice"}))
    lab.start()
    other.start()
    try:
        public_sha = other.add_repo("public-lib", public=True)
        private_sha = lab.add_repo("private-lib", readers=["alice"])
        _, work = with_submodule(lab, "other-host-sub", other.url("public-lib"), ["alice", "bob"])
        other_host = point_submodule(lab, "other-host-sub", work, public_sha)
        _, work = with_submodule(lab, "private-sub", lab.url("private-lib"), ["alice", "bob"])
        private = point_submodule(lab, "private-sub", work, private_sha)
        lab.add_repo("plain", readers=["alice"])
        yield {"lab": lab, "other": other, "other_host_commit": other_host, "private_sub_commit": private}
    finally:
        lab.stop()
        other.stop()


@pytest.fixture(autouse=True)
def fresh(lab):
    fresh_provider_caches()
    lab["lab"].clear_requests()
    lab["other"].clear_requests()


def member(token, lab):
    return TokenCredentials(token=token, username="oauth2", hosts=(f"127.0.0.1:{lab['lab'].port}",))


def provider(**kwargs):
    return GitProvider(allowed_private_hosts=LOCAL, **kwargs)


def repo2docker_clone(url, commit, credentials, tmp_path):
    """Run the builder's own repo2docker command and environment with --no-build: the clone only."""
    source = provider().parse(url)
    request = BuildRequest(image="binderspawner-test/creds:none", resolved=ResolvedRepo(source, None, commit),
                           env={"TMPDIR": str(tmp_path)}, credentials=credentials)
    builder = Repo2DockerBuilder(repo2docker_command=[sys.executable, "-m", "repo2docker"],
                                 content_providers=["Git"])
    builder.provider_for = lambda source: provider()  # this hub's GitProvider settings
    argv = builder.command(request)
    argv.insert(argv.index("--no-run"), "--no-build")
    env = builder.environment(request)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


# 1 + 2: the token goes to the one repository URL; submodules are cloned without it ----------------


def test_build_clone_sends_no_token_to_a_submodule_host(lab, tmp_path):
    result = repo2docker_clone(lab["lab"].url("other-host-sub"), lab["other_host_commit"],
                               member(ALICE, lab), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    other = lab["other"].requests
    assert other, "the submodule was never fetched"
    assert not any(r["had_authorization"] for r in other), other
    assert {r["user"] for r in lab["lab"].requests if r["status"] == 200} == {"alice"}
    assert ALICE not in result.stdout + result.stderr


def test_private_submodule_is_not_cloned_with_the_members_rights(lab, tmp_path):
    # alice can read private-lib, bob cannot: an image built for alice must not hold it.
    result = repo2docker_clone(lab["lab"].url("private-sub"), lab["private_sub_commit"],
                               member(ALICE, lab), tmp_path)
    assert result.returncode != 0
    assert "without members' credentials" in result.stdout + result.stderr
    sub = [r for r in lab["lab"].requests if r["path"].startswith("/private-lib.git")]
    assert sub and not any(r["had_authorization"] or r["status"] == 200 for r in sub), sub


async def test_checkout_offers_the_token_to_its_url_only(lab, tmp_path):
    await checkout(lab["lab"].url("other-host-sub"), lab["other_host_commit"], str(tmp_path / "co"),
                   credentials=member(ALICE, lab), rules={"allowed_private_hosts": LOCAL})
    assert (tmp_path / "co" / "sub" / "binder-test-nonce").exists()
    assert not any(r["had_authorization"] for r in lab["other"].requests)
    with pytest.raises(CheckoutFailed, match="private-lib"):
        await checkout(lab["lab"].url("private-sub"), lab["private_sub_commit"], str(tmp_path / "co2"),
                       credentials=member(ALICE, lab), rules={"allowed_private_hosts": LOCAL})


async def test_ls_remote_token_reaches_only_the_repository(lab):
    resolved = await provider().resolve(provider().parse(lab["lab"].url("plain")), None,
                                        credentials=member(ALICE, lab))
    assert len(resolved.version) == 40
    assert {r["user"] for r in lab["lab"].requests if r["status"] == 200} == {"alice"}


async def test_the_token_is_no_git_config_value_and_no_argument(lab):
    access = await git_access(lab["lab"].url("plain"), credentials=member(ALICE, lab),
                              allowed_private_hosts=LOCAL)
    assert access.with_credentials
    config = [v for k, v in access.env.items() if k.startswith("GIT_CONFIG_")]
    assert not any(ALICE in v for v in config) and ALICE not in access.url and ALICE not in repr(access)
    assert access.env["BINDERSPAWNER_GIT_TOKEN"] == ALICE


async def test_a_token_for_another_host_is_not_offered(lab):
    elsewhere = TokenCredentials(token=ALICE, hosts=("github.com",))
    access = await git_access(lab["lab"].url("plain"), credentials=elsewhere, allowed_private_hosts=LOCAL)
    assert not access.with_credentials and "BINDERSPAWNER_GIT_TOKEN" not in access.env


async def test_plain_http_spec_with_a_covering_token_is_refused_before_any_traffic(monkeypatch):
    # git/http%3A%2F%2F... to the member's own host over the network in clear: refused, naming why.
    async def lookup(host, port=None):
        return ["192.0.2.7"] if host == "git.lab.invalid" else []
    monkeypatch.setattr(hosts, "lookup", lookup)
    creds = TokenCredentials(token=ALICE, hosts=("git.lab.invalid",))
    with pytest.raises(LaunchError, match="plain http://.*plain_http_hosts"):
        await git_access("http://git.lab.invalid/org/r.git", credentials=creds,
                         allowed_private_hosts=["git.lab.invalid"])


# 5: no redirects, every URL checked, the checked address pinned ------------------------------------


@pytest.fixture
def redirector(lab):
    """A server answering every request with 301 to the same path on the 'other' git server."""
    hits = []
    target = f"http://127.0.0.1:{lab['other'].port}"

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append({"path": self.path, "had_authorization": "Authorization" in self.headers})
            self.send_response(301)
            self.send_header("Location", target + self.path.replace("/moved.git", "/public-lib.git"))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], hits
    server.shutdown()
    server.server_close()
    thread.join(10)


async def test_redirects_are_not_followed(lab, redirector):
    port, hits = redirector
    url = f"http://127.0.0.1:{port}/moved.git"
    with pytest.raises(LaunchError) as info:
        await provider().resolve(provider().parse(url), None)
    assert "redirect" in info.value.message
    assert hits and not lab["other"].requests


async def test_redirects_are_not_followed_by_the_build_clone(lab, redirector, tmp_path):
    port, hits = redirector
    with pytest.raises(CheckoutFailed):
        await checkout(f"http://127.0.0.1:{port}/moved.git", "HEAD", str(tmp_path / "co"),
                       rules={"allowed_private_hosts": LOCAL})
    assert hits and not lab["other"].requests


@pytest.fixture
def pinned_name(monkeypatch):
    """'git.rebind.invalid' answers 127.0.0.1 to the hub's check; real DNS never knows it, so git
    reaches the server only at the address the check admitted."""
    real = hosts.lookup

    async def lookup(host, port=None):
        return ["127.0.0.1"] if host == "git.rebind.invalid" else await real(host, port)
    monkeypatch.setattr(hosts, "lookup", lookup)
    return "git.rebind.invalid"


async def test_ls_remote_uses_the_checked_address(lab, pinned_name):
    url = f"http://{pinned_name}:{lab['other'].port}/public-lib.git"
    p = GitProvider(allowed_private_hosts=[pinned_name])
    resolved = await p.resolve(p.parse(url), None)
    assert len(resolved.version) == 40


async def test_build_clone_uses_the_checked_address(lab, pinned_name, tmp_path):
    url = f"http://{pinned_name}:{lab['other'].port}/public-lib.git"
    await checkout(url, "main", str(tmp_path / "co"), rules={"allowed_private_hosts": [pinned_name]})
    assert (tmp_path / "co" / "binder-test-nonce").exists()


async def test_submodule_urls_are_checked(lab, tmp_path):
    # The hub trusts 'localhost' (the lab server) only; the submodule names 127.0.0.1 directly, a
    # loopback address nobody allowed: refused before anything is fetched from it.
    port = lab["lab"].port
    url = f"http://localhost:{port}/other-host-sub.git"
    creds = TokenCredentials(token=ALICE, hosts=(f"localhost:{port}",))
    with pytest.raises(CheckoutFailed, match="Submodule 'sub'.*loopback"):
        await checkout(url, lab["other_host_commit"], str(tmp_path / "co"), credentials=creds,
                       rules={"allowed_private_hosts": ["localhost"]})
    assert not lab["other"].requests


# 7: every address of a host must be admitted --------------------------------------------------------


async def test_a_name_with_one_internal_address_is_refused_for_git(monkeypatch, lab):
    async def lookup(host, port=None):
        return ["127.0.0.1", "169.254.169.254"] if host == "twofaced.invalid" else []
    monkeypatch.setattr(hosts, "lookup", lookup)
    p = GitProvider(allowed_private_hosts=["127.0.0.0/8"])
    with pytest.raises(LaunchError, match="169.254.169.254"):
        await p.resolve(p.parse(f"http://twofaced.invalid:{lab['other'].port}/public-lib.git"), None)
    assert not lab["other"].requests
