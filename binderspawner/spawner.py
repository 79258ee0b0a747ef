"""The backend-independent Binder spawner: its settings, start/stop and saved state.

A launch goes: validate user_options -> pick a provider -> resolve the ref to an immutable version
-> name the image -> find or build it (one build per image, hub-wide) -> start the server from it.
launcher.make_launch does everything up to the server and returns a Launch; the backend
(dockerhost/, kubernetes/) starts the server from it. Progress goes to ``progress_log``
(progress.py), which the progress page and the build API follow.

Admins configure ``c.BinderSpawner.*``; ``c.BinderSpawnerMixin.*`` (the old name) is still read,
with a warning naming the new key.
"""

import asyncio
import time

from traitlets import Int, List, Type, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from binderspawner import homes, launcher, metrics, session, state
from binderspawner.auth import pushback
from binderspawner.auth.pushback import PushBack
from binderspawner.builders import Builder, Repo2DockerBuilder
from binderspawner.builders.queue import hub_queue_length
from binderspawner.errors import LaunchError
from binderspawner.launch import images
from binderspawner.launch.options import KNOWN_OPTIONS
from binderspawner.launcher import LABEL_PREFIX, Launch  # noqa: F401 - their old home
from binderspawner.policy.resources import Resources
from binderspawner.progress import ProgressLog, spawn_failure
from binderspawner.providers import DEFAULT_PROVIDERS, RepoProvider
from binderspawner.services import culling
from binderspawner.services.cleanup import HubCleanup
from binderspawner.web import form, sharepage

_DEPRECATED_SECTION = "BinderSpawnerMixin"
_warned = set()  # old keys already warned about, once per hub process


def _launch_request_noted(spawner, user_options):
    """JupyterHub's apply_user_options hook: user_options are this spawner's launch request, read
    and checked when its start() begins; noted here instead of JupyterHub's warning that they went
    unhandled, which every launch logged."""
    server = f"{spawner.user.name}:{spawner.name}" if spawner.name else spawner.user.name
    spawner.log.info("Launch request for %s: %s", server, ", ".join(sorted(user_options)) or "none")


class BinderSpawnerMixin(LoggingConfigurable):
    """The old name of BinderSpawner's settings: ``c.BinderSpawnerMixin.*`` is still applied (it
    is a base class, so traitlets reads its section) and BinderSpawner warns about each key."""


class BinderSpawner(BinderSpawnerMixin):
    """Binder behaviour for any JupyterHub spawner: mix in before the Spawner class
    (``class DockerBinderSpawner(BinderSpawner, DockerSpawner)``). Configure it as
    ``c.BinderSpawner.*``; the backend's own settings stay under its class (c.DockerSpawner.*,
    c.KubeSpawner.*)."""

    provider_classes = List(
        Type(klass=RepoProvider),
        list(DEFAULT_PROVIDERS),
        help="""Repository sources users can launch from, tried in order; the first that
        recognises the 'repo' option handles it: GitHub, GitLab, gists, Zenodo, Figshare,
        HydroShare, Dataverse, CKAN, then any Git URL. Configure each through its own class
        (e.g. c.GitProvider.allowed_hosts, c.GitHubProvider.access_token); drop a source by
        leaving it out.""",
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

    kernel_cull_timeout = Int(
        600,
        help="""Inside each server, kernels idle this many seconds are shut down (jupyter_server's
        MappingKernelManager.cull_idle_timeout). 0 keeps idle kernels.""",
    ).tag(config=True)

    kernel_cull_interval = Int(
        60, help="Seconds between two checks for idle kernels inside a server.").tag(config=True)

    shutdown_no_activity_timeout = Int(
        900,
        help="""A server with no kernels, no terminals and no activity for this many seconds exits by
        itself (jupyter_server's ServerApp.shutdown_no_activity_timeout), so servers end even while
        the hub (and its idle culler) is down. Keep it above IdleCuller.timeout so that the culler
        normally acts first. 0: servers never exit by themselves.""",
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

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return _launch_request_noted  # start() reads and checks them (launcher.read_request)

    launch = None  # the current (or last) Launch, made by launcher.make_launch in start()
    launch_state = None  # saved with the server: {"phase": preparing|starting|running, repo, ...}
    quota_key = None  # the repository this server counts against in the quotas, once admitted

    # The launching member's TokenCredentials, set before each launch by binderspawner.auth from
    # their auth_state. Held in memory only: never saved with the server's state, never logged.
    member_credentials = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.progress_log = ProgressLog()
        metrics.bind_gauges(self.lifecycle.lifecycle_dir, hub_queue_length)
        _warn_deprecated_config(self.config, self.log)

    @property
    def lifecycle(self):
        return HubCleanup(config=self.config)

    @property
    def resources(self):
        """This launch's limits (policy per repository, group and size), else the defaults."""
        return self.launch.resources if self.launch else launcher.base_resources(self)

    @property
    def binder_repo(self):
        """The repository this server is launched from; quotas.py counts servers by it."""
        saved = self.launch_state or {}
        return self.quota_key or saved.get("quota_key") or saved.get("repo")

    def launch_options(self, options):
        """The user_options the launch reads; a backend drops the options it handles itself."""
        return options

    def credentials_for(self, provider, source):
        """The member's token if every place resolving and building ``source`` sends it is one of
        the hosts that issued it; else None (the launch goes anonymous or with the hub's token)."""
        credentials = self.member_credentials
        if credentials is not None and all(credentials.covers(url)
                                           for url in provider.credential_urls(source)):
            return credentials
        return None

    # progress and the spawn form ------------------------------------------------------------------

    async def progress(self):
        # JupyterHub asks while a spawn is pending, maybe before start() opened its launch: follow
        # the launch that is current, and the next one when it begins.
        async for event in self.progress_log.subscribe(latest=True):
            yield event

    @default("options_form")
    def _default_options_form(self):
        return form.render_form

    def options_from_form(self, formdata):
        """Form fields -> user_options; empty fields are left out. Checked here (no network), so a
        bad repository or ref is shown next to its field and nothing starts."""
        options = {}
        for key in KNOWN_OPTIONS:
            value = (formdata.get(key) or [""])[0].strip()
            if value:
                options[key] = value
        try:
            launcher.read_request(self, options)
        except LaunchError as e:
            form.remember_error(self.user.name, e, options)
            raise form.with_field_html(e, options) from None
        return options

    # start / stop ---------------------------------------------------------------------------------

    def _admit(self, quota_key):
        self.quota_key = quota_key

    async def start(self):
        self.progress_log.restart()
        self.launch, self.quota_key = None, None
        started = time.monotonic()
        self.launch_state = {"phase": "preparing", "options": dict(self.user_options or {})}
        state.save_now(self)
        kind = "unknown"
        try:
            try:
                launch = await launcher.make_launch(self, self.user_options, self.progress_log.report,
                                                    admit=self._admit)
            except LaunchError as e:  # shown next to its field when the spawn form is re-rendered
                raise form.with_field_html(e, self.user_options) from None
            kind = "built" if launch.built else "cached"
            self.launch = launch
            self.image = launch.image
            self.launch_state = {"phase": "starting", **launch.state}
            if launch.request.urlpath:
                self.default_url = "/" + launch.request.urlpath
            await self.prepare_server(launch)
            result = await super().start()
        except BaseException as e:
            metrics.LAUNCHES.labels(image=kind, status="failure").inc()
            self._record_failure(e)
            raise
        self.launch_state = {**self.launch_state, "phase": "running"}
        metrics.LAUNCHES.labels(image=kind, status="success").inc()
        metrics.LAUNCH_DURATION.labels(image=kind).observe(time.monotonic() - started)
        return result

    async def prepare_server(self, launch):
        """After the image is found or built, before the backend starts the server: a backend's
        own preparation (persistent homes, homes/). Nothing by default."""

    @property
    def home_fresh(self):
        """Does this launch ask for a fresh persistent home ('home': 'fresh')? Asked once: the
        option is dropped from the saved user_options (JupyterHub reuses them for a restart)."""
        return bool(self.launch and self.launch.request.fresh_home)

    def forget_fresh_home_option(self):
        options = {k: v for k, v in (self.user_options or {}).items() if k != "home"}
        self.user_options = options
        if getattr(self, "orm_spawner", None) is not None:
            self.orm_spawner.user_options = options
            state.save_now(self)

    async def stop(self, now=False):
        home = (self.launch_state or {}).get("home")
        if home:
            homes.touch(self.lifecycle.lifecycle_dir, home, self.log)
        orm_spawner = getattr(self, "orm_spawner", None)
        if orm_spawner is not None:
            metrics.SERVER_STOPS.labels(reason=culling.stop_reason_for(
                culling.running_culler(self.config) or culling.IdleCuller(config=self.config), orm_spawner)).inc()
        return await super().stop(now=now)

    def get_args(self):
        return [*super().get_args(), *culling.server_args(
            self.kernel_cull_timeout, self.kernel_cull_interval, self.shutdown_no_activity_timeout)]

    def get_env(self):
        env = super().get_env()
        if self.launch:
            source = self.launch.resolved.source
            env["BINDER_REPO_URL"] = source.repo_url or source.fetch_url
            env["BINDER_REF"] = self.launch.resolved.version
            env.update(pushback.container_env(PushBack(config=self.config).enabled, self.member_credentials,
                                              source.fetch_url, env.get("JUPYTERHUB_API_URL")))
        env.update(self._stop_times_env())
        return env

    def _stop_times_env(self):
        """When this server is stopped, for the notice inside the session (binderspawner/session)."""
        culler = culling.running_culler(self.config)  # what the culler runs with, as the home page shows
        _warn_once(self.log, culling.settings_not_applied(self.config))
        idle, max_age = culling.stop_rules(culler.timeout if culler else 0, culler.max_age if culler else 0,
                                           culler is not None, self.shutdown_no_activity_timeout)
        started = getattr(getattr(self, "orm_spawner", None), "started", None)
        return session.server_env(idle, max_age, started, sharepage.session_link(self))

    # saved state ----------------------------------------------------------------------------------

    def get_state(self):
        saved = super().get_state()
        if self.launch_state:
            saved["binder"] = dict(self.launch_state)
        return saved

    def load_state(self, saved):
        super().load_state(saved)
        self.launch_state = state.binder_state(saved)
        interrupted = state.interrupted_launch(self.launch_state)
        if interrupted is not None:
            self.launch_state = None
            self._fail_loaded_spawn(interrupted)
        elif (self.launch_state or {}).get("phase") == "failed":
            # a failed launch, loaded after a hub restart: its message stays on the progress page
            self._fail_loaded_spawn(LaunchError(self.launch_state.get("message") or "The launch failed.",
                                                status=500))

    def _fail_loaded_spawn(self, error):
        """Loaded from the database while this server was still being prepared: the hub process
        that was preparing it died (the cleanup service kills its orphaned build). Make the launch
        read as failed, with a reason, on the progress stream and the spawn page. JupyterHub keeps
        a failed spawn only in its private ``_spawn_future`` (what its pages read) and has no public
        way to mark a spawner failed, so this is the one place binderspawner sets it, on itself.
        Also used for a launch that failed before the restart (its message is kept)."""
        failed = asyncio.get_event_loop().create_future()
        failed.set_exception(error)
        failed.exception()  # marked as read: a spawner loaded and replaced unread would log it as lost
        self._spawn_future = failed

    def clear_state(self):
        super().clear_state()
        if (self.launch_state or {}).get("phase") != "failed":  # kept until the next start()
            self.launch_state = None

    def _record_failure(self, error):
        """Keep why this launch failed (saved with the server) until the next launch replaces it."""
        message = getattr(error, "jupyterhub_message", None) or str(error) or type(error).__name__
        self.launch_state = {"phase": "failed", "message": message, "options": dict(self.user_options or {})}
        state.save_now(self)

    @property
    def launch_failed(self):
        """Why this server's last launch failed, or None (running, or stopped normally). A failed
        server does not count against JupyterHub's named server limit (quotas.named_server_limit)."""
        if self.active:
            return None
        if (self.launch_state or {}).get("phase") == "failed":
            return self.launch_state.get("message") or "The launch failed."
        error = spawn_failure(self)  # failed after start() returned (e.g. never answered)
        return str(error) if error is not None else None


def _warn_deprecated_config(config, log):
    """Warn, once per key, about settings under the old section name."""
    old = dict.get(config, _DEPRECATED_SECTION) or {}
    for key in old:
        if key not in _warned:
            _warned.add(key)
            log.warning("c.%s.%s is deprecated: set c.BinderSpawner.%s instead (the old name is "
                        "still applied, below c.BinderSpawner.%s).", _DEPRECATED_SECTION, key, key, key)


def _warn_once(log, message):
    """Log a configuration problem once per hub process (spawns would repeat it)."""
    if message and message not in _warned:
        _warned.add(message)
        log.warning(message)
