"""Launch links, build-API events, build logs and the spawn form's field errors (pure, no I/O)."""

import asyncio
import json
import re
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binderspawner.web import buildapi

from binderspawner.builders import logs as buildlogs

from binderspawner.web import form
from binderspawner.errors import LaunchError
from binderspawner.providers import DEFAULT_PROVIDERS, detect, link_providers
from binderspawner.launch.links import badge_snippets, launch_path, parse_launch_path, server_name_for
from binderspawner.launch.options import parse_launch_options

PREFIXES = list(link_providers([cls() for cls in DEFAULT_PROVIDERS]))
SERVER_NAME = re.compile(r"^[a-z][a-z0-9-]{0,29}$")

# Every form BinderHub documents, with what the launch must receive.
GOOD = [
    ("gh/binder-examples/requirements/HEAD", "", {"repo": "gh/binder-examples/requirements/HEAD"}),
    ("gh/org/repo.git/v1.0", "", {"repo": "gh/org/repo/v1.0"}),
    ("gh/org/repo/feature/branch", "", {"repo": "gh/org/repo/feature/branch"}),
    ("gist/alice/8f0b4c3a2e1d", "", {"repo": "gist/alice/8f0b4c3a2e1d"}),
    ("gist/alice/8f0b4c3a2e1d/HEAD", "", {"repo": "gist/alice/8f0b4c3a2e1d/HEAD"}),
    ("gl/group%2Fproject/main", "", {"repo": "gl/group%2Fproject/main"}),
    ("gl/group%2Fsub%2Fproject/v2", "", {"repo": "gl/group%2Fsub%2Fproject/v2"}),
    ("git/https%3A%2F%2Fexample.org%2Frepo.git/main", "",
     {"repo": "https://example.org/repo.git", "ref": "main"}),
    ("git/git%3A%2F%2F127.0.0.1%3A9418%2Frequirements.git/HEAD", "urlpath=lab/tree/index.ipynb",
     {"repo": "git://127.0.0.1:9418/requirements.git", "urlpath": "lab/tree/index.ipynb"}),
    ("git/https%3A%2F%2Fexample.org%2Frepo/release%2F1.0", "", {"repo": "https://example.org/repo",
                                                                "ref": "release/1.0"}),
    ("zenodo/10.5281/zenodo.3242074", "", {"repo": "zenodo/10.5281/zenodo.3242074"}),
    ("figshare/10.6084/m9.figshare.9782777.v1", "", {"repo": "figshare/10.6084/m9.figshare.9782777.v1"}),
    ("dataverse/10.7910/DVN/TJCLKP", "", {"repo": "dataverse/10.7910/DVN/TJCLKP"}),
    ("hydroshare/b8f6eae9d89241cf8b5904033460af61", "",
     {"repo": "hydroshare/b8f6eae9d89241cf8b5904033460af61"}),
    ("ckan/https%3A%2F%2Fdemo.ckan.org%2Fdataset%2Fsample", "",
     {"repo": "ckan/https%3A%2F%2Fdemo.ckan.org%2Fdataset%2Fsample"}),
]


def hub_providers():
    """The default providers, with the CKAN site of the examples allowed (none is by default)."""
    return [cls(hosts=["demo.ckan.org"]) if cls.name == "ckan" else cls() for cls in DEFAULT_PROVIDERS]


@pytest.mark.parametrize("path,query,options", GOOD)
def test_every_binderhub_form_parses(path, query, options):
    link = parse_launch_path(path, query, hub_providers())
    assert link.user_options == options
    assert link.provider == path.split("/")[0]
    assert SERVER_NAME.match(server_name_for(link))
    # the canonical request parses back to the same link (what BinderHub sends as binder_request)
    again = parse_launch_path(link.binder_request[len("v2/"):], query, hub_providers())
    assert again == link
    parse_launch_options(link.user_options)  # acceptable user options


@pytest.mark.parametrize("path,query,options", GOOD)
def test_every_form_is_recognised_by_the_hubs_providers(path, query, options):
    """The repo option each link produces is one the default providers recognise (pure parse)."""
    providers = hub_providers()
    provider, source = detect(parse_launch_path(path, query, providers).repo, providers)
    assert provider.name == {"gh": "github", "gl": "gitlab"}.get(path.split("/")[0], path.split("/")[0])


@pytest.mark.parametrize("query,urlpath", [
    ("urlpath=lab/tree/a.ipynb", "lab/tree/a.ipynb"),
    ("urlpath=%2Flab%3Freset", "lab?reset"),
    ("labpath=notebooks/a.ipynb", "lab/tree/notebooks/a.ipynb"),
    ("filepath=My%20file.ipynb", "lab/tree/My%20file.ipynb"),
    ("labpath=a.ipynb&urlpath=tree", "tree"),  # urlpath wins
    ("", ""),
])
def test_urlpath_labpath_filepath(query, urlpath):
    assert parse_launch_path("gh/org/repo/main", query).urlpath == urlpath


@pytest.mark.parametrize("path,query,says", [
    ("gh/org/repo", "", "/HEAD"),
    ("gh/-bad/repo/main", "", "GitHub does not allow"),
    ("gh/org/repo/..", "", "ref"),
    ("gl/project/main", "", "group/project"),
    ("git/https://example.org/repo.git/main", "", "empty parts"),
    ("git/example.org%2Frepo/main", "", "whole URL"),
    ("git/https%3A%2F%2Fexample.org%2Frepo.git/", "", "ref"),
    ("git/https%3A%2F%2Fexample.org%2Frepo.git/-main", "", "ref"),
    ("zenodo/zenodo.3242074", "", "DOI"),
    ("hydroshare/xyz", "", "32 hexadecimal"),
    ("svn/whatever", "", "unknown provider"),
    ("gh/org/repo/main", "urlpath=https://evil.example/", "urlpath"),
    ("gh/org/repo/main", "labpath=../../etc/passwd", "labpath"),
])
def test_bad_links_say_what_is_wrong(path, query, says):
    with pytest.raises(LaunchError) as e:
        parse_launch_path(path, query)
    assert says in str(e.value)


@settings(max_examples=400, deadline=None)
@given(provider=st.sampled_from(PREFIXES + ["", "x"]), spec=st.text(max_size=80),
       query=st.text(max_size=40))
def test_fuzzed_links_raise_only_launch_errors(provider, spec, query):
    try:
        link = parse_launch_path(f"{provider}/{spec}", query)
    except LaunchError:
        return
    assert SERVER_NAME.match(server_name_for(link))
    assert not re.search(r"[\x00-\x20]", link.repo + (link.ref or "") + link.urlpath)
    parse_launch_options(link.user_options)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=60))
def test_fuzzed_escaped_bytes_raise_only_launch_errors(raw):
    try:
        parse_launch_path("git/" + quote(raw, safe="") + "/main")
        parse_launch_path("gl/" + quote(raw, safe="") + "/main")
    except LaunchError:
        pass


def test_server_names_are_stable_and_distinct():
    a = parse_launch_path("git/https%3A%2F%2Fexample.org%2Frepo.git/main", "urlpath=lab")
    b = parse_launch_path("git/https%3A%2F%2Fexample.org%2Frepo.git/main", "labpath=x.ipynb")
    c = parse_launch_path("git/https%3A%2F%2Fexample.org%2Frepo.git/dev")
    d = parse_launch_path("git/https%3A%2F%2Fexample.org%2Fother.git/main")
    assert server_name_for(a) == server_name_for(b) == "b-repo-" + server_name_for(a)[-8:]
    assert len({server_name_for(a), server_name_for(c), server_name_for(d)}) == 3


def test_binderhub_payload_fields():
    link = parse_launch_path("gh/org/repo/main")
    sha = "a" * 40
    event = buildapi.ready_event(url="http://h/user/u/s/", token="t", image="img:1", link=link,
                                 version=sha, launch_host="http://h/hub/")
    assert event["binder_request"] == "v2/gh/org/repo/main"
    assert event["binder_persistent_request"] == f"v2/gh/org/repo/{sha}"
    assert event["binder_ref_url"] == f"https://github.com/org/repo/tree/{sha}"
    assert event["repo_url"] == "https://github.com/org/repo"
    git = parse_launch_path("git/https%3A%2F%2Fexample.org%2Fr.git/main")
    assert git.persistent_request(sha) == f"v2/git/https%3A%2F%2Fexample.org%2Fr.git/{sha}"
    assert git.repo_url == "https://example.org/r.git"


def test_phase_tracker_maps_progress_to_binderhub_phases():
    tracker = buildapi.PhaseTracker()
    messages = ["Resolving the default branch of x", "default branch main is at abc; image i:abc",
                "[waiting] Waiting for a build slot", "[fetching] Building x", "[building] Picked",
                "[fetching] Using Git", "[building] #1 RUN pip",
                "[built] Built image i:abc", "Built image i:abc; starting server", "Server ready"]
    events = [e for m in messages for e in tracker.event(m)]
    phases = [e["phase"] for e in events]
    assert phases == ["waiting", "waiting", "waiting", "fetching", "building", "building",
                      "building", "built", "built", "launching", "launching"]
    assert events[8]["imageName"] == "i:abc"
    assert all(e["message"].endswith("\n") for e in events)
    assert buildapi.sse({"phase": "ready"}) == 'data: {"phase": "ready"}\n\n'


def test_badge_snippets_and_launch_path():
    path = launch_path("https://example.org/r.git", "main", "lab/tree/a.ipynb")
    assert path == "v2/git/https%3A%2F%2Fexample.org%2Fr.git/main?urlpath=lab/tree/a.ipynb"
    assert parse_launch_path(*path[len("v2/"):].split("?")).urlpath == "lab/tree/a.ipynb"
    snippets = badge_snippets("http://h/hub/" + path, "http://h/hub/badge_logo.svg")
    assert snippets["markdown"].startswith("[![Binder](http://h/hub/badge_logo.svg)](http://h/hub/v2/")
    assert ":target: http://h/hub/v2/" in snippets["rst"]
    assert "&amp;" not in snippets["html"] and 'href="http://h/hub/v2/' in snippets["html"]


def test_field_error_html_names_the_field_and_escapes():
    error = form.with_field_html(LaunchError("bad <ref>", field="ref"), {"repo": "<x>", "ref": "'"})
    html = error.jupyterhub_html_message
    assert 'data-binder-field="ref"' in html and "bad &lt;ref&gt;" in html
    assert "<x>" not in html and "&quot;" in html
    assert "__BASE__" not in form.render_form(None) and "/hub/badge_logo.svg" in form.render_form(None)
    user = type("U", (), {"name": "alice"})
    spawner = type("S", (), {"user": user, "hub": type("H", (), {"base_url": "/x/hub/"})})
    form.remember_error("alice", LaunchError("no <such> host", field="repo"), {"repo": "<r>"})
    rendered = form.render_form(spawner)
    assert "/x/hub/badge_logo.svg" in rendered and "no &lt;such&gt; host" in rendered
    assert "&lt;r&gt;" in rendered and "<r>" not in rendered
    assert 'data-error="null"' in form.render_form(spawner), "an error is shown once"


class FakeBuild:
    """Stands in for build.queue.Build: a fixed list of events and an outcome."""

    def __init__(self, events, outcome=True):
        self._events, self._outcome = events, outcome

    async def follow(self):
        for phase, message in self._events:
            yield type("E", (), {"phase": phase, "message": message})

    async def wait(self):
        if isinstance(self._outcome, Exception):
            raise self._outcome
        return self._outcome


async def test_build_log_store_caps_and_access():
    store = buildlogs.BuildLogStore(max_bytes=200, max_images=2)
    store.record("img:1", "alice", FakeBuild([("building", f"line {i}") for i in range(50)]))
    await asyncio.sleep(0.05)
    log = store.get("img:1")
    assert log.state == "built" and log.size <= 200 and "line 49" in log.text()
    assert "earlier lines dropped" in log.text()
    assert store.may_read("img:1", "alice") and not store.may_read("img:1", "bob")
    assert store.may_read("img:1", "bob", admin=True)
    # bob launches the same image later, found built: he may read it, the log is kept
    store.record("img:1", "bob", FakeBuild([], outcome=False))
    await asyncio.sleep(0.05)
    assert store.may_read("img:1", "bob") and "line 49" in store.get("img:1").text()
    store.record("img:2", "alice", FakeBuild([("building", "x")], outcome=LaunchError("boom")))
    await asyncio.sleep(0.05)
    assert store.get("img:2").state == "failed" and "[failed] boom" in store.get("img:2").text()
    store.record("img:3", "alice", FakeBuild([]))
    await asyncio.sleep(0.05)
    assert store.get("img:1") is None, "the oldest log goes first"
    assert json.dumps(sorted(store._logs)) == '["img:2", "img:3"]'
