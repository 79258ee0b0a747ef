"""A real Git LFS server on 127.0.0.1: giftless (from PyPI) with local storage, anonymous
read-write, under Flask's own server; objects are pushed to it with the real git-lfs client."""

import os
import signal
import subprocess
import sys

from . import ROOT
from .gitserver import GIT_ENV
from .net import free_port, wait_for_port

# Anonymous read-write for everything (giftless's own allow_anon:read_write refuses uploads of a
# given object id), and no pre-authorized (JWT) actions.
DATA = "x,y\n" + "".join(f"{i},{i * i}\n" for i in range(200))
# The same config as binderspawner.builders.lfs.LFS_CONFIG: git-lfs on for one command.
LFS_CONFIG = ("-c", "filter.lfs.smudge=git-lfs smudge -- %f",
              "-c", "filter.lfs.process=git-lfs filter-process",
              "-c", "filter.lfs.clean=git-lfs clean -- %f", "-c", "filter.lfs.required=true")

CONFIG = """AUTH_PROVIDERS:
  - tests.support.lfsserver:anyone
PRE_AUTHORIZED_ACTION_PROVIDER: null
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_streaming:factory
    options:
      storage_class: giftless.storage.local_storage:LocalStorage
      storage_options:
        path: {storage}
"""


def anyone(_request):
    """giftless auth provider: every request may read and write (a test server on 127.0.0.1)."""
    from giftless.auth.identity import DefaultIdentity

    class Anyone(DefaultIdentity):
        def is_authorized(self, organization, repo, permission, oid=None):
            return True

    return Anyone(name="anyone")


class LfsServer:
    def __init__(self, root):
        self.root = root
        self.port = free_port()
        self.proc = None

    def start(self):
        storage = os.path.join(self.root, "objects")
        os.makedirs(storage, exist_ok=True)
        config = os.path.join(self.root, "giftless.yaml")
        with open(config, "w") as f:
            f.write(CONFIG.format(storage=storage))
        self.log = open(os.path.join(self.root, "giftless.log"), "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "giftless.wsgi_entrypoint", "run",
             "--host", "127.0.0.1", "--port", str(self.port)],
            env={**os.environ, "GIFTLESS_CONFIG_FILE": config,
                 "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])},
            cwd=ROOT, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port("127.0.0.1", self.port)
        except TimeoutError:
            self.stop()
            with open(os.path.join(self.root, "giftless.log"), errors="replace") as f:
                raise RuntimeError(f"giftless did not start:\n{f.read()[-2000:]}") from None
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        if self.proc:
            self.log.close()

    def url(self, name):
        """The LFS endpoint for repository ``name`` (goes into its .lfsconfig)."""
        return f"http://127.0.0.1:{self.port}/tests/{name}"


def add_lfs_repo(git_server, lfs_server, name, lfs_url=None, push_objects=True, files=None):
    """A repository whose data.csv is stored in LFS (its object pushed to ``lfs_server``)."""
    git_server.add_repo(name, files={
        ".gitattributes": "*.csv filter=lfs diff=lfs merge=lfs -text\n",
        ".lfsconfig": f"[lfs]\n\turl = {lfs_url or lfs_server.url(name)}\n", **(files or {})})
    work = os.path.join(git_server.work, name)
    with open(os.path.join(work, "data.csv"), "w") as f:
        f.write(DATA if name == "withlfs" else f"{DATA}{name}\n")  # an object of its own
    run = dict(cwd=work, env=GIT_ENV, check=True, capture_output=True, text=True)
    subprocess.run(["git", *LFS_CONFIG, "add", "data.csv"], **run)
    subprocess.run(["git", *LFS_CONFIG, "commit", "-q", "-m", "data in LFS"], **run)
    if push_objects:
        subprocess.run(["git", *LFS_CONFIG, "lfs", "push", "--all", "origin"], **run)
    # --no-verify: git-lfs put a pre-push hook into the work tree that would upload the objects
    subprocess.run(["git", "push", "-q", "--no-verify", "origin", "HEAD:refs/heads/main"], **run)
    return git_server.url(name)
