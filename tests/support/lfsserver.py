"""A real Git LFS server on 127.0.0.1: giftless (from PyPI) with local storage, anonymous
read-write, under Flask's own server; objects are pushed to it with the real git-lfs client."""

import os
import signal
import subprocess
import sys

from .net import free_port, wait_for_port

CONFIG = """AUTH_PROVIDERS:
  - giftless.auth.allow_anon:read_write
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_streaming:factory
    options:
      storage_class: giftless.storage.local_storage:LocalStorage
      storage_options:
        path: {storage}
"""


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
            env={**os.environ, "GIFTLESS_CONFIG_FILE": config}, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port("127.0.0.1", self.port)
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
