"""Providers that resolve through a web API (GitHub, GitLab, gists, data repositories).

One HTTP path for all of them: tornado's AsyncHTTPClient with a resolver that refuses internal
addresses (hosts.CheckingResolver), the token in an Authorization header only (never in a URL or a
log line), conditional requests (ETag / If-None-Match) so an expired cache entry costs a 304 that
GitHub does not count against the rate limit, and a rate-limit answer turned into a message with
the reset time (``rate_limit_error``, pure).
"""

import asyncio
import collections
import datetime
import email.utils
import json
import time
from urllib.parse import urljoin, urlsplit

from tornado.httpclient import HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient
from traitlets import Float, TraitError, Unicode, default, validate

from binderspawner.errors import LaunchError
from binderspawner.providers.base import RepoProvider
from binderspawner.providers.git import GitProvider
from binderspawner.providers.hosts import CheckingResolver

# Counters for tests and benchmarks: requests sent, and how many of them were answered 304.
stats = collections.Counter()


class Unreachable(Exception):
    """The API could not be reached (DNS, connection, timeout): a git fallback may still answer."""


class EtagCache:
    """Last good answer per (url, credential key), revalidated with If-None-Match (bounded, LRU)."""

    def __init__(self, size=2048):
        self.size = size
        self._entries = collections.OrderedDict()

    def get(self, key):
        entry = self._entries.get(key)
        if entry:
            self._entries.move_to_end(key)
        return entry

    def put(self, key, etag, body):
        self._entries[key] = (etag, body)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self):
        self._entries.clear()


def _utc(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)


def rate_limit_error(service, status, headers, now, hint=""):
    """A LaunchError naming the reset time when (status, headers) say the rate limit is used up
    (pure). GitHub: 403/429 with X-RateLimit-Remaining: 0 and X-RateLimit-Reset (epoch), or
    Retry-After; GitLab: 429 with RateLimit-Reset / Retry-After."""
    if status not in (403, 429):
        return None
    remaining = headers.get("X-RateLimit-Remaining", headers.get("RateLimit-Remaining"))
    retry_after = headers.get("Retry-After")
    if status == 403 and remaining != "0" and retry_after is None:
        return None  # an ordinary "forbidden"
    reset_at = None
    if retry_after:
        if retry_after.strip().isdigit():
            reset_at = now + int(retry_after)
        else:
            try:
                reset_at = email.utils.parsedate_to_datetime(retry_after).timestamp()
            except (TypeError, ValueError, IndexError):
                reset_at = None
    if reset_at is None:
        reset = headers.get("X-RateLimit-Reset", headers.get("RateLimit-Reset", ""))
        reset_at = int(reset) if reset.strip().isdigit() else None
    if reset_at is None:
        when = "in a while"
    else:
        minutes = max(0, round((reset_at - now) / 60))
        when = f"at {_utc(reset_at):%H:%M:%S} UTC (in about {minutes} minute{'s' * (minutes != 1)})"
    return LaunchError(f"{service}'s API rate limit for this hub is used up; it resets {when}. "
                       f"Try again then.{hint}", field="repo", status=429)


def base_url(value, name):
    """Validate an admin-set base URL: http(s), a host, no query; returned without trailing '/'."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment \
            or parts.username or parts.password:
        raise TraitError(f"{name} must be an http(s) URL without credentials, query or fragment, "
                         f"such as https://api.github.com; got {value!r}.")
    return value.rstrip("/")


class ApiProvider(RepoProvider):
    """Shared settings and the HTTP path for providers that ask a web API."""

    service = "the API"  # for messages
    etags = EtagCache()
    _clients = {}

    api_base_url = Unicode(help="Base URL of the service's REST API.").tag(config=True)
    html_base_url = Unicode(help="Base URL where people see repositories or records; plain URLs on "
                                 "this host are recognised.").tag(config=True)

    @validate("api_base_url", "html_base_url")
    def _valid_base(self, proposal):
        return base_url(proposal.value, f"{type(self).__name__}.{proposal.trait.name}")

    access_token = Unicode(
        "",
        help="""Hub-wide API token, sent only in the Authorization header (never in URLs, logs or
        builds). Raises the API rate limit; it lets every user launch whatever the token can read,
        so give it public read access only. A user's own token, when the spawner passes one,
        replaces it for that user's launches.""",
    ).tag(config=True)

    api_timeout = Float(10, help="Seconds an API request may take before the launch gives up on "
                                 "it (or falls back to git where that can answer).").tag(config=True)

    user_agent = Unicode(help="User-Agent of API requests.").tag(config=True)

    @default("user_agent")
    def _default_user_agent(self):
        return "binderspawner"

    def client(self):
        """One HTTP client per allow-list and event loop (tornado clients belong to one loop)."""
        allowed = tuple(self.private_host_allow_list())
        key = (allowed, type(self).__name__)
        loop = asyncio.get_running_loop()
        entry = self._clients.get(key)
        if entry is None or entry[0] is not loop:
            resolver = CheckingResolver(allowed=allowed,
                                        setting=f"{type(self).__name__}.allowed_private_hosts")
            # tornado's own client by name, whatever AsyncHTTPClient is configured to (JupyterHub
            # picks CurlAsyncHTTPClient when pycurl is installed, which takes no resolver).
            entry = ApiProvider._clients[key] = (
                loop, SimpleAsyncHTTPClient(force_instance=True, resolver=resolver))
        return entry[1]

    def credential_urls(self, source):
        return [source.fetch_url, self.api_base_url]

    def authorization(self, credentials):
        if credentials is not None:
            return credentials.authorization()
        return f"Bearer {self.access_token}" if self.access_token else None

    async def api_get(self, url, *, credentials=None, accept="application/json", conditional=True):
        """GET ``url``: (status, body bytes, headers). 304 answers return the cached 200 body.

        Raises Unreachable when the API cannot be reached, LaunchError for a rate limit."""
        headers = {"Accept": accept, "User-Agent": self.user_agent}
        auth = self.authorization(credentials)
        if auth:
            headers["Authorization"] = auth
        key = (url, accept, credentials.cache_key if credentials else bool(auth))
        cached = self.etags.get(key) if conditional else None
        if cached:
            headers["If-None-Match"] = cached[0]
        response = await self._fetch_following(url, headers)
        self.log.debug("%s GET %s -> %s", self.service, url, response.code)
        if response.code == 304 and cached:
            stats["not_modified"] += 1
            return 200, cached[1], response.headers
        error = rate_limit_error(self.service, response.code, response.headers, time.time(),
                                 self.rate_limit_hint(credentials))
        if error:
            raise error
        body = response.body or b""
        if response.code == 200 and response.headers.get("ETag") and conditional:
            self.etags.put(key, response.headers["ETag"], body)
        return response.code, body, response.headers

    async def _fetch_following(self, url, headers, max_redirects=3):
        """GET ``url``, following up to ``max_redirects`` redirects by hand: a redirect to another
        origin (scheme, host, port) goes without the Authorization header, so a token reaches only
        the host it was meant for. Every connection passes the CheckingResolver."""
        for _ in range(max_redirects + 1):
            request = HTTPRequest(url, headers=headers, request_timeout=self.api_timeout,
                                  connect_timeout=self.api_timeout, follow_redirects=False)
            stats["requests"] += 1
            try:
                response = await self.client().fetch(request, raise_error=False)
            except LaunchError:
                raise
            except Exception as e:  # noqa: BLE001 - DNS, TLS, connection: all mean "unreachable"
                raise Unreachable(str(e)) from e
            if isinstance(response.error, LaunchError):
                raise response.error
            if response.code == 599:
                raise Unreachable(str(response.error))
            location = response.headers.get("Location")
            if response.code not in (301, 302, 303, 307, 308) or not location:
                return response
            target = urljoin(url, location)
            if urlsplit(target).scheme not in ("http", "https"):
                break
            if _origin(target) != _origin(url):
                headers = {k: v for k, v in headers.items() if k not in ("Authorization", "If-None-Match")}
            url = target
        raise LaunchError(f"{self.service} answered with too many redirects. Try again later.",
                          field="repo", status=502)

    async def api_json(self, url, *, credentials=None, not_found=None):
        """GET a JSON document; 404 -> ``not_found`` (a LaunchError), other failures explained."""
        status, body, _ = await self.api_get(url, credentials=credentials)
        if status == 404 and not_found is not None:
            raise not_found
        self.raise_for_status(status, credentials)
        try:
            return json.loads(body)
        except ValueError:
            raise LaunchError(f"{self.service} answered with something that is not JSON. Try again "
                              "later.", field="repo", status=502) from None

    def raise_for_status(self, status, credentials):
        if status == 200:
            return
        if status == 401:
            whose = "your" if credentials is not None else "this hub's"
            raise LaunchError(f"{self.service} refused {whose} access token (401). "
                              + ("Log in again." if credentials is not None else
                                 f"A hub admin must renew c.{type(self).__name__}.access_token."),
                              field="repo", status=502)
        raise LaunchError(f"{self.service} answered {status}. Try again later.", field="repo", status=502)

    def rate_limit_hint(self, credentials):
        if credentials is None and not self.access_token:
            return (f" A hub admin can raise the limit by setting c.{type(self).__name__}.access_token.")
        return ""

    def host_of(self, url):
        return (urlsplit(url).hostname or "").lower()

    async def fall_back_to_git(self, source, ref, credentials, error):
        self.log.warning("%s API unreachable (%s); resolving %s with git", self.service, error,
                         source.display_name)
        git = GitProvider(parent=self.parent, config=self.config)
        try:
            resolved = await git.resolve(source, ref, credentials=credentials)
        except LaunchError as e:
            if e.status_code in (502, 504):
                raise LaunchError(f"Neither {self.service}'s API nor git could reach "
                                  f"{source.display_name}. Try again later.", field="repo",
                                  status=502) from None
            raise
        return resolved.version, resolved.resolved_from


def _origin(url):
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


class GitHostProvider(ApiProvider):
    """An API in front of Git repositories (GitHub, GitLab): builds clone from clone_base_url."""

    clone_base_url = Unicode(
        help="""Base of the Git URLs builds clone (followed by the repository's path). Defaults to
        html_base_url; set it for a mirror, or for a server whose Git URLs use another host name.""",
    ).tag(config=True)

    @default("clone_base_url")
    def _default_clone(self):
        return self.html_base_url

    @validate("clone_base_url")
    def _valid_clone(self, proposal):
        return clone_base(proposal.value, f"{type(self).__name__}.clone_base_url")


def clone_base(value, name):
    """An admin-set base of clone URLs: https, http or git://, a host, no query or credentials."""
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http", "git") or not parts.hostname or parts.query \
            or parts.fragment or parts.username or parts.password:
        raise TraitError(f"{name} must be an https://, http:// or git:// URL without credentials or "
                         f"query, such as https://github.com; got {value!r}.")
    return value.rstrip("/")
