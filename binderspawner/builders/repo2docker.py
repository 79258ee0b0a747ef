"""Builds with repo2docker on the local Docker engine, as a subprocess whose log is streamed live."""

import asyncio
import collections
import json
import os
import re
import signal
import sys

import docker
import jupyterhub
from traitlets import Bool, CaselessStrEnum, Float, Int, List, TraitError, Unicode, default, validate

from binderspawner.errors import BuildFailed
from binderspawner.providers.git import GitProvider, git_environment
from binderspawner.builders.registry import RegistryClient, parse_image
from binderspawner.builders.base import Builder

CONFIG_FILE = os.path.join(os.path.dirname(__file__), "repo2docker_config.py")
LOG_TAIL = 20


class Repo2DockerBuilder(Builder):
    buildpacks = CaselessStrEnum(
        ["venv", "repo2docker"],
        default_value="venv",
        help="""Which buildpacks build repositories without a Dockerfile.

        'venv': binderspawner's buildpack, which pip-installs requirements.txt into a virtualenv made
        from the base image's Python. Needs no conda and no Docker Hub, so it works offline from
        your package mirror. Supports requirements.txt, apt.txt, postBuild, start and runtime.txt
        (for the base image's Python version only).
        'repo2docker': repo2docker's own buildpacks (conda, R, Julia, Pipfile, ...) as on mybinder.org;
        they download micromamba and conda-forge packages at build time.
        Dockerfile repositories build with repo2docker's Dockerfile buildpack either way.""",
    ).tag(config=True)

    base_image = Unicode(
        help="""Base image for repositories without a Dockerfile.

        Defaults to 'binderspawner-base:bookworm' (built by scripts/provision.sh) for the venv
        buildpacks, and to repo2docker's own default for repo2docker's buildpacks.""",
    ).tag(config=True)

    @default("base_image")
    def _default_base_image(self):
        return "binderspawner-base:bookworm" if self.buildpacks == "venv" else ""

    server_requirements = List(
        Unicode(),
        help="""pip requirements the venv buildpack installs before the repository's own: the
        single-user server. Defaults to this hub's exact JupyterHub version and JupyterLab.""",
    ).tag(config=True)

    @default("server_requirements")
    def _default_server_requirements(self):
        return [f"jupyterhub=={jupyterhub.__version__}", "jupyterlab"]

    extra_ca_bundle = Unicode(
        "",
        help="""Path on the hub host to a PEM bundle of CA certificates that builds must trust,
        for sites whose outbound TLS goes through an intercepting proxy (pip then fails with
        CERTIFICATE_VERIFY_FAILED). It is added to the image's system trust store and used by pip.
        Example: '/etc/ssl/certs/ca-certificates.crt'.""",
    ).tag(config=True)

    @validate("extra_ca_bundle")
    def _bundle_exists(self, proposal):
        if proposal.value and not os.path.isfile(proposal.value):
            raise TraitError(f"Repo2DockerBuilder.extra_ca_bundle: no file at {proposal.value!r}.")
        return os.path.abspath(proposal.value) if proposal.value else ""

    content_providers = List(
        Unicode(),
        help="""repo2docker content providers (class names in repo2docker.contentproviders)
        builds may use. Defaults to those the spawner's provider_classes need (Git, Zenodo,
        Figshare, ...); ["Git"] without a spawner. Each build uses only the one its source needs,
        so git builds never run the data providers' online lookups.""",
    ).tag(config=True)

    @default("content_providers")
    def _default_content_providers(self):
        needed = ["Git"]
        for cls in getattr(self.parent, "provider_classes", ()):
            needed += [name for name in getattr(cls, "content_providers", ()) if name not in needed]
        return needed

    def content_providers_for(self, source):
        """The content provider list for one build (pure): the one ``source`` is fetched with."""
        if source.content_provider not in self.content_providers:
            raise BuildFailed(f"This hub cannot build {source.display_name}: repo2docker's "
                              f"'{source.content_provider}' content provider is not in "
                              "Repo2DockerBuilder.content_providers. Ask the hub admin to add it.")
        return [source.content_provider]

    build_timeout = Float(
        1800,
        help="Seconds a build may take before it is stopped and the launch fails.",
    ).tag(config=True)

    user_id = Int(1000, help="uid of the user in built images (repo2docker refuses 0).").tag(config=True)
    user_name = Unicode("jovyan", help="Name of the user in built images.").tag(config=True)

    repo2docker_command = List(
        Unicode(),
        help="The command that runs repo2docker. Defaults to this Python's 'python -m repo2docker'.",
    ).tag(config=True)

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

    def repo2docker_args(self, request):
        """repo2docker's arguments for one build, without the command and --config (pure)."""
        argv = ["--no-run", "--json-logs", "--user-id", str(self.user_id), "--user-name",
                self.user_name, "--image-name", request.image, "--ref", request.resolved.version]
        for key, value in sorted(request.labels.items()):
            argv += ["--label", f"{key}={value}"]
        return [*argv, request.resolved.source.fetch_url]

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

    def r2d_settings(self, request=None):
        """What repo2docker_config.py reads (as JSON in BINDERSPAWNER_R2D_SETTINGS); for a
        ``request``, only the content provider its source needs."""
        return {
            "buildpacks": self.buildpacks,
            "base_image": self.base_image,
            "server_requirements": self.server_requirements,
            "extra_ca_bundle": self.extra_ca_bundle,
            "content_providers": (self.content_providers_for(request.resolved.source) if request
                                  else list(self.content_providers)),
        }

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
                          f"{reason}. Last lines of the build log:\n{last}",
                          status=504 if status is None else 422)  # 422: the repository's steps failed


def relay_log_line(raw, tail, emit):
    """Pass one raw line of repo2docker output to ``emit``, line by line, keeping ``tail``."""
    phase, message = parse_log_line(raw)
    for line in message.splitlines():
        if line.strip():
            tail.append(line)
            emit(phase, line, step_fraction(line))


def parse_log_line(raw):
    """One line of repo2docker --json-logs output -> (phase, message) (pure)."""
    text = raw.decode("utf-8", "replace").rstrip("\n")
    try:
        record = json.loads(text)
    except ValueError:
        return "building", text
    if not isinstance(record, dict):
        return "building", text
    return str(record.get("phase") or "building"), str(record.get("message", "")).rstrip("\n")


_STEP = re.compile(r"^#\d+ \[\s*(\d+)/(\d+)\]")


def step_fraction(line):
    """'#12 [ 9/17] RUN ...' (BuildKit's plain progress) -> 9/17; None for other lines (pure)."""
    found = _STEP.match(line)
    return int(found.group(1)) / int(found.group(2)) if found else None


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
