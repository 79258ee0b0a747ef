"""Removing what this hub left behind, as a hub-managed service (``python -m binderspawner.services.cleanup``).

Why a service and not a callback in the hub: it starts with the hub whether or not any server runs
(spawner classes are only instantiated per server), it learns which servers exist through the hub's
REST API with two read scopes instead of reaching into the hub's database, and slow Docker calls
never block the hub's event loop. It runs one pass at start and then every ``interval`` seconds:

1. builds orphaned by a hub that died (repo2docker runs in its own session, so it outlives a
   SIGKILLed hub) are killed. Builds are known only from the records the hub writes under
   lifecycle_dir/builds (build pid and start time, hub pid and start time, scratch directory):
   nothing a process says about itself (its environment) is trusted, and a pid is trusted only
   while its start time matches, so a recycled pid is never killed. Killing is deterministic:
   the user sees the launch failed (the spawner's saved state says a build was in flight) and
   relaunching rebuilds, reusing Docker's build cache.
2. build scratch directories (each build's TMPDIR, where repo2docker clones) no live build uses:
   only real directories directly inside lifecycle_dir/build-tmp, never a symlink or a path
   named anywhere else.
3. containers labelled with this hub's id whose server no longer exists in the hub.
4. built images, least recently launched first, beyond the cache's disk budget.
5. persistent homes (c.PersistentHome) unused for ``expire_days``, oldest first, never one a
   container mounts; it measures the homes for the metrics and the budget (homes.json).

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

from binderspawner import messages
from binderspawner.services.imagecache import CachedImage, LaunchLog, parse_size, plan_removal

LABEL_HUB = "binderspawner.hub"
ENV_HUB_ID = "BINDERSPAWNER_HUB_ID"
ENV_HUB_PID = "BINDERSPAWNER_HUB_PID"
ENV_BUILD_TMP = "BINDERSPAWNER_BUILD_TMP"
ENV_BUILD_RECORD = "BINDERSPAWNER_BUILD_RECORD"  # where the builder writes the build's record
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


def build_records_dir(lifecycle_dir):
    return os.path.join(lifecycle_dir, "builds")


def process_start(pid):
    """The start time of process ``pid`` (clock ticks since boot), None if there is none: with the
    pid, it names one process (pids are reused, start times with them are not)."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as f:
            stat = f.read()
    except (OSError, ValueError):
        return None
    return int(stat[stat.rindex(b")") + 2:].split()[19])


def write_build_record(path, pid, scratch):
    """Record a build process the hub started (called by the builder once it has a pid)."""
    record = {"pid": pid, "start": process_start(pid), "hub_pid": os.getpid(),
              "hub_start": process_start(os.getpid()), "scratch": scratch}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(record, f)
    os.replace(path + ".tmp", path)


def read_build_records(lifecycle_dir):
    """{record path: record} of every well-formed build record."""
    records = {}
    folder = build_records_dir(lifecycle_dir)
    for name in os.listdir(folder) if os.path.isdir(folder) else ():
        path = os.path.join(folder, name)
        if not name.endswith(".json") or os.path.islink(path):
            continue
        try:
            with open(path) as f:
                record = json.load(f)
            int(record["pid"]), int(record["hub_pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        records[path] = record
    return records


def service_and_role(cleanup):
    """(service, role) for c.JupyterHub.services and c.JupyterHub.load_roles (pure)."""
    command = [sys.executable, "-m", "binderspawner.services.cleanup", "--hub-id", cleanup.hub_id,
               "--lifecycle-dir", cleanup.lifecycle_dir, "--interval", str(cleanup.interval),
               "--image-cache-budget", cleanup.image_cache_budget, "--grace", str(cleanup.grace)]
    from binderspawner.homes import PersistentHome

    homes = PersistentHome(config=cleanup.config)
    if homes.enabled:
        command += ["--homes-expire-days", str(homes.expire_days)]
    environment = {k: os.environ[k] for k in ("DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY")
                   if k in os.environ}
    service = {"name": cleanup.name, "command": command, "environment": environment}
    role = {"name": f"{cleanup.name}-role", "scopes": list(SCOPES), "services": [cleanup.name]}
    return service, role


def configure(c):
    """Add the cleanup service to the config ``c``, using c.HubCleanup.*."""
    service, role = service_and_role(HubCleanup(config=c))
    # called again after later settings (c.PersistentHome.*): the service is replaced, not doubled
    services, roles = _listed(c.JupyterHub.services), _listed(c.JupyterHub.load_roles)
    c.JupyterHub.services = [s for s in services if s.get("name") != service["name"]] + [service]
    c.JupyterHub.load_roles = [r for r in roles if r.get("name") != role["name"]] + [role]
    return service


def homes_not_cleaned(config):
    """Why the cleanup service in ``config`` (a hub's whole config) will not expire and measure
    persistent homes as c.PersistentHome says, or None. configure(c) reads c.PersistentHome when it
    is called, so settings made after it (or no call at all) are silently not applied. Pure."""
    from binderspawner.homes import PersistentHome

    homes = PersistentHome(config=config)
    if not homes.enabled:
        return None
    name = HubCleanup(config=config).name
    hub = config.get("JupyterHub", {})
    service = next((s for s in _listed(hub.get("services", [])) if isinstance(s, dict) and s.get("name") == name),
                   None)
    command = list((service or {}).get("command") or [])
    if service is None:
        problem = f"({name!r}) is not configured"
    elif "--homes-expire-days" not in command:
        problem = "was configured before c.PersistentHome.enabled was set"
    elif command[command.index("--homes-expire-days") + 1:][:1] != [str(homes.expire_days)]:
        problem = "was configured before c.PersistentHome.expire_days was set"
    else:
        return None
    return messages.HOMES_NOT_CLEANED.format(problem=problem, days=homes.expire_days)


def _listed(value):
    """A list setting as a list, also while it is traitlets' lazy value (after .append in a config)."""
    return list(value.get_value([]) if hasattr(value, "get_value") else value or [])


# pure decisions ---------------------------------------------------------------------------------

def orphan_containers(containers, servers):
    """Containers whose (user, server name) is not a server the hub knows (pure).

    ``containers``: [(id, user, server_name)]; ``servers``: {(user, server_name)}.
    """
    return [cid for cid, user, name in containers if (user, name) not in servers]


def is_alive(pid, start, start_of=process_start):
    """Is the process the record names (pid and start time) still running? (pure given start_of)"""
    return start is not None and start_of(pid) == start


def build_state(record, hub_pid, start_of=process_start):
    """'running' (its hub lives), 'orphaned' (its hub is gone, the build runs on) or 'ended' (pure
    given start_of)."""
    if not is_alive(record["pid"], record.get("start"), start_of):
        return "ended"
    if record["hub_pid"] == hub_pid and is_alive(record["hub_pid"], record.get("hub_start"), start_of):
        return "running"
    return "orphaned"


def scratch_child(root, path):
    """``path`` if it is a real directory directly inside ``root`` (no symlink anywhere), else None."""
    if not isinstance(path, str) or not path:
        return None
    root = os.path.realpath(root)
    if os.path.dirname(os.path.abspath(path)) != root or os.path.realpath(path) != os.path.abspath(path):
        return None
    return path if os.path.isdir(path) and not os.path.islink(path) else None


def our_builds(lifecycle_dir):
    """{pid: record} of the recorded builds whose process still runs."""
    return {int(r["pid"]): r for r in read_build_records(lifecycle_dir).values()
            if is_alive(int(r["pid"]), r.get("start"))}


def kill_orphan_builds(lifecycle_dir, hub_pid):
    """Kill builds a dead hub process left running (by their records), remove their scratch
    directories and records."""
    killed = set()
    root = build_tmp_root(lifecycle_dir)
    for path, record in read_build_records(lifecycle_dir).items():
        state = build_state(record, hub_pid)
        if state == "running":
            continue
        pid = int(record["pid"])
        if state == "orphaned":
            try:
                if os.getpgid(pid) == pid:  # the builder starts each build in its own session
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
                killed.add(pid)
                log.warning("Killed build %s orphaned by a previous hub process", pid)
            except ProcessLookupError:
                pass
        scratch = scratch_child(root, record.get("scratch"))
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
    return killed


def remove_build_scratch(lifecycle_dir, hub_pid, min_age=60):
    root = build_tmp_root(lifecycle_dir)
    if not os.path.isdir(root):
        return []
    live = {os.path.abspath(r.get("scratch") or "") for r in read_build_records(lifecycle_dir).values()
            if build_state(r, hub_pid) != "ended"}
    removed = []
    for name in os.listdir(root):
        path = scratch_child(root, os.path.join(root, name))
        try:
            if path is None or path in live or time.time() - os.lstat(path).st_mtime < min_age:
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


def _created(volume):
    """A volume's CreatedAt (RFC 3339) as seconds since the epoch; now when unreadable."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(volume.get("CreatedAt")).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


def expire_homes(client, hub_id, lifecycle_dir, expire_days, now=None):
    """Remove this hub's home volumes unused for ``expire_days`` (none mounted by any container),
    oldest first; measure the rest (homes.json, for the metrics and the budget). The removed names."""
    from binderspawner.homes import LABEL, StoredHome, plan_expiry
    from binderspawner.homes.records import HomeRecords, write_summary

    filters = {"label": [f"{LABEL_HUB}={hub_id}", f"{LABEL}=1"]}
    volumes = client.api.volumes(filters=filters).get("Volumes") or []
    store = HomeRecords(lifecycle_dir)
    used = store.last_used()
    sizes = {v["Name"]: (v.get("UsageData") or {}).get("Size", -1)
             for v in client.df().get("Volumes") or [] if v.get("Name")}
    homes = []
    for volume in volumes:
        name = volume["Name"]
        in_use = bool(client.api.containers(all=True, filters={"volume": name}))
        homes.append(StoredHome(name, used.get(name) or _created(volume), in_use, sizes.get(name, -1)))
    removed = []
    for home in plan_expiry(homes, now or time.time(), expire_days):
        try:
            client.api.remove_volume(home.name)
        except docker.errors.APIError as e:  # mounted meanwhile: kept
            log.info("Kept home %s: %s", home.name, e)
            continue
        removed.append(home.name)
        log.info("Removed home %s, unused since %s", home.name, time.ctime(home.last_used))
    store.forget(removed)
    kept = [h for h in homes if h.name not in removed]
    measurable = all(h.size >= 0 for h in kept)
    write_summary(lifecycle_dir, len(kept), sum(h.size for h in kept) if measurable else -1, len(removed))
    return removed


def run_pass(client, args, hub_pid, api_url, token):
    kill_orphan_builds(args.lifecycle_dir, hub_pid)
    remove_build_scratch(args.lifecycle_dir, hub_pid)
    try:
        remove_orphan_containers(client, args.hub_id, api_url, token)
    except requests.RequestException as e:
        log.warning("Hub API not reachable (%s); no container removed in this pass", e)
    collect_images(client, args.hub_id, args.lifecycle_dir, parse_size(args.image_cache_budget), args.grace)
    if args.homes_expire_days is not None:
        expire_homes(client, args.hub_id, args.lifecycle_dir, args.homes_expire_days)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hub-id", required=True)
    parser.add_argument("--lifecycle-dir", required=True)
    parser.add_argument("--interval", type=float, default=300)
    parser.add_argument("--image-cache-budget", default="50G")
    parser.add_argument("--grace", type=float, default=600)
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--homes-expire-days", type=float, default=None,
                        help="persistent homes are on: expire those unused this long (0: never)")
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
