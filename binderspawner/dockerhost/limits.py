"""A launch's isolation on the Docker host: its Resources (decided by policy/resources.py and
carried by the Launch) rendered as HostConfig, the CPU limit applied after a startup grace, the
storage-driver check for a disk limit. The egress rules are fence.py's."""

import asyncio
import socket
from urllib.parse import urlparse

import docker

from binderspawner.errors import LaunchError
from binderspawner.policy.resources import ResourcePolicy, docker_host_config, writable_layer_support


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


async def _in_thread(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


# --- the CPU limit, applied once the server is up (ResourcePolicy.startup_cpu_grace) -----------------
CPU_LABEL = "binderspawner.cpu_limit"  # the limit still to apply to a container started without it


def docker_limits(resources, startup_cpu_grace, labels):
    """HostConfig fields for a launch's ``resources``; with a startup grace, the container starts
    without its CPU quota and ``labels`` records the limit to apply (poll() finds it after a hub
    restart)."""
    config = docker_host_config(resources)
    if resources.cpu_limit and startup_cpu_grace > 0:
        config["cpu_quota"] = 0  # overrides DockerSpawner's; docker-py leaves CpuQuota unset
        labels[CPU_LABEL] = repr(float(resources.cpu_limit))
    return config


def limit_cpu_when_up(spawner, started, cpu):
    """After start(): apply the CPU limit ``cpu`` once the server listens, or when the grace
    (ResourcePolicy.startup_cpu_grace) is up. Returns the task doing it, or None."""
    grace = ResourcePolicy(parent=spawner).startup_cpu_grace
    if not (grace > 0 and cpu):
        return None
    if isinstance(started, str):
        url = urlparse(started)
        address = (url.hostname, url.port or 80)
    else:
        address = tuple(started)
    return asyncio.ensure_future(_limit_cpu_later(spawner, address, grace, cpu))


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


async def ensure_cpu_limit(spawner, pending=None):
    """From poll(): a container still without the CPU limit its label asks for (a hub restarted
    during the grace) gets it now, unless ``pending`` (this process's task applying it) runs."""
    if pending is not None and not pending.done():
        return
    obj = await spawner.get_object()
    wanted = ((obj or {}).get("Config") or {}).get("Labels", {}).get(CPU_LABEL)
    if wanted and obj["HostConfig"].get("CpuQuota") != int(float(wanted) * 100_000):
        await apply_cpu_limit(spawner, float(wanted))
