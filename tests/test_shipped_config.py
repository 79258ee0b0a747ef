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

from tests.support.net import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def config_hub(docker_client, git_server, tmp_path):
    port, run = free_port(), uuid.uuid4().hex[:8]
    env = {**os.environ, "BINDERSPAWNER_PORT": str(port), "BINDERSPAWNER_STATE_DIR": str(tmp_path),
           "BINDERSPAWNER_NETWORK": f"bstest-cfg-{run}", "BINDERSPAWNER_ALLOWED_HOSTS": "127.0.0.1"}
    log = open(tmp_path / "hub.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", os.path.join(ROOT, "config", "jupyterhub_config.py"),
         f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{free_port()}",
         f"--JupyterHub.hub_port={free_port()}", f"--DockerSpawner.prefix=bstest-cfg-{run}",
         "--BinderSpawnerMixin.image_prefix=bstest-"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _answers(base + "/hub/login"):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "hub.log").read_text()
            time.sleep(0.3)
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
