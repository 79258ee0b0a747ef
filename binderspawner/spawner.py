"""The spawners: BinderSpawnerMixin does the Binder work, the backend only runs containers.

A launch goes: validate user_options -> pick a provider -> resolve the ref to an immutable version
-> name the image -> find or build it (one build per image, hub-wide) -> start the server from it.
Everything the user sees on the progress page comes from ``_report``.
"""

import asyncio
import copy
import inspect
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass

from traitlets import Int, List, Type, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from binderspawner import metrics

from binderspawner.builders import logs as buildlogs

from binderspawner.services import culling

from binderspawner.web import form

from binderspawner.launch import images

from binderspawner.auth import pushback
from binderspawner.services.cleanup import (CACHE_SUMMARY, ENV_BUILD_RECORD, ENV_BUILD_TMP, ENV_HUB_ID,
                                            ENV_HUB_PID, LABEL_HUB, HubCleanup, build_records_dir,
                                            build_tmp_root)
from binderspawner.services.imagecache import LaunchLog
from binderspawner.builders import Builder, BuildQueue, BuildRequest, Repo2DockerBuilder
from binderspawner.policy.resources import Resources
from binderspawner.auth.pushback import PushBack
from binderspawner.dockerhost import limits as isolation
from binderspawner.providers import DEFAULT_PROVIDERS, RepoProvider, ResolvedRepo, detect
from binderspawner.launch.speccontrol import SpecControl
from binderspawner.errors import LaunchError
from binderspawner.launch.options import KNOWN_OPTIONS, LaunchRequest, parse_launch_options

LABEL_PREFIX = "binderspawner."

# The spawn form lives in form.py (fields, field errors, launch link and badge snippets).


@dataclass(frozen=True)
class Launch:
    request: LaunchRequest
    resolved: ResolvedRepo
    image: str

    @property
    def labels(self):
        """Labels for the image and the container: where it came from, never who launched it."""
        return {
            f"{LABEL_PREFIX}repo": self.resolved.source.repo_url or self.resolved.source.fetch_url,
            f"{LABEL_PREFIX}spec": self.resolved.source.spec,
            f"{LABEL_PREFIX}provider": self.resolved.source.provider,
            f"{LABEL_PREFIX}ref": self.request.ref or "",
            f"{LABEL_PREFIX}commit": self.resolved.version,
            f"{LABEL_PREFIX}image": self.image,
        }


class BinderSpawnerMixin(LoggingConfigurable):
    """Backend-independent Binder behaviour; mix in before a Spawner class."""

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
    60, help="Seconds between two checks for idle kernels inside a server.").tag(
        config=True)

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
        """This launch's limits (isolation.py: policy per repo, group and size), else the defaults."""
        return isolation.resources_for(self)

    _binder_repo = None

    @property
    def binder_repo(self):
        """The repository this server is launched from; quotas.py counts servers by it."""
        state = self.launch_state or {}
        return self._binder_repo or state.get("identity") or state.get("repo")

    # progress -----------------------------------------------------------------------------------

    def _reset_progress(self):
        # capped like build logs: a launch with a huge build log keeps its last events
        self._progress_events = buildlogs.EventWindow(size=lambda event: len(event.get("message", "")) + 32)
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
            missed, events, seen = self._progress_events.since(seen)
            if missed:
                yield {"message": f"[{missed} earlier messages are not kept]"}
            for event in events:
                yield event
            await changed.wait()

    # the spawn form -------------------------------------------------------------------------------

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
            request = parse_launch_options(options)
            detect(request.repo, [cls(parent=self) for cls in self.provider_classes])
        except LaunchError as e:
            form.remember_error(self.user.name, e, options)
            raise form.with_field_html(e, options) from None
        return options

    # launch -------------------------------------------------------------------------------------

    # The launching member's TokenCredentials, set before each launch by binderspawner.auth from
    # their auth_state. Held in memory only: never saved with the server's state, never logged.
    member_credentials = None

    def credentials_for(self, provider, source):
        """The member's token if every place resolving and building ``source`` sends it is one of
        the hosts that issued it; else None (the launch goes anonymous or with the hub's token)."""
        credentials = self.member_credentials
        if credentials is not None and all(credentials.covers(url)
                                           for url in provider.credential_urls(source)):
            return credentials
        return None

    async def prepare_launch(self, options=None, report=None):
        """Resolve and find-or-build; returns the Launch. Raises LaunchError for the user.

        ``options`` and ``report`` default to this spawner's user_options and progress; the build
        API passes its own to build without starting a server."""
        request = parse_launch_options(self.user_options if options is None else options)
        _report = report or self._report
        providers = [cls(parent=self) for cls in self.provider_classes]
        provider, source = detect(request.repo, providers)
        # Banned/allowed specs and per-spec settings (speccontrol.py); a ref in the spec counts.
        ref, _, spec_settings = SpecControl(parent=self).check(source, request.ref)
        if options is None:  # a server launch (not the build API): its limits and quotas
            isolation.apply_launch_policy(self, source, spec_settings)
        what = f"ref {ref!r}" if ref else "the default branch"
        _report(f"Resolving {what} of {source.display_name}", 5)
        credentials = self.credentials_for(provider, source)
        # Every launch asks the host (with this member's rights), also for a full sha whose image
        # exists: who may not read the repository gets the same 404 as for a missing one.
        resolved = await provider.resolve(source, ref, credentials=credentials)
        launch = Launch(request, resolved, images.image_reference(self.image_prefix, source.slug,
                                                                  resolved.version))
        _report(f"{resolved.resolved_from} is at {resolved.version[:12]}; image {launch.image}", 10)

        builder = self.builder_class(parent=self)
        await asyncio.get_running_loop().run_in_executor(None, self._record_launch, launch.image)
        build = self.build_queue(self.max_concurrent_builds).ensure(
            launch.image,
            exists=lambda: builder.image_exists(launch.image),
            build=lambda emit: self._run_build(builder, launch, emit, credentials),
        )
        buildlogs.STORE.record(launch.image, self.user.name, build)
        async for event in build.follow():
            progress = None if event.fraction is None else 15 + int(70 * event.fraction)
            _report(f"[{event.phase}] {event.message}", progress)
        built = await build.wait()
        _report(f"{'Built' if built else 'Found'} image {launch.image}; starting server", 90)
        return launch

    async def start(self):
        self._reset_progress()
        started = time.monotonic()
        self._save_launch_state({"phase": "preparing", "options": dict(self.user_options or {})})
        self._built_here = False
        kind = "unknown"
        try:
            try:
                launch = await self.prepare_launch()
            except LaunchError as e:  # shown next to its field when the spawn form is re-rendered
                raise form.with_field_html(e, self.user_options) from None
            kind = "built" if self._built_here else "cached"
            self.launch = launch
            self.image = launch.image
            self.launch_state = {"phase": "starting", **self._launch_fields(launch)}
            if launch.request.urlpath:
                self.default_url = "/" + launch.request.urlpath
            result = await super().start()
        except BaseException as e:
            metrics.LAUNCHES.labels(image=kind, status="failure").inc()
            self._record_failure(e)
            raise
        self.launch_state = {**self.launch_state, "phase": "running"}
        metrics.LAUNCHES.labels(image=kind, status="success").inc()
        metrics.LAUNCH_DURATION.labels(image=kind).observe(time.monotonic() - started)
        return result

    # lifecycle: saved state, builds, in-server culling, stop reasons ---------------------------------

    launch_state = None  # {"phase": preparing|starting|running, repo, ref, commit, image, ...}
    _built_here = False

    @staticmethod
    def _launch_fields(launch):
        return {"repo": launch.resolved.source.spec, "identity": launch.resolved.source.repository,
                "ref": launch.request.ref or "",
                "commit": launch.resolved.version, "image": launch.image,
                "fetch_url": launch.resolved.source.fetch_url}

    @property
    def lifecycle(self):
        return HubCleanup(config=self.config)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _bind_gauges(self.lifecycle.lifecycle_dir)

    def get_state(self):
        state = super().get_state()
        if self.launch_state:
            state["binder"] = dict(self.launch_state)
        return state

    def load_state(self, state):
        super().load_state(state)
        saved = state.get("binder") if isinstance(state, dict) else None
        self.launch_state = dict(saved) if isinstance(saved, dict) else None
        if self.launch_state and self.launch_state.get("phase") == "preparing":
            # Loaded from the database while this server was still being prepared: the hub process
            # that was preparing it died (the cleanup service kills its orphaned build). Make the
            # launch read as failed, with a reason, on the progress stream and the spawn page.
            repo = self.launch_state.get("options", {}).get("repo", "the repository")
            failed = asyncio.get_event_loop().create_future()
            failed.set_exception(LaunchError(
                f"The launch of {repo} was interrupted because the hub restarted while it was being "
                "prepared (its build was stopped). Launch it again: the build starts over and reuses "
                "what was already built.", status=503))
            self._spawn_future = failed
            self.launch_state = None
        elif self.launch_state and self.launch_state.get("phase") == "failed":
            # a failed launch, loaded after a hub restart: its message stays on the progress page
            failed = asyncio.get_event_loop().create_future()
            failed.set_exception(LaunchError(self.launch_state.get("message") or "The launch failed.",
                                             status=500))
            self._spawn_future = failed

    def clear_state(self):
        super().clear_state()
        if (self.launch_state or {}).get("phase") != "failed":  # kept until the next start()
            self.launch_state = None

    def _record_failure(self, error):
        """Keep why this launch failed (saved with the server) until the next launch replaces it."""
        message = getattr(error, "jupyterhub_message", None) or str(error) or type(error).__name__
        self._save_launch_state({"phase": "failed", "message": message,
                                 "options": dict(self.user_options or {})})

    @property
    def launch_failed(self):
        """Why this server's last launch failed, or None (running, or stopped normally). A failed
        server does not count against JupyterHub's named server limit (quotas.named_server_limit)."""
        if self.active:
            return None
        if (self.launch_state or {}).get("phase") == "failed":
            return self.launch_state.get("message") or "The launch failed."
        future = self._spawn_future  # JupyterHub's: failed after start() (e.g. never answered)
        if future is not None and future.done() and not future.cancelled() and future.exception():
            return str(future.exception())
        return None

    def _save_launch_state(self, launch_state):
        """Persist now (JupyterHub only saves state once start() returns), so a hub that dies
        during a build finds out after its restart."""
        self.launch_state = launch_state
        orm_spawner = getattr(self, "orm_spawner", None)
        if orm_spawner is None:
            return
        from sqlalchemy import inspect as sa_inspect

        session = sa_inspect(orm_spawner).session
        if session is not None:
            orm_spawner.state = self.get_state()
            session.commit()

    def _record_launch(self, image):
        try:
            LaunchLog(self.lifecycle.lifecycle_dir).record(image)
        except Exception:  # noqa: BLE001 - the cache's bookkeeping must not fail a launch
            self.log.exception("Could not record the launch of %s", image)

    async def _run_build(self, builder, launch, emit, credentials=None):
        """One build: marked with this hub's id and pid (so a restarted hub can tell it is
        orphaned), in its own scratch directory, counted in the metrics."""
        self._built_here = True
        lifecycle = self.lifecycle
        root = build_tmp_root(lifecycle.lifecycle_dir)
        os.makedirs(root, exist_ok=True)
        scratch = tempfile.mkdtemp(prefix="build-", dir=root)
        record = os.path.join(build_records_dir(lifecycle.lifecycle_dir),
                              os.path.basename(scratch) + ".json")
        env = {ENV_HUB_ID: lifecycle.hub_id, ENV_HUB_PID: str(os.getpid()), ENV_BUILD_TMP: scratch,
               ENV_BUILD_RECORD: record, "TMPDIR": scratch}
        labels = {**launch.labels, LABEL_HUB: lifecycle.hub_id}
        metrics.BUILDS_STARTED.inc()
        metrics.BUILDS_RUNNING.inc()
        started, status = time.monotonic(), "failure"
        try:
            await builder.build(BuildRequest(launch.image, launch.resolved, labels, env, credentials), emit)
            status = "success"
        finally:
            metrics.BUILDS_RUNNING.dec()
            metrics.BUILD_DURATION.labels(status=status).observe(time.monotonic() - started)
            if status != "success":
                metrics.BUILDS_FAILED.inc()
            shutil.rmtree(scratch, ignore_errors=True)
            if os.path.exists(record):
                os.remove(record)

    def get_args(self):
        return [*super().get_args(), *culling.server_args(
            self.kernel_cull_timeout, self.kernel_cull_interval, self.shutdown_no_activity_timeout)]

    async def stop(self, now=False):
        orm_spawner = getattr(self, "orm_spawner", None)
        if orm_spawner is not None:
            culler = culling.IdleCuller(config=self.config)
            reason = culling.stop_reason(culling.utcnow(), orm_spawner.last_activity, orm_spawner.started,
                                         culler.timeout, culler.max_age)
            metrics.SERVER_STOPS.labels(reason=reason).inc()
        return await super().stop(now=now)

    def get_env(self):
        env = super().get_env()
        if self.launch:
            env["BINDER_REPO_URL"] = self.launch.resolved.source.repo_url or self.launch.resolved.source.fetch_url
            env["BINDER_REF"] = self.launch.resolved.version
            env.update(pushback.container_env(PushBack(config=self.config).enabled, self.member_credentials,
                                              self.launch.resolved.source.fetch_url,
                                              env.get("JUPYTERHUB_API_URL")))
        return env


def _bind_gauges(lifecycle_dir):
    """Gauges read on scrape: the queue from this process, the cache from the cleanup's summary."""
    def queue_length():
        queue = BinderSpawnerMixin._build_queue
        return queue.queue_length if queue else 0

    def cache(key):
        try:
            with open(os.path.join(lifecycle_dir, CACHE_SUMMARY)) as f:
                return float(json.load(f)[key])
        except (OSError, ValueError, KeyError):
            return float("nan")

    metrics.BUILD_QUEUE_LENGTH.set_function(queue_length)
    metrics.CACHE_IMAGES.set_function(lambda: cache("images"))
    metrics.CACHE_BYTES.set_function(lambda: cache("bytes"))
