"""Git URLs and ref resolution: binderspawner/providers/git.py.

The parsing tests are pure. The resolve tests run a real ``git daemon`` on 127.0.0.1 serving bare
repositories made in tmp_path, and the real git client; nothing is mocked and no traffic leaves
127.0.0.1.
"""

import asyncio
import fnmatch
import itertools
import os
import signal
import socket
import subprocess
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from traitlets import TraitError

from binderspawner.errors import LaunchError
from binderspawner.providers import GitProvider, RepoProvider, detect
from binderspawner.providers.git import git_environment, parse_git_url, parse_ls_remote, pick_commit

SCHEMES = ["https", "http", "git"]
FAST = settings(max_examples=200, deadline=None)


def parse(repo, allowed_schemes=SCHEMES, allowed_hosts=()):
    return parse_git_url(repo, allowed_schemes=list(allowed_schemes), allowed_hosts=list(allowed_hosts))


def rejected(repo, **kwargs):
    with pytest.raises(LaunchError) as info:
        parse(repo, **kwargs)
    error = info.value
    assert error.field == "repo"
    assert repr(repo) in str(error)
    return str(error)


# parse_git_url: accepted ---------------------------------------------------------------------------


@pytest.mark.parametrize("repo, canonical", [
    ("https://example.org/org/repo.git", "https://example.org/org/repo.git"),
    ("http://example.org/org/repo", "http://example.org/org/repo"),
    ("git://example.org/org/repo.git", "git://example.org/org/repo.git"),
    ("HTTPS://Git.Example.ORG/Org/Repo.git", "https://git.example.org/Org/Repo.git"),
    ("https://Git.Example.org:8443/Org/Repo.git", "https://git.example.org:8443/Org/Repo.git"),
    ("git://127.0.0.1:9418/requirements.git", "git://127.0.0.1:9418/requirements.git"),
    ("https://example.org./org/repo", "https://example.org/org/repo"),
    ("https://[::1]:8080/org/repo.git", "https://[::1]:8080/org/repo.git"),
    ("https://example.org/~user/my_repo-1.0+x@y/%20z", "https://example.org/~user/my_repo-1.0+x@y/%20z"),
    ("https://gitlab.example.org/group/sub/group/repo", "https://gitlab.example.org/group/sub/group/repo"),
])
def test_accepted_urls_are_canonical(repo, canonical):
    assert parse(repo) == canonical
    assert parse(canonical) == canonical


@pytest.mark.parametrize("patterns, host", [
    (["example.org"], "example.org"),
    (["*.example.org"], "git.example.org"),
    (["*.example.org"], "a.b.example.org"),
    (["GitHub.com", "127.0.0.1"], "github.com"),
    (["127.0.0.1"], "127.0.0.1"),
    (["gitlab.*.edu"], "gitlab.physics.edu"),
])
def test_allowed_hosts_patterns_admit(patterns, host):
    assert parse(f"https://{host}/org/repo", allowed_hosts=patterns) == f"https://{host}/org/repo"
    # the check is on the host, whatever its case in the URL
    assert parse(f"https://{host.upper()}/org/repo", allowed_hosts=patterns) == f"https://{host}/org/repo"


# parse_git_url: rejected ---------------------------------------------------------------------------


@pytest.mark.parametrize("repo, scheme", [
    ("file:///etc/passwd", "file"),
    ("file://localhost/srv/git/repo.git", "file"),
    ("ssh://git@example.org/org/repo.git", "ssh"),
    ("ssh://example.org/org/repo.git", "ssh"),
    ("git+ssh://example.org/org/repo.git", "git+ssh"),
    ("ftp://example.org/repo.git", "ftp"),
])
def test_other_schemes_are_rejected(repo, scheme):
    message = rejected(repo)
    assert f"scheme '{scheme}' is not allowed" in message
    assert "https" in message


def test_scheme_allowed_by_default_can_be_switched_off():
    message = rejected("git://example.org/org/repo.git", allowed_schemes=["https"])
    assert "scheme 'git' is not allowed; allowed: https" in message


@pytest.mark.parametrize("repo", ["ext::sh -c touch% /tmp/pwned", "ext::git-upload-pack /srv/x", "fd::17",
                                  "https::example.org/repo", "transport::https://example.org/x"])
def test_remote_helpers_are_rejected(repo):
    assert "remote helpers" in rejected(repo)


@pytest.mark.parametrize("repo", ["git@example.org:org/repo.git", "example.org:org/repo.git",
                                  "/srv/git/repo.git", "./repo", "../repo", "repo", "~/repo.git",
                                  "C:\\repos\\x", "example.org/org/repo"])
def test_scp_style_addresses_and_local_paths_are_rejected(repo):
    assert "not a URL" in rejected(repo)


@pytest.mark.parametrize("repo", ["-uhttps://example.org/x", "--upload-pack=touch /tmp/x",
                                  "--config=core.sshCommand=x https://example.org/x"])
def test_leading_dash_is_rejected(repo):
    assert "starts with '-'" in rejected(repo)


@pytest.mark.parametrize("repo", ["https://user:secret@example.org/org/repo.git",
                                  "https://token@example.org/repo",
                                  "https://:pw@example.org/repo", "https://@example.org/repo",
                                  "git://a@127.0.0.1:9418/x.git"])
def test_credentials_in_the_url_are_rejected(repo):
    message = rejected(repo)
    assert "credentials" in message
    assert "user:password@" in message


@pytest.mark.parametrize("repo", ["https://example.org/org/repo.git?ref=main",
                                  "https://example.org/org/repo#main"])
def test_query_and_fragment_are_rejected(repo):
    message = rejected(repo)
    assert "query or fragment" in message or "path" in message


@pytest.mark.parametrize("repo", ["https://example.org/org/../../etc/passwd", "https://example.org/..",
                                  "https://example.org/org/..", "https://example.org/a/../b.git"])
def test_dot_dot_paths_are_rejected(repo):
    assert "path" in rejected(repo)


@pytest.mark.parametrize("repo", ["https://example.org", "https://example.org/",
                                  "https://example.org//org/repo",
                                  "https://example.org/org repo", "https://example.org/org/<repo>",
                                  "https://example.org/org/repo\\x", "https://example.org/ré"])
def test_missing_or_bad_paths_are_rejected(repo):
    assert "path is missing or contains characters that are not allowed" in rejected(repo)


@pytest.mark.parametrize("repo", ["https://exa_mple.org/x", "https://-example.org/x",
                                  "https://example..org/x",
                                  "https:///x", "https://" + "a" * 300 + ".org/x", "https://é.org/x"])
def test_bad_host_names_are_rejected(repo):
    assert "host" in rejected(repo)


@pytest.mark.parametrize("repo", ["https://example.org:99999/x", "https://example.org:port/x",
                                  "https://example.org:-1/x", "https://example.org:+80/x"])
def test_bad_ports_are_rejected(repo):
    assert "port" in rejected(repo)


@pytest.mark.parametrize("repo", ["https://[/x", "https://exam]ple.org/x", "https://[example.org]/x",
                                  "https://[::1/x", "https://[1.2.3.4]/x"])
def test_malformed_brackets_are_a_launch_error(repo):
    # BUG (providers/git.py, parse_git_url): urlsplit() raises ValueError ("Invalid IPv6 URL",
    # "... does not appear to be an IPv4 or IPv6 address") before any check, and it escapes.
    assert "host" in rejected(repo)


@pytest.mark.parametrize("patterns, host", [
    (["example.org"], "evil.org"),
    (["example.org"], "example.org.evil.org"),
    (["example.org"], "git.example.org"),
    (["*.example.org"], "example.org"),
    (["*.example.org"], "evilexample.org"),
    (["*.example.org"], "example.org.evil.com"),
    (["127.0.0.1"], "127.0.0.10"),
])
def test_hosts_not_allowed_are_rejected(patterns, host):
    message = rejected(f"https://{host}/org/repo", allowed_hosts=patterns)
    assert f"host '{host}' is not on this hub's list of allowed hosts" in message
    assert "GitProvider.allowed_hosts" in message


def test_very_long_url_is_rejected():
    # BUG (defence in depth, providers/git.py, parse_git_url): nothing bounds the length; only
    # spec.parse_launch_options does. A URL longer than the kernel's 128 KiB argument limit makes
    # 'git ls-remote' fail with OSError (E2BIG) instead of a LaunchError.
    rejected("https://example.org/" + "a" * 200_000)


# parse_git_url: properties ------------------------------------------------------------------------

url_like = st.builds(
    lambda scheme, sep, netloc, path: f"{scheme}{sep}{netloc}{path}",
    st.sampled_from(["https", "HTTP", "git", "file", "ssh", "ext", "", "-https"]),
    st.sampled_from(["://", "::", ":", ":///"]),
    st.text(alphabet="abcE1.-_:[]@%", max_size=15),
    st.text(alphabet="/ab.%-_?#@:[]\\ ~", max_size=15),
)


@FAST
@given(st.one_of(st.text(), url_like))
@example("https://[/x")
def test_any_text_is_a_canonical_url_or_a_launch_error(repo):
    try:
        url = parse(repo)
    except LaunchError as error:
        assert error.field == "repo"
        return
    scheme, rest = url.split("://", 1)
    assert scheme in SCHEMES
    assert not url.startswith("-")
    assert "@" not in rest.split("/", 1)[0]
    assert "?" not in url and "#" not in url and "\\" not in url
    assert not any(c.isspace() for c in url)
    assert "/../" not in url + "/"
    assert parse(url) == url  # canonical: parsing again changes nothing


@FAST
@given(st.text(alphabet="abc.-*?[]", min_size=1, max_size=12))
def test_allowed_hosts_never_admit_another_host(pattern):
    # whatever the admin's pattern, a host that does not match it is refused
    host = "zzz.example"
    try:
        url = parse(f"https://{host}/x", allowed_hosts=[pattern])
    except LaunchError:
        return
    assert fnmatch.fnmatchcase(host, pattern) and url == f"https://{host}/x"


# GitProvider configuration -------------------------------------------------------------------------


def test_provider_parse_gives_source_with_slug():
    source = GitProvider().parse("HTTPS://Git.Example.org:8443/Org/Repo.git")
    assert source.provider == "git"
    assert source.fetch_url == source.repo_url == "https://git.example.org:8443/Org/Repo.git"
    assert source.spec == "git/https%3A%2F%2Fgit.example.org%3A8443%2FOrg%2FRepo.git"  # BinderHub's form
    assert source.slug == "git.example.org:8443/Org/Repo"


def test_provider_applies_its_allowed_hosts():
    provider = GitProvider(allowed_hosts=["*.example.org"])
    assert provider.parse("https://git.example.org/x").fetch_url == "https://git.example.org/x"
    with pytest.raises(LaunchError) as info:
        detect("https://evil.org/x", [provider])
    assert info.value.field == "repo"


@pytest.mark.parametrize("schemes", [["https", "file"], ["ssh"], ["ext"]])
def test_allowed_schemes_refuses_dangerous_transports(schemes):
    with pytest.raises(TraitError) as info:
        GitProvider(allowed_schemes=schemes)
    assert [s for s in schemes if s != "https"][0] in str(info.value)


def test_git_environment_switches_off_other_transports(tmp_path):
    # Real git: with the environment the provider uses, file:// and ext:: cannot be used even if a
    # URL got through.
    bare = tmp_path / "local.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    env = git_environment(["https", "http", "git"])
    for url in [f"file://{bare}", str(bare), f"ext::sh -c touch% {tmp_path}/pwned"]:
        result = subprocess.run(["git", "ls-remote", url], env=env, capture_output=True, text=True,
                                cwd=tmp_path)
        assert result.returncode != 0, url
        assert "not allowed" in result.stderr, result.stderr
    assert not (tmp_path / "pwned").exists()
    assert env["GIT_TERMINAL_PROMPT"] == "0"


# parse_ls_remote and pick_commit -----------------------------------------------------------------

C1 = "00821c8e2c865787283558fb85c52041ca8c5e0f"  # tagged v1.0 (annotated) and light (lightweight)
TAG_OBJECT = "3a6cf341c324ab9b6f354f93db51969a2ad29310"
C2 = "ea769a447321c7c8be20cf7faf733544ca669ecc"  # feature
C3 = "5e29a3b484e040b11215368999fddc10d34e6092"  # main, the default branch

LS_REMOTE = f"""ref: refs/heads/main\tHEAD
{C3}\tHEAD
{C2}\trefs/heads/feature
{C3}\trefs/heads/main
{C3}\trefs/pull/12/head
{C1}\trefs/tags/light
{TAG_OBJECT}\trefs/tags/v1.0
{C1}\trefs/tags/v1.0^{{}}
"""


def test_parse_ls_remote():
    refs, head = parse_ls_remote(LS_REMOTE)
    assert head == "refs/heads/main"
    assert refs["HEAD"] == C3
    assert refs["refs/heads/feature"] == C2
    assert refs["refs/tags/v1.0"] == TAG_OBJECT
    assert refs["refs/tags/v1.0^{}"] == C1
    assert len(refs) == 7


def test_parse_ls_remote_ignores_noise_and_takes_sha256():
    sha256 = "a" * 64
    output = f"warning: redirecting to https://x/\n\n{sha256}\trefs/heads/main\nnot-a-sha\trefs/heads/x\n" \
             f"{C1.upper()}\trefs/heads/upper\n{C1}\n"
    refs, head = parse_ls_remote(output)
    assert refs == {"refs/heads/main": sha256}
    assert head is None


def test_parse_ls_remote_empty_repository():
    assert parse_ls_remote("") == ({}, None)


@pytest.mark.parametrize("ref, sha, description", [
    (None, C3, "default branch main"),
    ("main", C3, "branch main"),
    ("feature", C2, "branch feature"),
    ("v1.0", C1, "tag v1.0"),  # peeled: the commit, not the tag object
    ("light", C1, "tag light"),
    ("refs/heads/feature", C2, None),
    ("refs/pull/12/head", C3, None),
    (C2[:7], C2, None),
    (C2[:12].upper(), C2, None),
])
def test_pick_commit(ref, sha, description):
    refs, head = parse_ls_remote(LS_REMOTE)
    picked, said = pick_commit(refs, head, ref)
    assert picked == sha
    if description:
        assert said == description


def test_pick_commit_default_branch_with_detached_head():
    refs, _ = parse_ls_remote(LS_REMOTE)
    sha, description = pick_commit(refs, None, None)
    assert sha == C3
    assert "default branch" in description


@pytest.mark.parametrize("ref", ["nope", "v2.0", "refs/heads/nope", "abcdef0", C1[:6], "feature/x"])
def test_pick_commit_unknown_ref(ref):
    refs, head = parse_ls_remote(LS_REMOTE)
    assert pick_commit(refs, head, ref) is None


def test_pick_commit_empty_repository_has_no_default_branch():
    assert pick_commit({}, None, None) is None


def test_pick_commit_ambiguous_short_sha():
    a, b = "abcdef1" + "0" * 33, "abcdef1" + "1" * 33
    refs = {"refs/heads/one": a, "refs/heads/two": b}
    assert pick_commit(refs, None, "abcdef1") is None
    assert pick_commit(refs, None, "abcdef10")[0] == a
    assert pick_commit(refs, None, "abcdef11")[0] == b


def test_pick_commit_same_sha_on_several_refs_is_not_ambiguous():
    refs, head = parse_ls_remote(LS_REMOTE)  # C3 is HEAD, main and a pull ref
    assert pick_commit(refs, head, C3[:8])[0] == C3


def test_pick_commit_branch_named_like_a_sha_wins():
    refs = {"refs/heads/abcdef12": C1, "refs/heads/main": "abcdef12" + "0" * 32}
    assert pick_commit(refs, None, "abcdef12") == (C1, "branch abcdef12")


# real git: a daemon on 127.0.0.1 ----------------------------------------------------------------

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "tests", "GIT_AUTHOR_EMAIL": "tests@binderspawner.invalid",
    "GIT_COMMITTER_NAME": "tests", "GIT_COMMITTER_EMAIL": "tests@binderspawner.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}


def git(*args, cwd=None):
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True,
                          text=True).stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"git daemon did not listen on 127.0.0.1:{port}")


class Daemon:
    def __init__(self, root, port, proc):
        self.root, self.port, self.proc = root, port, proc
        self._names = itertools.count()

    def url(self, name):
        return f"git://127.0.0.1:{self.port}/{name}.git"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    root = tmp_path_factory.mktemp("daemon")
    port = free_port()
    proc = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={root}", "--listen=127.0.0.1",
         f"--port={port}", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=GIT_ENV, start_new_session=True)
    try:
        wait_for_port(port)
        yield Daemon(root, port, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # 'git daemon' runs git-daemon as a child: the group goes
        proc.wait(10)


class Remote:
    """A bare repository served by the daemon, and a work tree that pushes to it."""

    def __init__(self, daemon, work):
        self.name = f"repo{next(daemon._names)}"
        self.bare = daemon.root / f"{self.name}.git"
        self.work = work
        self.url = daemon.url(self.name)
        git("init", "-q", "--bare", "-b", "main", str(self.bare))
        git("config", "uploadpack.allowFilter", "true", cwd=self.bare)
        git("init", "-q", "-b", "main", str(work))
        git("remote", "add", "origin", str(self.bare), cwd=work)
        self._n = 0

    def commit(self, branch="main"):
        self._n += 1
        (self.work / "file.txt").write_text(f"{self.name} {branch} {self._n}\n")
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", f"commit {self._n}", cwd=self.work)
        git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def tag(self, name, annotated=True, commit="HEAD"):
        git("tag", *(["-a", "-m", name] if annotated else []), name, commit, cwd=self.work)
        git("push", "-q", "origin", f"refs/tags/{name}", cwd=self.work)

    def set_default_branch(self, branch):
        git("symbolic-ref", "HEAD", f"refs/heads/{branch}", cwd=self.bare)


@pytest.fixture
def remote(daemon, tmp_path):
    """main: c1 (tag v1.0, annotated; tag light, lightweight) <- c2 <- c3; feature: c3 <- c4."""
    r = Remote(daemon, tmp_path / "work")
    r.c1 = r.commit()
    r.tag("v1.0")
    r.tag("light", annotated=False)
    r.c2 = r.commit()
    r.c3 = r.commit()
    git("checkout", "-q", "-b", "feature", cwd=r.work)
    r.c4 = r.commit("feature")
    git("checkout", "-q", "main", cwd=r.work)
    return r


@pytest.fixture(autouse=True)
def clear_resolve_cache():
    RepoProvider.cache.clear()
    yield
    RepoProvider.cache.clear()


def provider(**kwargs):
    kwargs.setdefault("allowed_hosts", ["127.0.0.1"])
    kwargs.setdefault("git_timeout", 20)
    return GitProvider(**kwargs)


async def resolve(url, ref, **kwargs):
    p = provider(**kwargs)
    return await p.resolve(p.parse(url), ref)


async def resolve_error(url, ref, **kwargs):
    with pytest.raises(LaunchError) as info:
        await resolve(url, ref, **kwargs)
    return info.value


def closed_port():
    return free_port()  # bound and released: nothing listens there


async def test_default_branch(remote):
    resolved = await resolve(remote.url, None)
    assert resolved.version == remote.c3
    assert resolved.ref is None
    assert resolved.resolved_from == "default branch main"
    assert resolved.source.fetch_url == remote.url


async def test_default_branch_is_what_head_points_at(remote):
    remote.set_default_branch("feature")
    resolved = await resolve(remote.url, None)
    assert resolved.version == remote.c4
    assert resolved.resolved_from == "default branch feature"


async def test_branch(remote):
    resolved = await resolve(remote.url, "feature")
    assert resolved.version == remote.c4
    assert resolved.resolved_from == "branch feature"
    assert (await resolve(remote.url, "main")).version == remote.c3


async def test_annotated_tag_is_peeled_to_its_commit(remote):
    resolved = await resolve(remote.url, "v1.0")
    assert resolved.version == remote.c1
    assert resolved.version != git("rev-parse", "v1.0", cwd=remote.work)  # not the tag object
    assert resolved.resolved_from == "tag v1.0"


async def test_lightweight_tag(remote):
    assert (await resolve(remote.url, "light")).version == remote.c1


async def test_full_sha_is_an_access_check(remote):
    """A full sha is not looked up among the refs, but the host is asked whether the repository
    exists and may be read, so nobody launches an image of a repository they cannot read."""
    resolved = await resolve(remote.url, remote.c2.upper())
    assert (resolved.version, resolved.resolved_from) == (remote.c2, f"commit {remote.c2.upper()[:12]}")
    gone = remote.url.rsplit("/", 1)[0] + "/no-such-repo.git"
    error = await resolve_error(gone, remote.c2)
    assert error.field == "repo" and "was not found, or you do not have access" in str(error)


async def test_full_sha_trusted_without_network_when_access_checks_are_off(remote):
    url = f"git://127.0.0.1:{closed_port()}/{remote.name}.git"
    resolved = await resolve(url, remote.c2.upper(), check_access_for_commits=False)
    assert resolved.version == remote.c2
    assert "commit" in resolved.resolved_from
    # the default asks the host, and so does a branch: both fail on the closed port
    assert (await resolve_error(url, remote.c2)).field == "repo"
    assert (await resolve_error(url, "main", check_access_for_commits=False)).field == "repo"


async def test_short_sha_of_a_branch_tip(remote):
    resolved = await resolve(remote.url, remote.c4[:8])
    assert resolved.version == remote.c4


async def test_short_sha_that_is_no_tip_is_found_by_a_partial_fetch(remote):
    refs, _ = parse_ls_remote(git("ls-remote", str(remote.bare)))
    assert not any(sha.startswith(remote.c2[:10]) for sha in refs.values())  # really not a tip
    resolved = await resolve(remote.url, remote.c2[:10])
    assert resolved.version == remote.c2
    assert remote.c2[:10] in resolved.resolved_from


async def test_short_sha_in_upper_case(remote):
    assert (await resolve(remote.url, remote.c2[:10].upper())).version == remote.c2


@pytest.mark.parametrize("ref", ["nope", "v9.9", "deadbeef12", "feature/x"])
async def test_unknown_ref(remote, ref):
    error = await resolve_error(remote.url, ref)
    assert error.field == "ref"
    assert repr(ref) in str(error)
    assert remote.url in str(error)


async def test_empty_repository_has_no_default_branch(daemon, tmp_path):
    r = Remote(daemon, tmp_path / "empty")
    error = await resolve_error(r.url, None)
    assert error.field == "ref"
    assert "default branch" in str(error)


async def test_unknown_repository(daemon):
    error = await resolve_error(daemon.url("does-not-exist"), "main")
    assert error.field == "repo"
    assert error.status_code == 404
    assert "not found, or you do not have access" in str(error)
    assert daemon.url("does-not-exist") in str(error)


async def test_unknown_repository_short_sha(daemon):
    error = await resolve_error(daemon.url("does-not-exist"), "abcdef1")
    assert error.field == "repo"
    assert error.status_code == 404


async def test_unreachable_host(remote):
    url = f"git://127.0.0.1:{closed_port()}/{remote.name}.git"
    error = await resolve_error(url, None)
    assert error.field == "repo"
    assert error.status_code == 502
    assert "Could not reach" in str(error)


async def test_host_that_never_answers_times_out(remote):
    with socket.socket() as silent:  # accepts connections (backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"git://127.0.0.1:{silent.getsockname()[1]}/{remote.name}.git"
        start = time.monotonic()
        error = await resolve_error(url, "main", git_timeout=1)
    assert time.monotonic() - start < 10
    assert error.field == "repo"
    assert error.status_code == 504
    assert "longer than 1 s" in str(error)


async def test_cached_within_ttl(remote):
    first = await resolve(remote.url, "main", resolved_ref_ttl=60)
    new = remote.commit()
    second = await resolve(remote.url, "main", resolved_ref_ttl=60)
    assert first.version == second.version == remote.c3 != new


async def test_ttl_zero_looks_up_every_time(remote):
    first = await resolve(remote.url, "main", resolved_ref_ttl=0)
    new = remote.commit()
    second = await resolve(remote.url, "main", resolved_ref_ttl=0)
    assert first.version == remote.c3
    assert second.version == new


async def test_cache_expires(remote):
    first = await resolve(remote.url, "main", resolved_ref_ttl=0.5)
    new = remote.commit()
    await asyncio.sleep(0.6)
    assert (await resolve(remote.url, "main", resolved_ref_ttl=0.5)).version == new != first.version


async def test_cache_is_per_ref(remote):
    await resolve(remote.url, "main", resolved_ref_ttl=60)
    assert (await resolve(remote.url, "feature", resolved_ref_ttl=60)).version == remote.c4


async def test_failures_are_not_cached(remote, daemon):
    name = "appears-later"
    url = daemon.url(name)
    assert (await resolve_error(url, "main", resolved_ref_ttl=60)).status_code == 404
    git("clone", "-q", "--bare", str(remote.bare), str(daemon.root / f"{name}.git"))
    assert (await resolve(url, "main", resolved_ref_ttl=60)).version == remote.c3


class CountingGitProvider(GitProvider):
    """The real provider, counting how often it really looks a ref up."""

    lookups = 0
    short_sha_fetches = 0

    async def _lookup(self, *args):
        type(self).lookups += 1
        return await super()._lookup(*args)

    async def _resolve_short_sha(self, *args):
        type(self).short_sha_fetches += 1
        return await super()._resolve_short_sha(*args)


async def test_concurrent_resolves_share_one_lookup(remote):
    CountingGitProvider.lookups = 0
    providers = [CountingGitProvider(allowed_hosts=["127.0.0.1"], resolved_ref_ttl=60) for _ in range(5)]
    results = await asyncio.gather(*(p.resolve(p.parse(remote.url), "feature") for p in providers))
    assert {r.version for r in results} == {remote.c4}
    assert CountingGitProvider.lookups == 1


async def test_short_sha_of_a_tip_needs_no_fetch(remote):
    CountingGitProvider.short_sha_fetches = 0
    p = CountingGitProvider(allowed_hosts=["127.0.0.1"])
    assert (await p.resolve(p.parse(remote.url), remote.c3[:9])).version == remote.c3
    assert CountingGitProvider.short_sha_fetches == 0
    assert (await p.resolve(p.parse(remote.url), remote.c1[:9])).version == remote.c1  # tag tip
    assert CountingGitProvider.short_sha_fetches == 0
    assert (await p.resolve(p.parse(remote.url), remote.c2[:9])).version == remote.c2
    assert CountingGitProvider.short_sha_fetches == 1
