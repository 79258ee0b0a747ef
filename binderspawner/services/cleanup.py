"""Removing what this hub left behind, as a hub-managed service (``python -m binderspawner.services.cleanup``).

Why a service and not a callback in the hub: it starts with the hub whether or not any server runs
(spawner classes are only instantiated per server), it learns which servers exist through the hub's
REST API with two read scopes instead of reaching into the hub's database, and slow Docker calls
never block the hub's event loop. It runs one pass at start and then every ``interval`` seconds:

1. builds orphaned by a hub that died (repo2docker runs in its own session, so it outlives a
   SIGKILLed hub) are killed: a build's environment names the hub (id and pid) that started it;
   a build whose hub pid is not this service's parent is an orphan. Killing is deterministic:
   the user sees the launch failed (the spawner's saved state says a build was in flight) and
   relaunching rebuilds, reusing Docker's build cache.
2. build scratch directories (each build's TMPDIR, where repo2docker clones) no live build uses.
3. containers labelled with this hub's id whose server no longer exists in the hub.
4. built images, least recently launched first, beyond the cache's disk budget.

Everything is selected by this hub's id label/environment, so other hubs on the engine (and
concurrent test runs) are never touched. A failed hub API call skips container removal for that pass.
"""

import argparse
import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import time

import docker
import requests
from traitlets import Float, Unicode, default
from traitlets.config import Configurable

from binderspawner.services.imagecache import CachedImage, LaunchLog, parse_size, plan_removal

LABEL_HUB = "binderspawner.hub"
ENV_HUB_ID = "BINDERSPAWNER_HUB_ID"
ENV_HUB_PID = "BINDERSPAWNER_HUB_PID"
ENV_BUILD_TMP = "BINDERSPAWNER_BUILD_TMP"
CACHE_SUMMARY = "image-cache.json"
SCOPES = ["list:users", "read:servers"]
log = logging.getLogger("binderspawner.services.cleanup")


class HubCleanup(Configurable):
    """Identity and housekeeping settings shared by the spawner and the cleanup service."""

    name = Unicode("binder-cleanup", help="Name of the cleanup's hub-managed service.").tag(config=True)
    hub_id = Unicode(help="""Identifies this hub's containers, images and builds (label
        binderspawner.hub); cleanup touches nothing else. Must differ between hubs sharing a Docker
        engine and stay the same across restarts. Defaults to a hash of lifecycle_dir, which is
        this hub's own.""").tag(config=True)

    @default("hub_id")
    def _default_hub_id(self):
        return default_hub_id(self.lifecycle_dir)

    lifecycle_dir = Unicode(help="""Directory for this hub's launch records (launches.sqlite), build
        scratch space and cache summary. Defaults to 'binderspawner' in the hub's working
        directory; put it next to the hub's database.""").tag(config=True)

    @default("lifecycle_dir")
    def _default_dir(self):
        return os.path.abspath("binderspawner")

    interval = Float(
    300,
    help="Seconds between two cleanup passes (one runs when the hub starts).").tag(
        config=True)
    image_cache_budget = Unicode("50G", help="""Disk the built images may use ('500M', '50G', '1T'),
        counted as the bytes only they use (shared base layers are not counted). Least recently
        launched images are removed beyond it.""").tag(config=True)
    grace = Float(600, help="""Seconds an image stays protected after it was built or launched, so a
        launch that just found or built it can start its container.""").tag(config=True)


def default_hub_id(lifecycle_dir):
    """A stable id per hub data directory (pure)."""
    return "hub-" + hashlib.sha256(os.path.realpath(lifecycle_dir).encode()).hexdigest()[:12]


def build_tmp_root(lifecycle_dir):
    return os.path.join(lifecycle_dir, "build-tmp")


def service_and_role(cleanup):
    """(service, role) for c.JupyterHub.services and c.JupyterHub.load_roles (pure)."""
    command = [sys.executable, "-m", "binderspawner.services.cleanup", "--hub-id", cleanup.hub_id,
               "--lifecycle-dir", cleanup.lifecycle_dir, "--interval", str(cleanup.interval),
               "--image-cache-budget", cleanup.image_cache_budget, "--grace", str(cleanup.grace)]
    environment = {k: os.environ[k] for k in ("DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY")
                   if k in os.environ}
    service = {"name": cleanup.name, "command": command, "environment": environment}
    role = {"name": f"{cleanup.name}-role", "scopes": list(SCOPES), "services": [cleanup.name]}
    return service, role


def configure(c):
    """Add the cleanup service to the config ``c``, using c.HubCleanup.*."""
    service, role = service_and_role(HubCleanup(config=c))
    c.JupyterHub.services.append(service)
    c.JupyterHub.load_roles.append(role)
    return service


# pure decisions ---------------------------------------------------------------------------------

def orphan_containers(containers, servers):
    """Containers whose (user, server name) is not a server the hub knows (pure).

    ``containers``: [(id, user, server_name)]; ``servers``: {(user, server_name)}.
    """
    return [cid for cid, user, name in containers if (user, name) not in servers]


def is_orphan_build(environ, hub_id, hub_pid):
    """A process started by this hub's id under another (dead) hub process (pure)."""
    return environ.get(ENV_HUB_ID) == hub_id and environ.get(ENV_HUB_PID) != str(hub_pid)


# I/O --------------------------------------------------------------------------------------------

def _read_environ(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def our_builds(hub_id):
    """{pid: environ} of processes carrying this hub's build marker."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            env = _read_environ(entry)
            if env and env.get(ENV_HUB_ID) == hub_id:
                found[int(entry)] = env
    return found


def kill_orphan_builds(hub_id, hub_pid):
    """Kill builds a dead hub process left running, and remove their scratch directories."""
    killed, scratch = set(), set()
    for pid, env in our_builds(hub_id).items():
        if is_orphan_build(env, hub_id, hub_pid):
            try:
                group = os.getpgid(pid)
                os.killpg(group, signal.SIGKILL)
                killed.add(group)
                scratch.add(env.get(ENV_BUILD_TMP))
            except ProcessLookupError:
                pass
    for group in killed:
        log.warning("Killed build process group %s orphaned by a previous hub process", group)
    for path in scratch - {None}:
        shutil.rmtree(path, ignore_errors=True)
    return killed


def remove_build_scratch(hub_id, lifecycle_dir, min_age=60):
    root = build_tmp_root(lifecycle_dir)
    if not os.path.isdir(root):
        return []
    live = {os.path.realpath(env[ENV_BUILD_TMP])
            for env in our_builds(hub_id).values() if ENV_BUILD_TMP in env}
    removed = []
    for name in os.listdir(root):
        path = os.path.realpath(os.path.join(root, name))
        try:
            if path in live or time.time() - os.stat(path).st_mtime < min_age:
                continue
        except FileNotFoundError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    if removed:
        log.info("Removed %d build scratch director(ies)", len(removed))
    return removed


def hub_servers(api_url, token):
    """{(user, server name)} of every server the hub knows, pending or running."""
    servers = set()
    url = f"{api_url.rstrip('/')}/users"
    params = {"limit": 200, "offset": 0}
    headers = {"Authorization": f"token {token}", "Accept": "application/jupyterhub-pagination+json"}
    while True:
        r = requests.get(url, params=params, headers=headers, timeout=60)
        r.raise_for_status()
        body = r.json()
        items = body["items"] if isinstance(body, dict) else body
        for user in items:
            for name in user.get("servers") or {}:
                servers.add((user["name"], name))
        following = body.get("_pagination", {}).get("next") if isinstance(body, dict) else None
        if not following:
            return servers
        params["offset"] = following["offset"]


def _container_owner(container):
    env = dict(item.split("=", 1) for item in container.attrs["Config"].get("Env") or [] if "=" in item)
    return env.get("JUPYTERHUB_USER"), env.get("JUPYTERHUB_SERVER_NAME", "")


def remove_orphan_containers(client, hub_id, api_url, token):
    containers = client.containers.list(all=True, filters={"label": f"{LABEL_HUB}={hub_id}"})
    if not containers:
        return []
    servers = hub_servers(api_url, token)  # after listing containers: a newer container's server is newer too
    owners = [(c.id, *_container_owner(c)) for c in containers]
    removed = []
    for cid in orphan_containers(owners, servers):
        try:
            client.containers.get(cid).remove(force=True)
            removed.append(cid)
        except docker.errors.NotFound:
            pass
    if removed:
        log.info("Removed %d container(s) whose server no longer exists", len(removed))
    return removed


def cached_images(client, hub_id):
    in_use = {c.attrs.get("Image") for c in client.containers.list(all=True)}
    images = []
    for entry in client.df().get("Images") or []:
        if (entry.get("Labels") or {}).get(LABEL_HUB) != hub_id:
            continue
        shared = entry.get("SharedSize", -1)
        unique = entry["Size"] - shared if shared >= 0 else entry["Size"]
        images.append(CachedImage(entry["Id"], tuple(entry.get("RepoTags") or ()), unique,
                                  float(entry["Created"]), entry["Id"] in in_use))
    return images


def collect_images(client, hub_id, lifecycle_dir, budget_bytes, grace):
    launches = LaunchLog(lifecycle_dir)
    images = cached_images(client, hub_id)
    removed = []
    for image in plan_removal(images, launches.all(), budget_bytes, time.time(), grace):
        try:
            for tag in image.tags or (image.id,):
                client.images.remove(tag, noprune=False)
            removed.append(image)
            launches.forget(image.tags)
        except docker.errors.APIError as e:  # a launch started using it: keep it
            log.info("Kept image %s: %s", image.tags or image.id, e)
    if removed:
        log.info("Removed %d image(s) beyond the cache budget: %s", len(removed),
                 ", ".join(t for i in removed for t in i.tags))
    kept = [i for i in images if i not in removed]
    summary = {"images": len(kept), "bytes": sum(i.unique_bytes for i in kept),
               "removed": [t for i in removed for t in i.tags], "at": time.time()}
    path = os.path.join(lifecycle_dir, CACHE_SUMMARY)
    with open(path + ".tmp", "w") as f:
        json.dump(summary, f)
    os.replace(path + ".tmp", path)
    return removed


def run_pass(client, args, hub_pid, api_url, token):
    kill_orphan_builds(args.hub_id, hub_pid)
    remove_build_scratch(args.hub_id, args.lifecycle_dir)
    try:
        remove_orphan_containers(client, args.hub_id, api_url, token)
    except requests.RequestException as e:
        log.warning("Hub API not reachable (%s); no container removed in this pass", e)
    collect_images(client, args.hub_id, args.lifecycle_dir, parse_size(args.image_cache_budget), args.grace)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hub-id", required=True)
    parser.add_argument("--lifecycle-dir", required=True)
    parser.add_argument("--interval", type=float, default=300)
    parser.add_argument("--image-cache-budget", default="50G")
    parser.add_argument("--grace", type=float, default=600)
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(asctime)s %(name)s] %(message)s")
    os.makedirs(args.lifecycle_dir, exist_ok=True)
    hub_pid = os.getppid()  # a hub-managed service is the hub's child
    api_url = os.environ.get("JUPYTERHUB_API_URL", "")
    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    client = docker.from_env(version="auto")
    while True:
        try:
            run_pass(client, args, hub_pid, api_url, token)
        except Exception:  # noqa: BLE001 - keep cleaning on the next pass
            log.exception("Cleanup pass failed")
        if args.once:
            return
        deadline = time.monotonic() + args.interval
        while time.monotonic() < deadline:
            if os.getppid() != hub_pid:  # our hub died: its successor starts its own service
                log.info("The hub that started this service is gone; exiting")
                return
            time.sleep(min(1.0, args.interval))


if __name__ == "__main__":
    main()
