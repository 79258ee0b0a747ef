"""Idle culling on two levels.

On the hub: jupyterhub-idle-culler as a hub-managed service stops servers idle for ``timeout`` or
older than ``max_age``; :func:`configure` adds it to a config with the least scopes it needs.
In each server: kernel culling and shutdown-on-no-activity (jupyter_server settings the spawner
passes as arguments, :func:`server_args`), so a server still ends itself while the hub is down.
"""

import sys
from datetime import datetime, timezone

from traitlets import Bool, Int, Unicode, default
from traitlets.config import Configurable, LazyConfigValue

# jupyterhub-idle-culler's README: list users, read their activity and servers, stop servers.
# delete:servers also covers removing named servers; admin:users is needed only for --cull-users,
# which Binder does not use.
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


class IdleCuller(Configurable):
    """Settings of the hub's idle culler, read when configure(c) is called: set them before it."""

    name = Unicode("binder-idle-culler", help="Name of the culler's hub-managed service.").tag(config=True)
    timeout = Int(600, help="""Seconds a server may be idle before it is stopped. JupyterHub learns
        of activity every JupyterHub.last_activity_interval (300 s by default), so keep this
        well above that.""").tag(config=True)
    interval = Int(60, help="Seconds between two checks for idle or too old servers.").tag(config=True)
    max_age = Int(6 * 3600, help="""Seconds after which a server is stopped even if it is active
        (mybinder.org: 6 h). 0 for no limit.""").tag(config=True)
    remove_named_servers = Bool(help="""Remove culled named servers instead of leaving them
        stopped: a Binder launch is disposable. Defaults to JupyterHub.allow_named_servers.""").tag(config=True)

    @default("remove_named_servers")
    def _default_remove(self):
        allowed = self.config.JupyterHub.get("allow_named_servers", False)
        return bool(allowed) and not isinstance(allowed, LazyConfigValue)


def culler_command(timeout, interval, max_age, remove_named_servers, python=sys.executable):
    """The culler's argv (pure)."""
    argv = [python, "-m", "jupyterhub_idle_culler", f"--timeout={int(timeout)}",
            f"--cull-every={int(interval)}", f"--max-age={int(max_age)}"]
    if remove_named_servers:
        argv.append("--remove-named-servers=true")
    return argv


def culler_service_and_role(culler):
    """(service, role) for c.JupyterHub.services and c.JupyterHub.load_roles (pure)."""
    service = {"name": culler.name,
               "command": culler_command(culler.timeout, culler.interval, culler.max_age,
                                         culler.remove_named_servers)}
    role = {"name": f"{culler.name}-role", "scopes": list(CULLER_SCOPES), "services": [culler.name]}
    return service, role


def configure(c):
    """Add the idle culler to the config ``c`` (from jupyterhub_config.py), using c.IdleCuller.*,
    and its stop times to the hub's pages (``binder_stop_times``, read by templates/home.html).
    Called again after later c.IdleCuller settings, it replaces the culler (never a second one)."""
    culler = IdleCuller(config=c)
    service, role = culler_service_and_role(culler)
    services, roles = _listed(c.JupyterHub.services), _listed(c.JupyterHub.load_roles)
    c.JupyterHub.services = [s for s in services if s.get("name") != service["name"]] + [service]
    c.JupyterHub.load_roles = [r for r in roles if r.get("name") != role["name"]] + [role]
    c.JupyterHub.template_vars.update({"binder_stop_times": StopTimes(culler.timeout, culler.max_age)})
    return service


def _listed(value):
    return list(value.get_value([]) if isinstance(value, LazyConfigValue) else value or [])


class RunningCuller:
    """The settings the configured culler service runs with (read from its command), which may not
    be c.IdleCuller's if those were set after configure(c)."""

    def __init__(self, name, timeout, max_age):
        self.name, self.timeout, self.max_age = name, timeout, max_age


def running_culler(config):
    """RunningCuller of the culler service in the hub's ``config``, or None when none is configured.
    The stop times users are shown and the cull metrics use this: what really stops servers."""
    name = IdleCuller(config=config).name
    services = config.JupyterHub.get("services") if "JupyterHub" in config else None
    service = next((s for s in _listed(services) if isinstance(s, dict) and s.get("name") == name), None)
    if service is None:
        return None
    flags = dict(a.split("=", 1) for a in service.get("command") or [] if a.startswith("--") and "=" in a)
    return RunningCuller(name, int(flags.get("--timeout", 0)), int(flags.get("--max-age", 0)))


def settings_not_applied(config):
    """A message when c.IdleCuller's timeout or max_age differ from what the configured culler runs
    with (set after culling.configure(c)), else None (pure)."""
    running, wanted = running_culler(config), IdleCuller(config=config)
    if running is None or (running.timeout, running.max_age) == (wanted.timeout, wanted.max_age):
        return None
    from binderspawner import messages

    return messages.CULLER_SETTINGS_NOT_APPLIED.format(
        timeout=wanted.timeout, max_age=wanted.max_age, running_timeout=running.timeout,
        running_max_age=running.max_age)


def culler_configured(config, name):
    """Whether the hub's config runs a service called ``name`` (the culler configure() adds)."""
    services = config.JupyterHub.get("services") if "JupyterHub" in config else None
    if isinstance(services, LazyConfigValue):
        services = services.get_value([])
    return any(isinstance(s, dict) and s.get("name") == name for s in services or ())


def stop_rules(culler_timeout, culler_max_age, culler_running, shutdown_no_activity_timeout):
    """(idle timeout, max age) in seconds that stop a server, 0 for none (pure): the hub's culler
    when it runs, and the server's own exit after shutdown_no_activity_timeout, whichever is first."""
    idle = [t for t in ((culler_timeout if culler_running else 0), shutdown_no_activity_timeout) if t and t > 0]
    return (min(idle) if idle else 0), (max(culler_max_age, 0) if culler_running else 0)


class StopTimes:
    """``c.JupyterHub.template_vars["binder_stop_times"]``: JupyterHub calls it with the user and the
    template calls the result with a server, getting when that server is stopped (or None)."""

    def __init__(self, timeout, max_age):
        self.timeout, self.max_age = timeout, max_age

    def __call__(self, user):
        return self.of_server

    def of_server(self, spawner, now=None):
        if not getattr(spawner, "ready", False):
            return None
        shutdown = getattr(spawner, "shutdown_no_activity_timeout", 0)
        idle, max_age = stop_rules(self.timeout, self.max_age, True, shutdown)
        started = getattr(getattr(spawner, "orm_spawner", None), "started", None)
        return stop_display(now or utcnow(), started, idle, max_age)


def stop_display(now, started, idle_timeout, max_age):
    """What the home page shows for a server (pure): the schedule with its words and ISO times."""
    from binderspawner.session import notice

    plan = notice.schedule(now, started, idle_timeout, max_age)
    if not (plan["idle_at"] or plan["ends_at"]):
        return None
    return {
        "idle": notice.duration(plan["idle_timeout"]) if plan["idle_at"] else "",
        "idle_at": plan["idle_at"].isoformat() if plan["idle_at"] else "",
        "idle_at_text": notice.clock_with_day(plan["idle_at"], now) if plan["idle_at"] else "",
        "ends_at": plan["ends_at"].isoformat() if plan["ends_at"] else "",
        "ends_at_text": notice.clock_with_day(plan["ends_at"], now) if plan["ends_at"] else "",
        "max_age": notice.duration(plan["max_age"]) if plan["ends_at"] else "",
    }


def server_args(kernel_timeout, kernel_interval, shutdown_timeout):
    """jupyter_server arguments for culling inside a server (pure); 0 turns a part off."""
    args = []
    if kernel_timeout:
        args += [f"--MappingKernelManager.cull_idle_timeout={int(kernel_timeout)}",
                 f"--MappingKernelManager.cull_interval={int(kernel_interval)}"]
    if shutdown_timeout:
        args.append(f"--ServerApp.shutdown_no_activity_timeout={int(shutdown_timeout)}")
    return args


def stop_reason(now, last_activity, started, timeout, max_age):
    """Why a server is being stopped, inferred from its timestamps (pure).

    The culler stops a server right after it finds it idle for ``timeout`` or older than
    ``max_age``, so a stop past either is counted as a cull; anything else is 'other'.
    """
    def seconds_since(when):
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return (now - when).total_seconds()

    idle = seconds_since(last_activity)
    age = seconds_since(started)
    if timeout and idle is not None and idle >= timeout:
        return "idle"
    if max_age and age is not None and age >= max_age:
        return "max_age"
    return "other"


def utcnow():
    return datetime.now(timezone.utc)


def stop_reason_for(culler, orm_spawner):
    """stop_reason for a server being stopped now, from its database record and the culler's
    settings (IdleCuller.timeout, max_age)."""
    return stop_reason(utcnow(), orm_spawner.last_activity, orm_spawner.started, culler.timeout,
                       culler.max_age)
