"""GitHub and gist providers (binderspawner/providers/github.py, gist.py, api.py).

GitHub cannot be reached from the test machines: these tests run against tests/support/apifixtures.py,
a local tornado server on 127.0.0.1 that answers like GitHub's documented REST API (commit sha via
``application/vnd.github.sha``, 422 for an unknown ref, ETag/304, X-RateLimit-* headers), so the
providers' real HTTP client code runs. The git fallback runs the real ``git ls-remote`` against the
tests' git daemon on 127.0.0.1.
"""

import time

import pytest

from binderspawner.errors import LaunchError
from binderspawner.providers import GistProvider, GitHubProvider, TokenCredentials
from binderspawner.providers.api import stats
from binderspawner.launch.speccontrol import effective_ref
from tests.support.apifixtures import fresh_provider_caches
from tests.support.net import free_port

SHA = "a" * 40
DEV = "b" * 40
TAG = "c" * 40


@pytest.fixture(autouse=True)
def fresh(api):
    api.state.__init__()
    api.state.github["org/repo"] = {"refs": {"main": SHA, "dev": DEV, "v1.0": TAG}, "default": "main"}
    fresh_provider_caches()
    yield


def github(api, **kwargs):
    kwargs.setdefault("allowed_private_hosts", ["127.0.0.1"])
    return GitHubProvider(api_base_url=api.url("/github"), html_base_url="https://github.com", **kwargs)


async def resolve(provider, repo, ref=None, **kwargs):
    """As the spawner does: the ref in the spec counts when the 'ref' option is empty."""
    source = provider.parse(repo)
    return await provider.resolve(source, effective_ref(source, ref), **kwargs)


# parsing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("repo, spec, ref", [
    ("gh/org/repo", "gh/org/repo", None),
    ("gh/org/repo/main", "gh/org/repo/main", "main"),
    ("gh/org/repo/feature/x", "gh/org/repo/feature/x", "feature/x"),
    ("https://github.com/org/repo", "gh/org/repo", None),
    ("https://github.com/org/repo.git", "gh/org/repo", None),
    ("https://GitHub.com/org/repo/", "gh/org/repo", None),
    ("https://github.com/org/repo/tree/v1.0", "gh/org/repo/v1.0", "v1.0"),
    ("https://github.com/org/repo/commit/abcdef1", "gh/org/repo/abcdef1", "abcdef1"),
    ("http://github.com/Org/My.Repo_1", "gh/Org/My.Repo_1", None),
])
def test_github_forms(api, repo, spec, ref):
    source = github(api).parse(repo)
    assert (source.spec, source.ref) == (spec, ref)
    assert source.fetch_url == f"https://github.com/{spec.split('/')[1]}/{spec.split('/')[2]}"
    assert github(api).parse(source.spec) == source  # round trip


def test_github_enterprise_urls():
    p = GitHubProvider(api_base_url="https://ghe.example.org/api/v3")
    assert p.html_base_url == "https://ghe.example.org"
    source = p.parse("https://ghe.example.org/team/tool/tree/main")
    assert (source.spec, source.fetch_url, source.slug) == (
        "gh/team/tool/main", "https://ghe.example.org/team/tool", "ghe.example.org/team/tool")
    assert p.parse("https://github.com/org/repo") is None  # not this provider's host


@pytest.mark.parametrize("repo, part", [
    ("gh/-bad/repo", "owner '-bad'"),
    ("gh/org/..", "repository name '..'"),
    ("gh/org/repo/a..b", "ref in"),
    ("https://github.com/org/repo/issues/1", "not the address of a repository"),
    ("https://github.com/org", "not the address of a repository"),
    ("https://user:pw@github.com/org/repo", "credentials"),
    ("https://github.com/org/repo?x=1", "query"),
])
def test_github_bad_input_names_the_part(api, repo, part):
    with pytest.raises(LaunchError) as info:
        github(api).parse(repo)
    assert part in str(info.value) and info.value.field == "repo"


# resolving ------------------------------------------------------------------------------------------


async def test_branch_resolves_with_one_call_then_none_within_ttl(api):
    p = github(api, resolved_ref_ttl=60)
    first = await resolve(p, "gh/org/repo", "dev")
    assert (first.version, first.resolved_from) == (DEV, "ref dev")
    assert len(api.calls("/github")) == 1
    method, path, headers = api.calls("/github")[0]
    assert path == "/github/repos/org/repo/commits/dev"
    assert headers["Accept"] == "application/vnd.github.sha"
    for _ in range(5):
        assert (await resolve(p, "gh/org/repo", "dev")).version == DEV
    assert len(api.calls("/github")) == 1, "repeated launches within the TTL must not call the API"


async def test_expired_entry_is_revalidated_with_etag(api):
    p = github(api, resolved_ref_ttl=0)
    assert (await resolve(p, "gh/org/repo", "main")).version == SHA
    assert (await resolve(p, "gh/org/repo", "main")).version == SHA
    calls = api.calls("/github")
    assert len(calls) == 2 and "If-None-Match" in calls[1][2]
    assert stats["not_modified"] == 1
    api.state.github["org/repo"]["refs"]["main"] = DEV  # a push: the ETag no longer matches
    assert (await resolve(p, "gh/org/repo", "main")).version == DEV


async def test_default_branch_tag_and_short_sha(api):
    p = github(api)
    default = await resolve(p, "https://github.com/org/repo")
    assert (default.version, default.resolved_from) == (SHA, "default branch")
    assert (await resolve(p, "gh/org/repo/v1.0")).version == TAG
    assert (await resolve(p, "gh/org/repo", "bbbbbbb")).version == DEV


async def test_full_sha_is_checked_once_then_revalidated(api):
    """A full sha asks the API (the access check at every launch); later launches revalidate it
    with the ETag, which GitHub does not count against the rate limit."""
    p = github(api, resolved_ref_ttl=0)
    for _ in range(2):
        resolved = await resolve(p, "gh/org/repo", SHA.upper())
        assert (resolved.version, resolved.resolved_from) == (SHA, f"commit {SHA.upper()[:12]}")
    calls = api.calls("/github")
    assert len(calls) == 2 and "If-None-Match" not in calls[0][2] and "If-None-Match" in calls[1][2]
    with pytest.raises(LaunchError) as info:
        await resolve(p, "gh/org/missing", SHA)
    assert info.value.status_code == 404 and "not found on GitHub, or you do not have access" in str(
        info.value)


async def test_full_sha_needs_no_call_when_access_checks_are_off(api):
    resolved = await resolve(github(api, check_access_for_commits=False), "gh/org/repo", "F" * 40)
    assert resolved.version == "f" * 40 and api.calls("/github") == []


async def test_unknown_ref_and_unknown_repo(api):
    with pytest.raises(LaunchError) as info:
        await resolve(github(api), "gh/org/repo", "nope")
    assert info.value.field == "ref" and "no branch, tag or commit 'nope'" in str(info.value)
    with pytest.raises(LaunchError) as info:
        await resolve(github(api), "gh/org/missing")
    assert info.value.status_code == 404 and "org/missing was not found" in str(info.value)


async def test_rate_limit_names_the_reset_time(api):
    reset = time.time() + 600
    api.state.rate_limited = reset
    with pytest.raises(LaunchError) as info:
        await resolve(github(api), "gh/org/repo", "main")
    message = str(info.value)
    assert info.value.status_code == 429
    assert time.strftime("%H:%M:%S", time.gmtime(int(reset))) + " UTC" in message
    assert "in about 10 minutes" in message and "GitHubProvider.access_token" in message


async def test_hub_token_goes_in_the_header_only(api, caplog):
    token = "ghp_" + "s3cret" * 6
    api.state.github["org/private"] = {"refs": {"main": SHA}, "private": True}
    api.state.tokens.add(token)
    caplog.set_level("DEBUG")
    assert (await resolve(github(api, access_token=token), "gh/org/private", "main")).version == SHA
    _, path, headers = api.calls("/github")[-1]
    assert headers["Authorization"] == f"Bearer {token}" and token not in path
    assert token not in caplog.text


async def test_user_credentials_replace_the_hub_token(api):
    api.state.github["org/private"] = {"refs": {"main": SHA}, "private": True}
    api.state.tokens.add("user-token")
    with pytest.raises(LaunchError):
        await resolve(github(api, access_token="hub-token"), "gh/org/private", "main")
    credentials = TokenCredentials("user-token")
    resolved = await resolve(github(api, access_token="hub-token"), "gh/org/private", "main",
                             credentials=credentials)
    assert resolved.version == SHA
    assert "user-token" not in repr(credentials)


async def test_api_on_a_private_address_is_refused_unless_allow_listed(api):
    with pytest.raises(LaunchError) as info:
        await resolve(github(api, allowed_private_hosts=[]), "gh/org/repo", "main")
    assert info.value.status_code == 403
    assert "127.0.0.1" in str(info.value) and "GitHubProvider.allowed_private_hosts" in str(info.value)
    assert api.calls("/github") == []


async def test_unreachable_api_falls_back_to_git_ls_remote(git_server):
    sha = git_server.add_repo(f"fallback{free_port()}/repo", files={"x": "1"})
    name = [n for n in _repos(git_server) if n.startswith("fallback")][-1]
    p = GitHubProvider(api_base_url=f"http://127.0.0.1:{free_port()}", html_base_url="https://github.com",
                       clone_base_url=f"git://127.0.0.1:{git_server.port}", allowed_private_hosts=["127.0.0.1"])
    p.config.GitProvider.allowed_private_hosts = ["127.0.0.1"]
    fresh_provider_caches()
    resolved = await p.resolve(p.parse(f"gh/{name}/repo"), "main")
    assert resolved.version == sha


def _repos(git_server):
    import os

    return sorted(os.listdir(git_server.repos))


# gists ------------------------------------------------------------------------------------------------


def gists(api, **kwargs):
    return GistProvider(api_base_url=api.url("/github"), gist_base_url="https://gist.github.com",
                        allowed_private_hosts=["127.0.0.1"], **kwargs)


@pytest.mark.parametrize("repo, spec", [
    ("gist/alice/0123abcd", "gist/alice/0123abcd"),
    ("gist/alice/0123abcd/" + DEV, "gist/alice/0123abcd/" + DEV),
    ("https://gist.github.com/alice/0123abcd", "gist/alice/0123abcd"),
])
def test_gist_forms(api, repo, spec):
    source = gists(api).parse(repo)
    assert source.spec == spec and source.fetch_url == "https://gist.github.com/0123abcd.git"
    assert gists(api).parse(spec) == source


async def test_gist_revisions(api):
    api.state.gists["0123abcd"] = {"owner": "alice", "public": True, "history": [DEV, SHA]}
    latest = await resolve(gists(api), "gist/alice/0123abcd")
    assert (latest.version, latest.resolved_from) == (DEV, "latest revision")
    assert (await resolve(gists(api), "gist/alice/0123abcd", "HEAD")).version == DEV
    assert (await resolve(gists(api), "gist/alice/0123abcd", "aaaaaaa")).version == SHA
    with pytest.raises(LaunchError) as info:
        await resolve(gists(api), "gist/alice/0123abcd", "ccccccc")
    assert info.value.field == "ref"


async def test_gist_of_another_user_and_secret_gists(api):
    api.state.gists["0123abcd"] = {"owner": "alice", "public": True, "history": [SHA]}
    api.state.gists["5ec12e7"] = {"owner": "alice", "public": False, "history": [SHA]}
    with pytest.raises(LaunchError) as info:
        await resolve(gists(api), "gist/mallory/0123abcd")
    assert info.value.status_code == 404
    with pytest.raises(LaunchError) as info:
        await resolve(gists(api), "gist/alice/5ec12e7")
    assert "secret gist" in str(info.value)
    assert (await resolve(gists(api, allow_secret_gist=True), "gist/alice/5ec12e7")).version == SHA
