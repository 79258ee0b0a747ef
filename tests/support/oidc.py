"""A real OpenID Connect provider on 127.0.0.1 (tests/support/oidc/server.mjs, built on the npm
package oidc-provider), so the hub's OAuthenticator is tested against the genuine protocol rather
than a hand-written imitation of it, plus a helper that logs a user in to a hub through it.
"""

import html.parser
import json
import os
import signal
import subprocess
import time
from urllib.parse import urljoin, urlparse

import requests

from .net import free_port

OIDC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "oidc")
SERVER = os.path.join(OIDC_DIR, "server.mjs")
HUB_COOKIE = "jupyterhub-hub-login"  # "__Host-" may be prefixed


def ensure_installed():
    """Install the provider's locked npm dependencies on a fresh clone (no-op once installed)."""
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout
    if tuple(int(n) for n in version.strip().lstrip("v").split(".")[:2]) < (20, 12):
        raise RuntimeError(f"oidc-provider 9 needs Node.js 20.12 or later, found {version.strip()}")
    if not os.path.isdir(os.path.join(OIDC_DIR, "node_modules", "oidc-provider")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=OIDC_DIR, check=True,
                       stdout=subprocess.DEVNULL)


class OidcProvider:
    """The provider as a subprocess.

    ``clients``: [{"client_id", "client_secret", "redirect_uris": [...]}, ...];
    ``accounts``: {name: {"password", "groups": [...], "email"}}. Account names are the
    ``preferred_username`` claim.
    """

    def __init__(self, workdir, clients, accounts, access_token_ttl=3600):
        self.dir = workdir
        self.clients = clients
        self.accounts = accounts
        self.access_token_ttl = access_token_ttl
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(workdir, "oidc-provider.log")
        self.proc = None

    def url(self, path):
        return self.issuer + path

    def _write_config(self):
        config = os.path.join(self.dir, "oidc-provider.json")
        fd = os.open(config + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds secrets
        with os.fdopen(fd, "w") as f:
            json.dump({"port": self.port, "issuer": self.issuer, "clients": self.clients,
                       "accounts": self.accounts, "access_token_ttl": self.access_token_ttl}, f)
        os.replace(config + ".new", config)  # the running provider reads accounts from it
        return config

    def expire_access_token(self, token):
        """Make ``token`` expire now (its refresh token stays valid), as its TTL running out would."""
        r = requests.post(self.url("/test/expire-access-token"), data={"token": token}, timeout=10)
        r.raise_for_status()

    def set_groups(self, name, groups):
        """Change an account's groups claim while the provider runs (e.g. remove a lab member)."""
        self.accounts[name]["groups"] = list(groups)
        self._write_config()

    def start(self, timeout=60):
        ensure_installed()
        os.makedirs(self.dir, exist_ok=True)
        config = self._write_config()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(["node", SERVER, config], cwd=OIDC_DIR, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"oidc provider exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if requests.get(self.url("/.well-known/openid-configuration"), timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"oidc provider did not start:\n{self.log()[-3000:]}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def discovery(self):
        """The provider's metadata: authorization_endpoint, token_endpoint, userinfo_endpoint, ..."""
        r = requests.get(self.url("/.well-known/openid-configuration"), timeout=10)
        r.raise_for_status()
        return r.json()

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


class LoginFailed(RuntimeError):
    pass


class _Forms(html.parser.HTMLParser):
    """Collects each form's action and input names."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action") or "", "inputs": set()})
        elif tag == "input" and self.forms and attrs.get("name"):
            self.forms[-1]["inputs"].add(attrs["name"])


def login_form_action(page_url, text):
    """Absolute URL that the provider's login form posts to, or None if the page has none."""
    parser = _Forms()
    parser.feed(text)
    for form in parser.forms:
        if {"login", "password"} <= form["inputs"]:
            return urljoin(page_url, form["action"])
    return None


def _follow(session, response, stop, max_hops=20):
    """Follow redirects by hand until ``stop(response)`` or a non-redirect answer."""
    for _ in range(max_hops):
        if stop(response) or not response.is_redirect:
            return response
        location = urljoin(response.url, response.headers["Location"])
        response = session.get(location, allow_redirects=False, timeout=30)
    raise LoginFailed(f"more than {max_hops} redirects, last at {urlparse(response.url).path}")


def login_through_hub(hub_url, username, password, session=None, next_url="/hub/home"):
    """Log ``username`` in to the hub the way a browser does: the hub's OAuth login handler, the
    provider's login form, back to the hub's callback. Returns the session holding the hub's login
    cookie. Stops at the callback's redirect, so nothing (such as a default spawn) is started.
    A session already signed in at the provider skips the form and stays that user: use one
    session per user.
    """
    session = session or requests.Session()
    hub_url = hub_url.rstrip("/")
    callback_path = urlparse(hub_url).path + "/hub/oauth_callback"

    def at_callback(r):
        return urlparse(r.url).path == callback_path

    r = session.get(f"{hub_url}/hub/oauth_login", params={"next": next_url},
                    allow_redirects=False, timeout=30)
    r = _follow(session, r, at_callback)
    if not at_callback(r):  # not logged in at the provider yet: its login form
        action = login_form_action(r.url, r.text) if r.status_code == 200 else None
        if not action:
            raise LoginFailed(f"no login form at {urlparse(r.url).path} (HTTP {r.status_code})")
        r = session.post(action, data={"login": username, "password": password},
                         allow_redirects=False, timeout=30)
        r = _follow(session, r, at_callback)
        if not at_callback(r):
            detail = "Invalid login" if "Invalid login" in r.text else f"HTTP {r.status_code}"
            raise LoginFailed(f"provider refused {username!r}: {detail} at {urlparse(r.url).path}")
    if not r.is_redirect:
        raise LoginFailed(f"hub refused {username!r} at its OAuth callback: HTTP {r.status_code}")
    if not any(c.name.endswith(HUB_COOKIE) for c in session.cookies):
        raise LoginFailed(f"hub set no login cookie for {username!r}")
    return session
