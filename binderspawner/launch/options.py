"""Launch requests: the user options a spawn receives, validated (pure, no I/O).

Every string here comes from the user. Nothing leaves this module unless it matches a conservative
grammar, so nothing a user types can become a git option, a shell word or a path outside the server.
"""

import re
from dataclasses import dataclass
from typing import Optional
from urllib.parse import unquote

from binderspawner.errors import LaunchError

MAX_REPO_LENGTH = 1024
MAX_REF_LENGTH = 255
MAX_URLPATH_LENGTH = 1024

# "size" picks one of the admin's sizes; policy.py validates it (ResourcePolicy.sizes).
KNOWN_OPTIONS = ("repo", "ref", "urlpath", "size")

_CONTROL = re.compile(r"[\x00-\x20\x7f]")
# A safe subset of git's ref grammar (git-check-ref-format): no leading '-', no '..', no '@{',
# no shell metacharacters, no component starting with '.' or ending in '.lock'.
_REF_CHARS = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/+@-]*$")
_URLPATH_CHARS = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@%/?#-]*$")


@dataclass(frozen=True)
class LaunchRequest:
    """What the user asked for, validated but not yet resolved."""

    repo: str
    ref: Optional[str] = None
    urlpath: str = ""
    size: Optional[str] = None  # a name from ResourcePolicy.sizes (checked there)


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


def validate_ref(ref):
    """A branch, tag or commit sha as the user typed it; None means the default branch."""
    if ref is None:
        return None
    problem = None
    if ref.startswith("-"):
        problem = "it starts with '-'"
    elif not _REF_CHARS.match(ref):
        problem = "it may only contain letters, digits and . _ / + @ -"
    elif ".." in ref or "//" in ref:
        problem = "it contains '..' or '//'"
    elif ref.endswith(("/", ".", ".lock")) or "/." in ref or ".lock/" in ref:
        problem = "it is not a valid git ref name"
    if problem:
        raise LaunchError(
            f"The ref {ref!r} is not valid: {problem}. Give a branch name, a tag or a commit sha.",
            field="ref",
        )
    return ref


def normalize_urlpath(urlpath):
    """The path inside the server to open, like BinderHub's urlpath: 'lab/tree/index.ipynb'.

    Returned without a leading slash; '' means the server's default page.
    """
    if not urlpath:
        return ""
    path = urlpath.lstrip("/")
    problem = None
    if _CONTROL.search(urlpath) or "\\" in urlpath:
        problem = "it contains spaces, control characters or backslashes"
    elif "://" in path or path.startswith("/"):
        problem = "it must be a path inside the server, not a URL"
    elif not _URLPATH_CHARS.match(path):
        problem = "it contains characters that are not allowed in a URL path"
    elif any(unquote(part) in ("..", ".") for part in re.split(r"[?#]", path, maxsplit=1)[0].split("/")):
        problem = "it contains '.' or '..' segments"
    if problem:
        raise LaunchError(
            f"The urlpath {urlpath!r} is not valid: {problem}. Use a path such as "
            "'lab/tree/index.ipynb'.",
            field="urlpath",
        )
    return path


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
    return LaunchRequest(repo=repo, ref=ref, urlpath=urlpath, size=size)
