"""The builder interface (does an image exist; build it) and the repo2docker base that the local
engine builder (builders/repo2docker.py) and the Kubernetes builder (kubernetes/builder.py) share:
the settings both pass to repo2docker, its arguments, and reading its log."""

import json
import re
from dataclasses import dataclass, field

import jupyterhub
from traitlets import CaselessStrEnum, Float, Int, List, Unicode, default
from traitlets.config import LoggingConfigurable

from binderspawner.errors import BuildFailed
from binderspawner.providers import ResolvedRepo
from binderspawner.services.cleanup import LABEL_HUB

LOG_TAIL = 20  # lines of the build log quoted in a failure message


@dataclass(frozen=True)
class BuildRequest:
    image: str
    resolved: ResolvedRepo
    labels: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)  # extra environment for the build process (hub marker, TMPDIR)
    # The launching member's TokenCredentials for a private repository's clone, or None. Only the
    # clone sees it (git's environment); never a label, a build argument or a log line.
    credentials: object = field(default=None, repr=False)


class Builder(LoggingConfigurable):
    """Turns (repository, version) into an image the backend can run."""

    async def image_exists(self, image):
        raise NotImplementedError

    async def build(self, request, emit):
        """Build ``request.image``; report progress with ``emit(phase, message)``.

        Raise BuildFailed with a message for the user when the build fails.
        """
        raise NotImplementedError


class Repo2DockerBase(Builder):
    """What every repo2docker builder shares: which buildpacks and base image, what the server
    needs, which content providers, the timeout and the image's user. Subclasses say where
    repo2docker runs (``repo2docker_command``, ``build``, ``image_exists``). ``c.Repo2DockerBase.*``
    configures both siblings; each one's own class overrides it."""

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
        help="""Base image for the kinds handed to repo2docker's own buildpacks (R, Julia, nix,
        conda, with buildpacks='repo2docker'); '' means repo2docker's default. The hub's own
        buildpacks take the image of the repository's Python from
        Repo2DockerBuilder.python_base_images, and use this one only for builds without a checked
        clone on the hub (data records; Kubernetes build pods).""",
    ).tag(config=True)

    @default("base_image")
    def _default_base_image(self):
        return "binderspawner-base:bookworm" if self.buildpacks == "venv" else ""

    server_requirements = List(
        Unicode(),
        help="""pip requirements the venv buildpack installs before the repository's own: the
        single-user server. Defaults to this hub's exact JupyterHub version, JupyterLab and
        jupyter-offlinenotebook (as repo2docker images have).""",
    ).tag(config=True)

    @default("server_requirements")
    def _default_server_requirements(self):
        return [f"jupyterhub=={jupyterhub.__version__}", "jupyterlab", "jupyter-offlinenotebook"]

    extra_ca_bundle = Unicode(
        "",
        help="""A PEM bundle of CA certificates that builds must trust (a path on the hub host for
        Repo2DockerBuilder, inside the build image for KubernetesBuilder),
        for sites whose outbound TLS goes through an intercepting proxy (pip then fails with
        CERTIFICATE_VERIFY_FAILED). It is added to the image's system trust store and used by pip.
        Example: '/etc/ssl/certs/ca-certificates.crt'.""",
    ).tag(config=True)

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
                              f"{type(self).__name__}.content_providers. Ask the hub admin to add it.")
        return [source.content_provider]

    build_timeout = Float(
        1800,
        help="Seconds a build may take before it is stopped and the launch fails.",
    ).tag(config=True)

    user_id = Int(1000, help="uid of the user in built images (repo2docker refuses 0).").tag(config=True)
    user_name = Unicode("jovyan", help="Name of the user in built images.").tag(config=True)

    repo2docker_command = List(
        Unicode(),
        help="""The command that runs repo2docker. Repo2DockerBuilder: this Python's 'python -m
        repo2docker'; KubernetesBuilder: binderspawner's wrapper in the build image.""",
    ).tag(config=True)

    def repo2docker_args(self, request):
        """repo2docker's arguments for one build, without the command and --config (pure)."""
        argv = ["--no-run", "--json-logs", "--user-id", str(self.user_id), "--user-name",
                self.user_name, "--image-name", request.image, "--ref", request.resolved.version]
        for key, value in sorted(request.labels.items()):
            argv += ["--label", f"{key}={value}"]
        return [*argv, request.resolved.source.fetch_url]

    def provider_for(self, source):
        """The provider (with the spawner's settings) that resolved ``source``; its rules bind
        the build's clone too. GitProvider when none of the spawner's providers is named so."""
        from binderspawner.providers.git import GitProvider  # providers import this module's data

        for cls in getattr(self.parent, "provider_classes", ()):
            if cls.name == source.provider:
                return cls(parent=self.parent, config=self.config)
        return GitProvider(parent=self.parent, config=self.config)

    def r2d_settings(self, request=None, environment_settings=None):
        """What repo2docker_config.py reads (as JSON in BINDERSPAWNER_R2D_SETTINGS); for a
        ``request``, only the content provider its source needs, the rules its clone obeys and
        this hub's id (its images are not for builds: builders/imagefence.py). A subclass that
        decided the environment on the hub passes its ``environment_settings`` entries."""
        from binderspawner.providers.git import GitProvider

        provider = self.provider_for(request.resolved.source) if request else GitProvider(config=self.config)
        settings = {
            "git_rules": provider.git_rules(),
            "buildpacks": self.buildpacks,
            "base_image": self.base_image,
            "server_requirements": self.server_requirements,
            "extra_ca_bundle": self.extra_ca_bundle,
            "hub_id": (request.labels.get(LABEL_HUB, "") if request else ""),
            "content_providers": (self.content_providers_for(request.resolved.source) if request
                                  else list(self.content_providers)),
        }
        settings.update(environment_settings or {})
        return settings


def credential_variables(credentials):
    """The member's token for a clone repo2docker makes itself (builders/checkedfetch.py offers it
    to the repository's URL only and drops it once the clone is done); {} without credentials."""
    if credentials is None:
        return {}
    return {"BINDERSPAWNER_GIT_TOKEN": credentials.token,
            "BINDERSPAWNER_GIT_USERNAME": credentials.username}


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
