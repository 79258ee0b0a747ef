"""Each provider owns its launch-link grammar, repo_url and ref_url, from its configured hosts, and
the spawn form's browser checks are exactly those patterns (pure, no I/O)."""

import json
import re

import pytest
from traitlets.config import Config, Configurable

from binderspawner.errors import LaunchError
from binderspawner.launch.links import parse_launch_path
from binderspawner.providers import DEFAULT_PROVIDERS, GitHubProvider, GitLabProvider, detect, link_providers
from binderspawner.web import buildapi, form

GHE = Config({"GitHubProvider": {"api_base_url": "https://ghe.example.org/api/v3"},
              "GitLabProvider": {"html_base_url": "https://gitlab.lab.example"}})
SHA = "b" * 40


class Spawner(Configurable):
    """What render_form and the providers read from a spawner: its config and provider classes."""

    provider_classes = DEFAULT_PROVIDERS
    hub = type("Hub", (), {"base_url": "/hub/"})
    user = type("User", (), {"name": "grammar-test"})


def providers(config=None):
    config = Config(config or {})
    config.CKANProvider.hosts = ["demo.ckan.org"]  # the examples' CKAN site (none is allowed by default)
    parent = Spawner(config=config)
    return [cls(parent=parent) for cls in DEFAULT_PROVIDERS]


@pytest.mark.parametrize("config", [None, GHE], ids=["public", "self-hosted"])
def test_every_example_parses_and_matches_its_own_pattern(config):
    hub = providers(config)
    for prefix, provider in link_providers(hub).items():
        grammar = provider.link_grammar()
        assert grammar.prefix == prefix and grammar.example.startswith(prefix + "/")
        assert re.search(grammar.pattern, grammar.example), prefix
        link = parse_launch_path(grammar.example, "", hub)
        assert link.grammar is provider
        detect(link.repo, hub)


def part_cases():
    """(spec, accepted) at each limit the grammar names, so the limits cannot drift apart."""
    ok, long_ = "a" * 255, "a" * 256
    return [
        (f"gl/g%2F{ok}/main", True), (f"gl/g%2F{long_}/main", False),
        (f"gl/{ok}%2Fp/main", True), (f"gl/{long_}%2Fp/main", False),
        (f"gh/{'o' * 39}/r/main", True), (f"gh/{'o' * 40}/r/main", False),
        (f"gh/o/{'r' * 100}/main", True), (f"gh/o/{'r' * 101}/main", False),
        ("gh/-o/r/main", False), ("gh/o/../main", False), ("gl/g%2F..%2Fp/main", False),
        (f"gist/u/{'a' * 64}", True), (f"gist/u/{'a' * 65}", False),
        ("hydroshare/" + "a" * 32, True), ("hydroshare/" + "A" * 32, False),
        ("zenodo/10.5281/zenodo.3242074", True), ("zenodo/zenodo.3242074", False),
    ]


@pytest.mark.parametrize("spec,accepted", part_cases())
def test_links_repos_and_browser_patterns_agree_at_the_limits(spec, accepted):
    """The link parser, the provider's spec parser and the browser's pattern take the same specs."""
    hub = providers()
    grammar = link_providers(hub)[spec.split("/")[0]].link_grammar()
    assert bool(re.search(grammar.pattern, spec)) is accepted
    try:
        parse_launch_path(spec, "", hub)
        link_ok = True
    except LaunchError:
        link_ok = False
    try:
        detect(spec, hub)
        repo_ok = True
    except LaunchError:
        repo_ok = False
    assert link_ok is accepted and repo_ok is accepted


def test_gitlab_parts_have_one_limit():
    """Issue 12: links took 100 characters per GitLab path part, the provider 255."""
    from binderspawner.providers import gitlab

    assert gitlab.MAX_PART_LENGTH == 255
    assert GitLabProvider().link_grammar().max_lengths == {"namespace part": 255}


def test_links_have_no_host_written_in():
    """repo_url, ref_url and the persistent request come from the configured providers."""
    hub = providers(GHE)
    link = parse_launch_path("gh/org/repo/main", "", hub)
    assert link.repo_url == "https://ghe.example.org/org/repo"
    assert link.ref_url(SHA) == f"https://ghe.example.org/org/repo/tree/{SHA}"
    assert link.persistent_request(SHA) == f"v2/gh/org/repo/{SHA}"
    event = buildapi.ready_event(url="u", token="t", image="i", link=link, version=SHA, launch_host="h")
    assert (event["repo_url"], event["binder_ref_url"]) == (link.repo_url, link.ref_url(SHA))
    # a git link to a URL on the GHE host is GitHub's repository, with GitHub's URLs
    git = parse_launch_path("git/https%3A%2F%2Fwww.ghe.example.org%2Forg%2Frepo.git/main", "", hub)
    assert git.repo_url == "https://ghe.example.org/org/repo" and git.owner.name == "github"
    assert git.persistent_request(SHA) == f"v2/git/https%3A%2F%2Fwww.ghe.example.org%2Forg%2Frepo.git/{SHA}"
    gl = parse_launch_path("gl/group%2Fsub%2Fproject/v1", "", hub)
    assert gl.repo_url == "https://gitlab.lab.example/group/sub/project"
    assert gl.ref_url(SHA) == f"https://gitlab.lab.example/group/sub/project/-/tree/{SHA}"
    gist = parse_launch_path("gist/alice/8f0b4c3a2e1d", "", hub)
    assert gist.ref_url(SHA) == f"https://ghe.example.org/gist/alice/8f0b4c3a2e1d/{SHA}"


def test_a_hub_without_a_provider_refuses_its_links():
    hub = [cls() for cls in DEFAULT_PROVIDERS if cls is not GitHubProvider]
    with pytest.raises(LaunchError, match="unknown provider 'gh'"):
        parse_launch_path("gh/org/repo/main", "", hub)


def browser_grammar(html):
    found = re.search(r'<script type="application/json" id="binder-grammar">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


@pytest.mark.parametrize("config", [None, GHE], ids=["public", "self-hosted"])
def test_the_browser_gets_the_providers_own_patterns(config):
    spawner = Spawner(config=config or Config())
    sent = browser_grammar(form.render_form(spawner))
    own = [p.link_grammar().as_dict() for p in link_providers(providers(config)).values()]
    assert sent == own
    gh = next(g for g in sent if g["prefix"] == "gh")
    host = "ghe\\.example\\.org" if config else "github\\.com"
    assert host in gh["pattern"]
    assert bool(re.search(gh["pattern"], "https://ghe.example.org/org/repo")) is bool(config)
    # nothing in the page is a pattern of its own: every RegExp is built from the grammar
    script = form.render_form(spawner).split("<script>", 1)[1]
    assert "new RegExp(g.pattern)" in script and "gh|gl" not in script
