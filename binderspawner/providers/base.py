"""The interface every repository source implements, after repo2docker's content providers.

A provider turns what the user typed into a ``RepoSource`` (pure, no network), and resolves a ref of
that source into an immutable version (network, cached). The builder fetches ``source.fetch_url``
at that version; images are named from ``source.slug`` and the version.
"""

import asyncio
import fnmatch
import hashlib
import re
import time
from dataclasses import dataclass, field, replace
from typing import Optional
from urllib.parse import urlsplit

from traitlets import Bool, Float, List, Unicode
from traitlets.config import LoggingConfigurable

from binderspawner.errors import LaunchError
from binderspawner.providers import hosts

FULL_SHA = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")


@dataclass(frozen=True)
class RepoSource:
    provider: str  # the provider's name, e.g. "git"
    spec: str  # canonical BinderHub-style spec, e.g. "gh/org/repo/main"; parse(spec).spec == spec
    fetch_url: str  # what the builder (repo2docker) fetches
    slug: str  # stable, human-readable identity used in image names
    display_name: str = ""
    repo_url: str = ""  # the repository's address for people (labels, BINDER_REPO_URL)
    ref: Optional[str] = None  # the ref the spec or URL itself named; None when it named none
    has_refs: bool = True  # False for data sources: a record has versions, not branches
    content_provider: str = "Git"  # the repo2docker content provider that fetches fetch_url
    needs_credentials: bool = False  # True when the source cannot be read without a token
    # One name per repository however it was spelled (case, www., .git, ports, a Git URL on a host
    # a provider owns): what bans, allowed specs, spec_config and quotas match. '' -> the spec.
    identity: str = ""

    @property
    def repository(self):
        """The repository's identity without a ref, e.g. 'gh/org/repo'."""
        if self.identity:
            return self.identity
        return self.spec[: -len(self.ref) - 1] if self.ref else self.spec

    def with_ref(self, ref):
        """This source with ``ref`` in its spec (None: without one). Specs end in '/<ref>'."""
        if not self.has_refs:
            if ref:
                raise LaunchError(f"{self.display_name or self.spec} is a data record with versions, "
                                  "not branches or tags: leave 'ref' empty.", field="ref")
            return self
        base = self.spec[: -len(self.ref) - 1] if self.ref else self.spec
        return replace(self, ref=ref, spec=f"{base}/{ref}" if ref else base)


@dataclass(frozen=True)
class LinkGrammar:
    """What a provider's launch links look like, for messages and for the spawn form's checks.

    ``pattern`` is a regular expression in the syntax Python and JavaScript share, matching the
    specs and web URLs this provider takes in the form's repository field, so the browser checks
    what the server checks. ``max_lengths`` names each part's limit (e.g. {"repo": 100}).
    """

    prefix: str  # BinderHub's provider prefix: 'gh', 'gl', 'git', ...
    form: str  # what the spec after the prefix looks like, e.g. '<org>/<repo>/<ref>'
    example: str  # a whole spec, e.g. 'gh/binder-examples/requirements/HEAD'
    pattern: str
    service: str = ""
    max_lengths: dict = field(default_factory=dict)

    def as_dict(self):
        return {"prefix": self.prefix, "form": self.form, "example": self.example,
                "pattern": self.pattern, "service": self.service, "max_lengths": dict(self.max_lengths)}


def link_error(problem, grammar=None):
    """The LaunchError for a malformed launch link, with what the provider's links look like."""
    if grammar is not None:
        hint = (f"A '{grammar.prefix}' link looks like v2/{grammar.prefix}/{grammar.form}, "
                f"e.g. v2/{grammar.example}.")
    else:
        hint = "A launch link looks like v2/<provider>/<spec>."
    return LaunchError(f"This launch link is not valid: {problem}. {hint}", field="repo")


DEFAULT_PORTS = {"https": 443, "http": 80, "git": 9418}


def host_key(host):
    """A host name as one spelling: lower case, no trailing dot, no leading 'www.' (pure)."""
    host = (host or "").lower().rstrip(".")
    return host[len("www."):] if host.startswith("www.") else host


@dataclass(frozen=True)
class TokenCredentials:
    """An access token for the API and git (hub-wide or one user's); its repr hides the token.

    ``hosts`` binds a member's token to the services that issued it: it is sent only to URLs whose
    host (or host:port) matches one of them, so a launch of some other host's repository never
    carries it there. None: no binding (a hub-wide token an admin configured for one provider).
    ``cache_key`` keeps one token's resolutions apart from another's without holding the token.
    """

    token: str = field(repr=False)
    username: str = "x-access-token"
    scheme: str = "Bearer"
    hosts: Optional[tuple] = None

    @property
    def cache_key(self):
        return hashlib.sha256(self.token.encode()).hexdigest()[:16]

    def covers(self, url):
        """May this token be sent to ``url``? Patterns: 'host', 'host:port', '*.domain'."""
        if self.hosts is None:
            return True
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        try:
            port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
        except ValueError:
            return False
        for pattern in self.hosts:
            pattern = pattern.lower()
            if ":" in pattern and port is not None and fnmatch.fnmatchcase(f"{host}:{port}", pattern):
                return True
            if ":" not in pattern and fnmatch.fnmatchcase(host, pattern):
                return True
        return False

    def authorization(self):
        return f"{self.scheme} {self.token}"


@dataclass(frozen=True)
class ResolvedRepo:
    source: RepoSource
    ref: Optional[str]  # as asked; None for the default branch
    version: str  # immutable: a full commit sha, a record version
    resolved_from: str = ""  # e.g. "branch main", "tag v1.0", "default branch main"
    labels: dict = field(default_factory=dict)


class ResolveCache:
    """Time-limited, single-flight cache of ref resolutions.

    Shared by all spawners of a hub process, so five users launching one branch at once cost one
    remote lookup, and repeated launches within the TTL cost none.
    """

    def __init__(self):
        self._values = {}
        self._inflight = {}

    def clear(self):
        self._values.clear()

    async def get(self, key, ttl, compute):
        hit = self._values.get(key)
        now = time.monotonic()
        if hit and hit[1] > now:
            return hit[0]
        if key in self._inflight:
            return await asyncio.shield(self._inflight[key])
        future = asyncio.ensure_future(compute())
        self._inflight[key] = future
        try:
            value = await asyncio.shield(future)
        finally:
            self._inflight.pop(key, None)
        if ttl > 0:
            self._values[key] = (value, time.monotonic() + ttl)
        return value


class RepoProvider(LoggingConfigurable):
    """One source of repositories. Subclasses set ``name`` and implement parse and resolve.

    A provider also answers for its own launch links, like BinderHub's RepoProvider: its
    ``link_grammar`` (from its configured hosts), ``parse_link`` for 'v2/<prefix>/<spec>',
    ``repo_url``/``ref_url`` of a source, and ``pinned_link`` for the spec at a resolved version.
    Links links.py cannot read without a provider are refused.
    """

    name = "base"
    prefix = ""  # BinderHub's provider prefix in specs and launch links ('' -> no launch links)
    cache = ResolveCache()

    display_name = Unicode(help="Name shown to users for this source.").tag(config=True)

    resolved_ref_ttl = Float(
        60,
        help="""Seconds a resolved branch or tag stays cached before it is looked up again.

        Within this time a push to the branch is not seen; 0 looks every launch up. A full commit
        sha is never looked up, so it needs no cache.""",
    ).tag(config=True)

    allowed_private_hosts = List(
        Unicode(),
        [],
        help="""Hosts this hub may contact for launches although they resolve to loopback,
        private, link-local or cloud-metadata addresses: host patterns ('gitlab.lab.internal',
        '*.lab.internal') or IP networks ('10.1.0.0/16', '127.0.0.1'). Every other such host is refused
        so users cannot make the hub reach internal services. Set it on RepoProvider for every
        source or on one provider class (c.GitLabProvider.allowed_private_hosts).""",
    ).tag(config=True)

    plain_http_hosts = List(
        Unicode(),
        [],
        help="""Hosts (shell-style patterns) to which members' access tokens may be sent over plain
        http://, e.g. a lab git server reachable only inside a trusted network. Tokens go over
        https:// everywhere, over http:// only to loopback and to these hosts, never over git://;
        a launch that would need otherwise is refused with a message naming this setting.""",
    ).tag(config=True)

    check_access_for_commits = Bool(
        True,
        help="""Ask the host at every launch of a full commit sha too (one request, cached for
        resolved_ref_ttl per user), so a user who cannot read the repository gets no server from an
        image someone else built. False trusts a full sha without asking: only for hubs where every
        repository users launch is public.""",
    ).tag(config=True)

    # repo2docker content providers that fetch this provider's sources (for Repo2DockerBuilder).
    content_providers = ("Git",)

    def private_host_allow_list(self):
        return list(self.allowed_private_hosts)

    async def check_host(self, host):
        """Refuse (LaunchError) a host resolving to an internal address unless allow-listed."""
        await hosts.check_host(host, self.private_host_allow_list(),
                               setting=f"{type(self).__name__}.allowed_private_hosts")

    def git_rules(self):
        """What git_access checks Git URLs of this provider against (see providers.git)."""
        return {"allowed_private_hosts": list(self.private_host_allow_list()),
                "plain_http_hosts": list(self.plain_http_hosts),
                "setting": f"{type(self).__name__}.allowed_private_hosts"}

    async def git_access(self, url, credentials=None):
        """The checked, pinned GitAccess for contacting ``url`` (providers.git.git_access)."""
        from binderspawner.providers.git import git_access  # git.py builds on this module
        return await git_access(url, credentials=credentials, **self.git_rules())

    def credential_urls(self, source):
        """Where resolving and building ``source`` sends a user's token: all must be covered."""
        return [source.fetch_url]

    def trusts_commit(self, ref):
        """A full commit sha that needs no lookup (no access check asked for)."""
        return bool(ref) and not self.check_access_for_commits and bool(FULL_SHA.match(ref.lower()))

    def parse(self, repo):
        """Return a RepoSource if this provider handles ``repo``, None if not ours.

        Raise LaunchError when it is ours but malformed. Pure: no network.
        """
        raise NotImplementedError

    async def resolve(self, source, ref, *, credentials=None):
        """Return a ResolvedRepo with an immutable version, or raise LaunchError.

        ``ref`` is the branch, tag or sha to use (None: the default branch); ``credentials`` a
        TokenCredentials-like object (``token``, ``username``, ``covers()``, ``authorization()``,
        ``cache_key``)
        for one user's private repositories, or None."""
        raise NotImplementedError

    # launch links (pure) ------------------------------------------------------------------------

    def link_grammar(self):
        """This provider's LinkGrammar (its configured hosts in the example and pattern)."""
        raise NotImplementedError

    def link_error(self, problem):
        return link_error(problem, self.link_grammar())

    def parse_link(self, spec):
        """'<spec>' of a link 'v2/<prefix>/<spec>' (still escaped) -> (canonical spec, 'repo'
        option, 'ref' option or None), or a LaunchError saying what is wrong."""
        raise NotImplementedError

    def pinned_link(self, spec, version):
        """The canonical link ``spec`` pinned to ``version`` (BinderHub's persistent request)."""
        return spec

    def repo_url(self, source):
        """Where people see the repository (BinderHub's ``repo_url``)."""
        return source.repo_url

    def ref_url(self, source, version):
        """The repository at ``version`` (BinderHub's ``binder_ref_url``)."""
        return self.repo_url(source)

    async def cached(self, key, compute):
        return await self.cache.get((self.name, *key), self.resolved_ref_ttl, compute)
