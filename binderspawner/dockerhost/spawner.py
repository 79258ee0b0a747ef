"""DockerBinderSpawner: Binder launches on one Docker host (DockerSpawner runs the containers)."""

import copy
import inspect

from dockerspawner import DockerSpawner
from traitlets import default

from binderspawner.dockerhost import fence, homes, limits, startup
from binderspawner.homes import PersistentHome
from binderspawner.policy.resources import ResourcePolicy
from binderspawner.services.cleanup import LABEL_HUB, homes_not_cleaned
from binderspawner.spawner import BinderSpawner


class DockerBinderSpawner(BinderSpawner, DockerSpawner):
    """Binder launches on one Docker host."""

    cpu_limit_task = None  # applying the CPU limit after ResourcePolicy.startup_cpu_grace
    home_mount = None  # (volume, path) of this launch's persistent home (c.PersistentHome)

    @default("remove")
    def _default_remove(self):
        return True  # a Binder server is disposable: nothing is kept after it stops

    async def start(self):
        started = await super().start()
        # a server that exits before it answers fails in seconds, with its exit code and output
        await startup.wait_until_answering(self, started, self.progress_log.report)
        # with ResourcePolicy.startup_cpu_grace only
        self.cpu_limit_task = limits.limit_cpu_when_up(self, started, self.resources.cpu_limit)
        return started

    async def prepare_server(self, launch):
        self.home_mount = None
        if PersistentHome(parent=self).enabled:
            warn_homes_not_cleaned(self)
            home, path = await homes.prepare(self, launch, self.progress_log.report)
            self.home_mount = (home.name, path)
            self.launch_state = {**self.launch_state, "home": home.name}
            if launch.request.fresh_home:
                self.forget_fresh_home_option()

    async def poll(self):
        status = await super().poll()
        if status is None:
            await limits.ensure_cpu_limit(self, self.cpu_limit_task)
            if not await fence.reverify_server_egress(self):
                self.log.error("Stopping %s: its egress rules are gone and cannot be restored",
                               self.container_name)
                await self.stop(now=True)
                return 1
        elif self.remove and self.container_id:
            await self.remove_object()  # Docker's auto_remove is off (see create_object)
        return status

    async def start_object(self):
        # Every start path passes here, a new container or a stopped one started again.
        await fence.ensure_server_egress(self)  # fails closed: no rules, no server
        return await startup.start_container(self, super().start_object)  # refused: says why

    async def _evaluated(self, value):
        """A copy of an extra_* setting, evaluated as DockerSpawner does (it may be callable)."""
        value = self._eval_if_callable(value)
        if inspect.isawaitable(value):
            value = await value
        return copy.deepcopy(value or {})

    async def create_object(self):
        # Add the launch's labels and limits to what the admin configured, for this container only.
        resources = self.resources
        await limits.check_writable_layer(self, resources)
        await fence.ensure_server_egress(self)  # fails closed: no rules, no container
        configured_create, configured_host = self.extra_create_kwargs, self.extra_host_config
        configured_volumes = self.volumes
        if self.home_mount:  # through DockerSpawner's own volumes, for this container only
            volume, path = self.home_mount
            self.volumes = {**configured_volumes, volume: {"bind": path, "mode": "rw"}}
        create = await self._evaluated(configured_create)
        host = await self._evaluated(configured_host)
        create.setdefault("labels", {}).update(self.launch.labels if self.launch else {})
        create["labels"][LABEL_HUB] = self.lifecycle.hub_id  # cleanup finds this hub's containers by it
        grace = ResourcePolicy(parent=self).startup_cpu_grace
        for key, value in limits.docker_limits(resources, grace, create["labels"]).items():
            host.setdefault(key, value)
        fence.harden(host)  # no raw sockets (spoofed sources), no set-uid gains
        host["auto_remove"] = False  # an exited server's log is read first (startup.py); poll() removes it
        self.extra_create_kwargs, self.extra_host_config = create, host
        try:
            return await super().create_object()
        finally:
            self.extra_create_kwargs, self.extra_host_config = configured_create, configured_host
            self.volumes = configured_volumes


_homes_checked = set()  # configs checked by this hub process (one warning per hub, not per launch)


def warn_homes_not_cleaned(spawner):
    """Log (once per hub process) when c.PersistentHome is on but the cleanup service will not
    expire or measure the homes (cleanup.configure(c) called before the c.PersistentHome settings)."""
    if id(spawner.config) in _homes_checked:
        return
    _homes_checked.add(id(spawner.config))
    problem = homes_not_cleaned(spawner.config)
    if problem:
        spawner.log.warning(problem)
