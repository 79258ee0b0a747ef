"""DockerBinderSpawner: Binder launches on one Docker host (DockerSpawner runs the containers)."""

import copy
import inspect

from dockerspawner import DockerSpawner
from traitlets import default

from binderspawner.dockerhost import fence
from binderspawner.dockerhost import limits as isolation
from binderspawner.dockerhost import startup
from binderspawner.services.cleanup import LABEL_HUB
from binderspawner.spawner import BinderSpawnerMixin


async def _evaluated(spawner, value):
    value = spawner._eval_if_callable(value)
    if inspect.isawaitable(value):
        value = await value
    return copy.deepcopy(value or {})


class DockerBinderSpawner(BinderSpawnerMixin, DockerSpawner):
    """Binder launches on one Docker host."""

    @default("remove")
    def _default_remove(self):
        return True  # a Binder server is disposable: nothing is kept after it stops

    async def start(self):
        started = await super().start()
        await startup.wait_until_answering(self, started, self._report)  # exited: fails in seconds
        isolation.limit_cpu_when_up(self, started)  # with ResourcePolicy.startup_cpu_grace only
        return started

    async def poll(self):
        status = await super().poll()
        if status is None:
            await isolation.ensure_cpu_limit(self)
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

    async def create_object(self):
        # Add the launch's labels and limits to what the admin configured, for this container only.
        await isolation.check_writable_layer(self, self.resources)
        await fence.ensure_server_egress(self)  # fails closed: no rules, no container
        configured_create, configured_host = self.extra_create_kwargs, self.extra_host_config
        create = await _evaluated(self, configured_create)
        host = await _evaluated(self, configured_host)
        create.setdefault("labels", {}).update(self.launch.labels if self.launch else {})
        create["labels"][LABEL_HUB] = self.lifecycle.hub_id  # cleanup finds this hub's containers by it
        for key, value in isolation.docker_limits(self, create["labels"]).items():
            host.setdefault(key, value)
        fence.harden(host)  # no raw sockets (spoofed sources), no set-uid gains
        host["auto_remove"] = False  # an exited server's log is read first (startup.py); poll() removes it
        self.extra_create_kwargs, self.extra_host_config = create, host
        try:
            return await super().create_object()
        finally:
            self.extra_create_kwargs, self.extra_host_config = configured_create, configured_host
