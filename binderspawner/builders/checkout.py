"""One checked clone per build: fetched once on the hub, read safely, built from by repo2docker.

The hub fetches the repository at the resolved commit into the build's scratch directory, reads
the environment files from it (``read_repo_files``, which never follows a link out of the
checkout, so a hostile ``runtime.txt -> /etc/shadow`` is refused, not printed), decides everything
(``environment.decide``) and only then starts Docker work, with repo2docker building this local
copy. The clone itself is providers.git.checkout, the one way this package clones.
"""

import asyncio
import os
import shutil
import tempfile

from binderspawner import messages
from binderspawner.builders.environment import (BINDER_DIRS, ENV_FILES, ROOT_ONLY_FILES,
                                                EnvironmentRefused, RepoFiles, nested_requirements, pip_includes)
from binderspawner.builders import lfs
from binderspawner.providers import git
from binderspawner.providers.git import CheckoutFailed

MAX_FILE_BYTES = 1 << 20
# Conda lock files list every package with its URL and hashes: real ones exceed 1 MiB.
MAX_LOCK_BYTES = 32 << 20
LOCK_FILES = ("pixi.lock", "conda-lock.yml")
# Files repo2docker itself opens on the host besides the environment files.
HOST_READ_FILES = (".dockerignore", ".containerignore")


async def fetch_checkout(fetch_url, commit, dest, *, rules, credentials=None, display_name,
                         timeout=300.0, log=None, max_bytes=0):
    """Clone ``fetch_url`` at ``commit`` (a full sha) into the empty directory ``dest`` with
    providers.git.checkout (every URL checked and pinned, no redirects, the member's
    ``credentials`` offered to ``fetch_url`` alone, submodules without them); history and tags come
    along, as in repo2docker's clone. ``rules`` are the resolving provider's git_rules().
    ``max_bytes`` (0: none): the most the commit's files may take on the hub's disk, checked
    before they are written (c.Repo2DockerBuilder.checkout_max_size). Raises CheckoutFailed with a
    message for the user."""
    log = log or (lambda message: None)
    try:
        used = await git.checkout(fetch_url, commit, dest, credentials=credentials, rules=rules,
                                  timeout=timeout, log=log, max_bytes=max_bytes)
    except git.CheckoutTooLarge as e:
        raise CheckoutFailed(messages.CHECKOUT_TOO_LARGE.format(
            repo=display_name, version=commit[:12], size=e.size / (1 << 30), limit=max_bytes / (1 << 30))) from None
    except CheckoutFailed as e:
        missing = any(sign in str(e) for sign in MISSING_COMMIT)
        reason = "the repository does not have this commit" if missing else str(e).rstrip(".")
        raise CheckoutFailed(messages.CHECKOUT_FAILED.format(repo=display_name, version=commit[:12],
                                                             reason=reason)) from None
    # Git LFS files: downloaded with the clone's own access (same URL rules and credentials), or
    # the build log says why they hold pointer text.
    access = await git.git_access(fetch_url, credentials=credentials, **dict(rules or {}))
    try:
        lines = await asyncio.get_running_loop().run_in_executor(
            None, lfs.fetch, dest, access.env, timeout, max(max_bytes - used, 1) if max_bytes else 0)
    except lfs.LfsNotFetched as e:
        lines = ["Warning: " + messages.lfs_not_fetched(display_name, str(e))]
    for line in lines:
        log(line)


# What git says when the commit is not in the clone.
MISSING_COMMIT = ("did not match any", "not our ref", "couldn't find remote ref", "reference is not a tree",
                  "Not a valid object name")


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
    includes = {p: _pip_includes(files[p], p) for p in files if p.endswith(("environment.yml", "environment.yaml"))}
    while todo or includes:
        current = todo.pop() if todo else None
        nested = nested_requirements(files[current], current) if current else includes.popitem()[1]
        for rel in nested:
            if rel and rel not in seen:
                seen.add(rel)
                text = _read(root, rel)
                if text is not None:
                    files[rel] = text
                    todo.append(rel)
    return RepoFiles(files, frozenset(dirs), frozenset(listing))


def _pip_includes(text, path):
    """The files an environment file's ``pip:`` lines include (none where it cannot be read:
    environment.decide refuses it, naming the problem)."""
    from binderspawner.builders import condaspec

    try:
        return pip_includes(condaspec.read_environment_file(text, path).pip, path)
    except condaspec.CondaRefused:
        return []


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
    limit = MAX_LOCK_BYTES if rel.rsplit("/", 1)[-1] in LOCK_FILES else MAX_FILE_BYTES
    if not os.path.exists(real):
        return None  # a dangling link inside the checkout: absent for repo2docker too
    if not os.path.isfile(real):
        raise EnvironmentRefused(messages.FILE_UNREADABLE.format(file=rel, problem="it is not a file"))
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise EnvironmentRefused(messages.FILE_UNREADABLE.format(file=rel, problem=e.strerror))
    if len(data) > limit:
        raise EnvironmentRefused(messages.FILE_TOO_LARGE.format(file=rel, limit=limit))
    return data.decode("utf-8", "replace")
