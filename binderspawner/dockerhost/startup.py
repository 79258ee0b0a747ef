"""A server that cannot start fails in seconds, saying why.

JupyterHub waits up to ``http_timeout`` for a started server to answer and never looks at the
container meanwhile, so a broken ``start`` script or an image without ``jupyterhub-singleuser``
means minutes of waiting and a generic 500. Here the spawner waits for the server itself while
watching the container: when it exits first, the launch fails at once with the exit code and the
last lines of its output (read before the container is removed), as a 422 since what failed is
what the repository asked for.
"""

import asyncio
from urllib.parse import urlsplit

import docker
from jupyterhub.utils import AnyTimeoutError, wait_for_http_server

from binderspawner import messages
from binderspawner.errors import LaunchError

LOG_LINES = 20  # lines of the server's output shown with the failure
POLL_INTERVAL = 0.5  # seconds between two looks at the container while waiting
PROBE_INTERVAL = 0.1  # seconds between two HTTP probes of the server while waiting


def server_api_url(spawner, started):
    """The URL JupyterHub itself checks for the server, from what DockerSpawner.start returned."""
    if isinstance(started, str):
        parts = urlsplit(started)
        host, port, proto = parts.hostname, parts.port, parts.scheme or "http"
    else:
        (host, port), proto = tuple(started), "http"
    host = f"[{host}]" if ":" in host else host
    return f"{proto}://{host}:{port}{spawner.server.base_url}api"


def _repository(spawner):
    launch = spawner.launch
    return launch.resolved.source.display_name if launch else spawner.image


async def _exited(spawner):
    """Whether the container has stopped (DockerSpawner's state only: the spawner's own poll()
    would apply the CPU limit during the start-up grace)."""
    container = await spawner.get_object()
    return container is None or not container["State"]["Running"]


async def exit_details(spawner):
    """(exit code, last lines of output) of the spawner's stopped container."""
    try:
        state = (await spawner.docker("inspect_container", spawner.container_id))["State"]
    except docker.errors.NotFound:
        return None, ["(the container was removed before its output could be read)"]
    try:
        raw = await spawner.docker("logs", spawner.container_id, stdout=True, stderr=True,
                                   tail=LOG_LINES)
        lines = raw.decode("utf-8", "replace").splitlines()
    except docker.errors.APIError:
        lines = []
    code = state.get("ExitCode")
    if state.get("Error"):
        lines.append(state["Error"])
    return code, lines


async def fail_exited(spawner):
    """Read why the container stopped, remove it, and raise the LaunchError for the user."""
    code, lines = await exit_details(spawner) if spawner.container_id else (None, [])
    spawner.log.warning("Server container %s exited with %s before it answered:\n%s",
                        spawner.container_name, code, "\n".join(lines))
    await spawner.remove_object()
    raise LaunchError(messages.server_exited(_repository(spawner), code, lines), status=422)


async def answered(url, timeout):
    """Return once ``url`` answers HTTP (JupyterHub's rule: any answer but a 5xx); raise
    AnyTimeoutError after ``timeout`` seconds. One of JupyterHub's probes every PROBE_INTERVAL:
    its own wait_for_http_server backs off to random waits of up to 5 s between probes, which
    made a launch wait about a second (0.3-3.3 s measured) after its server was already up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await wait_for_http_server(url, timeout=0)  # a single probe
        except AnyTimeoutError:
            if loop.time() >= deadline:
                raise
        await asyncio.sleep(PROBE_INTERVAL)


async def wait_until_answering(spawner, started, report):
    """Return once the server answers HTTP; raise LaunchError when its container exits first (or
    it does not answer within http_timeout). ``report`` shows progress to the user."""
    if spawner.internal_ssl:  # the hub's own wait handles TLS to the server
        return
    report("Server started; waiting for it to answer", 95)
    url = server_api_url(spawner, started)
    answer = asyncio.ensure_future(answered(url, spawner.http_timeout))
    try:
        while True:
            done, _ = await asyncio.wait([answer], timeout=POLL_INTERVAL)
            if done:
                break
            if await _exited(spawner):
                await fail_exited(spawner)
    finally:
        answer.cancel()
    try:
        answer.result()
    except AnyTimeoutError:
        if await _exited(spawner):
            await fail_exited(spawner)
        raise LaunchError(messages.server_silent(_repository(spawner), spawner.http_timeout),
                          status=422) from None


async def start_container(spawner, start):
    """Run ``start`` (DockerSpawner's ``docker start``); when Docker refuses (e.g. the image has
    no such command), remove the container and raise a LaunchError saying so."""
    try:
        await start()
    except docker.errors.APIError as e:
        if e.status_code is not None and e.status_code >= 500 and "OCI runtime" not in str(e):
            raise  # the engine's own failure, not the image's
        reason = str(e.explanation or e)
        spawner.log.warning("Docker could not start %s: %s", spawner.container_name, reason)
        await spawner.remove_object()
        raise LaunchError(messages.server_not_started(_repository(spawner), reason), status=422) from None
