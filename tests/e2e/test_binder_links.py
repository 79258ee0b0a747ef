"""Launch links, the spawn form, badges, build logs and BinderHub's build API, end to end.

Real parts only: a JupyterHub of our own (tests/support/hub.py) with binderspawner's handlers and
templates, configurable-http-proxy, the Docker engine, repo2docker, a git daemon on 127.0.0.1, and a
real browser (Debian's chromium driven by Playwright). Screenshots go to test-artifacts/.
"""

import json
import os
import re
import uuid
from urllib.parse import quote

import pytest
import requests

from binderspawner.web.buildapi import PHASES
from tests.conftest import ARTIFACTS, EXAMPLES, serving
from tests.support.browser import chromium
from tests.support.hub import Hub

EXTRA = """
from binderspawner.web.handlers import binder_handlers, TEMPLATE_PATH
c.JupyterHub.extra_handlers = binder_handlers()
c.JupyterHub.template_paths = [TEMPLATE_PATH]
c.Authenticator.admin_users = {"i7admin"}
c.JupyterHub.load_roles.append({"name": "i7-tokens", "scopes": ["tokens"], "services": ["tests"]})
from binderspawner.policy.quotas import named_server_limit
c.JupyterHub.named_server_limit_per_user = named_server_limit(1)
c.Quotas.per_user_quota = 1
"""


@pytest.fixture(scope="module")
def repos(git_server):
    """Fresh repositories (new commits, so new images) for this module."""
    suffix = uuid.uuid4().hex[:6]
    names = {"browser": f"i7-browser-{suffix}", "api": f"i7-api-{suffix}"}
    for name in names.values():
        git_server.add_repo(name, os.path.join(EXAMPLES, "requirements"))
    # a build that fails in a few seconds, without any network: a Dockerfile step that exits 3
    names["failing"] = f"i7-failing-{suffix}"
    git_server.add_repo(names["failing"], files={"Dockerfile": (
        "FROM binderspawner-base:bookworm\n"
        "RUN for i in 1 2 3 4 5; do echo i7-step-output-$i; done && exit 3\n")})
    return {key: git_server.url(name) for key, name in names.items()}


@pytest.fixture(scope="module")
def bhub(docker_client, git_server, tmp_path_factory):
    hub = Hub(str(tmp_path_factory.mktemp("i7hub")), extra_config=EXTRA, run_id="i7" + uuid.uuid4().hex[:6])
    hub.image_prefix = "bstest-i7-"
    with serving(hub, docker_client, "jupyterhub-i7.log"):
        yield hub


def base(hub):
    return f"http://127.0.0.1:{hub.port}"


def link_path(repo, ref="main"):
    return f"v2/git/{quote(repo, safe='')}/{ref}"


def user_token(hub, user, scopes=("servers", "access:servers"), expires_in=3600):
    hub.ensure_user(user)
    r = hub.api("POST", f"/users/{user}/tokens", json={
        "note": "i7 tests", "expires_in": expires_in, "scopes": [f"{s}!user={user}" for s in scopes]})
    r.raise_for_status()
    return r.json()["token"]


def read_events(response):
    events = []
    for line in response.iter_lines(decode_unicode=True):
        if line and line.startswith("data:"):
            events.append(json.loads(line[len("data:"):]))
            if events[-1]["phase"] in ("ready", "failed"):
                break
    return events


def build_api(hub, token, path, headers=None, **params):
    """GET the build API for a launch path 'v2/<provider>/<spec>'; the events to ready/failed."""
    headers = {**({"Authorization": f"token {token}"} if token else {}), **(headers or {})}
    with requests.get(f"{base(hub)}/hub/build/{path[len('v2/'):]}", params=params, stream=True, timeout=600,
                      headers=headers) as r:
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("text/event-stream")
        return read_events(r)


def assert_in_order(phases):
    seen = [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]
    ranks = [PHASES.index(p) for p in seen]
    assert ranks == sorted(ranks), f"phases out of order: {seen}"


# --- the build API ------------------------------------------------------------------------------

def test_build_api_streams_phases_and_ready_token_reaches_only_that_server(bhub, repos):
    token = user_token(bhub, "dave")
    path = link_path(repos["api"])
    events = build_api(bhub, token, path)
    phases = [e["phase"] for e in events]
    assert phases[-1] == "ready", events[-5:]
    assert_in_order(phases)
    assert {"waiting", "fetching", "building", "built", "launching", "ready"} <= set(phases)
    assert any("pip install" in e["message"] for e in events if e["phase"] == "building")
    ready = events[-1]
    for key in ("url", "token", "image", "repo_url", "binder_ref_url", "binder_launch_host",
                "binder_request", "binder_persistent_request"):
        assert ready[key], key
    assert ready["repo_url"] == repos["api"]
    assert ready["binder_request"] == path
    assert re.fullmatch(r"v2/git/.+/[0-9a-f]{40}", ready["binder_persistent_request"])
    assert ready["binder_launch_host"] == f"{base(bhub)}/hub/"
    assert re.fullmatch(rf"{base(bhub)}/user/dave/b-i7-api-[a-z0-9-]+/", ready["url"])
    assert ready["token"] != token and ready["token"] != bhub.token

    auth = {"Authorization": f"token {ready['token']}"}
    status = requests.get(ready["url"] + "api/status", headers=auth, timeout=30)
    assert status.status_code == 200, status.text
    assert "kernels" in status.json()
    # the token reaches that one server only: not the hub's API, not another user's anything
    assert requests.get(f"{base(bhub)}/hub/api/users", headers=auth, timeout=30).status_code == 403
    assert requests.get(
        f"{base(bhub)}/hub/api/users/erin",
        headers=auth,
        timeout=30).status_code in (
        403,
        404)

    # a second request while it runs: straight to ready, same server, nothing built
    again = build_api(bhub, token, path)
    assert [e["phase"] for e in again] == ["ready"]
    assert again[0]["url"] == ready["url"] and again[0]["token"] != ready["token"]


def _token_models(hub, user):
    return {t["id"]: t for t in hub.api("GET", f"/users/{user}/tokens").json()["api_tokens"]}


def test_build_api_issues_nothing_beyond_the_callers_own_scopes_and_expiry(bhub, repos):
    path = link_path(repos["api"])
    token = user_token(bhub, "dave")
    if build_api(bhub, token, path)[-1]["phase"] != "ready":  # dave's server, if run alone
        pytest.fail("dave's server did not start")
    before = set(_token_models(bhub, "dave"))
    # a caller who may start servers but not open them gets no token that opens one
    only_servers = build_api(bhub, user_token(bhub, "dave", scopes=("servers",)), path)
    assert only_servers[-1]["phase"] == "ready" and "token" not in only_servers[-1], only_servers[-1]
    assert "no token issued" in only_servers[-1]["message"]
    # a caller whose token ends in 10 minutes gets a token ending no later
    short = user_token(bhub, "dave", expires_in=600)
    short_id = next(i for i, t in _token_models(bhub, "dave").items() if i not in before)
    ready = build_api(bhub, short, path)[-1]
    assert ready["phase"] == "ready" and ready["token"]
    issued = [t for i, t in _token_models(bhub, "dave").items()
              if i not in before and i != short_id and t["note"].startswith("binderspawner build API")]
    assert len(issued) == 1, issued
    assert issued[0]["expires_at"] <= _token_models(bhub, "dave")[short_id]["expires_at"]
    server = ready["url"].rstrip("/").rsplit("/", 1)[1]
    assert f"access:servers!server=dave/{server}" in issued[0]["scopes"]
    assert not [s for s in issued[0]["scopes"]
                if s.startswith(("servers", "access:servers!user", "admin", "tokens"))]


def test_build_api_starts_nothing_for_images_or_frames(bhub, repos):
    token = user_token(bhub, "jill")
    for destination in ("image", "iframe", "frame", "script"):
        events = build_api(bhub, token, link_path(repos["api"]), headers={"Sec-Fetch-Dest": destination})
        assert [e["phase"] for e in events] == ["failed"] and events[0]["status_code"] == 403, events
        assert "not loaded as" in events[0]["message"]
    assert bhub.api("GET", "/users/jill").json()["servers"] == {}


def test_failed_launch_does_not_use_up_a_server_slot(bhub, repos):
    """named_server_limit(1): a failed launch keeps its message but not the user's one slot; the
    refusal past the limit, and a build-only past the per-user quota, are failed events."""
    token = user_token(bhub, "ivan")
    failed = build_api(bhub, token, link_path(repos["failing"]))
    assert failed[-1]["phase"] == "failed", failed[-3:]
    ready = build_api(bhub, token, link_path(repos["api"]))
    assert ready[-1]["phase"] == "ready", ready[-3:]
    servers = bhub.api("GET", "/users/ivan").json()["servers"]
    assert len(servers) == 1 and next(iter(servers)).startswith("b-i7-api-")
    failed_name = next(n for n in bhub.api("GET", "/users/ivan?include_stopped_servers=1").json()["servers"]
                       if n.startswith("b-i7-failing-"))
    # the failure stays readable on its progress stream until it is launched again
    progress = bhub.progress("ivan", failed_name, timeout=60)
    first_line = failed[-1]["message"].replace("The launch failed: ", "").splitlines()[0][:40]
    assert progress and progress[-1].get("failed") and first_line in progress[-1]["message"], progress[-1:]
    # one running server is ivan's limit: the next is refused, in the stream
    refused = build_api(bhub, token, link_path(repos["browser"]))
    assert [e["phase"] for e in refused] == ["failed"] and refused[0]["status_code"] == 400, refused
    assert "named_server_limit_per_user = 1" in refused[0]["message"] and "b-i7-api-" in refused[0]["message"]
    # and a build-only build counts against the per-user quota (1) like a server
    refused = build_api(bhub, token, link_path(repos["browser"]), build_only="true")
    assert [e["phase"] for e in refused] == ["failed"] and refused[0]["status_code"] == 429, refused
    assert "per_user_quota" in refused[0]["message"]


def test_build_only_builds_without_launching(bhub, repos):
    token = user_token(bhub, "erin")
    events = build_api(bhub, token, link_path(repos["api"]), build_only="true")
    assert events[-1]["phase"] == "ready" and "token" not in events[-1] and "url" not in events[-1]
    assert events[-1]["imageName"].startswith(bhub.image_prefix)
    assert_in_order([e["phase"] for e in events])
    assert bhub.api("GET", "/users/erin").json()["servers"] == {}, "build_only started a server"


def test_build_api_refuses_strangers_and_bad_links_in_the_stream(bhub, repos):
    stranger = build_api(bhub, None, link_path(repos["api"]))
    assert [e["phase"] for e in stranger] == ["failed"] and stranger[0]["status_code"] == 403, stranger
    token = user_token(bhub, "frank")
    bad = build_api(bhub, token, link_path("https://not-allowed.example.org/x.git"))
    assert [e["phase"] for e in bad] == ["failed"] and bad[0]["status_code"] == 400, bad
    assert "allowed hosts" in bad[0]["message"]
    assert bhub.api("GET", "/users/frank").json()["servers"] == {}


def test_badge_is_served_without_login(bhub):
    for name in ("badge_logo.svg", "badge.svg"):
        r = requests.get(f"{base(bhub)}/hub/{name}", timeout=30)
        assert r.status_code == 200 and r.headers["Content-Type"] == "image/svg+xml"
        assert r.text.startswith("<svg") and "launch" in r.text


# --- a real browser --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


def shot(page, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"i7-{name}.png"), full_page=True)


def login(page, hub, user, next_url):
    page.goto(next_url)
    page.wait_for_url(re.compile(r".*/hub/login.*"))
    page.fill("#username_input", user)
    page.fill("#password_input", "any")
    page.click("#login_submit")


def test_launch_link_in_a_browser(bhub, repos, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    script_errors = []
    page.on("pageerror", lambda error: script_errors.append((page.url, str(error))))
    link = f"{base(bhub)}/hub/{link_path(repos['browser'])}?labpath=index.ipynb"
    try:
        login(page, bhub, "carol", link)
        waiting = re.compile(r".*/hub/spawn-pending/carol/b-i7-browser-.*")
        page.wait_for_url(waiting, timeout=60_000)
        page.wait_for_function("window._jupyterhub_page_loaded === true")
        # Once the server is ready the page reloads into JupyterLab; with a cached environment the
        # build takes a second and the start a few, less than looking at this page may take on a
        # fast machine. Its reload is answered 204 (the page stays) until it has been looked at.
        held = []

        def hold(route):
            held.append(route.request.url)
            route.fulfill(status=204)

        page.route(waiting, hold)
        assert not script_errors, script_errors
        assert page.locator("#stop-server-btn").count() == 1
        assert re.search(r'stop_named_server\("carol", "b-i7-browser-[a-z0-9-]+"', page.content())
        # build log lines appear on the waiting page, with the phases and a link to the full log
        page.wait_for_selector("#progress-log .progress-log-event:has-text('[building]')", timeout=300_000)
        assert page.locator("#progress-details").get_attribute("open") is not None
        shot(page, "1-building")
        log_href = page.locator("#binder-log-link a").get_attribute("href")
        assert "/hub/binder/logs/bstest-i7-" in log_href
        page.unroute(waiting, hold)
        if held:  # the server was ready meanwhile: the reload the page made
            page.reload(wait_until="commit")
        # then JupyterLab, with the notebook open
        page.wait_for_url(re.compile(r".*/user/carol/b-i7-browser-[a-z0-9-]+/lab/tree/index\.ipynb.*"),
                          timeout=600_000)
        page.wait_for_selector(".jp-NotebookPanel .jp-MarkdownCell:has-text('A requirements.txt repository')",
                               timeout=120_000)
        page.wait_for_selector(".jp-mod-current:has-text('index.ipynb'), "
                               ".lm-TabBar-tab.lm-mod-current:has-text('index.ipynb')", timeout=60_000)
        shot(page, "2-jupyterlab")

        # the full build log, for carol; not for someone who did not launch it
        log = page.request.get(f"{base(bhub)}{log_href}")
        assert log.status == 200 and "[building]" in log.text() and "pip install" in log.text()

        # a second click on the link opens the running server without a new spawn
        visited = []
        page.on("framenavigated", lambda frame: visited.append(frame.url))
        page.goto(link)
        page.wait_for_url(re.compile(r".*/user/carol/b-i7-browser-.*/lab/tree/index\.ipynb.*"))
        assert not any("spawn-pending" in url for url in visited), visited
        servers = bhub.api("GET", "/users/carol").json()["servers"]
        assert len(servers) == 1 and next(iter(servers)).startswith("b-i7-browser-")

        # the build API with the login cookie (as a same-origin EventSource would call it)
        stream = page.request.get(f"{base(bhub)}/hub/build/{link_path(repos['browser'])[3:]}")
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[5:]) for line in stream.text().splitlines() if line.startswith("data:")]
        assert events[-1]["phase"] == "ready" and events[-1]["url"].endswith(
            f"/user/carol/{next(iter(servers))}/")

        # embedded in another page as an image or a frame, a launch link starts nothing, nor does
        # the build API with the login cookie
        for destination in ("image", "iframe"):
            embedded = page.request.get(f"{base(bhub)}/hub/{link_path(repos['api'])}",
                                        headers={"Sec-Fetch-Dest": destination}, max_redirects=0)
            assert embedded.status == 403
            embedded = page.request.get(f"{base(bhub)}/hub/build/{link_path(repos['api'])[3:]}",
                                        headers={"Sec-Fetch-Dest": destination})
            assert '"phase": "failed"' in embedded.text() and '"status_code": 403' in embedded.text()
        assert len(bhub.api("GET", "/users/carol").json()["servers"]) == 1
    finally:
        shot(page, "3-last")
        context.close()

    other = browser.new_context()
    page = other.new_page()
    login(page, bhub, "mallory", f"{base(bhub)}/hub/home")
    page.wait_for_url(re.compile(r".*/hub/(home|spawn).*"))
    assert page.request.get(f"{base(bhub)}{log_href}").status == 404
    other.close()
    admin = browser.new_context()
    page = admin.new_page()
    login(page, bhub, "i7admin", f"{base(bhub)}/hub/home")
    page.wait_for_url(re.compile(r".*/hub/(home|spawn).*"))
    assert page.request.get(f"{base(bhub)}{log_href}").status == 200
    admin.close()


def test_failed_build_shows_the_end_of_the_log_and_links_the_full_log(bhub, repos, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        login(page, bhub, "hank", f"{base(bhub)}/hub/{link_path(repos['failing'])}")
        page.wait_for_url(re.compile(r".*/hub/spawn-pending/hank/.*"), timeout=60_000)
        failure = page.locator("#binder-failure")
        failure.wait_for(state="visible", timeout=300_000)
        text = failure.inner_text()
        assert "Last lines of the build log" in text and "i7-step-output-5" in text, text
        assert page.locator("#progress-bar.bg-danger").count() == 1
        shot(page, "7-failed-build")
        log = page.request.get(base(bhub) + page.locator("#binder-log-link a").get_attribute("href"))
        assert log.status == 200
        assert "(failed)" in log.text() and "i7-step-output-1" in log.text() and "[failed]" in log.text()
    finally:
        context.close()


def test_spawn_form_shows_field_errors_and_starts_nothing(bhub, repos, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        login(page, bhub, "gina", f"{base(bhub)}/hub/spawn")
        page.wait_for_url(re.compile(r".*/hub/spawn.*"))
        # snippets follow what is typed
        page.fill("#binder-repo", repos["browser"])
        page.fill("#binder-urlpath", "lab/tree/index.ipynb")
        page.click("#binder-share summary")
        markdown = page.input_value("#binder-md")
        assert "/hub/badge_logo.svg)](http://127.0.0.1" in markdown
        assert f"/hub/v2/git/{quote(repos['browser'], safe='')}/HEAD?urlpath=lab/tree/index.ipynb" in markdown
        assert ":target: " in page.input_value(
            "#binder-rst") and "<a href=" in page.input_value("#binder-html")
        shot(page, "4-form-snippets")

        # not a URL: refused in the browser, next to the field
        page.fill("#binder-repo", "not a url")
        page.click("#spawn_form button[type=submit], #spawn_form input[type=submit]")
        error = page.locator("#binder-repo-error")
        error.wait_for(state="visible")
        assert "not a repository URL" in error.inner_text()
        shot(page, "5-form-client-error")

        # a host this hub does not allow: refused by the server, shown next to the field, typed
        # values kept
        page.fill("#binder-repo", "https://not-allowed.example.org/x.git")
        page.fill("#binder-ref", "main")
        page.click("#spawn_form button[type=submit], #spawn_form input[type=submit]")
        page.wait_for_load_state()
        shot(page, "6-form-server-error")
        error = page.locator("#binder-repo-error")
        error.wait_for(state="visible")
        assert "allowed hosts" in error.inner_text()
        assert page.input_value("#binder-repo") == "https://not-allowed.example.org/x.git"
        assert page.input_value("#binder-ref") == "main"
    finally:
        context.close()
    assert bhub.api("GET", "/users/gina").json()["servers"] == {}, "a refused form started a server"
    assert not [c for c in bhub.containers() if "gina" in c.name]
