"""A real JupyterHub (with configurable-http-proxy) running binderspawner on the local Docker engine.

The hub's API listens on the gateway of a Docker network the run creates, so user containers on that
network reach it; the proxy listens on 127.0.0.1. Tests talk to both with a service token.
"""

import concurrent.futures
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid

import docker
import requests

from binderspawner.dockerhost import firewall
from binderspawner.services.cleanup import default_hub_id

from . import procs
from .net import free_port

CONFIG = """
import json
settings = json.loads({settings!r})
c.JupyterHub.spawner_class = "binder-docker"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = settings["port"]
c.JupyterHub.hub_ip = settings["gateway"]
c.JupyterHub.hub_port = settings["hub_port"]
c.JupyterHub.hub_connect_ip = settings["gateway"]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{{settings['proxy_api_port']}}"
c.ConfigurableHTTPProxy.auth_token = settings["proxy_token"]
c.JupyterHub.db_url = f"sqlite:///{{settings['dir']}}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{{settings['dir']}}/cookie_secret"
c.JupyterHub.pid_file = f"{{settings['dir']}}/jupyterhub.pid"
c.ConfigurableHTTPProxy.pid_file = f"{{settings['dir']}}/proxy.pid"
c.JupyterHub.services = [{{"name": "tests", "api_token": settings["token"]}}]
c.JupyterHub.load_roles = [{{
    "name": "tests",
    "scopes": ["admin:users", "admin:servers", "access:servers", "read:users:activity", "tokens"],
    "services": ["tests"],
}}]
c.JupyterHub.allow_named_servers = True
c.DockerSpawner.network_name = settings["network"]
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.prefix = settings["prefix"]
c.BinderSpawner.image_prefix = settings["image_prefix"]
c.GitProvider.allowed_hosts = ["127.0.0.1"]
c.GitProvider.resolved_ref_ttl = 0
c.JupyterHub.log_level = "DEBUG" if settings.get("debug") else "INFO"
{extra}
"""


HUB_IDS = set()  # the binderspawner.hub label of images built by the hubs this session started


def assert_config_recognized(log):
    """A config line the hub does not know (traitlets only logs a warning and goes on) means the test
    does not test what it says: fail, naming it."""
    unknown = [line for line in log.splitlines() if "Config option" in line and "not recognized" in line]
    assert not unknown, "the hub ignored config it does not recognize:\n" + "\n".join(unknown)


class Hub:
    def __init__(self, workdir, extra_config="", run_id=None, env=None):
        self.dir = workdir
        self.env = dict(env or {})  # added to the hub's environment, e.g. JUPYTERHUB_CRYPT_KEY
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.extra_config = extra_config
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.hub_port = free_port()
        self.proxy_api_port = free_port()
        self.network = f"bstest-{self.run_id}"
        self.prefix = f"bstest-{self.run_id}"
        self.image_prefix = "bstest-"
        self.log_path = os.path.join(workdir, "jupyterhub.log")
        self.proc = None
        self.docker = docker.from_env(version="auto")
        self.gateway = None

    # lifecycle ----------------------------------------------------------------------------------

    def create_network(self):
        network = self.docker.networks.create(self.network, driver="bridge",
                                              labels={"binderspawner.test": self.run_id})
        network.reload()
        self.gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]

    def write_config(self):
        settings = dict(port=self.port, hub_port=self.hub_port, proxy_api_port=self.proxy_api_port,
                        gateway=self.gateway, dir=self.dir, token=self.token,
                        proxy_token=secrets.token_hex(16), network=self.network, prefix=self.prefix,
                        image_prefix=self.image_prefix)
        path = os.path.join(self.dir, "jupyterhub_config.py")
        with open(path, "w") as f:
            f.write(CONFIG.format(settings=json.dumps(settings), extra=self.extra_config))
        return path

    def start(self):
        if self.gateway is None:
            self.create_network()
        config = self.write_config()
        log = open(self.log_path, "ab")
        procs.session_id()
        procs.HUBS.add((self.run_id, self.hub_port))
        # the hub's id: c.HubCleanup.hub_id if a test sets one, else from its lifecycle directory (the
        # default 'binderspawner' in its working directory, or the tests' usual 'lifecycle')
        HUB_IDS.update({default_hub_id(os.path.join(self.dir, name)) for name in ("binderspawner", "lifecycle")})
        if getattr(self, "hub_id", None):
            HUB_IDS.add(self.hub_id)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", config], cwd=self.dir, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **self.env, procs.HUB: self.run_id})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyterhub exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if requests.get(self.api_url("/"), timeout=2).ok:
                    assert_config_recognized(self.log())
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"jupyterhub did not start:\n{self.log()[-3000:]}")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def cleanup(self):
        """Remove every container and the network this run created, and stop what the hub left
        running (a SIGKILLed hub leaves its proxy, services and builds)."""
        self.stop()
        procs.stop(procs.of_hub(self.run_id, self.hub_port))
        for container in self.containers():
            container.remove(force=True)
        try:
            network = self.docker.networks.get(self.network)
            # egress chains a killed hub left behind (a clean exit removes them itself)
            firewall.remove_chains_of(network.id[:12])
            network.remove()
        except docker.errors.NotFound:
            pass

    def containers(self, **filters):
        """This hub's containers. Docker's list inspects each one it found: one that is removed
        meanwhile (a server being cleaned up) raises NotFound, so the listing is taken again."""
        for _ in range(10):
            try:
                return self.docker.containers.list(all=True, filters={"name": self.prefix, **filters})
            except docker.errors.NotFound:
                time.sleep(0.2)
        return self.docker.containers.list(all=True, filters={"name": self.prefix, **filters})

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    # REST API -----------------------------------------------------------------------------------

    def api_url(self, path):
        return f"http://127.0.0.1:{self.port}/hub/api{path}"

    def api(self, method, path, **kwargs):
        headers = {"Authorization": f"token {self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, self.api_url(path), headers=headers,
                                timeout=kwargs.pop("timeout", 60), **kwargs)

    def ensure_user(self, name):
        r = self.api("GET", f"/users/{name}")
        if r.status_code == 404:
            self.api("POST", f"/users/{name}").raise_for_status()

    @staticmethod
    def server_path(user, server=""):
        return f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"

    def spawn(self, user, options, server=""):
        """POST the spawn; returns the response (201 started, 202 pending, 4xx/5xx refused)."""
        self.ensure_user(user)
        return self.api("POST", self.server_path(user, server), json=options)

    def progress(self, user, server="", timeout=1200):
        """Read the spawn's progress event stream to its end: a list of events, or None when the
        hub says the server is not starting."""
        events = []
        with self.api("GET", self.server_path(user, server) + "/progress", stream=True,
                      timeout=timeout) as r:
            if r.status_code in (400, 404):  # not (yet) starting
                return None
            r.raise_for_status()
            for line in r.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    event = json.loads(line[len("data:"):])
                    events.append(event)
                    if event.get("ready") or event.get("failed"):
                        break
        return events

    def launch(self, user, options, server="", timeout=1200):
        """Spawn and follow the progress stream from its first event: (spawn response, events).

        The stream is opened while the POST is still waiting, so even a quick spawn's events are
        all seen (the spawner replays them from the start to every reader).
        """
        self.ensure_user(user)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            post = pool.submit(self.api, "POST", self.server_path(user, server), json=options)
            while True:
                events = self.progress(user, server, timeout)
                if events is not None:
                    return post.result(), events
                if post.done() and post.result().status_code >= 400:
                    return post.result(), []
                time.sleep(0.05)

    def stop_server(self, user, server=""):
        r = self.api("DELETE", self.server_path(user, server))
        assert r.status_code in (202, 204), r.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            model = self.api("GET", f"/users/{user}").json()
            if server not in model.get("servers", {}):
                return
            time.sleep(0.3)
        raise TimeoutError(f"{user}/{server} did not stop")

    def server_get(self, user, path, server=""):
        """GET a path on the user's server through the proxy, with the service token."""
        base = f"http://127.0.0.1:{self.port}/user/{user}/{server + '/' if server else ''}"
        return requests.get(base + path.lstrip("/"), headers={"Authorization": f"token {self.token}"},
                            timeout=30, allow_redirects=False)
