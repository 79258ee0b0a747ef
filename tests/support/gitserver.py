"""A real git server on 127.0.0.1 (git daemon) serving the example repositories.

Every test run commits a fresh nonce, so its commits (and hence images) are new: the first launch of
a repo in a run really builds.
"""

import os
import shutil
import signal
import subprocess
import uuid

from . import procs
from .net import free_port, wait_for_port

procs.session_id()  # before GIT_ENV copies the environment: what git starts is the session's
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "binderspawner tests",
    "GIT_AUTHOR_EMAIL": "tests@binderspawner.invalid",
    "GIT_COMMITTER_NAME": "binderspawner tests",
    "GIT_COMMITTER_EMAIL": "tests@binderspawner.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(*args, cwd=None):
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True,
                          capture_output=True, text=True).stdout.strip()


class RepoStore:
    """Bare repositories under root/repos, each fed from a work tree under root/work; shared by
    the git daemon server here and the smart HTTP server in githttp.py."""

    def __init__(self, root):
        self.root = root
        self.repos = os.path.join(root, "repos")
        self.work = os.path.join(root, "work")
        os.makedirs(self.repos)
        os.makedirs(self.work)

    def configure_bare(self, bare):
        git("config", "uploadpack.allowFilter", "true", cwd=bare)

    def add_repo(self, name, source_dir=None, files=None):
        """Create repo ``name`` from a directory and/or {path: content}; returns the commit sha."""
        work = os.path.join(self.work, name)
        if source_dir:
            shutil.copytree(source_dir, work)
        else:
            os.makedirs(work)
        git("init", "-q", "-b", "main", cwd=work)
        bare = os.path.join(self.repos, f"{name}.git")
        git("init", "-q", "--bare", "-b", "main", bare)
        self.configure_bare(bare)
        git("remote", "add", "origin", bare, cwd=work)
        return self.commit(name, {"binder-test-nonce": uuid.uuid4().hex, **(files or {})})

    def commit(self, name, files, branch="main", message="test commit"):
        """Write files (str or bytes content), commit and push to ``branch``; returns the new sha."""
        work = os.path.join(self.work, name)
        for path, content in files.items():
            full = os.path.join(work, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb" if isinstance(content, bytes) else "w") as f:
                f.write(content)
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", message, cwd=work)
        git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
        return git("rev-parse", "HEAD", cwd=work)

    def tag(self, name, tag):
        work = os.path.join(self.work, name)
        git("tag", "-a", tag, "-m", tag, cwd=work)
        git("push", "-q", "origin", f"refs/tags/{tag}", cwd=work)


class GitServer(RepoStore):
    def __init__(self, root):
        super().__init__(root)
        self.port = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={self.repos}",
             "--listen=127.0.0.1", f"--port={self.port}", self.repos],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=GIT_ENV, start_new_session=True)
        wait_for_port("127.0.0.1", self.port)
        return self

    def stop(self):
        """Stop the daemon and its children: 'git daemon' runs git-daemon as a child process, which
        outlives a terminated parent, so the whole process group goes."""
        if self.proc:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self.proc.wait(10)

    def url(self, name):
        return f"git://127.0.0.1:{self.port}/{name}.git"
