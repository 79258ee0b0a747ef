"""GitLab provider (binderspawner/providers/gitlab.py).

GitLab cannot be reached from the test machines: these tests run against tests/support/apifixtures.py,
a local tornado server on 127.0.0.1 that answers like GitLab's documented REST API v4
(``GET /projects/:id``, ``GET /projects/:id/repository/commits/:sha``, 404 bodies, ETag/304,
429 with RateLimit-Reset/Retry-After), so the provider's real HTTP client code runs.
"""

import time

import pytest

from binderspawner.errors import LaunchError
from binderspawner.providers import GitLabProvider
from binderspawner.launch.speccontrol import effective_ref
from tests.support.apifixtures import fresh_provider_caches

SHA = "1" * 40
DEV = "2" * 40


@pytest.fixture(autouse=True)
def fresh(api):
    api.state.__init__()
    api.state.gitlab["group/sub/project"] = {"refs": {"main": SHA, "feature/x": DEV}, "default": "main"}
    fresh_provider_caches()


def gitlab(api, **kwargs):
    return GitLabProvider(html_base_url="https://gitlab.lab.example", api_base_url=api.url("/gitlab/api/v4"),
                          allowed_private_hosts=["127.0.0.1"], **kwargs)


async def resolve(provider, repo, ref=None):
    source = provider.parse(repo)
    return await provider.resolve(source, effective_ref(source, ref))


@pytest.mark.parametrize("repo, spec, ref", [
    ("gl/group%2Fsub%2Fproject", "gl/group%2Fsub%2Fproject", None),
    ("gl/group%2Fsub%2Fproject/feature/x", "gl/group%2Fsub%2Fproject/feature/x", "feature/x"),
    ("https://gitlab.lab.example/group/sub/project", "gl/group%2Fsub%2Fproject", None),
    ("https://gitlab.lab.example/group/sub/project.git", "gl/group%2Fsub%2Fproject", None),
    ("https://gitlab.lab.example/group/sub/project/-/tree/feature/x",
     "gl/group%2Fsub%2Fproject/feature/x", "feature/x"),
    ("https://gitlab.lab.example/group/sub/project/-/commit/2222222", "gl/group%2Fsub%2Fproject/2222222", "2222222"),
])
def test_forms_and_round_trip(api, repo, spec, ref):
    source = gitlab(api).parse(repo)
    assert (source.spec, source.ref) == (spec, ref)
    assert source.fetch_url == "https://gitlab.lab.example/group/sub/project.git"
    assert source.slug == "gitlab.lab.example/group/sub/project"
    assert gitlab(api).parse(spec) == source


def test_defaults_are_gitlab_com():
    p = GitLabProvider()
    assert (p.html_base_url, p.api_base_url) == ("https://gitlab.com", "https://gitlab.com/api/v4")
    assert p.parse("https://gitlab.lab.example/a/b") is None


@pytest.mark.parametrize("repo, part", [
    ("gl/group/sub/project/main", "URL-escaped"),
    ("gl/justone", "URL-escaped"),
    ("gl/just%2F..", "not a GitLab 'group/project' path"),
    ("gl/a%2Fb/bad..ref", "ref in"),
])
def test_bad_input_names_the_part(api, repo, part):
    with pytest.raises(LaunchError) as info:
        gitlab(api).parse(repo)
    assert part in str(info.value)


async def test_resolve_default_branch_branch_and_cache(api):
    p = gitlab(api, resolved_ref_ttl=60)
    default = await resolve(p, "gl/group%2Fsub%2Fproject")
    assert (default.version, default.resolved_from) == (SHA, "default branch main")
    paths = [c[1] for c in api.calls("/gitlab")]
    assert paths == ["/gitlab/api/v4/projects/group%2Fsub%2Fproject",
                     "/gitlab/api/v4/projects/group%2Fsub%2Fproject/repository/commits/main"]
    assert (await resolve(p, "gl/group%2Fsub%2Fproject/feature/x")).version == DEV
    assert api.calls("/gitlab")[-1][1].endswith("/commits/feature%2Fx")
    calls = len(api.calls("/gitlab"))
    await resolve(p, "gl/group%2Fsub%2Fproject/feature/x")
    assert len(api.calls("/gitlab")) == calls


async def test_missing_project_ref_and_private(api):
    with pytest.raises(LaunchError) as info:
        await resolve(gitlab(api), "gl/group%2Fmissing")
    assert "was not found" in str(info.value) and info.value.status_code == 404
    with pytest.raises(LaunchError) as info:
        await resolve(gitlab(api), "gl/group%2Fsub%2Fproject/nope")
    assert info.value.field == "ref"
    api.state.gitlab["lab/private"] = {"refs": {"main": SHA}, "private": True}
    api.state.tokens.add("glpat-secret")
    assert (await resolve(gitlab(api, access_token="glpat-secret"), "gl/lab%2Fprivate/main")).version == SHA
    assert api.calls("/gitlab")[-1][2]["Authorization"] == "Bearer glpat-secret"


async def test_rate_limit(api):
    api.state.rate_limited = time.time() + 120
    with pytest.raises(LaunchError) as info:
        await resolve(gitlab(api), "gl/group%2Fsub%2Fproject/main")
    assert info.value.status_code == 429 and "GitLab's API rate limit" in str(info.value)
    assert "UTC (in about 2 minutes)" in str(info.value)
