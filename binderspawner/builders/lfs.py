"""Git LFS files of a checkout: fetched at build time, or a message saying they were not.

A clone without git-lfs leaves LFS-tracked files as pointer text ("version https://git-lfs...")
and nothing tells the user. ``fetch`` replaces them with their content using Debian's git-lfs,
in git's environment for this build (the same credentials and rules as the clone), from the LFS
server on the repository's own host only: a repository cannot send the build elsewhere.

Called after the clone: by the hub-side checkout (builders/checkout.py), and where repo2docker
clones itself (Kubernetes build pods) by its Git content provider (``with_lfs``).
"""

import json
import os
import re
import shutil
import stat
import subprocess
from urllib.parse import urlsplit

from binderspawner import messages

# Config that turns git-lfs on for this command only (no global 'git lfs install').
LFS_CONFIG = ("-c", "filter.lfs.smudge=git-lfs smudge -- %f",
              "-c", "filter.lfs.process=git-lfs filter-process",
              "-c", "filter.lfs.clean=git-lfs clean -- %f", "-c", "filter.lfs.required=true")
_LFS_ATTRIBUTE = re.compile(r"(^|\s)filter=lfs(\s|$)")


class LfsNotFetched(Exception):
    """The checkout has LFS files that could not be downloaded; the message says why."""


def tracked_paths(checkout):
    """The .gitattributes lines that put files under LFS (empty: the repository uses no LFS).
    A .gitattributes that is a link (say to /dev/zero or a host file) or larger than
    MAX_ATTRIBUTES_BYTES is not read: git itself ignores a symlinked .gitattributes."""
    found = []
    for root, dirs, files in os.walk(checkout):
        dirs[:] = [d for d in dirs if d != ".git"]
        if ".gitattributes" in files:
            text = _read_regular(os.path.join(root, ".gitattributes"))
            found += [line.split()[0] for line in text.splitlines()
                      if _LFS_ATTRIBUTE.search(line) and line.split()]
    return found


MAX_ATTRIBUTES_BYTES = 1 << 20


def _read_regular(path):
    """The text of a regular file, without following a link; '' for anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return ""
        return f.read(MAX_ATTRIBUTES_BYTES).decode("utf-8", "replace")


def _git(checkout, env, *args, timeout):
    return subprocess.run(["git", *LFS_CONFIG, *args], cwd=checkout, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def endpoint_host_problem(origin_url, lfs_env_output):
    """Why the LFS endpoint ``git lfs env`` reports may not be used (pure), or None."""
    endpoints = [line.split("=", 1)[1].split(" ", 1)[0] for line in lfs_env_output.splitlines()
                 if line.startswith("Endpoint=")]
    if not endpoints:
        return "git-lfs found no LFS server for this repository"
    origin = (urlsplit(origin_url).hostname or "").lower()
    host = (urlsplit(endpoints[0]).hostname or "").lower()
    if host != origin:
        return (f"the repository names an LFS server on {host or endpoints[0]!r}, not on its own host "
                f"{origin!r}, and builds only download from the repository's host")
    return None


def fetch(checkout, env, timeout=600, max_bytes=0):
    """Download the LFS files of the clone in ``checkout`` with git's ``env``; returns lines for
    the build log. Raises LfsNotFetched (with the reason) when they cannot be fetched, also when
    their sizes (from the pointers) add up to more than ``max_bytes`` (0: no limit)."""
    patterns = tracked_paths(checkout)
    if not patterns:
        return []
    if shutil.which("git-lfs", path=env.get("PATH")) is None:
        raise LfsNotFetched("git-lfs is not installed on this hub (the admin installs Debian's "
                            "'git-lfs' package; scripts/provision.sh does)")
    origin = _git(checkout, env, "remote", "get-url", "origin", timeout=30).stdout.strip()
    lfs_env = _git(checkout, env, "lfs", "env", timeout=30)
    problem = endpoint_host_problem(origin, lfs_env.stdout)
    if problem:
        raise LfsNotFetched(problem)
    if max_bytes:
        size = pointed_bytes(_git(checkout, env, "lfs", "ls-files", "--json", timeout=60).stdout)
        if size > max_bytes:
            raise LfsNotFetched(f"they take {size / (1 << 30):.2f} GiB, and with the repository's other files "
                                "that is more than this hub checks out for a build "
                                "(c.Repo2DockerBuilder.checkout_max_size)")
    try:
        pulled = _git(checkout, env, "lfs", "pull", timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LfsNotFetched(f"downloading them took longer than {timeout:g} s") from None
    if pulled.returncode != 0:
        raise LfsNotFetched("git lfs pull said: " + (pulled.stderr.strip() or pulled.stdout.strip())[-800:])
    listed = _git(checkout, env, "lfs", "ls-files", "--name-only", timeout=60).stdout.split("\n")
    files = [name for name in listed if name]
    return [f"Fetched {len(files)} Git LFS file(s) ({', '.join(patterns)}): {', '.join(files[:10])}"
            + (" ..." if len(files) > 10 else "")]


def pointed_bytes(ls_files_json):
    """The bytes the LFS files of ``git lfs ls-files --json`` take (their pointers' sizes; git-lfs
    checks each download against its pointer). Unreadable output counts as more than any limit."""
    try:
        files = json.loads(ls_files_json).get("files") or []
        return sum(int(f.get("size", 0)) for f in files)
    except (ValueError, TypeError, AttributeError):
        return float("inf")


def with_lfs(git_provider):
    """repo2docker's Git content provider, followed by ``fetch`` on its checkout; when the LFS
    files cannot be fetched the build goes on and its log says so (they hold pointer text)."""

    class GitWithLfs(git_provider):
        def fetch(self, spec, output_dir, yield_output=False):
            yield from super().fetch(spec, output_dir, yield_output)
            try:
                for line in fetch(output_dir, dict(os.environ)):
                    yield line + "\n"
            except LfsNotFetched as e:
                message = messages.lfs_not_fetched(spec.get("repo", "the repository"), str(e))
                self.log.warning(message)
                yield "WARNING: " + message + "\n"

    GitWithLfs.__name__ = git_provider.__name__
    return GitWithLfs
