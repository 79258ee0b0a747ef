"""Hypothesis: the providers' parsers and resolvers raise nothing but LaunchError, every message
names what was wrong, and a canonical spec parsed and written back is the same spec.

Resolvers run against tests/support/apifixtures.py (a local server on 127.0.0.1 answering like
GitHub's and GitLab's documented APIs); nothing leaves this machine.
"""

import asyncio
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from binderspawner.errors import LaunchError
from binderspawner.providers import DEFAULT_PROVIDERS, GitHubProvider, GitLabProvider, detect
from binderspawner.providers.api import rate_limit_error
from binderspawner.providers.records import doi_of
from binderspawner.launch.options import validate_ref
from binderspawner.launch.speccontrol import effective_ref
from tests.support.apifixtures import ApiFixtures, fresh_provider_caches

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# CKAN launches only from the admin's sites (none by default): these name the fuzzed ones.
PROVIDERS = [cls(hosts=["*.example.org"]) if cls.name == "ckan" else cls() for cls in DEFAULT_PROVIDERS]
PREFIXES = ["gh/", "gl/", "gist/", "git/", "zenodo/", "figshare/", "hydroshare/", "dataverse/", "ckan/",
            "https://github.com/", "https://gitlab.com/", "https://gist.github.com/", "https://zenodo.org/records/",
            "https://figshare.com/articles/", "https://www.hydroshare.org/resource/", "doi:10.", "10.5281/zenodo.",
            "https://dataverse.harvard.edu/dataset.xhtml?persistentId=", "https://doi.org/10.", "git://", "https://"]
pieces = st.text(alphabet=st.sampled_from("aZ09-_./%:?#@~+ 2F3A"), max_size=40)
repo_text = st.one_of(st.text(max_size=80), st.builds(lambda p, r: p + r, st.sampled_from(PREFIXES), pieces))


def named(error, repo):
    doi = doi_of(repo)
    return repr(repo) in error.message or (doi is not None and doi in error.message) or (
        error.field == "ref" and "ref" in error.message)


@FAST
@given(repo_text)
@example("gh/org/repo/a..b")
@example("gl/%ZZ/x")
@example("ckan/http%3A%2F%2F[::1%2Fdataset%2Fx")
@example("zenodo/10.5281/zenodo.")
def test_detect_raises_only_launch_errors_that_name_the_input(repo):
    try:
        provider, source = detect(repo, PROVIDERS)
    except LaunchError as e:
        assert e.field in ("repo", "ref")
        assert named(e, repo), e.message
        return
    assert provider.parse(source.spec) == source  # whatever was accepted round-trips


owners = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9-]{0,10}\Z")
names = st.from_regex(
    r"\A[A-Za-z0-9_-][A-Za-z0-9._-]{0,10}\Z").filter(lambda n: n not in (".", "..") and not n.endswith(".git"))
refs = st.one_of(st.none(), st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9._/+@-]{0,15}\Z")).filter(
    lambda r: r is None or _valid_ref(r))


def _valid_ref(ref):
    try:
        validate_ref(ref)
        return True
    except LaunchError:
        return False


def with_ref(spec, ref):
    return f"{spec}/{ref}" if ref else spec


canonical_specs = st.one_of(
    st.builds(lambda o, n, r: with_ref(f"gh/{o}/{n}", r), owners, names, refs),
    st.builds(lambda g, n, r: with_ref(f"gl/{quote(g + '/' + n, safe='')}", r),
              *[names.filter(lambda n: not n.startswith("-"))] * 2, refs),
    st.builds(lambda o, i, r: with_ref(f"gist/{o}/{i}", r),
              owners, st.from_regex(r"\A[0-9a-f]{6,32}\Z"), refs),
    st.builds(lambda h, n, r: with_ref(f"git/{quote(f'https://{h}.example.org/{n}.git', safe='')}", r),
              st.from_regex(r"\A[a-z0-9]{1,10}\Z"), names, refs),
    st.builds(lambda i: f"zenodo/10.5281/zenodo.{i}", st.integers(1, 10**9)),
    st.builds(lambda i, v: f"figshare/10.6084/m9.figshare.{i}" + (f".v{v}" if v else ""),
              st.integers(1, 10**9), st.one_of(st.none(), st.integers(1, 99))),
    st.builds(lambda i: f"hydroshare/{i}", st.from_regex(r"\A[0-9a-f]{32}\Z")),
    st.builds(lambda s: f"dataverse/10.7910/DVN/{s}", st.from_regex(r"\A[A-Z0-9]{6}\Z")),
    st.builds(lambda h, n: "ckan/" + quote(f"https://{h}.example.org/dataset/{n}", safe=""),
              st.from_regex(r"\A[a-z0-9]{1,10}\Z"), st.from_regex(r"\A[a-z0-9_-]{1,20}\Z")),
)


@FAST
@given(canonical_specs)
def test_canonical_specs_round_trip(spec):
    provider, source = detect(spec, PROVIDERS)
    assert source.spec == spec
    assert provider.parse(source.spec) == source


@FAST
@given(status=st.integers(100, 599), headers=st.dictionaries(
    st.sampled_from(["X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After", "RateLimit-Reset"]),
    st.text(max_size=30)), now=st.floats(0, 4e9))
def test_rate_limit_error_never_raises(status, headers, now):
    error = rate_limit_error("GitHub", status, headers, now)
    assert error is None or (isinstance(error, LaunchError) and "rate limit" in error.message)


@pytest.fixture(scope="module")
def api():
    server = ApiFixtures().start()
    server.state.github["org/repo"] = {"refs": {"main": "a" * 40}}
    server.state.gitlab["org/repo"] = {"refs": {"main": "b" * 40}}
    yield server
    server.stop()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ref=refs, which=st.sampled_from(["gh/org/repo", "gl/org%2Frepo", "gh/org/missing"]))
def test_resolvers_raise_only_launch_errors(api, ref, which):
    fresh_provider_caches()
    providers = [GitHubProvider(api_base_url=api.url("/github"), allowed_private_hosts=["127.0.0.1"]),
                 GitLabProvider(api_base_url=api.url("/gitlab/api/v4"), allowed_private_hosts=["127.0.0.1"])]
    provider, source = detect(which, providers)

    async def run():
        return await provider.resolve(source, effective_ref(source, ref))

    try:
        resolved = asyncio.run(run())
    except LaunchError as e:
        assert e.field in ("repo", "ref") and (source.display_name in e.message or "ref" in e.message)
        return
    assert len(resolved.version) == 40
