"""The hub's prebuilder: admits pushes and CI requests and runs them through the launch machinery.

One per hub process. A prebuild is ``launcher.make_launch`` with a context standing in for a
spawner (PrebuildContext: the hub's Binder settings, no user, no member credentials), queued at
PREBUILD priority in the hub's build queue, so launches and prebuilds of one image share one build.
What is decided before anything is built: the repository's provider and canonical spec (as a launch
would), c.SpecControl, c.Prebuild.specs or a recent launch, the hub's own token for a private
repository, repeats (delivery ids and commits seen in the last hour) and the hourly quota.
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Optional

from traitlets.config import Config

from binderspawner import launcher, messages
from binderspawner.builders.queue import PREBUILD, hub_queue
from binderspawner.errors import LaunchError
from binderspawner.launch import images
from binderspawner.launch.speccontrol import SpecControl
from binderspawner.policy.quotas import HourlyRate
from binderspawner.prebuild import policy
from binderspawner.prebuild.settings import Prebuild
from binderspawner.progress import ProgressLog
from binderspawner.providers import TokenCredentials
from binderspawner.services.imagecache import LaunchLog
from binderspawner.spawner import BinderSpawner


class _NoUser:
    name = None
    groups = ()


class PrebuildContext(BinderSpawner):
    """What make_launch reads from a spawner, for a build nobody launched: the hub's Binder
    settings (c.BinderSpawner.* and the hub's spawner class's section), no user, no limits, and
    only the hub's own prebuild tokens (c.Prebuild.access_tokens), never a member's."""

    user = _NoUser()
    cpu_limit = mem_limit = cpu_guarantee = mem_guarantee = None
    token_specs = None  # None: the hub's tokens go to any repository; else only to specs matching these

    def credentials_for(self, provider, source):
        if self.token_specs is not None and not policy.matches_any(source.spec, self.token_specs):
            return None
        return hub_credentials(Prebuild(config=self.config), provider.credential_urls(source))


def hub_credentials(settings, urls):
    """The c.Prebuild.access_tokens token whose host patterns cover every URL, else None. A key
    may hold several patterns (spaces or commas): a GitHub repository is reached through both
    github.com and api.github.com."""
    for patterns, token in settings.access_tokens.items():
        hosts = tuple(patterns.replace(",", " ").split())
        credentials = TokenCredentials(token, username=settings.git_username, hosts=hosts)
        if urls and all(credentials.covers(url) for url in urls):
            return credentials
    return None


def context_config(config, spawner_class):
    """The hub's config with the spawner class's Binder settings (c.DockerBinderSpawner.image_prefix,
    ...) copied to the PrebuildContext section, so a prebuild names and builds images exactly as
    that spawner's launches do. Only BinderSpawner's own settings are copied."""
    names = set(BinderSpawner.class_trait_names(config=True))
    mine = Config()
    for section in getattr(spawner_class, "section_names", lambda: [])():
        if section in ("BinderSpawnerMixin", "BinderSpawner") or not config._has_section(section):
            continue
        mine.merge(Config({key: value for key, value in config[section].items() if key in names}))
    merged = Config(config)
    merged.PrebuildContext = mine
    return merged


def make_context(config, spawner_class):
    """A PrebuildContext with the hub's Binder settings; a setting nobody configured takes the
    spawner class's own default (KubeBinderSpawner builds with KubernetesBuilder)."""
    merged = context_config(config, spawner_class)
    context = PrebuildContext(config=merged)
    configured = set()
    for section in ("BinderSpawnerMixin", "BinderSpawner", "PrebuildContext"):
        if merged._has_section(section):
            configured.update(merged[section].keys())
    own = BinderSpawner._trait_default_generators
    theirs = getattr(spawner_class, "_trait_default_generators", {})
    for name in BinderSpawner.class_trait_names(config=True):
        generator = theirs.get(name)
        if name not in configured and generator is not None and generator is not own.get(name):
            setattr(context, name, generator(context))
    return context


@dataclass
class Outcome:
    """The answer to a push or CI request: HTTP status and a JSON body for the forge's delivery log."""

    status: int
    state: str  # queued, duplicate, ignored, skipped, refused
    message: str
    details: dict = field(default_factory=dict)
    job: Optional["Job"] = None

    def body(self):
        return {"status": self.state, "message": self.message, **self.details}


@dataclass(eq=False)
class Job:
    spec: str
    repository: str
    image: str
    options: dict
    progress: ProgressLog = field(default_factory=ProgressLog)
    task: Optional[asyncio.Task] = None
    launch: object = None
    error: Optional[BaseException] = None
    context: object = None  # the PrebuildContext it launches with


class Prebuilder:
    def __init__(self, config, spawner_class, log=None):
        self.log = log or logging.getLogger("binderspawner.prebuild")
        self.settings = Prebuild(config=config)
        self.context = make_context(config, spawner_class)
        # the CI API's: a token with the prebuild scope may name any repository, so the hub's own
        # tokens (and what a build of a private repository shows: its log) go only to c.Prebuild.specs
        self.ci_context = make_context(config, spawner_class)
        self.ci_context.token_specs = tuple(self.settings.specs)
        self.rate = HourlyRate(self.settings.per_repo_per_hour, self.settings.total_per_hour)
        self.deliveries = policy.Seen()
        self.commits = policy.Seen()  # (repository, commit)
        self.branches = {}  # (repository, branch) -> the Job of its latest pushed commit
        self.jobs = set()

    @property
    def queue(self):
        queue = hub_queue(self.context.max_concurrent_builds)
        queue.max_concurrent_prebuilds = self.settings.max_concurrent or None
        return queue

    # pushes -----------------------------------------------------------------------------------

    async def push(self, push, delivery=None):
        """Admit (or refuse) one verified push; a queued prebuild runs in the background."""
        what = f"{push.forge} push of {push.ref} to {push.name}"
        if delivery and delivery in self.deliveries:
            return self._answer(Outcome(200, "duplicate", messages.PREBUILD_DUPLICATE_DELIVERY.format(
                delivery=delivery)), what)
        if delivery:
            self.deliveries.add(delivery)
        if push.deleted:
            return self._answer(Outcome(200, "ignored", messages.PREBUILD_DELETED.format(ref=push.ref)), what)
        try:
            _, provider, source = launcher.read_request(self.context, {"repo": push.repo_url})
            _, spec, _ = SpecControl(parent=self.context).check(source, push.branch or push.tag)
        except LaunchError as e:
            return self._answer(Outcome(403 if e.status_code == 403 else 422, "refused", e.message), what)
        image = images.image_reference(self.context.image_prefix, source.slug, push.commit)
        refused = policy.allow_refusal(spec, self.settings.specs, await self._launched_recently(image),
                                       self.settings.recent_launch_days)
        if refused:
            return self._answer(Outcome(403, "refused", refused), what)
        if push.private and self.context.credentials_for(provider, source) is None:
            return self._answer(Outcome(202, "skipped", messages.PREBUILD_PRIVATE_SKIPPED.format(
                repository=source.repository)), what)
        key = (source.repository, push.commit)
        if key in self.commits:
            return self._answer(Outcome(200, "duplicate", messages.PREBUILD_DUPLICATE_COMMIT.format(
                commit=push.commit[:12], repository=source.repository)), what)
        outcome = self._admit(source.repository, spec, image,
                              {"repo": push.repo_url, "ref": push.tag or push.commit})
        if outcome.job is not None:
            self.commits.add(key)
            job = outcome.job  # a failed or dropped prebuild may be delivered again and retried
            job.task.add_done_callback(
                lambda task: self.commits.discard(key) if task.cancelled() or job.error is not None else None)
            if push.branch:
                self._supersede((source.repository, push.branch), outcome.job)
        return self._answer(outcome, what)

    async def _launched_recently(self, image):
        days = self.settings.recent_launch_days
        if days <= 0:
            return False
        launches = await asyncio.get_running_loop().run_in_executor(
            None, lambda: LaunchLog(self.context.lifecycle.lifecycle_dir).all())
        return policy.launched_recently(image, launches, time.time(), days)

    def _supersede(self, branch_key, job):
        """Remember ``job`` as the branch's latest; drop the previous commit's prebuild if it still waits."""
        previous = self.branches.get(branch_key)
        self.branches[branch_key] = job
        if previous is None or previous.task.done() or not self.settings.drop_superseded:
            return
        build = self.queue.active.get(previous.image)
        if build is None:  # still resolving: it has not reached the queue yet
            previous.task.cancel()
        elif self.queue.withdraw(build):
            self.log.info("Prebuild of %s dropped while waiting: %s was pushed after it", previous.image,
                          job.image)

    # the CI API ---------------------------------------------------------------------------------

    def request(self, options, who):
        """Admit (or refuse) a CI request for ``options`` ({"repo", "ref"}); the caller follows
        ``outcome.job.progress``."""
        what = f"CI prebuild of {options.get('repo')} at {options.get('ref') or 'HEAD'} by {who}"
        try:
            request, _, source = launcher.read_request(self.ci_context, options)
            ref, spec, _ = SpecControl(parent=self.ci_context).check(source, request.ref)
        except LaunchError as e:
            status = e.status_code if e.status_code in (403, 404) else 400
            return self._answer(Outcome(status, "refused", e.message), what)
        return self._answer(self._admit(source.repository, spec, "", options, self.ci_context), what)

    # both -------------------------------------------------------------------------------------------

    def _admit(self, repository, spec, image, options, context=None):
        now = time.monotonic()
        refused = self.rate.refusal(repository, now)
        if refused:
            return Outcome(429, "refused", refused, {"retry_after": self.rate.retry_after(now)})
        self.rate.admit(repository, now)
        job = Job(spec=spec, repository=repository, image=image, options=options, context=context or self.context)
        job.progress.restart()
        job.task = asyncio.ensure_future(self._run(job))
        self.jobs.add(job)
        job.task.add_done_callback(lambda _: self.jobs.discard(job))
        return Outcome(202, "queued", messages.PREBUILD_QUEUED.format(spec=spec),
                       {"spec": spec, **({"image": image} if image else {})}, job)

    async def _run(self, job):
        started = time.monotonic()
        try:
            job.launch = await launcher.make_launch(job.context, job.options, job.progress.report,
                                                    priority=PREBUILD, prebuild=True)
        except asyncio.CancelledError:
            self.log.info("Prebuild of %s (%s) dropped before it started building (a newer commit was "
                          "pushed to its branch, or the hub is stopping)", job.spec, job.image or "-")
            job.error = LaunchError(messages.PREBUILD_DROPPED, status=409)
            raise
        except Exception as e:  # noqa: BLE001 - reported to the log and to a CI caller
            job.error = e
            self.log.warning("Prebuild of %s failed: %s", job.spec, getattr(e, "message", None) or e)
            return
        self.log.info("Prebuild of %s: image %s %s in %.1f s", job.spec, job.launch.image,
                      "built" if job.launch.built else "was there already", time.monotonic() - started)

    def _answer(self, outcome, what):
        level = logging.INFO if outcome.status < 400 else logging.WARNING
        self.log.log(level, "Prebuild: %s: %s %s (%s)", what, outcome.status, outcome.state, outcome.message)
        return outcome


_PREBUILDER = None


def hub_prebuilder(config, spawner_class, log=None):
    """The hub process's Prebuilder (made on the first webhook or CI request)."""
    global _PREBUILDER
    if _PREBUILDER is None:
        _PREBUILDER = Prebuilder(config, spawner_class, log)
    return _PREBUILDER
