"""Asking a container registry whether an image exists, over the Docker Registry HTTP API v2.

Builds push to a registry that every Docker host or Kubernetes node pulls from, so "is this image
built?" is a question for the registry, not for one engine: ``HEAD /v2/<name>/manifests/<tag>``.
Registries answer 401 with a ``WWW-Authenticate`` challenge: ``Basic`` (htpasswd), or ``Bearer``
with a token endpoint (the distribution token spec: GET realm?service=&scope= with the user's
basic credentials, answer ``{"token": ...}``). Credentials go in Authorization headers only, never in
URLs, logs or messages.

Parsing (image references, challenges) is pure; ``RegistryClient`` does the HTTP.
"""

import base64
import ipaddress
import json
import os
import re
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Bool, Float, List, Unicode, default
from traitlets.config import LoggingConfigurable

from binderspawner.errors import LaunchError

DOCKER_HUB = "docker.io"

# Every manifest kind a build can produce: OCI and Docker, single-platform and multi-platform.
MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


class RegistryError(LaunchError):
    """The registry could not be asked (unreachable, refused our credentials, answered nonsense)."""

    def __init__(self, message):
        super().__init__(message, status=500)


@dataclass(frozen=True)
class ImageName:
    registry: str  # host[:port]; DOCKER_HUB when the reference names none
    repository: str  # path inside the registry, e.g. 'binder/repo-1a2b3c4d'
    tag: str

    @property
    def reference(self):
        return f"{self.registry}/{self.repository}:{self.tag}"


def parse_image(image):
    """'host:5000/ns/name:tag' -> ImageName (pure), following Docker's rule that the first path
    component is a registry host when it contains '.' or ':' or is 'localhost'."""
    name, _, digest = image.partition("@")
    if digest:
        raise ValueError(f"{image!r}: digests are not used for built images; give a tag.")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = "latest"
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, name
        if "/" not in repository:
            repository = f"library/{repository}"
    return ImageName(registry, repository, tag)


_CHALLENGE_PARAM = re.compile(r'\s*([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))\s*,?')


def parse_challenge(header):
    """'Bearer realm="https://auth/token",service="reg",scope="repository:x:pull"' ->
    ('bearer', {'realm': ..., 'service': ..., 'scope': ...}) (pure)."""
    scheme, _, params = (header or "").strip().partition(" ")
    values = {}
    for found in _CHALLENGE_PARAM.finditer(params):
        values[found.group(1).lower()] = found.group(2) if found.group(2) is not None else found.group(3)
    return scheme.lower(), values


def is_loopback(registry):
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def credentials_from_docker_config(path, registry):
    """(username, password) for ``registry`` from a Docker config.json ``auths`` entry, or None."""
    try:
        with open(path) as f:
            auths = json.load(f).get("auths", {})
    except (OSError, ValueError):
        return None
    keys = {registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v1/",
            f"https://{registry}/v2/"}
    for key, entry in auths.items():
        if key in keys and isinstance(entry, dict):
            if entry.get("username") and entry.get("password"):
                return entry["username"], entry["password"]
            if entry.get("auth"):
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                return user, password
    return None


class RegistryClient(LoggingConfigurable):
    """Asks registries whether a tag exists. Configure as ``c.RegistryClient.<setting>``."""

    username = Unicode(
        "",
        help="""User name for the registry builds push to. Leave empty to read credentials from
        the Docker config file (docker_config), or for a registry that needs none.""",
    ).tag(config=True)

    password = Unicode(
        "",
        help="""Password or access token for ``username``. Read it from the environment or a file
        in jupyterhub_config.py rather than writing it there. Never logged.""",
    ).tag(config=True)

    docker_config = Unicode(
        help="""Docker config.json whose 'auths' entries hold registry credentials (what
        `docker login` writes). Default: $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
        Credential helpers (credsStore) are not read: give username/password instead.""",
    ).tag(config=True)

    @default("docker_config")
    def _default_docker_config(self):
        folder = os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker")
        return os.path.join(folder, "config.json")

    plain_http = List(
        Unicode(),
        help="""Registries (host:port) spoken to over plain HTTP instead of HTTPS. Loopback
        registries (127.0.0.1, localhost) always use HTTP, as the Docker engine does.""",
    ).tag(config=True)

    ca_bundle = Unicode(
        "",
        help="PEM bundle to verify the registry's TLS certificate with ('' for the system's).",
    ).tag(config=True)

    validate_cert = Bool(True, help="Verify the registry's TLS certificate.").tag(config=True)

    timeout = Float(20, help="Seconds a registry request may take.").tag(config=True)

    _tokens = {}  # (realm, service, scope, user) -> (token, expires_at), shared by the hub process

    def credentials(self, registry):
        if self.username:
            return self.username, self.password
        return credentials_from_docker_config(self.docker_config, registry)

    def base_url(self, registry):
        if registry == DOCKER_HUB:
            raise RegistryError("Image names without a registry host cannot be checked in a registry: "
                                "set c.BinderSpawner.image_prefix to e.g. "
                                "'registry.example.org/binder/'.")
        scheme = "http" if is_loopback(registry) or registry in self.plain_http else "https"
        return f"{scheme}://{registry}"

    async def _fetch(self, url, method="GET", headers=None):
        request = HTTPRequest(url, method=method, headers=headers or {}, request_timeout=self.timeout,
                              connect_timeout=self.timeout, ca_certs=self.ca_bundle or None,
                              validate_cert=self.validate_cert, follow_redirects=True)
        try:
            return await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as e:
            raise RegistryError(f"Could not reach the registry at {url.split('/v2/')[0]}: {e}. Check "
                                "that it runs and that this host can reach it.") from None

    async def _token(self, challenge, registry, scope):
        realm = challenge.get("realm")
        if not realm or not realm.startswith(("https://", "http://")):
            raise RegistryError(f"The registry {registry} sent a token challenge without a usable "
                                "realm; it does not follow the distribution token spec.")
        creds = self.credentials(registry)
        params = {"service": challenge.get("service", ""), "scope": challenge.get("scope") or scope}
        key = (realm, params["service"], params["scope"], creds[0] if creds else "")
        cached = self._tokens.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        headers = {}
        if creds:
            headers["Authorization"] = _basic(*creds)
        response = await self._fetch(f"{realm}?{urlencode({k: v for k, v in params.items() if v})}",
                                     headers=headers)
        if response.code in (401, 403):
            raise self._refused(registry, creds, response.code)
        try:
            body = json.loads(response.body)
            token = body.get("token") or body["access_token"]
        except (ValueError, KeyError, TypeError):
            raise RegistryError(f"The token service of {registry} answered HTTP {response.code} "
                                "without a token.") from None
        lifetime = max(int(body.get("expires_in") or 60) - 10, 0)
        self._tokens[key] = (token, time.monotonic() + lifetime)
        return token

    def _refused(self, registry, creds, code):
        who = f"the credentials of user {creds[0]!r}" if creds else "anonymous access"
        return RegistryError(
            f"The registry {registry} refused {who} (HTTP {code}). Set c.RegistryClient.username "
            f"and c.RegistryClient.password, or log in with `docker login {registry}` so that "
            f"{self.docker_config} holds credentials that may pull and push there.")

    async def manifest_exists(self, image):
        """True if the registry has ``image``'s tag, False if it has not; RegistryError otherwise."""
        name = parse_image(image)
        url = f"{self.base_url(name.registry)}/v2/{name.repository}/manifests/{name.tag}"
        headers = {"Accept": MANIFEST_ACCEPT}
        response = await self._fetch(url, "HEAD", headers)
        if response.code == 401:
            scheme, challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
            creds = self.credentials(name.registry)
            if scheme == "basic":
                if not creds:
                    raise self._refused(name.registry, None, 401)
                headers["Authorization"] = _basic(*creds)
            elif scheme == "bearer":
                token = await self._token(challenge, name.registry, f"repository:{name.repository}:pull")
                headers["Authorization"] = f"Bearer {token}"
            else:
                raise RegistryError(f"The registry {name.registry} asked for authentication of an "
                                    f"unknown kind ({scheme or 'none given'}).")
            response = await self._fetch(url, "HEAD", headers)
            if response.code in (401, 403):
                raise self._refused(name.registry, creds, response.code)
        if response.code == 200:
            return True
        if response.code == 404:
            return False
        if response.code == 403:
            raise self._refused(name.registry, self.credentials(name.registry), 403)
        raise RegistryError(f"The registry {name.registry} answered HTTP {response.code} when asked "
                            f"for {name.repository}:{name.tag}.")


def _basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
