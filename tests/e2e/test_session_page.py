"""Before a session ends, and sharing it from the browser (issue 17 items 3 and 4), in Chromium
against a real hub: the stop times on the hub's home page and inside the session (JupyterLab's own
notification), the offline notebook's Download button, and the share page (share with a member, with
a group's members, revoke, a single-use share link another member accepts).

One hub and one image (the requirements.txt example, built by the venv buildpack) for the module.
"""

import json
import os
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.conftest import ARTIFACTS, serving
from tests.support.browser import chromium
from tests.support.hub import Hub

TIMEOUT, MAX_AGE = 3600, 6 * 3600
EXTRA = f"""
from binderspawner.web.handlers import binder_handlers, TEMPLATE_PATH
from binderspawner.services import culling
c.JupyterHub.extra_handlers = binder_handlers()
c.JupyterHub.template_paths = [TEMPLATE_PATH]
c.JupyterHub.load_roles[0]["scopes"] += ["read:shares", "admin:groups"]
c.JupyterHub.load_roles.append(
    {{"name": "user", "scopes": ["self", "shares!user", "read:users:name", "read:groups:name"]}})
c.IdleCuller.timeout = {TIMEOUT}
c.BinderSpawner.shutdown_no_activity_timeout = 2 * {TIMEOUT}  # the culler acts first
c.IdleCuller.max_age = {MAX_AGE}
c.PushBack.enabled = True
culling.configure(c)
"""
SERVER = "req"


@pytest.fixture(scope="module")
def shub(docker_client, git_server, tmp_path_factory):
    hub = Hub(str(tmp_path_factory.mktemp("s17hub")), extra_config=EXTRA, run_id="s17" + uuid.uuid4().hex[:6])
    hub.image_prefix = "bstest-s17-"
    with serving(hub, docker_client, "jupyterhub-s17.log"):
        for name in ("alice", "bob", "carol", "dave"):
            hub.ensure_user(name)
        hub.api("POST", "/groups/lab", json={"users": ["alice", "bob", "carol"]}).raise_for_status()
        yield hub


@pytest.fixture(scope="module")
def running(shub, git_server):
    """alice's server of the requirements.txt example (venv buildpack: the server layer with the
    notice and jupyter-offlinenotebook)."""
    r, events = shub.launch("alice", {"repo": git_server.url("requirements"),
                                      "urlpath": "lab/tree/index.ipynb"}, server=SERVER)
    assert r.status_code in (201, 202), r.text
    assert events and events[-1].get("ready"), [e.get("message") for e in events][-30:]
    yield shub.api("GET", "/users/alice").json()["servers"][SERVER]
    shub.stop_server("alice", SERVER)


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


def base(hub):
    return f"http://127.0.0.1:{hub.port}"


def member(browser, hub, name):
    """A logged-in browser context of ``name`` (UTC, so the page's local times read as UTC)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="UTC",
                                  locale="en-GB", accept_downloads=True)
    page = context.new_page()
    page.goto(f"{base(hub)}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", "any")
    page.click("#login_submit")
    page.wait_for_url(re.compile(r".*/hub/(home|spawn).*"))
    return context, page


def shot(page, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"s17-{name}.png"), full_page=True)


def shares(hub):
    r = hub.api("GET", f"/shares/alice/{SERVER}")
    assert r.status_code == 200, r.text
    return sorted((s.get("user") or {}).get("name") or "group:" + s["group"]["name"] for s in r.json()["items"])


def hhmm(when):
    return when.astimezone(timezone.utc).strftime("%H:%M")


# the stop times ---------------------------------------------------------------------------------------

def test_home_page_says_when_each_running_session_is_stopped(shub, running, browser):
    started = datetime.fromisoformat(running["started"].replace("Z", "+00:00"))
    context, page = member(browser, shub, "alice")
    try:
        page.goto(f"{base(shub)}/hub/home")
        before = datetime.now(timezone.utc)
        row = page.locator(f"#binder-sessions tr[data-server-name='{SERVER}']")
        text = " ".join(row.locator(".binder-stop-times").inner_text().split())
        shot(page, "1-home")
        found = re.fullmatch(r"culled after 1 hour idle \(at about (\d\d:\d\d) if idle from now\); "
                             r"stopped at the latest at (\d\d:\d\d) \(max age 6 hours\)", text)
        assert found, text
        idle_from = {hhmm(before + timedelta(seconds=TIMEOUT) + timedelta(minutes=d)) for d in (-1, 0, 1)}
        assert found.group(1) in idle_from
        assert found.group(2) == hhmm(started + timedelta(seconds=MAX_AGE))
        assert row.locator("a.binder-share-link").get_attribute("href") == f"/hub/binder/share/alice/{SERVER}"
    finally:
        context.close()


def test_the_session_itself_says_when_it_is_stopped_and_downloads_notebooks(shub, running, browser):
    started = datetime.fromisoformat(running["started"].replace("Z", "+00:00"))
    context, page = member(browser, shub, "alice")
    try:
        page.goto(f"{base(shub)}/user/alice/{SERVER}/lab/tree/index.ipynb")
        button = page.locator(".jp-NotebookPanel-toolbar [title='Download visible']")
        button.first.wait_for(timeout=120_000)
        # JupyterLab's notification: a toast for 5 s, then in its notification list (the status bar's bell)
        pattern = re.compile(r"This session is stopped after 1 hour without activity")
        listed = page.locator(".jp-Notification-List-Item").filter(has_text=pattern)
        page.wait_for_function("document.querySelector('.jp-Notification-Status-Text') && "
                               "document.querySelector('.jp-Notification-Status-Text').textContent.trim() !== '0'",
                               timeout=60_000)
        page.click(".jp-Notification-Status")
        listed.first.wait_for(timeout=30_000)
        text = listed.first.inner_text()
        assert f"at the latest at {hhmm(started + timedelta(seconds=MAX_AGE))} UTC" in text, text
        assert listed.first.get_by_role("button", name="Share this session").count() == 1
        shot(page, "2-lab-notice")
        # jupyter-offlinenotebook's toolbar button downloads what the browser shows
        with page.expect_download() as download:
            button.first.click()
        saved = download.value
        assert saved.suggested_filename == "index.ipynb"
        notebook = json.loads(open(saved.path()).read())
        assert notebook["nbformat"] == 4 and "cells" in notebook
    finally:
        context.close()


# the share page -------------------------------------------------------------------------------------

def test_share_page_shares_lists_and_revokes(shub, running, browser):
    context, page = member(browser, shub, "alice")
    url = f"{base(shub)}/hub/binder/share/alice/{SERVER}"
    try:
        page.goto(f"{base(shub)}/hub/home")
        page.click(f"#binder-sessions tr[data-server-name='{SERVER}'] a.binder-share-link")
        page.wait_for_url(url)
        assert "What sharing means" in page.inner_text("#binder-share-warning")
        assert "Pushing back" in page.inner_text("#binder-share-pushback")
        assert page.locator("#binder-share-nobody").count() == 1
        # with a member
        page.fill("#binder-share-user", "bob")
        page.click("#binder-share-user-form button[type=submit]")
        page.wait_for_selector("#binder-share-done")
        assert page.locator("tr.binder-share-user[data-user='bob']").count() == 1
        assert shares(shub) == ["bob"]
        # an unknown name and the owner are refused, saying why; nothing changes
        page.fill("#binder-share-user", "nosuchmember")
        page.click("#binder-share-user-form button[type=submit]")
        assert "No user 'nosuchmember'" in page.inner_text("#binder-share-error")
        page.fill("#binder-share-user", "alice")
        page.click("#binder-share-user-form button[type=submit]")
        assert "owner" in page.inner_text("#binder-share-error")
        assert shares(shub) == ["bob"]
        shot(page, "3-shared-with-bob")
        # revoke
        page.click("tr.binder-share-user[data-user='bob'] button")
        page.wait_for_selector("#binder-share-done")
        assert page.locator("tr.binder-share-user").count() == 0 and shares(shub) == []
        # with the lab group: each other member, and revoked together
        page.select_option("#binder-share-group", "lab")
        page.click("#binder-share-group-form button[value=share-group]")
        page.wait_for_selector("#binder-share-done")
        assert shares(shub) == ["bob", "carol"]
        assert page.locator("tr.binder-share-user").count() == 2
        page.click("#binder-share-group-form button[value=revoke-group]")
        page.wait_for_selector("#binder-share-done")
        assert shares(shub) == []
    finally:
        context.close()


def test_single_use_share_link_is_accepted_once(shub, running, browser):
    owner, page = member(browser, shub, "alice")
    guest, carol = member(browser, shub, "carol")
    late, bob = member(browser, shub, "bob")
    try:
        page.goto(f"{base(shub)}/hub/binder/share/alice/{SERVER}")
        page.select_option("#binder-share-expires", "3600")
        page.click("#binder-share-code-form button[type=submit]")
        link = page.input_value("#binder-share-code-url")
        assert re.fullmatch(rf"{re.escape(base(shub))}/hub/accept-share\?code=[A-Za-z0-9_-]+", link), link
        assert page.locator("tr.binder-share-code").count() == 1
        shot(page, "4-share-link")
        # carol accepts it and lands in alice's session (JupyterHub asks her to authorize the server)
        carol.goto(link)
        carol.click("button[type=submit]")
        carol.wait_for_url(re.compile(r".*/(user/alice/req/|hub/api/oauth2/authorize).*"), timeout=60_000)
        if "/oauth2/authorize" in carol.url:
            carol.click("button[type=submit]")
        carol.wait_for_url(re.compile(rf".*/user/alice/{SERVER}/.*"), timeout=60_000)
        status = carol.request.get(f"{base(shub)}/user/alice/{SERVER}/api/status")
        assert status.status == 200, status.text()
        assert shares(shub) == ["carol"]
        # the link is used up: bob gets JupyterHub's "not found"
        response = bob.goto(link)
        assert response.status == 404
        page.goto(f"{base(shub)}/hub/binder/share/alice/{SERVER}")  # (a reload would post the form again)
        assert page.locator("tr.binder-share-code").count() == 0
        assert page.locator("tr.binder-share-user[data-user='carol']").count() == 1
        page.click("#binder-share-revoke-all")
        page.wait_for_selector("#binder-share-done")
        assert shares(shub) == []
        assert "it was shared before" in page.inner_text("#binder-share-nobody")
    finally:
        for context in (owner, guest, late):
            context.close()


def test_only_the_owner_manages_and_forms_need_the_xsrf_token(shub, running, browser):
    context, page = member(browser, shub, "bob")
    try:
        response = page.goto(f"{base(shub)}/hub/binder/share/alice/{SERVER}")
        assert response.status == 404  # not bob's: as if there were none
        forged = page.request.post(f"{base(shub)}/hub/binder/share/bob/nosuchserver",
                                   form={"action": "share-user", "user": "dave"})
        assert forged.status in (403, 404)
    finally:
        context.close()
    context, page = member(browser, shub, "alice")
    try:
        forged = page.request.post(f"{base(shub)}/hub/binder/share/alice/{SERVER}",
                                   form={"action": "share-user", "user": "dave"})
        assert forged.status == 403  # no _xsrf field: refused by JupyterHub's check
        assert shares(shub) == []
        # a well-formed page post with a bad value is refused with the reason
        page.goto(f"{base(shub)}/hub/binder/share/alice/{SERVER}")
        xsrf = page.input_value("#binder-share-code-form input[name=_xsrf]")
        bad = page.request.post(f"{base(shub)}/hub/binder/share/alice/{SERVER}",
                                form={"_xsrf": xsrf, "action": "new-code", "expires": "31536000"})
        assert bad.status == 400 and "Choose how long the link works" in bad.text()
    finally:
        context.close()
    # without a login the page sends the visitor to log in
    assert requests.get(f"{base(shub)}/hub/binder/share/alice/{SERVER}", allow_redirects=False,
                        timeout=30).status_code in (302, 303)
