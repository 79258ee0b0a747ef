"""The OpenID Connect stand-in behaves like a real provider: the authorization code flow end to end
(login form, code, token exchange, userinfo, refresh, introspection), with no hub involved, so hub
tests that fail can be blamed on the hub side.
"""

import base64
import hashlib
import secrets
import time
from urllib.parse import parse_qs, urljoin, urlparse

import pytest
import requests

from tests.support.net import free_port
from tests.support.oidc import OidcProvider, login_form_action

CLIENT_ID = "binderspawner-test"
CLIENT_SECRET = secrets.token_hex(16)
PASSWORD = secrets.token_hex(8)
# Nothing listens here: the flow stops at the redirect that carries the code.
REDIRECT_URI = f"http://127.0.0.1:{free_port()}/hub/oauth_callback"
SCOPE = "openid profile groups offline_access"


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    server = OidcProvider(
        str(tmp_path_factory.mktemp("oidc")),
        clients=[{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                  "redirect_uris": [REDIRECT_URI]}],
        accounts={"alice": {"password": PASSWORD, "groups": ["lab", "staff"],
                            "email": "alice@example.invalid"}},
        access_token_ttl=600,
    ).start()
    yield server
    server.stop()


def authorize(provider, login, password, session=None, **extra):
    """Browser side of the flow: (final response, query of the redirect to the client or None)."""
    session = session or requests.Session()
    state = secrets.token_urlsafe(8)
    params = {"client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "response_type": "code",
              "scope": SCOPE, "state": state, **extra}
    r = session.get(provider.url("/auth"), params=params, allow_redirects=False, timeout=10)
    posted = False
    for _ in range(10):
        if r.is_redirect:
            location = urljoin(r.url, r.headers["Location"])
            if location.startswith(REDIRECT_URI):
                query = parse_qs(urlparse(location).query)
                assert query["state"] == [state]
                return r, query
            r = session.get(location, allow_redirects=False, timeout=10)
        elif r.status_code == 200 and not posted:
            action = login_form_action(r.url, r.text)
            assert action, r.text
            r = session.post(action, data={"login": login, "password": password},
                             allow_redirects=False, timeout=10)
            posted = True
        else:
            return r, None
    raise AssertionError("too many redirects")


def token(provider, data, basic=False):
    auth = (CLIENT_ID, CLIENT_SECRET) if basic else None
    if not basic:
        data = {**data, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    r = requests.post(provider.url("/token"), data=data, auth=auth, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def userinfo(provider, access_token):
    return requests.get(provider.url("/me"), timeout=10,
                        headers={"Authorization": f"Bearer {access_token}"})


def test_code_flow_with_pkce_and_client_secret_post(provider):
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    _, query = authorize(provider, "alice", PASSWORD, code_challenge=challenge.decode(),
                         code_challenge_method="S256")
    tokens = token(provider, {"grant_type": "authorization_code", "code": query["code"][0],
                              "redirect_uri": REDIRECT_URI, "code_verifier": verifier})
    assert tokens["token_type"] == "Bearer"
    assert 0 < tokens["expires_in"] <= 600
    assert tokens["access_token"] and tokens["refresh_token"] and tokens["id_token"]

    info = userinfo(provider, tokens["access_token"])
    assert info.status_code == 200, info.text
    assert info.json()["preferred_username"] == "alice"
    assert info.json()["groups"] == ["lab", "staff"]

    refreshed = token(provider, {"grant_type": "refresh_token",
                                 "refresh_token": tokens["refresh_token"]})
    assert refreshed["access_token"] != tokens["access_token"]
    assert userinfo(provider, refreshed["access_token"]).json()["preferred_username"] == "alice"

    # Another server holding a client secret can check the token.
    r = requests.post(provider.url("/token/introspection"), auth=(CLIENT_ID, CLIENT_SECRET),
                      data={"token": refreshed["access_token"]}, timeout=10)
    assert r.json()["active"] is True and r.json()["sub"] == "alice"
    assert tokens["access_token"] not in provider.log()


def test_code_flow_without_pkce_and_client_secret_basic(provider):
    browser = requests.Session()
    authorize(provider, "alice", PASSWORD, session=browser)
    # Signed in at the provider already: the next request is answered without the form.
    _, query = authorize(provider, "alice", "not asked for", session=browser)
    tokens = token(provider, {"grant_type": "authorization_code", "code": query["code"][0],
                              "redirect_uri": REDIRECT_URI}, basic=True)
    assert tokens["refresh_token"]
    assert userinfo(provider, tokens["access_token"]).json()["groups"] == ["lab", "staff"]
    assert userinfo(provider, "not-a-token").status_code == 401


def test_wrong_password_gives_no_code(provider):
    r, query = authorize(provider, "alice", "wrong")
    assert query is None
    assert r.status_code == 200 and "Invalid login" in r.text
    r, query = authorize(provider, "mallory", PASSWORD)
    assert query is None and "Invalid login" in r.text
    # Codes and states never reach the log: request lines carry paths only.
    requests_logged = [line for line in provider.log().splitlines() if line.startswith(("GET", "POST"))]
    assert requests_logged and not any("?" in line for line in requests_logged)


def test_expired_access_token_is_refused_until_refreshed(tmp_path):
    """The TTL is exact, so hub tests can rely on the refresh path being taken."""
    short = OidcProvider(str(tmp_path), access_token_ttl=1, clients=[
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [REDIRECT_URI]}],
        accounts={"alice": {"password": PASSWORD, "groups": []}}).start()
    try:
        _, query = authorize(short, "alice", PASSWORD)
        tokens = token(short, {"grant_type": "authorization_code", "code": query["code"][0],
                               "redirect_uri": REDIRECT_URI}, basic=True)
        time.sleep(2.1)
        assert userinfo(short, tokens["access_token"]).status_code == 401
        refreshed = token(short, {"grant_type": "refresh_token",
                                  "refresh_token": tokens["refresh_token"]}, basic=True)
        assert userinfo(short, refreshed["access_token"]).json()["groups"] == []
    finally:
        short.stop()
