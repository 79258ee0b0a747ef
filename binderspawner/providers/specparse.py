"""Small pure helpers the providers share to read BinderHub specs and web URLs."""

import re
from urllib.parse import unquote, urlsplit

from binderspawner.errors import LaunchError
from binderspawner.launch.options import validate_ref

# GitHub: owners are 1-39 letters, digits and '-'; repositories letters, digits, '.', '_', '-'.
OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
REPO = re.compile(r"^(?!\.\.?$)[A-Za-z0-9._-]{1,100}$")


def invalid(repo, problem, hint):
    return LaunchError(f"The repository {repo!r} is not valid: {problem}. {hint}", field="repo")


def after_prefix(repo, prefix):
    """The rest of a spec '<prefix>/<rest>', or None when ``repo`` is not such a spec."""
    return repo[len(prefix) + 1:] if repo.startswith(prefix + "/") else None


def path_on(repo, base):
    """The path of ``repo`` (with query) when it is an http(s) URL under ``base``; None if not."""
    if "://" not in repo or not base:
        return None
    try:
        parts, home = urlsplit(repo), urlsplit(base)
        port, home_port = parts.port, home.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or (
        parts.hostname or "") != (home.hostname or "").lower():
        return None
    if port != home_port and not (port is None or home_port is None):
        return None
    if parts.username or parts.password or "@" in parts.netloc:
        raise invalid(repo, "credentials do not belong in the URL", "Remove the 'user:password@' part.")
    prefix = home.path.rstrip("/")
    if not parts.path.startswith(prefix + "/"):
        return None
    return parts.path[len(prefix):] + (f"?{parts.query}" if parts.query else "")


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
