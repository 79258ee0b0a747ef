"""Persistent homes on one Docker host: a named volume per member and repository, mounted over the
image's home through DockerSpawner's own ``volumes``, merged with a new commit by a helper container.

The helper is made from the launch's own image (which holds the new commit's pristine home; the
server's mount would hide it), runs the image's ``python3 -I`` on homes/merge.py's source, with
no network (``network_mode=none``), none of the member's environment or credentials, no
capabilities, a read-only root, and the volume mounted beside the image's home. It runs only when
the home's recorded commit differs from the launch's: a launch of the same commit mounts the volume
and does nothing else. A new volume is filled by Docker itself (a new named volume mounted over a
directory gets that directory's files and owner); the helper then records that commit as the base.
"""

import time

import docker

from binderspawner import messages, metrics
from binderspawner.errors import LaunchError
from binderspawner.homes import (HELPER_LOG_BYTES, HELPER_LOG_LINES, PersistentHome, budget_refusal, helper_summary,
                                 merge, merge_message)
from binderspawner.homes import records as homerecords
from binderspawner.homes.records import HomeRecords

MERGE_MOUNT = "/mnt/binder-home"
LABEL_MERGE = "binderspawner.home.merge"


async def _docker(spawner, method, *args, **kwargs):
    return await spawner.docker(method, *args, **kwargs)


async def _volume(spawner, name):
    try:
        return await _docker(spawner, "inspect_volume", name)
    except docker.errors.NotFound:
        return None


async def image_home(spawner, image):
    """The image's $HOME (from its environment), /home/jovyan if it sets none."""
    info = await _docker(spawner, "inspect_image", image)
    for item in (info.get("Config") or {}).get("Env") or []:
        if item.startswith("HOME="):
            return item[5:] or "/home/jovyan"
    return "/home/jovyan"


async def create_volume(spawner, settings, home):
    """Create the home's volume with its size limit, or refuse (LaunchError) naming the setting."""
    options = {settings.size_option: settings.size_limit} if settings.size_limit else None
    try:
        await _docker(spawner, "create_volume", home.name, driver=settings.volume_driver,
                      driver_opts=options, labels=home.labels)
    except docker.errors.APIError as e:
        reason = getattr(e, "explanation", None) or str(e)
        if settings.size_limit:
            spawner.log.error("PersistentHome.size_limit cannot be enforced: %s", reason)
            raise LaunchError(messages.HOME_SIZE_UNSUPPORTED.format(
                size=settings.size_limit, driver=settings.volume_driver, reason=reason), status=500) from None
        raise


async def users_of(spawner, name):
    """Names of running containers that mount the volume ``name``."""
    found = await _docker(spawner, "containers", filters={"volume": name})
    return [n.lstrip("/") for c in found for n in (c.get("Names") or [])[:1]]


async def run_merge(spawner, settings, home, image, ours, theirs, commit):
    """Run merge.py in a helper container from ``image``; its summary (dict) or None."""
    name = f"{spawner.container_name}-home-merge"
    try:
        await _docker(spawner, "remove_container", name, force=True)  # one a killed hub left
    except docker.errors.NotFound:
        pass
    host = spawner.client.create_host_config(
        binds={home.name: {"bind": ours, "mode": "rw"}}, network_mode="none", cap_drop=["ALL"],
        security_opt=["no-new-privileges"], read_only=True, mem_limit="512m", pids_limit=64,
        auto_remove=False,
        # the image's python3 is the repository's to replace: its output may not fill the host's disk
        # nor the hub's memory (only the last lines are read)
        log_config={"type": "json-file", "config": {"max-size": HELPER_LOG_BYTES, "max-file": "1"}})
    container = await _docker(
        spawner, "create_container", image, name=name, entrypoint=["python3"],
        command=["-I", "-c", merge.MERGE_SOURCE, "--ours", ours, "--theirs", theirs, "--commit", commit],
        host_config=host, network_disabled=True, environment={},
        # not LABEL_HUB: the cleanup service would take it for an orphaned server's container and
        # could remove it mid-merge; one a killed hub left is removed by the next launch (by name)
        labels={LABEL_MERGE: home.name, "binderspawner.home.hub": spawner.lifecycle.hub_id})
    try:
        await _docker(spawner, "start", container["Id"])
        try:
            await _docker(spawner, "wait", container["Id"], timeout=settings.merge_timeout)
        except Exception:  # noqa: BLE001 - a timeout (requests') or the engine: reported as failed
            return {"error": f"it took longer than {settings.merge_timeout:g} s "
                             "(c.PersistentHome.merge_timeout)"}
        output = (await _docker(spawner, "logs", container["Id"], stdout=True, stderr=True,
                                tail=HELPER_LOG_LINES)).decode("utf-8", "replace")
    finally:
        try:
            await _docker(spawner, "remove_container", container["Id"], force=True)
        except docker.errors.APIError:
            pass
    return helper_summary(output)


async def prepare(spawner, launch, report):
    """Find or make this member's home for the launch's repository, merge the launch's commit into
    it if needed; returns (Home, mount path). Raises LaunchError when it may not be used."""
    settings = PersistentHome(parent=spawner)
    lifecycle = spawner.lifecycle
    store = HomeRecords(lifecycle.lifecycle_dir)
    home, old = homerecords.choose(store, settings, lifecycle.hub_id, spawner.user.name, launch.quota_key,
                                   fresh=spawner.home_fresh)
    existing = await _volume(spawner, home.name)
    if existing is not None and (existing.get("Labels") or {}).get("binderspawner.home.key") != \
            home.labels["binderspawner.home.key"]:
        raise LaunchError(f"The volume {home.name} exists but is not this home; ask the hub admin.", status=500)
    if existing is None:
        problem = budget_refusal(settings.total_budget, homerecords.measured_bytes(lifecycle.lifecycle_dir))
        if problem:
            raise LaunchError(problem, status=507)
        await create_volume(spawner, settings, home)
    else:
        others = [n for n in await users_of(spawner, home.name) if n != spawner.container_name]
        if others:
            raise LaunchError(messages.HOME_IN_USE.format(other=others[0]), status=409)
    store.used(home)
    if old is not None:
        store.set_generation(home.user, home.repository, home.generation)
        report(messages.HOME_FRESH.format(name=home.name, old=old.name, days=settings.expire_days))
    shared = homerecords.home_ever_shared(spawner.db, home.name) if getattr(spawner, "db", None) else None
    if shared:
        report(messages.HOME_EVER_SHARED.format(when=shared if not isinstance(shared, bool) else "an earlier day"))
    path = settings.mount_path or await image_home(spawner, launch.image)
    commit = launch.resolved.version
    if existing is None:
        report(messages.HOME_NEW.format(name=home.name))
        summary = await run_merge(spawner, settings, home, launch.image, path, path, commit)
    elif store.merged_commit(home.name) != commit:
        report(f"Merging commit {commit[:12]} into your home {home.name}")
        started = time.monotonic()
        summary = await run_merge(spawner, settings, home, launch.image, MERGE_MOUNT, path, commit)
        spawner.log.info("Merged %s into %s in %.2f s", commit[:12], home.name, time.monotonic() - started)
    else:
        summary = {"unchanged": True}
        report(messages.HOME_KEPT.format(name=home.name))
    metrics.HOME_MERGES.labels(result=homerecords.merge_result(summary)).inc()
    message = merge_message(summary, commit)
    if message:
        report(message)
    if not summary.get("error"):
        store.merged(home.name, commit)
    return home, path
