"""Where the spawners meet the isolation policies: a launch's limits and quota, and on Docker its
egress rules and storage-driver check. The decisions are in policy.py, quotas.py and egress.py;
this module gathers their inputs from the spawner and does the I/O."""

import asyncio
import socket
from urllib.parse import urlparse

import docker

from binderspawner.dockerhost import fence
from binderspawner.errors import LaunchError
from binderspawner.policy.resources import ResourcePolicy, Resources, docker_host_config, writable_layer_support
from binderspawner.policy.quotas import Quotas


def base_resources(spawner):
    """The spawner's configured defaults as Resources (Spawner.cpu_limit, mem_limit, guarantees,
    BinderSpawnerMixin.pids_limit)."""
    return Resources(cpu_limit=spawner.cpu_limit or None, mem_limit=spawner.mem_limit or None,
                     pids_limit=spawner.pids_limit or None,
                     cpu_guarantee=getattr(spawner, "cpu_guarantee", None) or None,
                     mem_guarantee=getattr(spawner, "mem_guarantee", None) or None)


def quota_key(source):
    """What quotas count: the repository's one identity, whatever ref or spelling a launch uses."""
    return source.repository


def apply_launch_policy(spawner, source, spec_settings):
    """Pick this launch's Resources and check the quotas (LaunchError if refused).

    ``spec_settings`` come from c.SpecControl.spec_config (speccontrol.py). Runs before the build,
    with no await between counting and marking this spawner as a launch of the repository, so
    concurrent launches in this hub all see each other.
    """
    repo = quota_key(source)
    groups = [g.name for g in getattr(spawner.user, "groups", None) or []]
    size = (spawner.user_options or {}).get("size")
    resources = ResourcePolicy(parent=spawner).for_launch(
        base_resources(spawner), spec_settings, groups, size)
    Quotas(parent=spawner).check(spawner, repo, spec_settings or {}, source.display_name or repo)
    spawner._binder_repo = repo
    spawner._launch_resources = resources
    if size:
        spawner._report(f"Size {size!r}: {resources.cpu_limit:g} CPU, "
                        f"{(resources.mem_limit or 0) / 1024**3:g} GiB memory")
    return resources


_storage = {}  # docker info, once per hub process


async def check_writable_layer(spawner, resources):
    """Refuse (LaunchError) a disk_limit this Docker host cannot enforce, rather than ignore it."""
    if not resources.disk_limit:
        return
    if "info" not in _storage:
        _storage["info"] = await spawner.docker("info")
    info = _storage["info"]
    supported, why = writable_layer_support(info.get("Driver"), info.get("DriverStatus"))
    if supported is False:
        spawner.log.error("ResourcePolicy.disk_limit cannot be enforced: %s", why)
        raise LaunchError(
            f"This hub is set to limit each server's disk (ResourcePolicy.disk_limit) but the Docker "
            f"host cannot: {why}. No server is started without its limits; the hub admin must fix "
            "the storage or unset the limit.", status=500)


async def ensure_egress(spawner):
    """Install the egress rules for the spawner's network (fence.py); LaunchError (fail closed)."""
    await fence.ensure_server_egress(spawner)


async def _in_thread(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def resources_for(spawner):
    """The launch's Resources, or the configured defaults before a launch picked them."""
    launch = getattr(spawner, "_launch_resources", None)
    return launch or base_resources(spawner)


# --- the CPU limit, applied once the server is up (ResourcePolicy.startup_cpu_grace) -----------------
CPU_LABEL = "binderspawner.cpu_limit"  # the limit still to apply to a container started without it


def docker_limits(spawner, labels):
    """HostConfig fields for the launch's limits; with a startup grace, the container starts
    without its CPU quota and ``labels`` records the limit to apply (poll() finds it after a hub
    restart)."""
    resources = spawner.resources
    config = docker_host_config(resources)
    if resources.cpu_limit and ResourcePolicy(parent=spawner).startup_cpu_grace > 0:
        config["cpu_quota"] = 0  # overrides DockerSpawner's; docker-py leaves CpuQuota unset
        labels[CPU_LABEL] = repr(float(resources.cpu_limit))
    return config


def limit_cpu_when_up(spawner, started):
    """After start(): apply the CPU limit once the server listens, or when the grace is up."""
    grace = ResourcePolicy(parent=spawner).startup_cpu_grace
    cpu = spawner.resources.cpu_limit
    if not (grace > 0 and cpu):
        return
    if isinstance(started, str):
        url = urlparse(started)
        address = (url.hostname, url.port or 80)
    else:
        address = tuple(started)
    spawner._cpu_limit_task = asyncio.ensure_future(_limit_cpu_later(spawner, address, grace, cpu))


async def _limit_cpu_later(spawner, address, grace, cpu):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while loop.time() < deadline:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(*address), timeout=1)
            writer.close()
            break
        except (OSError, asyncio.TimeoutError, socket.gaierror):
            await asyncio.sleep(0.2)
    await apply_cpu_limit(spawner, cpu)


async def apply_cpu_limit(spawner, cpu):
    try:
        await spawner.docker("update_container", spawner.container_id, cpu_period=100_000,
                             cpu_quota=int(cpu * 100_000))
        spawner.log.info("CPU limit %g applied to %s", cpu, spawner.container_name)
    except docker.errors.APIError as e:  # e.g. the container stopped meanwhile
        spawner.log.warning("Could not apply the CPU limit to %s: %s", spawner.container_name, e)


async def ensure_cpu_limit(spawner):
    """From poll(): a container still without the CPU limit its label asks for (a hub restarted
    during the grace) gets it now, unless this process is about to apply it."""
    task = getattr(spawner, "_cpu_limit_task", None)
    if task is not None and not task.done():
        return
    obj = await spawner.get_object()
    wanted = ((obj or {}).get("Config") or {}).get("Labels", {}).get(CPU_LABEL)
    if wanted and obj["HostConfig"].get("CpuQuota") != int(float(wanted) * 100_000):
        await apply_cpu_limit(spawner, float(wanted))
