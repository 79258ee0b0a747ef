"""One repository identity for bans, allowed specs, spec_config and quotas (issue 14 item 17).

Every spelling of a repository must reach the same identity, so a pattern matches all of them or
none: the class of spellings is generated (scheme, www., case, trailing dot, default port, '.git',
trailing '/', the 'git/<escaped URL>' spec, the provider's own spec), not one example."""

import itertools
from urllib.parse import quote, unquote

import pytest

from binderspawner.errors import LaunchError
from binderspawner.launcher import quota_key
from binderspawner.launch.speccontrol import SpecControl
from binderspawner.providers import DEFAULT_PROVIDERS, GitHubProvider, GitLabProvider, detect

PROVIDERS = [cls() for cls in DEFAULT_PROVIDERS]


def url_spellings(host, path, schemes=("https", "http", "git")):
    """Every way to write the URL of ``host``/``path`` that still names the same repository."""
    hosts = {host, host.upper(), f"www.{host}", f"{host}.", f"WWW.{host.title()}."}
    ports = {"", ":443"}
    tails = {"", ".git", "/", ".git/"}
    for scheme, h, port, tail, case in itertools.product(schemes, hosts, ports, tails, (str, str.upper)):
        yield f"{scheme}://{h}{port}/{case(path)}{tail}"


def spellings(host, path, spec):
    """URLs, 'git/<escaped URL>' specs (with and without a ref) and the provider's spec."""
    for url in url_spellings(host, path):
        yield url
        yield "git/" + quote(url, safe="")
        yield "git/" + quote(url, safe="") + "/HEAD"
    yield spec
    yield spec.upper().replace("GH/", "gh/").replace("GL/", "gl/")


@pytest.mark.parametrize("host,path,spec,identity", [
    ("github.com", "evil-org/r", "gh/evil-org/r", "gh/evil-org/r"),
    ("gitlab.com", "evil-group/sub/r", "gl/evil-group%2Fsub%2Fr", "gl/evil-group%2Fsub%2Fr"),
])
def test_every_spelling_has_one_identity_and_one_ban(host, path, spec, identity):
    banned = SpecControl(banned_specs=[f"^{identity.split('/')[0]}/evil-"])
    seen = set()
    for repo in spellings(host, path, spec):
        provider, source = detect(repo, PROVIDERS)
        assert source.repository == identity, repo
        assert quota_key(source) == identity, repo
        with pytest.raises(LaunchError, match="banned"):
            banned.check(source, None)
        seen.add(repo)
    assert len(seen) > 100


def test_the_configured_hosts_own_their_urls():
    """GitHub Enterprise and a self-hosted GitLab: their URLs (web or clone host) are theirs."""
    ghe = GitHubProvider(api_base_url="https://ghe.example.org/api/v3",
                         clone_base_url="https://git.ghe.example.org")
    gl = GitLabProvider(html_base_url="https://gitlab.lab.example:8443")
    providers = [ghe, gl, *(cls() for cls in DEFAULT_PROVIDERS[2:])]
    for repo in ("https://ghe.example.org/Org/Repo", "git/https%3A%2F%2Fwww.ghe.example.org%2Forg%2Frepo.git",
                 "https://git.ghe.example.org/org/repo.git", "gh/org/repo"):
        provider, source = detect(repo, providers)
        assert provider is ghe and source.repository == "gh/org/repo", repo
        assert source.fetch_url.startswith("https://git.ghe.example.org/")
    provider, source = detect("git://GitLab.Lab.Example:8443/G/P.git/", providers)
    assert provider is gl and source.repository == "gl/g%2Fp"
    # github.com is nobody's host on this hub: a plain Git URL there stays a Git URL
    provider, source = detect("https://github.com/org/repo", providers)
    assert provider.name == "git"
    # another port on the self-hosted GitLab's host is another server
    assert detect("https://gitlab.lab.example:9999/g/p", providers)[0].name == "git"


@pytest.mark.parametrize("a,b", [
    ("https://example.org/r.git", "https://EXAMPLE.org:443/r/"),
    ("http://example.org:80/org/r", "http://example.org/org/r.git"),
    ("git://example.org:9418/r.git", "git://example.org./r"),
    ("git/https%3A%2F%2Fexample.org%2Fr.git/main", "https://example.org/r/"),
])
def test_plain_git_urls_have_one_identity(a, b):
    assert detect(a, PROVIDERS)[1].repository == detect(b, PROVIDERS)[1].repository


@pytest.mark.parametrize("a,b", [
    ("https://example.org/r", "https://example.org/R"),  # other servers may be case-sensitive
    ("https://example.org/r", "https://www.example.org/r"),  # and www. may be another server
    ("https://example.org/r", "https://example.org:8443/r"),
    ("gh/org/r", "gh/org/r2"),
])
def test_different_repositories_stay_different(a, b):
    assert detect(a, PROVIDERS)[1].repository != detect(b, PROVIDERS)[1].repository


def test_allowed_specs_and_spec_config_match_the_identity():
    control = SpecControl(allowed_specs=["^gh/my-lab/"],
                          spec_config=[{"pattern": "^gh/my-lab/big", "config": {"quota": 3}}])
    for repo in ("https://www.github.com/My-Lab/Big.git", "git/https%3A%2F%2Fgithub.com%2Fmy-lab%2Fbig",
                 "gh/my-lab/big/main"):
        ref, spec, settings = control.check(detect(repo, PROVIDERS)[1], None)
        assert spec.startswith("gh/my-lab/big/") and settings == {"quota": 3}, repo
    with pytest.raises(LaunchError, match="only"):
        control.check(detect("https://example.org/my-lab/big.git", PROVIDERS)[1], None)


def test_a_git_spec_and_its_url_cannot_name_two_refs():
    with pytest.raises(LaunchError, match="give one of them"):
        detect("git/" + quote("https://github.com/org/r/tree/main", safe="") + "/dev", PROVIDERS)
    _, source = detect("git/" + quote("https://github.com/org/r/tree/main", safe=""), PROVIDERS)
    assert source.ref == "main" and source.repository == "gh/org/r"


def test_records_ignore_doi_case():
    assert detect("zenodo/10.5281/ZENODO.42", PROVIDERS)[1].repository == \
        detect("https://zenodo.org/records/42", PROVIDERS)[1].repository
    assert detect("dataverse/10.7910/DVN/TJCLKP", PROVIDERS)[1].repository == \
        detect("dataverse/10.7910/dvn/tjclkp", PROVIDERS)[1].repository


def test_a_git_spec_on_an_owned_host_is_the_owners_whatever_git_allows():
    """GitProvider.allowed_hosts is about plain Git hosts; GitHub's URLs are GitHub's either way."""
    from binderspawner.providers import GitProvider

    hub = [GitProvider(allowed_hosts=["127.0.0.1"]) if cls is GitProvider else cls()
           for cls in DEFAULT_PROVIDERS]
    for repo in ("git/https%3A%2F%2Fgithub.com%2Fevil-org%2Fr", "https://www.github.com/evil-org/r"):
        provider, source = detect(repo, hub)
        assert provider.name == "github" and source.repository == "gh/evil-org/r"
    with pytest.raises(LaunchError, match="allowed hosts"):
        detect("git/https%3A%2F%2Fexample.org%2Fr", hub)


@pytest.mark.parametrize("a,b", [
    ("git://127.0.0.1:9418/r.git", "git://127.0.0.1/r.git/"),
    ("https://example.org/org/r.git", "https://example.org/org/r/"),
    ("https://example.org/org/r", "https://example.org:443/org/r.git/"),
])
def test_spellings_of_one_git_url_name_one_image(a, b):
    """A pasted URL with a trailing '/' must find the image its plain spelling (or a prebuild) made,
    not build the same commit again under another name."""
    from binderspawner.launch.images import image_reference

    assert image_reference("b-", detect(a, PROVIDERS)[1].slug, "c" * 40) == \
        image_reference("b-", detect(b, PROVIDERS)[1].slug, "c" * 40)


@pytest.mark.parametrize("host,path,spec", [("github.com", "org/r", "gh/org/r"),
                                            ("gitlab.com", "group/sub/r", "gl/group%2Fsub%2Fr")])
def test_every_spelling_of_a_forge_repository_names_one_image(host, path, spec):
    """(The path's case still names another image: the forges' names are case-insensitive, but
    changing their images' names would rebuild every image of a mixed-case repository once.)"""
    slugs = {detect(repo, PROVIDERS)[1].slug for repo in spellings(host, path, spec)
             if path.upper() not in unquote(repo)}
    assert len(slugs) == 1, slugs
