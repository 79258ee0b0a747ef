"""Small pure helpers the providers share to read BinderHub specs and web URLs."""

import re
from urllib.parse import quote, unquote, urlsplit

from binderspawner.errors import LaunchError
from binderspawner.launch.options import validate_ref
from binderspawner.providers.base import DEFAULT_PORTS, LinkGrammar, host_key

# GitHub: owners are 1-39 letters, digits and '-'; repositories letters, digits, '.', '_', '-'.
# The *_PART patterns use the syntax Python and JavaScript share: the spawn form checks with them.
OWNER_PART = r"[A-Za-z0-9][A-Za-z0-9-]{0,38}"
REPO_PART = r"(?!\.\.?(?:/|$))[A-Za-z0-9._-]{1,100}"
OWNER = re.compile(f"^{OWNER_PART}$")
REPO = re.compile(f"^{REPO_PART}$")
REF_PART = r"[A-Za-z0-9_][A-Za-z0-9._/+@-]*"  # the form's quick check; validate_ref decides


def invalid(repo, problem, hint):
    return LaunchError(f"The repository {repo!r} is not valid: {problem}. {hint}", field="repo")


def after_prefix(repo, prefix):
    """The rest of a spec '<prefix>/<rest>', or None when ``repo`` is not such a spec."""
    return repo[len(prefix) + 1:] if repo.startswith(prefix + "/") else None


def path_on(repo, *bases, schemes=("http", "https")):
    """The path of ``repo`` (with query) when it is a URL on one of ``bases``; None if not.

    A host is one host however it is spelled: case, a trailing dot and a leading 'www.' do not
    count, and when a base names no port (or its scheme's default) any port on its host is its
    own; so no spelling of a provider's repository escapes the provider (bans, quotas).
    """
    if "://" not in repo or not bases:
        return None
    try:
        parts = urlsplit(repo)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in schemes:
        return None
    for base in bases:
        if not base:
            continue
        home = urlsplit(base)
        if host_key(parts.hostname) != host_key(home.hostname):
            continue
        if home.port not in (None, DEFAULT_PORTS.get(home.scheme)) and port != home.port:
            continue
        prefix = home.path.rstrip("/")
        if not parts.path.startswith(prefix + "/"):
            continue
        if parts.username or parts.password or "@" in parts.netloc:
            raise invalid(repo, "credentials do not belong in the URL", "Remove the 'user:password@' part.")
        return parts.path[len(prefix):] + (f"?{parts.query}" if parts.query else "")
    return None


def ref_or_none(text, repo):
    """A ref named inside a spec or URL (percent-escaped there, as BinderHub's specs are: '#' is
    '%23'), validated like the 'ref' option; '' -> None."""
    if not text:
        return None
    try:
        return validate_ref(unquote(text))
    except LaunchError as e:
        raise LaunchError(f"The ref in {repo!r} is not valid: {e.message.split(': ', 1)[-1]}",
                          field="repo") from None


def link_ref(raw, provider):
    """The escaped ref at the end of a launch link, validated; 'HEAD' is the default branch."""
    ref = unquote(raw)
    if not ref:
        raise provider.link_error("the ref (branch, tag or commit) is missing")
    if ref == "HEAD":
        return ref
    try:
        return validate_ref(ref)
    except LaunchError as e:
        raise provider.link_error(str(e).rstrip(".")) from None


def escaped_url(raw, provider, max_length=2048):
    """The whole URL escaped as one segment of a launch link (git/…, ckan/…)."""
    url = unquote(raw)
    if "://" not in url or re.search(r"[\x00-\x20\x7f]", url) or len(url) > max_length:
        raise provider.link_error("the repository must be a whole URL, escaped as one path segment "
                                  "(encodeURIComponent)")
    return url


def host_pattern(*bases):
    """A pattern matching '<scheme>://<host>[:port]' of the bases as path_on accepts them."""
    hosts = sorted({host_key(urlsplit(b).hostname) for b in bases if b})
    names = "|".join(re.escape(h) for h in hosts)
    return rf"(?:https?|git)://(?:www\.)?(?:{names})\.?(?::[0-9]+)?"


# Git URLs (GitProvider) ---------------------------------------------------------------------------

def _git_spelling(url):
    """(scheme, host[:port], path) of a checked Git URL: no default port, no trailing '/' or '.git'."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.netloc.rsplit("@", 1)[-1]
    if parts.port is not None and parts.port == DEFAULT_PORTS.get(scheme):
        host = host[: -len(f":{parts.port}")]
    path = parts.path
    while path.endswith(("/", ".git")):
        path = path.rstrip("/").removesuffix(".git")
    return scheme, host.lower(), path


def git_identity(url):
    """One spelling of a checked Git URL for bans and quotas: no default port, no trailing '/' or
    '.git' (pure). Host case and trailing dots are gone already (parse_git_url)."""
    scheme, host, path = _git_spelling(url)
    return "git/" + quote(f"{scheme}://{host}{path}", safe="")


def git_slug(url):
    """'host[:port]/path' of a checked Git URL, the one spelling its image names come from (pure):
    'repo', 'repo.git' and 'repo.git/' are one repository, built once."""
    _, host, path = _git_spelling(url)
    return f"{host}{path}"


def git_link_grammar(schemes):
    names = "|".join(re.escape(s) for s in schemes)
    return LinkGrammar("git", "<url-escaped git URL>/<ref>", "git/https%3A%2F%2Fexample.org%2Frepo.git/main",
                       rf"^git/\S+$|^(?:{names})://[^\s/@]+/\S+$", "Git", {"url": 2048})


def parse_git_link(provider, spec):
    parts = spec.split("/")
    url = escaped_url(parts[0], provider)
    ref = link_ref("/".join(parts[1:]), provider)
    return f"{quote(url, safe='')}/{quote(ref, safe='/')}", url, (None if ref == "HEAD" else ref)
