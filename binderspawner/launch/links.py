"""Binder launch links and build-API paths: ``v2/<provider>/<spec>?urlpath=…`` (pure, no I/O).

A link is parsed into the user options a launch needs. The ``git`` form becomes a plain Git URL and
ref for the Git provider; every other form (``gh/org/repo/ref``, ``gl/…``, ``zenodo/<doi>``…) is
handed on as the spec string ``<provider>/<spec>`` in the ``repo`` option, which the providers
recognise. Each part is checked here against the grammar BinderHub documents for that provider, so
a malformed link is refused with a message before anything is looked up.

The spec arrives still percent-encoded (take it from the raw request path): the git URL and the
GitLab namespace are escaped *because* they contain '/', and decoding first would lose the split.
"""

import hashlib
import html
import json
import re
from dataclasses import dataclass
from typing import Optional
from urllib.parse import parse_qs, quote, unquote

from binderspawner.errors import LaunchError
from binderspawner.launch.options import normalize_urlpath, validate_ref

MAX_LINK_LENGTH = 2048

# provider -> (what the spec looks like, an example), as BinderHub's documentation gives them
PROVIDERS = {
    "gh": ("<org>/<repo>/<ref>", "gh/binder-examples/requirements/HEAD"),
    "gist": ("<user>/<gist id>[/<ref>]", "gist/alice/8f0b4c3a2e1d/HEAD"),
    "gl": ("<url-escaped namespace>/<ref>", "gl/group%2Fproject/main"),
    "git": ("<url-escaped git URL>/<ref>", "git/https%3A%2F%2Fexample.org%2Frepo.git/main"),
    "zenodo": ("<DOI>", "zenodo/10.5281/zenodo.3242074"),
    "figshare": ("<DOI>", "figshare/10.6084/m9.figshare.9782777.v1"),
    "dataverse": ("<DOI>", "dataverse/10.7910/DVN/TJCLKP"),
    "hydroshare": ("<resource id>", "hydroshare/b8f6eae9d89241cf8b5904033460af61"),
    "ckan": ("<url-escaped dataset URL>[/<ref>]", "ckan/https%3A%2F%2Fdemo.ckan.org%2Fdataset%2Fx"),
}

_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_GH_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_REPO_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_GIST_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")
_DOI = re.compile(r"^10\.[0-9]{4,9}/[A-Za-z0-9._;()/:-]{1,300}$")
_HYDROSHARE_ID = re.compile(r"^[0-9a-f]{32}$")
_SERVER_NAME_CHARS = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class LaunchLink:
    """A parsed launch link: which provider, its canonical spec, and the launch's user options."""

    provider: str
    spec: str  # canonical spec after the provider, still escaped as in a link
    repo: str  # the 'repo' user option
    ref: Optional[str] = None  # the 'ref' user option (None: the ref is part of 'repo', or default)
    urlpath: str = ""

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
        return f"v2/{self.provider}/{_pin(self, version)}"

    @property
    def repo_url(self):
        """Where the repository lives, for BinderHub's ``repo_url``."""
        if self.provider == "gh":
            org, name, _ = self.spec.split("/", 2)
            return f"https://github.com/{org}/{name}"
        if self.provider == "gl":
            return f"https://gitlab.com/{unquote(self.spec.split('/', 1)[0])}"
        if self.provider == "gist":
            user, gist = self.spec.split("/")[:2]
            return f"https://gist.github.com/{user}/{gist}"
        if self.provider in ("git", "ckan"):
            return unquote(self.spec.split("/", 1)[0])
        if self.provider in ("zenodo", "figshare", "dataverse"):
            return f"https://doi.org/{self.spec}"
        return f"https://www.hydroshare.org/resource/{self.spec}"

    def ref_url(self, version):
        """The repository at ``version``, for BinderHub's ``binder_ref_url``."""
        if self.provider in ("gh", "gl"):
            return f"{self.repo_url}/tree/{version}"
        return self.repo_url


def _pin(link, version):
    if link.provider in ("gh",):
        org, name, _ = link.spec.split("/", 2)
        return f"{org}/{name}/{version}"
    if link.provider in ("gl", "git", "ckan"):
        return f"{link.spec.split('/', 1)[0]}/{version}"
    if link.provider == "gist":
        user, gist = link.spec.split("/")[:2]
        return f"{user}/{gist}/{version}"
    return link.spec


def _fail(problem, provider=None):
    if provider in PROVIDERS:
        form, example = PROVIDERS[provider]
        hint = f"A '{provider}' link looks like v2/{provider}/{form}, e.g. v2/{example}."
    else:
        hint = "A launch link looks like v2/<provider>/<spec>, e.g. v2/" + PROVIDERS["git"][1] + "."
    raise LaunchError(f"This launch link is not valid: {problem}. {hint}", field="repo")


def _ref(raw, provider):
    ref = unquote(raw)
    if not ref:
        _fail("the ref (branch, tag or commit) is missing", provider)
    if ref == "HEAD":
        return ref
    try:
        return validate_ref(ref)
    except LaunchError as e:
        _fail(str(e).rstrip("."), provider)


def _escaped_url(raw, provider):
    url = unquote(raw)
    if "://" not in url or _CONTROL.search(url) or len(url) > MAX_LINK_LENGTH:
        _fail("the repository must be a whole URL, escaped as one path segment "
              "(encodeURIComponent)", provider)
    return url


def _spec(provider, spec):
    """Check ``spec`` for ``provider``; returns (canonical spec, repo option, ref option)."""
    parts = spec.split("/")
    if provider == "gh":
        if len(parts) < 3:
            more = " (add /HEAD for the default branch)" if len(parts) == 2 else ""
            _fail(f"it needs an organisation, a repository and a ref{more}", provider)
        org, name, ref = parts[0], unquote(parts[1]).removesuffix(".git"), "/".join(parts[2:])
        if not _GH_OWNER.match(org) or not _REPO_NAME.match(name) or name in (".", ".."):
            _fail("the organisation or repository name has characters GitHub does not allow", provider)
        ref = _ref(ref, provider)
        canonical = f"{org}/{name}/{quote(ref, safe='/')}"
        return canonical, f"gh/{canonical}", None
    if provider == "gist":
        if len(parts) not in (2, 3):
            _fail("it needs a user, a gist id and optionally a ref", provider)
        user, gist = parts[0], parts[1]
        if not _GH_OWNER.match(user) or not _GIST_ID.match(gist):
            _fail("the user or gist id is not valid", provider)
        canonical = f"{user}/{gist}"
        if len(parts) == 3:
            canonical += "/" + quote(_ref(parts[2], provider), safe="")
        return canonical, f"gist/{canonical}", None
    if provider == "gl":
        if len(parts) < 2:
            _fail("it needs the escaped namespace and a ref", provider)
        namespace = unquote(parts[0])
        segments = namespace.split("/")
        if len(segments) < 2 or not all(_REPO_NAME.match(s) and s not in (".", "..") for s in segments):
            _fail("the namespace must be group/project (subgroups allowed), escaped as one segment",
                  provider)
        ref = _ref("/".join(parts[1:]), provider)
        canonical = f"{quote(namespace, safe='')}/{quote(ref, safe='/')}"
        return canonical, f"gl/{canonical}", None
    if provider in ("git", "ckan"):
        url = _escaped_url(parts[0], provider)
        rest = "/".join(parts[1:])
        if provider == "git":
            ref = _ref(rest, provider)
            return f"{quote(url, safe='')}/{quote(ref, safe='/')}", url, (None if ref == "HEAD" else ref)
        canonical = quote(url, safe="")
        if rest:
            canonical += "/" + quote(_ref(rest, provider), safe="/")
        return canonical, f"ckan/{canonical}", None
    if provider in ("zenodo", "figshare", "dataverse"):
        doi = unquote(spec)
        if not _DOI.match(doi) or "/../" in doi + "/" or "//" in doi:
            _fail("it is not a DOI such as 10.5281/zenodo.3242074", provider)
        return doi, f"{provider}/{doi}", None
    if provider == "hydroshare":
        if not _HYDROSHARE_ID.match(spec):
            _fail("the resource id must be 32 hexadecimal digits", provider)
        return spec, f"hydroshare/{spec}", None
    _fail(f"unknown provider {provider!r}; this hub knows {', '.join(PROVIDERS)}")


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


def parse_launch_path(path, query=""):
    """'<provider>/<spec>' (raw, still escaped) and the query string -> LaunchLink, or LaunchError."""
    if not isinstance(path, str) or not isinstance(query, str):
        _fail("it is not text")
    if len(path) > MAX_LINK_LENGTH or len(query) > MAX_LINK_LENGTH:
        _fail(f"it is longer than {MAX_LINK_LENGTH} characters")
    if _CONTROL.search(path) or "\\" in path:
        _fail("it contains spaces, control characters or backslashes")
    provider, _, spec = path.strip("/").partition("/")
    if provider not in PROVIDERS:
        _fail(f"unknown provider {provider!r}; this hub knows {', '.join(PROVIDERS)}")
    if not spec or "//" in spec or spec.endswith("/") and provider not in ("git", "gl", "gh"):
        _fail("the spec after the provider is missing or has empty parts", provider)
    try:
        canonical, repo, ref = _spec(provider, spec.rstrip("/"))
    except (ValueError, UnicodeError):
        _fail("it is not valid percent-encoded text", provider)
    urlpath = urlpath_from_query(parse_qs(query, keep_blank_values=False))
    return LaunchLink(provider=provider, spec=canonical, repo=repo, ref=ref, urlpath=urlpath)


def server_name_for(link):
    """A named-server name for this repository at this ref: stable, readable, valid in JupyterHub 6.

    'b-<last word of the repository>-<8 hex digits>', at most 30 characters of [a-z0-9-] starting
    with a letter. The hash is over provider, repository and ref (not urlpath), so every link to the
    same thing finds the same server, and a different ref gets its own.
    """
    identity = json.dumps([link.provider, link.repo, link.ref or ""])
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:8]
    tail = link.repo.rstrip("/").removesuffix(".git")
    if link.provider == "gh":
        tail = link.spec.split("/")[1]
    elif link.provider in ("gl", "ckan"):
        tail = unquote(link.spec.split("/", 1)[0])
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
