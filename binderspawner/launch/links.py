"""Binder launch links and build-API paths: ``v2/<provider>/<spec>?urlpath=…`` (pure, no I/O).

A link is parsed into the user options a launch needs. The part after the prefix belongs to the
provider with that prefix (``RepoProvider.parse_link``): it checks it against its own grammar, so
a malformed link is refused with a message before anything is looked up, and the provider that
owns the repository answers ``repo_url``/``ref_url`` from its configured hosts (GitHub Enterprise,
a self-hosted GitLab). This module keeps only what all links share: length, characters, urlpath.

The spec arrives still percent-encoded (take it from the raw request path): the git URL and the
GitLab namespace are escaped *because* they contain '/', and decoding first would lose the split.
"""

import hashlib
import html
import json
import re
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import parse_qs, quote

from binderspawner.errors import LaunchError
from binderspawner.launch.options import normalize_urlpath
from binderspawner.providers import DEFAULT_PROVIDERS, detect, link_providers
from binderspawner.providers.base import link_error

MAX_LINK_LENGTH = 2048

_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_SERVER_NAME_CHARS = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class LaunchLink:
    """A parsed launch link: which provider, its canonical spec, and the launch's user options."""

    provider: str  # the link's prefix: 'gh', 'gl', 'git', ...
    spec: str  # canonical spec after the provider, still escaped as in a link
    repo: str  # the 'repo' user option
    ref: Optional[str] = None  # the 'ref' user option (None: the ref is part of 'repo', or default)
    urlpath: str = ""
    # The provider whose grammar the link follows, and the one that owns the repository with its
    # source (a git link to a GitHub URL is GitHub's): they answer the URLs below.
    grammar: Any = field(default=None, compare=False, repr=False)
    owner: Any = field(default=None, compare=False, repr=False)
    source: Any = field(default=None, compare=False, repr=False)

    @property
    def user_options(self):
        options = {"repo": self.repo}
        if self.ref:
            options["ref"] = self.ref
        if self.urlpath:
            options["urlpath"] = self.urlpath
        return options

    @property
    def binder_request(self):
        """'v2/<provider>/<spec>', BinderHub's name for what was asked."""
        return f"v2/{self.provider}/{self.spec}"

    def persistent_request(self, version):
        """The same request pinned to the resolved ``version`` (a commit sha, a record version)."""
        return f"v2/{self.provider}/{self.grammar.pinned_link(self.spec, version)}"

    @property
    def repo_url(self):
        """Where the repository lives, for BinderHub's ``repo_url``."""
        return self.owner.repo_url(self.source)

    def ref_url(self, version):
        """The repository at ``version``, for BinderHub's ``binder_ref_url``."""
        return self.owner.ref_url(self.source, version)


def _unknown(prefix, table):
    return link_error(f"unknown provider {prefix!r}; this hub knows {', '.join(table)}")


def _first(query, *names):
    for name in names:
        values = query.get(name)
        if values and values[0]:
            return name, values[0]
    return None, ""


def urlpath_from_query(query):
    """BinderHub's ?urlpath= / ?labpath= / ?filepath= -> the path to open ('' for the default).

    ``urlpath`` is used as given; ``labpath`` and ``filepath`` name a file and open it in JupyterLab.
    The first one present, in that order, wins.
    """
    name, value = _first(query, "urlpath", "labpath", "filepath")
    if not name:
        return ""
    if name != "urlpath":
        value = "lab/tree/" + quote(value.lstrip("/"), safe="/")
    try:
        return normalize_urlpath(value)
    except LaunchError as e:
        raise LaunchError(f"The {name} of this launch link is not valid: {e}", field="urlpath") from None


def parse_launch_path(path, query="", providers=None):
    """'<provider>/<spec>' (raw, still escaped) and the query string -> LaunchLink, or LaunchError.

    ``providers`` are the hub's provider instances (configured); None: the default providers."""
    if providers is None:
        providers = [cls() for cls in DEFAULT_PROVIDERS]
    if not isinstance(path, str) or not isinstance(query, str):
        raise link_error("it is not text")
    if len(path) > MAX_LINK_LENGTH or len(query) > MAX_LINK_LENGTH:
        raise link_error(f"it is longer than {MAX_LINK_LENGTH} characters")
    if _CONTROL.search(path) or "\\" in path:
        raise link_error("it contains spaces, control characters or backslashes")
    table = link_providers(providers)
    prefix, _, spec = path.strip("/").partition("/")
    grammar = table.get(prefix)
    if grammar is None:
        raise _unknown(prefix, table)
    if not spec or "//" in spec or spec.endswith("/") and prefix not in ("git", "gl", "gh"):
        raise grammar.link_error("the spec after the provider is missing or has empty parts")
    try:
        canonical, repo, ref = grammar.parse_link(spec.rstrip("/"))
    except (ValueError, UnicodeError):
        raise grammar.link_error("it is not valid percent-encoded text") from None
    urlpath = urlpath_from_query(parse_qs(query, keep_blank_values=False))
    owner, source = detect(repo, providers)
    return LaunchLink(provider=prefix, spec=canonical, repo=repo, ref=ref, urlpath=urlpath,
                      grammar=grammar, owner=owner, source=source)


def server_name_for(link):
    """A named-server name for this repository at this ref: stable, readable, valid in JupyterHub 6.

    'b-<last word of the repository>-<8 hex digits>', at most 30 characters of [a-z0-9-] starting
    with a letter. The hash is over provider, repository and ref (not urlpath), so every link to the
    same thing finds the same server, and a different ref gets its own.
    """
    identity = json.dumps([link.provider, link.repo, link.ref or ""])
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:8]
    tail = link.source.slug if link.source is not None else link.repo.rstrip("/").removesuffix(".git")
    words = [w for w in _SERVER_NAME_CHARS.split(tail.rsplit("/", 1)[-1].lower()) if w]
    readable = "-".join(words)[:17].strip("-")
    return f"b-{readable}-{digest}" if readable else f"b-{digest}"


def launch_path(repo, ref=None, urlpath=""):
    """The 'v2/…' path (with query) launching a Git ``repo`` at ``ref``, as the form suggests it."""
    path = f"v2/git/{quote(repo, safe='')}/{quote(ref or 'HEAD', safe='/')}"
    if urlpath:
        path += "?urlpath=" + quote(urlpath, safe="/")
    return path


def badge_snippets(launch_url, badge_url):
    """Markdown, reStructuredText and HTML for a badge that opens ``launch_url``."""
    return {
        "markdown": f"[![Binder]({badge_url})]({launch_url})",
        "rst": f".. image:: {badge_url}\n   :target: {launch_url}",
        "html": f'<a href="{html.escape(launch_url)}"><img src="{html.escape(badge_url)}" '
                'alt="Binder"></a>',
    }
