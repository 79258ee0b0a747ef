"""One checked clone per build: fetched once on the hub, read safely, built from by repo2docker.

The hub fetches the repository at the resolved commit into the build's scratch directory, reads
the environment files from it (``read_repo_files``, which never follows a link out of the
checkout, so a hostile ``runtime.txt -> /etc/shadow`` is refused, not printed), decides everything
(``environment.decide``) and only then starts Docker work, with repo2docker building this local
copy. Every git command goes through ``run_git``, the one place git is invoked.
"""

import asyncio
import os
import shutil
import tempfile

from binderspawner import messages
from binderspawner.builders.environment import (BINDER_DIRS, ENV_FILES, ROOT_ONLY_FILES,
                                                EnvironmentRefused, RepoFiles, nested_requirements)
from binderspawner.errors import BuildFailed

MAX_FILE_BYTES = 1 << 20
# Files repo2docker itself opens on the host besides the environment files.
HOST_READ_FILES = (".dockerignore", ".containerignore")


class CheckoutFailed(BuildFailed):
    """The commit could not be fetched; the message is for the user."""


async def run_git(args, *, env, cwd=None, timeout=300.0):
    """Run git with ``args`` (no shell) in ``env``; returns (exit code, stderr text).
    The one git invocation of the checkout, so a hardened runner can replace it."""
    proc = await asyncio.create_subprocess_exec(
        "git", *args, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, start_new_session=True)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, err.decode("utf-8", "replace")


async def fetch_checkout(fetch_url, commit, dest, *, env, display_name, timeout=300.0, log=None):
    """Clone ``fetch_url`` at ``commit`` (a full sha) into the empty directory ``dest``, with
    history and tags (as repo2docker's clone has, for setuptools-scm and friends) and submodules."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    async def git(*args):
        remaining = deadline - loop.time()
        try:
            if remaining <= 0:
                raise asyncio.TimeoutError
            return await run_git(args, env=env, cwd=dest, timeout=remaining)
        except asyncio.TimeoutError:
            raise CheckoutFailed(messages.CHECKOUT_TIMEOUT.format(repo=display_name, seconds=timeout))

    steps = [("init", "--quiet"), ("remote", "add", "origin", "--", fetch_url)]
    for step in steps:
        code, err = await git(*step)
        if code:
            raise _failed(display_name, commit, err, log)
    code, err = await git("fetch", "--quiet", "--tags", "--", "origin", commit)
    if code:  # servers that refuse a fetch by sha: every branch, then the commit among them
        code, err = await git("fetch", "--quiet", "--tags", "--", "origin",
                              "+refs/heads/*:refs/remotes/origin/*")
    if not code:
        code, err = await git("-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach",
                              commit, "--")
    if not code and os.path.isfile(os.path.join(dest, ".gitmodules")) and not os.path.islink(
            os.path.join(dest, ".gitmodules")):
        code, err = await git("submodule", "update", "--quiet", "--init", "--recursive")
    if code:
        raise _failed(display_name, commit, err, log)


def _failed(display_name, commit, stderr, log):
    if log:
        log.info("git failed for %s at %s: %s", display_name, commit, stderr.strip()[-500:])
    reason = "the repository does not have this commit" if "not our ref" in stderr or \
        "couldn't find remote ref" in stderr or "did not match any" in stderr else "git could not fetch it"
    return CheckoutFailed(messages.CHECKOUT_FAILED.format(repo=display_name, version=commit[:12],
                                                          reason=reason))


def make_checkout_dir(scratch=None):
    """A fresh directory for one checkout, inside the build's scratch directory when given."""
    return tempfile.mkdtemp(prefix="checkout-", dir=scratch)


def remove_checkout(path):
    shutil.rmtree(path, ignore_errors=True)


def read_repo_files(root):
    """RepoFiles of the checkout at ``root``: the environment files repo2docker may read, their
    -r/-c includes, and the binder directory; refuses a link that leaves the checkout."""
    root = os.path.realpath(root)
    dirs = set()
    for name in BINDER_DIRS:
        path = os.path.join(root, name)
        if os.path.lexists(path):
            _inside(root, name)
            if os.path.isdir(path):
                dirs.add(name)
    files, listing = {}, set()
    bases = [""] + sorted(dirs)
    for base in bases:
        for name in (*ENV_FILES, *HOST_READ_FILES, *(ROOT_ONLY_FILES if not base else ())):
            rel = f"{base}/{name}" if base else name
            text = _read(root, rel)
            if text is not None:
                files[rel] = text
        listing.update(f"{base}/{n}" if base else n for n in _listdir(os.path.join(root, base)))
    todo = [p for p in files if p.endswith("requirements.txt")]
    seen = set(todo)
    while todo:
        current = todo.pop()
        for rel in nested_requirements(files[current], current):
            if rel and rel not in seen:
                seen.add(rel)
                text = _read(root, rel)
                if text is not None:
                    files[rel] = text
                    todo.append(rel)
    return RepoFiles(files, frozenset(dirs), frozenset(listing))


def _listdir(path):
    try:
        return [n for n in os.listdir(path) if n != ".git"]
    except OSError:
        return []


def _inside(root, rel):
    real = os.path.realpath(os.path.join(root, rel))
    if real != root and not real.startswith(root + os.sep):
        raise EnvironmentRefused(messages.FILE_LINK_OUTSIDE.format(file=rel))
    return real


def _read(root, rel):
    """The text of ``rel`` in the checkout, None when absent; refuses links out and oddities."""
    path = os.path.join(root, rel)
    if not os.path.lexists(path):
        return None
    real = _inside(root, rel)
    if not os.path.exists(real):
        return None  # a dangling link inside the checkout: absent for repo2docker too
    if not os.path.isfile(real):
        raise EnvironmentRefused(messages.FILE_UNREADABLE.format(file=rel, problem="it is not a file"))
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise EnvironmentRefused(messages.FILE_UNREADABLE.format(file=rel, problem=e.strerror))
    if len(data) > MAX_FILE_BYTES:
        raise EnvironmentRefused(messages.FILE_TOO_LARGE.format(file=rel, limit=MAX_FILE_BYTES))
    return data.decode("utf-8", "replace")
