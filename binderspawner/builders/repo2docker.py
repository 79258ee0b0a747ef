"""Builds with repo2docker on the local Docker engine, as a subprocess whose log is streamed live."""

import asyncio
import collections
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import urllib.parse

import docker
from traitlets import Bool, CaselessStrEnum, Dict, Float, List, TraitError, Unicode, default, validate

from binderspawner import messages
from binderspawner.builders import checkout as checkouts
from binderspawner.builders import conda, contentlayer
from binderspawner.builders.environment import EnvironmentRefused, Policy, decide
from binderspawner.dockerhost import fence
from binderspawner.errors import BuildFailed, RepositoryRefused
from binderspawner.services.cleanup import ENV_BUILD_RECORD, write_build_record
from binderspawner.services.imagecache import parse_size
from binderspawner.providers.base import RepoProvider
from binderspawner.providers.git import GitProvider, git_environment
from binderspawner.builders.registry import RegistryClient, parse_image
from binderspawner.builders.base import (  # noqa: F401 - log helpers: their old home
    LOG_TAIL, Repo2DockerBase, credential_variables, parse_log_line, relay_log_line, step_fraction)

CONFIG_FILE = os.path.join(os.path.dirname(__file__), "repo2docker_config.py")


class Repo2DockerBuilder(Repo2DockerBase):
    """repo2docker as a subprocess on the hub, building on the local Docker engine (or DOCKER_HOST),
    optionally pushing to a registry, from the hub's own checked clone of a Git repository (its
    environment decided before any Docker work: builders/environment.py). The settings every
    repo2docker builder has are Repo2DockerBase's; these are the local engine's."""

    python_base_images = Dict(
        {"3.11": "binderspawner-base:bookworm", "3.13": "binderspawner-base:trixie",
         "3.14": "binderspawner-base:forky"},
        help="""Base image per Python version ("3.11": image) for repositories the hub's own
        buildpacks build: a repository pinning a version (runtime.txt, Pipfile [requires],
        requires-python) gets that version's image; a version not in this map is refused before
        anything is built, naming the file and the versions here (see nearest_newer_python).
        scripts/provision.sh builds the default images from Debian suites.""",
    ).tag(config=True)

    @validate("python_base_images")
    def _base_images_valid(self, proposal):
        for version, image in proposal.value.items():
            if not re.fullmatch(r"\d+\.\d+", str(version)) or not isinstance(image, str) or not image:
                raise TraitError(f"Repo2DockerBuilder.python_base_images: {version!r}: {image!r} is not "
                                 "a 'major.minor': 'image' pair.")
        if self.default_python not in proposal.value:
            raise TraitError(f"Repo2DockerBuilder.python_base_images has no image for default_python "
                             f"{self.default_python!r}; add one or change default_python.")
        return proposal.value

    default_python = Unicode(
        "3.11",
        help="""Python version (a key of python_base_images) for repositories that pin none.""",
    ).tag(config=True)

    @validate("default_python")
    def _default_python_offered(self, proposal):
        if proposal.value not in self.python_base_images:
            raise TraitError(f"Repo2DockerBuilder.default_python {proposal.value!r} is not a key of "
                             f"python_base_images ({', '.join(self.python_base_images)}).")
        return proposal.value

    nearest_newer_python = Bool(
        False,
        help="""When a repository pins a Python version this hub has no base image for (e.g.
        python-3.10, repo2docker's own default and pinned by many Binder repositories), build it
        with the nearest newer version of python_base_images and show a warning on the progress
        page, instead of refusing the launch.""",
    ).tag(config=True)

    package_indexes = List(
        Unicode(),
        help="""Package index URLs (e.g. 'https://pypi.example.org/simple') a repository's
        requirements files may name in --index-url, -i or --extra-index-url lines. A line naming
        any other index is refused before building, naming the line. Passed to the buildpack as
        the indexes to install from; empty: the base image's configured index. No credentials in
        them: the URLs are written into the image's build steps (its history, the build log every
        launcher reads), so 'user:password@' is refused; let the index admit the build network
        instead.""",
    ).tag(config=True)

    @validate("package_indexes")
    def _indexes_without_credentials(self, proposal):
        for url in proposal.value:
            if "@" in urllib.parse.urlsplit(url).netloc:
                raise TraitError(messages.INDEX_CREDENTIALS.format(url=conda.public_url(url)))
        return proposal.value

    conda_channels = List(
        Unicode(),
        ["conda-forge"],
        help="""Conda channels the hub solves environment.yml from, in priority order: names
        (resolved with conda_channel_alias) or URLs, e.g. ['http://mirror.example.org/conda-forge']
        for an air-gapped site (several are allowed). The hub fetches repodata and packages itself
        (checked by sha256) and the image installs them offline, so build containers need no
        access to the channels and credentials in a URL stay on the hub.""",
    ).tag(config=True)

    conda_channel_alias = Unicode(
        "",
        help="""Base URL channel names are resolved against (conda's channel_alias), e.g.
        'http://mirror.example.org/' makes 'conda-forge' mean 'http://mirror.example.org/conda-forge'.
        Empty: py-rattler's default (the public anaconda.org channels).""",
    ).tag(config=True)

    conda_repository_channels = CaselessStrEnum(
        ["ignore", "refuse", "allow"],
        "ignore",
        help="""What to do with channels an environment.yml names that are not in conda_channels
        ('defaults' and 'nodefaults' are always left out): 'ignore' solves from conda_channels
        with a warning naming the channel; 'refuse' stops the launch naming the file and channel;
        'allow' solves from them too (their hosts must pass the hub's address rules,
        RepoProvider.allowed_private_hosts).""",
    ).tag(config=True)

    conda_python = CaselessStrEnum(
        ["base-image", "channel"],
        "base-image",
        help="""Where a conda environment's Python comes from. 'base-image': a python pin in
        environment.yml picks a base image (python_base_images, as runtime.txt does) and python is
        left out of the solve; conda packages that are Python packages (noarch: python) are then
        refused. 'channel': python is solved from the conda channel as repo2docker does, and a
        runtime.txt version no base image has (3.10, 3.12) comes from the channel too.""",
    ).tag(config=True)

    conda_timeout = Float(
        600,
        help="""Seconds the hub waits for the conda channels: the whole solve (repodata fetches), and
        each package download. A channel whose packets a firewall drops fails only after this long
        (one that refuses connections or does not resolve fails at once), naming the channel and
        this setting. Lower it where the channels are near (a mirror on the hub's network).""",
    ).tag(config=True)

    conda_max_download = Unicode(
        "20G",
        help="""Most bytes of conda packages the hub downloads for one build ('20G'), counted as they
        arrive: a repository's environment.yml or lock cannot fill the hub's disk. Past it the build
        stops, naming this setting. Empty or '0': no limit.""",
    ).tag(config=True)

    conda_cache_dir = Unicode(
        "",
        help="""Directory where py-rattler caches channel repodata on the hub; empty: its default
        (~/.cache/rattler of the hub's user).""",
    ).tag(config=True)

    checkout_max_size = Unicode(
        "10G",
        help="""Most the files of one commit may take when the hub checks it out for a build ('10G'),
        read from the clone before any file is written: a repository of a few MB can hold files of
        many GB, which would fill the hub's disk. Past it the launch is refused, naming this
        setting. Submodules count (measured from a bare clone first), and Git LFS files (from
        their pointers; past the limit they are not fetched, and the build log says so). Empty or
        '0': no limit.""",
    ).tag(config=True)

    @validate("conda_max_download", "checkout_max_size")
    def _valid_byte_size(self, proposal):
        try:
            parse_size(proposal.value or "0")
        except ValueError:
            raise TraitError(f"Repo2DockerBuilder.{proposal.trait.name}: {proposal.value!r} is not a size "
                             "such as '10G'.") from None
        return proposal.value

    checkout_timeout = Float(
        300,
        help="Seconds the hub's clone of a repository (at the launched commit) may take.",
    ).tag(config=True)

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

    environment_images = Bool(
        True,
        help="""Build each environment once and each commit as a thin layer on it: commits whose
        environment files are identical (builders/envkey.py: requirements, runtime.txt, apt.txt,
        start, Pipfile(.lock), the binder directory, and this hub's base image, server
        requirements, indexes and CA bundle) share one '<repository>:env-<key>' image, and a
        content-only commit adds its files to it in about a second. Repositories whose build may
        read any file (Dockerfile, postBuild, setup.py or an installable pyproject.toml, a
        requirements file or Pipfile installing the repository's files such as '-e .') and, not
        keyed yet, uv.lock builds, conda environments and repo2docker's own buildpacks are built
        whole by repo2docker (the progress page says why). False: every commit is a full
        repo2docker build.""",
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

    def command(self, request, checkout=None):
        """The argv for one build (pure): no shell, every user-derived value already validated.
        With ``checkout`` (the hub's checked clone), repo2docker builds that directory."""
        argv = self.repo2docker_args(request)
        if checkout is not None:
            argv[-1] = checkout
        return [*self.repo2docker_command, "--config", CONFIG_FILE, *argv]

    def policy(self):
        """What this hub offers a repository (environment.Policy)."""
        return Policy(tuple(self.python_base_images), self.default_python, self.nearest_newer_python,
                      self.buildpacks, tuple(self.package_indexes), self.conda_python,
                      tuple(self.conda_channels), self.conda_repository_channels)

    def conda_settings(self):
        """The conda settings builders/conda.py works with."""
        return conda.CondaSettings(tuple(self.conda_channels), self.conda_channel_alias,
                                   tuple(RepoProvider(config=self.config).allowed_private_hosts),
                                   self.conda_cache_dir, self.conda_timeout,
                                   parse_size(self.conda_max_download or "0"))

    def environment_settings(self, environment, conda_payload=None):
        """The settings' 'environment' entry for one decided build (pure); paths are relative to
        the checkout root (``conda_payload``: the hub's directory of fetched conda packages)."""
        conda_entries = {} if conda_payload is None else {
            "conda_payload": conda_payload, "conda_python": environment.conda_python,
            "conda_pip": list(environment.conda_pip)}
        return {
            **conda_entries,
            "python": environment.python,
            "base_image": (self.python_base_images.get(environment.python, "") if environment.python
                           else ""),
            "binder_dir": environment.binder_dir,
            "requirements": environment.requirements,
            "pipfile": environment.pipfile,
            "pipfile_lock": environment.pipfile_lock,
            "install_repo": environment.install_repo,
            "uv_lock": environment.uv_lock,
            "index_urls": list(self.package_indexes),
        }

    def _base_image_for(self, environment, env_settings):
        if environment.buildpacks != "venv":
            return self.base_image  # repo2docker's own buildpacks: its default unless configured
        return env_settings["base_image"] or self.python_base_images[self.default_python]

    async def prepare(self, request, checkout, emit):
        """Clone into ``checkout`` and decide the environment (before any Docker work); warnings go
        to the progress page. Raises RepositoryRefused or BuildFailed for the user."""
        source = request.resolved.source
        await checkouts.fetch_checkout(
            source.fetch_url, request.resolved.version, checkout,
            rules=self.provider_for(source).git_rules(), credentials=request.credentials,
            display_name=source.display_name, timeout=self.checkout_timeout,
            log=lambda message: emit("fetching", message), max_bytes=parse_size(self.checkout_max_size or "0"))
        try:
            environment = decide(checkouts.read_repo_files(checkout), self.policy())
        except EnvironmentRefused as e:
            raise RepositoryRefused(str(e))
        except Exception:  # a bug of ours: logged for the admin, never relayed as a traceback
            self.log.exception("Deciding the environment of %s failed", source.display_name)
            raise BuildFailed(messages.ENVIRONMENT_INTERNAL.format(repo=source.display_name))
        for warning in environment.warnings:
            emit("warning", f"Warning: {warning}")
        emit("fetching", messages.environment_summary(environment))
        return environment

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
                    status = f"{record.get('id', '')} {record['status']}".strip()
                    loop.call_soon_threadsafe(emit, "pushing", status)
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

    def r2d_settings(self, request=None, environment=None, conda_payload=None):
        """The base's settings; for a decided ``environment`` (the hub's checked clone), its
        buildpacks, base image and files, and repo2docker reads the local copy."""
        if environment is None:
            return super().r2d_settings(request)
        env_settings = self.environment_settings(environment, conda_payload)
        return super().r2d_settings(request, {
            "buildpacks": environment.buildpacks, "content_providers": ["Local"],
            "base_image": self._base_image_for(environment, env_settings), "environment": env_settings})

    def environment(self, request, environment=None, home=None, conda_payload=None):
        settings = self.r2d_settings(request, environment, conda_payload)
        # The clone (and its submodules) may use only the transports users may launch from.
        env = git_environment(GitProvider(config=self.config).allowed_schemes)
        if home:  # repo2docker, git and docker run as root: nothing of theirs may come from /tmp
            env.update(private_home_environment(home))
        env["BINDERSPAWNER_R2D_SETTINGS"] = json.dumps(settings)
        # A config file that fails to load must fail the build, not fall back to repo2docker's
        # defaults (its own buildpacks and base images) without a word.
        env["TRAITLETS_APPLICATION_RAISE_CONFIG_FILE_ERROR"] = "1"
        # PYTHONPATH: repo2docker loads this package's config file and must import the same package.
        for name in ("DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "DOCKER_CONFIG", "PYTHONPATH"):
            if name in os.environ and not (name == "DOCKER_CONFIG" and home):
                env[name] = os.environ[name]
        env.update(request.env)
        if environment is None:  # repo2docker's own (checked) clone: builders/checkedfetch.py
            env.update(credential_variables(request.credentials))
        return env

    async def build(self, request, emit):
        source = request.resolved.source
        self.log.info("Building image %s from %s at %s", request.image, source.display_name,
                      request.resolved.version)
        emit("fetching", f"Building {source.display_name} at {request.resolved.version[:12]} "
                         f"into {request.image}")
        checkout = environment = payload = None
        if source.content_provider == "Git":
            checkout = checkouts.make_checkout_dir(request.env.get("TMPDIR"))
        try:
            if checkout is not None:
                environment = await self.prepare(request, checkout, emit)
            if environment is not None and environment.buildpacks == "venv" and (
                    environment.kind == "conda" or environment.conda_specs):
                payload = conda.PAYLOAD_DIR  # inside the checkout (buildpacks/conda.py copies it early)
                await self.fetch_conda(environment, checkout, conda.payload_directory(checkout), emit)
            if environment is not None and self.environment_images and await contentlayer.build_keyed(
                    self, request, emit, checkout, environment):
                return
            await self.run_repo2docker(request, emit, checkout, environment, payload)
        finally:
            if checkout is not None:
                checkouts.remove_checkout(checkout)

    async def fetch_conda(self, environment, checkout, payload, emit):
        """Solve (or read the lock) and fetch the conda packages into ``payload`` on the hub
        (builders/conda.py); the pip: list goes beside them. Raises RepositoryRefused or BuildFailed."""
        settings = self.conda_settings()
        try:
            await conda.prepare(environment, checkout, payload, settings, emit,
                                repo_channel_rules=settings.allowed_private_hosts)
        except conda.CondaFailed as e:
            if e.refused:
                raise RepositoryRefused(str(e))
            raise BuildFailed(str(e), status=502)
        except Exception:  # a bug of ours (or rattler's): logged for the admin, never a traceback
            what = environment.conda_lock or environment.conda_file or "runtime.txt"
            self.log.exception("Preparing the conda environment (%s) failed", what)
            raise BuildFailed(messages.ENVIRONMENT_INTERNAL.format(repo=f"the conda environment ({what})"))
        if environment.conda_pip:
            with open(os.path.join(payload, conda.PIP_FILE), "w") as f:
                f.write("\n".join(environment.conda_pip) + "\n")

    async def run_repo2docker(self, request, emit, checkout, environment, conda_payload=None):
        """repo2docker on ``checkout`` (None: its own clone), building ``request.image``."""
        source = request.resolved.source
        await fence.ensure_build_egress(self)  # fails closed: no build without its rules
        home = tempfile.mkdtemp(prefix="home-", dir=request.env.get("TMPDIR"))  # root's, mode 0700
        proc = await asyncio.create_subprocess_exec(
            *self.command(request, checkout),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.environment(request, environment, home, conda_payload),
            start_new_session=True,
            limit=1 << 20,
        )
        if request.env.get(ENV_BUILD_RECORD):  # the cleanup service knows builds only from these
            write_build_record(request.env[ENV_BUILD_RECORD], proc.pid, request.env.get("TMPDIR"))
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
            shutil.rmtree(home, ignore_errors=True)
        if status == 0 and await self.image_exists(request.image):
            if self.push:
                await self.push_image(request.image, emit)
            emit("built", f"Built image {request.image}")
            return
        reason = (f"took longer than {self.build_timeout:g} s" if status is None
                  else f"failed (repo2docker exit code {status})")
        raise BuildFailed(failure_message(source.display_name, request.resolved.version, reason,
                                          list(tail), environment),
                          status=504 if status is None else 422)  # 422: the repository's steps failed


def failure_message(display_name, version, reason, tail, environment=None):
    """The user's message for a failed build (pure): the cause first when the log shows one we
    know, then the log tail without BuildKit's step bookkeeping."""
    first = messages.BUILD_FAILED.format(repo=display_name, version=version[:12], reason=reason)
    # the venv buildpack's own line naming the file and cause (imported here: the buildpack module
    # imports this package, and repo2docker imports the buildpack first)
    from binderspawner.builders.buildpacks.venv import install_failure

    installing = install_failure(tail)
    cause = (f"Building {display_name} failed: {installing.rstrip('.')}." if installing
             else messages.explain_build_log(tail, environment.requirements if environment else None))
    lines = messages.clean_log_tail(tail) if cause else tail
    head = f"{cause} ({first[:-1]})" if cause else first
    return f"{head}\n{messages.LOG_TAIL_HEADER}\n" + ("\n".join(lines) or "(no output)")


def private_home_environment(home):
    """HOME, Docker's config dir and Python's user site for a build's root-run tools, inside the
    build's own root-owned ``home`` (pure): no shared /tmp file (a .pth in a user site, a docker
    CLI plugin, a .gitconfig or .netrc) can run or be read as root."""
    return {"HOME": home, "DOCKER_CONFIG": os.path.join(home, ".docker"),
            "XDG_CONFIG_HOME": os.path.join(home, ".config"), "XDG_CACHE_HOME": os.path.join(home, ".cache"),
            "PYTHONNOUSERSITE": "1"}


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
