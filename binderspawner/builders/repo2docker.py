"""Builds with repo2docker on the local Docker engine, as a subprocess whose log is streamed live."""

import asyncio
import collections
import json
import os
import signal
import sys

import docker
from traitlets import Bool, TraitError, default, validate

from binderspawner.errors import BuildFailed
from binderspawner.providers.git import GitProvider, git_environment
from binderspawner.builders.registry import RegistryClient, parse_image
from binderspawner.builders.base import (  # noqa: F401 - log helpers: their old home
    LOG_TAIL, Repo2DockerBase, parse_log_line, relay_log_line, step_fraction)

CONFIG_FILE = os.path.join(os.path.dirname(__file__), "repo2docker_config.py")


class Repo2DockerBuilder(Repo2DockerBase):
    """repo2docker as a subprocess on the hub, building on the local Docker engine (or DOCKER_HOST),
    optionally pushing to a registry. The settings every repo2docker builder has are
    Repo2DockerBase's; these are the local engine's."""

    @validate("extra_ca_bundle")
    def _bundle_exists(self, proposal):
        if proposal.value and not os.path.isfile(proposal.value):
            raise TraitError(f"Repo2DockerBuilder.extra_ca_bundle: no file at {proposal.value!r}.")
        return os.path.abspath(proposal.value) if proposal.value else ""

    @default("repo2docker_command")
    def _default_command(self):
        return [sys.executable, "-m", "repo2docker"]

    push = Bool(
        False,
        help="""Push every built image to its registry: image_prefix must then name one
        ('registry.example.org:5000/binder/'). Several hubs (Docker hosts) sharing that registry,
        with check_registry on, then build each commit once between them. Credentials come from
        c.RegistryClient (username/password or a Docker config.json).""",
    ).tag(config=True)

    check_registry = Bool(
        False,
        help="""When an image is not on this Docker engine, ask its registry (HTTP API v2) before
        building; if the registry has it, nothing is built and the spawner pulls it. Use with push
        and an image_prefix naming the registry.""",
    ).tag(config=True)

    _client = None

    @classmethod
    def docker_client(cls):
        if cls._client is None:
            cls._client = docker.from_env(version="auto")
        return cls._client

    async def image_exists(self, image):
        def inspect():
            try:
                self.docker_client().images.get(image)
                return True
            except docker.errors.ImageNotFound:
                return False

        if await asyncio.get_running_loop().run_in_executor(None, inspect):
            return True
        if self.check_registry:
            return await RegistryClient(parent=self).manifest_exists(image)
        return False

    def command(self, request):
        """The argv for one build (pure): no shell, every user-derived value already validated."""
        return [*self.repo2docker_command, "--config", CONFIG_FILE, *self.repo2docker_args(request)]

    async def push_image(self, image, emit):
        """docker push, with the RegistryClient's credentials sent in the API's auth header."""
        name = parse_image(image)
        creds = RegistryClient(parent=self).credentials(name.registry)
        auth = {"username": creds[0], "password": creds[1]} if creds else None
        repository, _, tag = image.rpartition(":")
        emit("pushing", f"Pushing {image}")

        def push():
            errors = []
            for record in self.docker_client().images.push(repository, tag, auth_config=auth,
                                                           stream=True, decode=True):
                if record.get("error"):
                    errors.append(str(record["error"]))
                elif record.get("status") in ("Pushed", "Layer already exists") or "digest" in str(
                        record.get("status", "")):
                    loop.call_soon_threadsafe(
    emit, "pushing", f"{record.get('id', '')} {record['status']}".strip())
            return errors

        loop = asyncio.get_running_loop()
        try:
            errors = await loop.run_in_executor(None, push)
        except docker.errors.APIError as e:
            errors = [str(e.explanation or e)]
        if errors:
            hint = (" The registry refused the credentials: set c.RegistryClient.username and "
                    "password (or `docker login`)." if any(
                        w in " ".join(errors).lower() for w in ("unauthorized", "denied", "authentication"))
                    else "")
            raise BuildFailed(f"Built {image}, but pushing it to {name.registry} failed: "
                              f"{errors[-1]}.{hint}")

    def environment(self, request):
        settings = self.r2d_settings(request)
        # The clone (and its submodules) may use only the transports users may launch from.
        env = git_environment(GitProvider(config=self.config).allowed_schemes)
        env["BINDERSPAWNER_R2D_SETTINGS"] = json.dumps(settings)
        # PYTHONPATH: repo2docker loads this package's config file and must import the same package.
        for name in ("DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "DOCKER_CONFIG", "PYTHONPATH"):
            if name in os.environ:
                env[name] = os.environ[name]
        env.update(request.env)
        if request.credentials is not None:  # repo2docker's git clone runs on the host, with this
            env.update(request.credentials.git_environment())
        return env

    async def build(self, request, emit):
        source = request.resolved.source
        self.log.info("Building image %s from %s at %s", request.image, source.display_name,
                      request.resolved.version)
        emit("fetching", f"Building {source.display_name} at {request.resolved.version[:12]} "
                         f"into {request.image}")
        proc = await asyncio.create_subprocess_exec(
            *self.command(request),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.environment(request),
            start_new_session=True,
            limit=1 << 20,
        )
        tail = collections.deque(maxlen=LOG_TAIL)

        async def relay():
            async for raw in proc.stdout:
                relay_log_line(raw, tail, emit)
            return await proc.wait()

        try:
            status = await asyncio.wait_for(relay(), self.build_timeout)
        except asyncio.TimeoutError:
            status = None
        finally:
            if proc.returncode is None:
                _kill_group(proc)
                await proc.wait()
        if status == 0 and await self.image_exists(request.image):
            if self.push:
                await self.push_image(request.image, emit)
            emit("built", f"Built image {request.image}")
            return
        reason = (f"took longer than {self.build_timeout:g} s" if status is None
                  else f"failed (repo2docker exit code {status})")
        last = "\n".join(tail) or "(no output)"
        raise BuildFailed(f"Building {source.display_name} at {request.resolved.version[:12]} "
                          f"{reason}. Last lines of the build log:\n{last}")


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
