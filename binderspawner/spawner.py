"""The spawners: BinderSpawnerMixin does the Binder work, the backend only runs containers.

A launch goes: validate user_options -> pick a provider -> resolve the ref to an immutable version
-> name the image -> find or build it (one build per image, hub-wide) -> start the server from it.
Everything the user sees on the progress page comes from ``_report``.
"""

import asyncio
import copy
import inspect
from dataclasses import dataclass

from dockerspawner import DockerSpawner
from traitlets import Int, List, Type, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from . import images
from .build import Builder, BuildQueue, BuildRequest, Repo2DockerBuilder
from .policy import Resources, docker_host_config
from .providers import GitProvider, RepoProvider, ResolvedRepo, detect
from .spec import KNOWN_OPTIONS, LaunchRequest, parse_launch_options

LABEL_PREFIX = "binderspawner."

FORM = """
<div class="form-group">
  <label for="binder-repo">Repository</label>
  <input class="form-control" id="binder-repo" name="repo" required
         placeholder="https://example.org/org/repo.git">
</div>
<div class="form-group">
  <label for="binder-ref">Branch, tag or commit <small>(optional: the default branch)</small></label>
  <input class="form-control" id="binder-ref" name="ref" placeholder="main">
</div>
<div class="form-group">
  <label for="binder-urlpath">Path to open <small>(optional)</small></label>
  <input class="form-control" id="binder-urlpath" name="urlpath" placeholder="lab/tree/index.ipynb">
</div>
"""


@dataclass(frozen=True)
class Launch:
    request: LaunchRequest
    resolved: ResolvedRepo
    image: str

    @property
    def labels(self):
        """Labels for the image and the container: where it came from, never who launched it."""
        return {
            f"{LABEL_PREFIX}repo": self.resolved.source.spec,
            f"{LABEL_PREFIX}provider": self.resolved.source.provider,
            f"{LABEL_PREFIX}ref": self.request.ref or "",
            f"{LABEL_PREFIX}commit": self.resolved.version,
            f"{LABEL_PREFIX}image": self.image,
        }


class BinderSpawnerMixin(LoggingConfigurable):
    """Backend-independent Binder behaviour; mix in before a Spawner class."""

    provider_classes = List(
        Type(klass=RepoProvider),
        [GitProvider],
        help="""Repository sources users can launch from, tried in order; the first that
        recognises the 'repo' option handles it. Configure each through its own class
        (e.g. c.GitProvider.allowed_hosts).""",
    ).tag(config=True)

    builder_class = Type(
        Repo2DockerBuilder,
        klass=Builder,
        help="How images are built. Configure it through its class, e.g. c.Repo2DockerBuilder.buildpacks.",
    ).tag(config=True)

    image_prefix = Unicode(
        "binder-",
        help="""Prepended to every built image's name: a name prefix ('binder-'), or a registry and
        namespace ('registry.example.org:5000/binder/') to push to.""",
    ).tag(config=True)

    @validate("image_prefix")
    def _valid_prefix(self, proposal):
        return images.validate_prefix(proposal.value)

    max_concurrent_builds = Int(
        2,
        help="""Builds that may run at once on this hub; further launches of unbuilt images wait in
        line and see their place. Launches of an image already being built share that build.""",
    ).tag(config=True)

    pids_limit = Int(
        1024,
        help="Most processes (and threads) a user server may run; stops fork bombs. 0 for no limit.",
    ).tag(config=True)

    # Binder servers are made for one launch: resource limits on, a build can take minutes.
    @default("cpu_limit")
    def _default_cpu_limit(self):
        return Resources.cpu_limit

    @default("mem_limit")
    def _default_mem_limit(self):
        return Resources.mem_limit

    @default("start_timeout")
    def _default_start_timeout(self):
        return 1800

    @default("http_timeout")
    def _default_http_timeout(self):
        return 120

    @default("cmd")
    def _default_cmd(self):
        return ["jupyterhub-singleuser"]

    _build_queue = None
    launch = None

    @classmethod
    def build_queue(cls, max_concurrent):
        """The hub-wide queue (one per hub process, shared by every spawner)."""
        queue = BinderSpawnerMixin._build_queue
        if queue is None:
            queue = BinderSpawnerMixin._build_queue = BuildQueue(max_concurrent)
        queue.max_concurrent = max_concurrent
        return queue

    @property
    def resources(self):
        return Resources(cpu_limit=self.cpu_limit, mem_limit=self.mem_limit,
                         pids_limit=self.pids_limit or None)

    # progress -----------------------------------------------------------------------------------

    def _reset_progress(self):
        self._progress_events = []
        self._progress_changed = asyncio.Event()

    def _report(self, message, progress=None):
        if not hasattr(self, "_progress_events"):
            self._reset_progress()
        event = {"message": message}
        if progress is not None:
            event["progress"] = progress
        self._progress_events.append(event)
        self._progress_changed.set()
        self._progress_changed = asyncio.Event()

    async def progress(self):
        if not hasattr(self, "_progress_events"):
            self._reset_progress()
        seen = 0
        while True:
            changed = self._progress_changed
            while seen < len(self._progress_events):
                seen += 1
                yield self._progress_events[seen - 1]
            await changed.wait()

    # the spawn form -------------------------------------------------------------------------------

    @default("options_form")
    def _default_options_form(self):
        return FORM

    def options_from_form(self, formdata):
        """Form fields -> user_options; empty fields are left out (validated in start)."""
        options = {}
        for key in KNOWN_OPTIONS:
            value = (formdata.get(key) or [""])[0].strip()
            if value:
                options[key] = value
        return options

    # launch -------------------------------------------------------------------------------------

    async def prepare_launch(self):
        """Resolve and find-or-build; returns the Launch. Raises LaunchError for the user."""
        request = parse_launch_options(self.user_options)
        providers = [cls(parent=self) for cls in self.provider_classes]
        provider, source = detect(request.repo, providers)
        what = f"ref {request.ref!r}" if request.ref else "the default branch"
        self._report(f"Resolving {what} of {source.display_name}", 5)
        resolved = await provider.resolve(source, request.ref)
        launch = Launch(request, resolved, images.image_reference(self.image_prefix, source.slug,
                                                                   resolved.version))
        self._report(f"{resolved.resolved_from} is at {resolved.version[:12]}; image {launch.image}", 10)

        builder = self.builder_class(parent=self)
        build = self.build_queue(self.max_concurrent_builds).ensure(
            launch.image,
            exists=lambda: builder.image_exists(launch.image),
            build=lambda emit: builder.build(BuildRequest(launch.image, resolved, launch.labels), emit),
        )
        async for event in build.follow():
            progress = None if event.fraction is None else 15 + int(70 * event.fraction)
            self._report(f"[{event.phase}] {event.message}", progress)
        built = await build.wait()
        self._report(f"{'Built' if built else 'Found'} image {launch.image}; starting server", 90)
        return launch

    async def start(self):
        self._reset_progress()
        launch = await self.prepare_launch()
        self.launch = launch
        self.image = launch.image
        if launch.request.urlpath:
            self.default_url = "/" + launch.request.urlpath
        return await super().start()

    def get_env(self):
        env = super().get_env()
        if self.launch:
            env["BINDER_REPO_URL"] = self.launch.resolved.source.spec
            env["BINDER_REF"] = self.launch.resolved.version
        return env


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

    async def create_object(self):
        # Add the launch's labels and limits to what the admin configured, for this container only.
        configured_create, configured_host = self.extra_create_kwargs, self.extra_host_config
        create = await _evaluated(self, configured_create)
        host = await _evaluated(self, configured_host)
        create.setdefault("labels", {}).update(self.launch.labels if self.launch else {})
        for key, value in docker_host_config(self.resources).items():
            host.setdefault(key, value)
        self.extra_create_kwargs, self.extra_host_config = create, host
        try:
            return await super().create_object()
        finally:
            self.extra_create_kwargs, self.extra_host_config = configured_create, configured_host
