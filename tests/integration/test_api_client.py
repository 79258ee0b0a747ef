"""The API providers' HTTP client (providers/api.py): works whichever tornado client is configured
(issue 14.18: JupyterHub configures CurlAsyncHTTPClient when pycurl is installed), and a token
never follows a redirect to another origin. Against the local API stand-in (tests/support/apifixtures.py)
and a local redirecting server; pycurl is installed on the test machines (scripts/provision.sh)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pycurl  # noqa: F401 - the point of these tests: a hub image with pycurl
import pytest
from tornado.httpclient import AsyncHTTPClient

from binderspawner.errors import LaunchError
from binderspawner.providers import GistProvider, GitHubProvider, TokenCredentials
from tests.support.apifixtures import fresh_provider_caches
from tests.support.net import free_port

SHA = "a" * 40
LOCAL = ["127.0.0.1"]


@pytest.fixture(autouse=True)
def fresh(api):
    api.state.__init__()
    api.state.github["org/repo"] = {"refs": {"main": SHA}, "default": "main"}
    api.state.gists["5ec7e7"] = {"owner": "alice", "public": False, "history": [SHA]}
    fresh_provider_caches()


@pytest.fixture
def curl_configured():
    """As JupyterHub does at start-up when pycurl can be imported."""
    saved = AsyncHTTPClient._save_configuration()
    AsyncHTTPClient.configure("tornado.curl_httpclient.CurlAsyncHTTPClient")
    fresh_provider_caches()
    yield
    AsyncHTTPClient._restore_configuration(saved)


async def test_github_resolves_through_its_api_with_curl_configured(api, curl_configured):
    p = GitHubProvider(api_base_url=api.url("/github"), allowed_private_hosts=LOCAL)
    resolved = await p.resolve(p.parse("gh/org/repo"), None)
    assert resolved.version == SHA
    assert len(api.calls("/github")) == 1


async def test_gist_checks_still_apply_with_curl_configured(api, curl_configured):
    # Before: the client could not be made, the API counted as unreachable and git answered,
    # skipping the owner and secret-gist checks.
    p = GistProvider(api_base_url=api.url("/github"), gist_base_url="https://gist.github.com",
                     allowed_private_hosts=LOCAL)
    with pytest.raises(LaunchError, match="secret gist"):
        await p.resolve(p.parse("gist/alice/5ec7e7"), None)


@pytest.fixture
def redirector(api):
    """Redirects every request to the same path on the API stand-in (another port: another origin)."""
    target = api.url("")

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", target.rstrip("/") + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(10)


async def test_a_token_does_not_follow_a_redirect_to_another_origin(api, redirector):
    p = GitHubProvider(api_base_url=f"{redirector}/github", html_base_url="https://github.com",
                       allowed_private_hosts=LOCAL)
    creds = TokenCredentials(token="member-token-x", hosts=("127.0.0.1",))
    resolved = await p.resolve(p.parse("gh/org/repo"), None, credentials=creds)
    assert resolved.version == SHA
    (_, _, headers), = api.calls("/github")
    assert "Authorization" not in headers
