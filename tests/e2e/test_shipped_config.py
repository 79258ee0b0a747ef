"""config/jupyterhub_config.py works as it is: start a hub from it (only ports, state directory and
network changed through its environment variables), log in through the login page, launch an
example through the spawn form, and reach the server, all as a browser would (cookies, redirects)."""

import html
import os
import subprocess
import sys
import time
import uuid

import pytest
import requests

from binderspawner.services.cleanup import default_hub_id
from tests.support.hub import HUB_IDS, assert_config_recognized
from tests.support.net import free_port

from tests.support import ROOT  # noqa: E402


@pytest.fixture
def config_hub(docker_client, git_server, tmp_path):
    port, run = free_port(), uuid.uuid4().hex[:8]
    env = {**os.environ, "BINDERSPAWNER_PORT": str(port), "BINDERSPAWNER_STATE_DIR": str(tmp_path),
           "BINDERSPAWNER_NETWORK": f"bstest-cfg-{run}", "BINDERSPAWNER_ALLOWED_HOSTS": "127.0.0.1"}
    log = open(tmp_path / "hub.log", "wb")
    HUB_IDS.add(default_hub_id(str(tmp_path / "lifecycle")))  # its images go with the session's
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", os.path.join(ROOT, "config", "jupyterhub_config.py"),
         f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{free_port()}",
         f"--JupyterHub.hub_port={free_port()}", f"--DockerSpawner.prefix=bstest-cfg-{run}",
         "--BinderSpawner.image_prefix=bstest-"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _answers(base + "/hub/login"):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "hub.log").read_text()
            time.sleep(0.3)
        assert_config_recognized((tmp_path / "hub.log").read_text())
        yield base
    finally:
        proc.terminate()
        proc.wait(30)
        for c in docker_client.containers.list(all=True, filters={"name": f"bstest-cfg-{run}"}):
            c.remove(force=True)
        for n in docker_client.networks.list(names=[f"bstest-cfg-{run}"]):
            n.remove()


def _answers(url):
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def xsrf(session, url):
    """Load a page; return the xsrf token its forms must send (tornado's _xsrf cookie) and the page."""
    page = session.get(url, timeout=30)
    page.raise_for_status()
    return session.cookies.get("_xsrf", path="/hub/"), page.text


def test_launch_through_login_and_spawn_form(config_hub, git_server):
    s = requests.Session()
    token, _ = xsrf(s, config_hub + "/hub/login")
    s.post(config_hub + "/hub/login", data={"username": "erin", "password": "x", "_xsrf": token},
           timeout=30).raise_for_status()
    token, form = xsrf(s, config_hub + "/hub/spawn")
    assert 'name="repo"' in form and 'name="ref"' in form and 'name="urlpath"' in form

    # a bad URL is refused with the reason, and nothing starts
    r = s.post(config_hub + "/hub/spawn", data={"repo": "file:///etc", "_xsrf": token}, timeout=60)
    assert "scheme 'file' is not allowed" in html.unescape(r.text)

    r = s.post(config_hub + "/hub/spawn", timeout=60, data={
        "repo": git_server.url("requirements"), "ref": "main", "urlpath": "lab", "_xsrf": token})
    assert r.status_code == 200, r.text[-2000:]
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:  # as a browser would: the lab page, via spawn-pending
        page = s.get(config_hub + "/user/erin/lab", timeout=30)
        if page.status_code == 200 and page.url.startswith(config_hub + "/user/erin/lab"):
            break
        time.sleep(1)
    else:
        pytest.fail(f"server did not come up: {page.status_code} {page.url} {page.text[-500:]}")
    # cookie-authenticated API calls to the server need its xsrf token, as JupyterLab sends it
    status = s.get(config_hub + "/user/erin/api/status", timeout=30,
                   headers={"X-XSRFToken": s.cookies.get("_xsrf", path="/user/erin/")})
    assert status.status_code == 200, status.text
    assert "kernels" in status.json()


# config/private_lab_config.py -------------------------------------------------------------------
# Started as shipped, its FILL IN values given through the environment variables it names; GitHub is
# the documented-API stand-in on 127.0.0.1 (tests/support/oauthfixtures.py), since github.com cannot
# be reached here. GITHUB_URL is oauthenticator's own variable for GitHub Enterprise.


def _start_lab_hub(tmp_path, env, without=()):
    """Start config/private_lab_config.py; returns (process, base URL, network name)."""
    port, run = free_port(), uuid.uuid4().hex[:8]
    base = f"http://127.0.0.1:{port}"
    env = {**{k: v for k, v in os.environ.items() if k not in without}, "BINDERSPAWNER_PORT": str(port),
           "BINDERSPAWNER_STATE_DIR": str(tmp_path), "BINDERSPAWNER_NETWORK": f"bstest-lab-{run}",
           "OAUTH_CALLBACK_URL": base + "/hub/oauth_callback", **env}
    log = open(tmp_path / "hub.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", os.path.join(ROOT, "config", "private_lab_config.py"),
         f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{free_port()}",
         f"--JupyterHub.hub_port={free_port()}", f"--DockerSpawner.prefix=bstest-lab-{run}"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, base, f"bstest-lab-{run}"


def test_private_lab_config_refuses_to_start_without_an_encryption_key(tmp_path, docker_client):
    proc, _, network = _start_lab_hub(tmp_path, {}, without=("JUPYTERHUB_CRYPT_KEY",))
    try:
        assert proc.wait(60) != 0
        assert "Set JUPYTERHUB_CRYPT_KEY" in (tmp_path / "hub.log").read_text()
    finally:
        for n in docker_client.networks.list(names=[network]):
            n.remove()


def test_private_lab_config_admits_the_team_and_lets_members_share(tmp_path, docker_client):
    from tests.support.oauthfixtures import GitHubStandIn

    github = GitHubStandIn().start()
    github.state.add_team_member("our-lab", "members", "ada")
    github.state.add_org_member("our-lab", "bob")  # in the organisation, not in the team
    proc, base, network = _start_lab_hub(tmp_path, {
        "JUPYTERHUB_CRYPT_KEY": uuid.uuid4().hex * 2, "GITHUB_URL": github.url(),
        "GITHUB_CLIENT_ID": github.client_id, "GITHUB_CLIENT_SECRET": github.client_secret,
        "BINDERSPAWNER_LAB_TEAM": "our-lab:members"})
    try:
        deadline = time.monotonic() + 60
        while not _answers(base + "/hub/login"):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "hub.log").read_text()
            time.sleep(0.3)
        assert_config_recognized((tmp_path / "hub.log").read_text())
        github.state.callback_url = base + "/hub/oauth_callback"
        answers = {}
        for login in ("ada", "bob"):
            github.state.signed_in = login  # the member approves the OAuth app at "GitHub"
            answers[login] = (
                session := requests.Session()), session.get(
                base + "/hub/oauth_login", timeout=60)
        assert answers["bob"][1].status_code == 403
        session, page = answers["ada"]
        assert page.ok and "/hub/" in page.url, page.url
        me = session.get(base + "/hub/api/user", timeout=30).json()
        assert me["name"] == "ada" and me["groups"] == ["lab"]
        assert {"shares!user=ada", "read:users:name", "read:groups:name"} <= set(me["scopes"])
    finally:
        github.stop()
        proc.terminate()
        proc.wait(30)
        for n in docker_client.networks.list(names=[network]):
            n.remove()
