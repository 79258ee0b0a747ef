"""Launch requests: the user options a spawn receives, validated (pure, no I/O).

Every string here comes from the user. Nothing leaves this module unless it matches a conservative
grammar, so nothing a user types can become a git option, a shell word or a path outside the server.
"""

import re
from dataclasses import dataclass
from typing import Optional
from urllib.parse import quote, unquote

from binderspawner import messages
from binderspawner.errors import LaunchError

MAX_REPO_LENGTH = 1024
MAX_REF_LENGTH = 255
MAX_URLPATH_LENGTH = 1024

# "size" picks one of the admin's sizes; policy.py validates it (ResourcePolicy.sizes).
# "home": "fresh" starts a new persistent home (homes/, c.PersistentHome), setting the old one aside.
KNOWN_OPTIONS = ("repo", "ref", "urlpath", "size", "home")

_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_URLPATH_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What git-check-ref-format(1) forbids anywhere in a ref name: ASCII control characters, space,
# ~ ^ : ? * [ and backslash.
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
# A percent sign not starting an escape, or a character that is not safe in a URL path as is.
_URLPATH_TO_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9._~!$&'()*+,;=:@%/?#-]")


@dataclass(frozen=True)
class LaunchRequest:
    """What the user asked for, validated but not yet resolved."""

    repo: str
    ref: Optional[str] = None
    urlpath: str = ""
    size: Optional[str] = None  # a name from ResourcePolicy.sizes (checked there)
    fresh_home: bool = False  # start over with a new persistent home (the old one is kept aside)


def _text(options, key, max_length):
    value = options.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise LaunchError(f"'{key}' must be a string, got {type(value).__name__}.", field=key)
    value = value.strip()
    if len(value) > max_length:
        raise LaunchError(
            f"'{key}' is {len(value)} characters long; at most {max_length} are allowed.", field=key
        )
    return value or None


def ref_problem(ref):
    """Why git would refuse ``ref`` as a branch or tag name (git-check-ref-format --branch), or
    None when git accepts it. Pure: the same rules as git's, so '#', ',', '!', '=' and non-ASCII
    letters are fine. The ref only ever reaches git as an argument after '--' (or as a value it
    compares), never a shell."""
    if ref.startswith("-"):
        return "it starts with '-'"
    bad = _REF_FORBIDDEN.search(ref)
    if bad:
        char = bad.group(0)
        shown = "a space" if char == " " else (
            "a control character" if ord(char) < 0x20 or char == "\x7f" else repr(char))
        return f"it contains {shown}, which git does not allow in ref names"
    if ".." in ref:
        return "it contains '..'"
    if "@{" in ref:
        return "it contains '@{'"
    if ref == "@":
        return "it is the single character '@'"
    if ref.endswith("."):
        return "it ends with '.'"
    parts = ref.split("/")
    if any(part == "" for part in parts):
        return "it starts or ends with '/' or contains '//'"
    if any(part.startswith(".") for part in parts):
        return "a part between slashes starts with '.'"
    if any(part.endswith(".lock") for part in parts):
        return "a part between slashes ends with '.lock'"
    return None


def validate_ref(ref):
    """A branch, tag or commit sha as the user typed it; None means the default branch.

    Accepts every name git accepts; refuses what git refuses, with git's reason."""
    if ref is None:
        return None
    problem = ref_problem(ref)
    if problem:
        raise LaunchError(messages.ref_invalid(ref, problem), field="ref")
    return ref


def urlpath_problem(path):
    """Why ``path`` (leading '/' removed) could leave the user's server, or None (pure)."""
    decoded = unquote(path)
    if _URLPATH_CONTROL.search(path) or _URLPATH_CONTROL.search(decoded):
        return "it contains control characters"
    if "\\" in path:
        return "it contains a backslash"
    if "://" in decoded or decoded.startswith("/"):
        return "it must be a path inside the server, not a URL"
    where = re.split(r"[?#]", path, maxsplit=1)[0]
    if any(part in ("..", ".") for part in unquote(where).split("/")):
        return "it contains '.' or '..' segments"
    return None


def normalize_urlpath(urlpath):
    """The path inside the server to open, like BinderHub's urlpath: 'lab/tree/index.ipynb'.

    Returned percent-encoded, without a leading slash; '' means the server's default page. Spaces
    and non-ASCII letters are encoded (escapes already there are kept, as BinderHub uses urlpath as
    given), so 'lab/tree/Signals - Sampling.ipynb' and 'lab/tree/Signals%20-%20Sampling.ipynb'
    open the same file. Whatever it holds, it stays a path under the server's own URL.
    """
    if not urlpath:
        return ""
    path = urlpath.lstrip("/")
    problem = urlpath_problem(path)
    if problem:
        raise LaunchError(messages.urlpath_invalid("urlpath", urlpath, problem), field="urlpath")
    return _URLPATH_TO_ESCAPE.sub(lambda m: quote(m.group(0), safe=""), path)


def parse_launch_options(options):
    """user_options (from the REST API or the spawn form) -> LaunchRequest, or a LaunchError."""
    if not isinstance(options, dict):
        raise LaunchError("Server options must be a JSON object with 'repo', 'ref' and 'urlpath'.")
    unknown = sorted(set(options) - set(KNOWN_OPTIONS), key=str)
    if unknown:
        raise LaunchError(
            f"Unknown server option(s): {', '.join(map(repr, unknown))}. "
            f"Allowed options are {', '.join(KNOWN_OPTIONS)}.",
            field=unknown[0],
        )
    repo = _text(options, "repo", MAX_REPO_LENGTH)
    if not repo:
        raise LaunchError(
            "No repository given: set 'repo' to a Git URL such as https://example.org/org/repo.git.",
            field="repo",
        )
    if _CONTROL.search(repo):
        raise LaunchError("The repository contains spaces or control characters.", field="repo")
    ref = validate_ref(_text(options, "ref", MAX_REF_LENGTH))
    urlpath = normalize_urlpath(_text(options, "urlpath", MAX_URLPATH_LENGTH))
    size = _text(options, "size", 64)
    if size is not None and not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", size):
        raise LaunchError(f"The size {size!r} is not valid: give one of the sizes this hub offers.",
                          field="size")
    home = _text(options, "home", 64)
    if home not in (None, "keep", "fresh"):
        raise LaunchError(messages.HOME_OPTION_INVALID.format(value=home[:40]), field="home")
    return LaunchRequest(repo=repo, ref=ref, urlpath=urlpath, size=size, fresh_home=home == "fresh")
