"""One launch, from user_options to an image: ``make_launch`` is the only place a Launch is made.

The spawner's start() and the build API both call it. It reads the request (``read_request``, the
same function the spawn form and the launch-link handler use to refuse bad input early), picks the
provider, applies spec control, decides the launch's Resources (policy/resources.py) and quota key,
checks the quotas for a server launch, resolves the ref with the member's rights, names the image,
and finds or builds it (one build per image, hub-wide). The Launch it returns carries all of that;
nothing is written onto the spawner.

The spawner supplies the configuration (it is the ``parent`` of every configurable made here) and
these public attributes: provider_classes, builder_class, image_prefix, max_concurrent_builds,
pids_limit, cpu/mem limits and guarantees, user, lifecycle, credentials_for, launch_options.
"""

import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from typing import Optional

from binderspawner import messages, metrics
from binderspawner.builders import BuildRequest
from binderspawner.builders import logs as buildlogs
from binderspawner.builders.queue import LAUNCH, hub_queue
from binderspawner.homes import PersistentHome
from binderspawner.launch import images
from binderspawner.launch.options import LaunchRequest, parse_launch_options
from binderspawner.launch.speccontrol import SpecControl
from binderspawner.policy.quotas import Quotas
from binderspawner.policy.resources import ResourcePolicy, Resources
from binderspawner.providers import ResolvedRepo, detect
from binderspawner.services.cleanup import (ENV_BUILD_RECORD, ENV_BUILD_TMP, ENV_HUB_ID, ENV_HUB_PID, LABEL_HUB,
                                            build_records_dir, build_tmp_root)
from binderspawner.services.imagecache import LaunchLog

LABEL_PREFIX = "binderspawner."


@dataclass(frozen=True)
class Launch:
    """Everything one launch decided: what was asked, the version it resolved to, its image, the
    limits and quota key the server runs under, and whether the image was built for it (True),
    found (False), or not known yet (None, while building)."""

    request: LaunchRequest
    resolved: ResolvedRepo
    image: str
    resources: Resources = Resources()
    quota_key: str = ""
    built: Optional[bool] = None

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

    @property
    def state(self):
        """What the spawner saves about this launch (no secrets: fetch_url carries none)."""
        return {"repo": self.resolved.source.spec, "ref": self.request.ref or "",
                "commit": self.resolved.version, "image": self.image,
                "fetch_url": self.resolved.source.fetch_url, "quota_key": self.quota_key}


def read_request(spawner, options):
    """user_options -> (LaunchRequest, provider, RepoSource), or a LaunchError naming the field.
    No network: the spawn form and the launch-link handler call it to refuse bad input before any
    server entry is made; make_launch calls it for the launch itself."""
    request = parse_launch_options(spawner.launch_options(options))
    provider, source = detect(request.repo, [cls(parent=spawner) for cls in spawner.provider_classes])
    return request, provider, source


def base_resources(spawner):
    """The spawner's configured defaults as Resources (Spawner.cpu_limit, mem_limit, guarantees,
    BinderSpawner.pids_limit)."""
    return Resources(cpu_limit=spawner.cpu_limit or None, mem_limit=spawner.mem_limit or None,
                     pids_limit=spawner.pids_limit or None,
                     cpu_guarantee=getattr(spawner, "cpu_guarantee", None) or None,
                     mem_guarantee=getattr(spawner, "mem_guarantee", None) or None)


def launch_resources(spawner, spec_settings=None, size=None):
    """The Resources one launch runs with (policy/resources.py): the spawner's configured limits
    (after a Kubernetes profile's overrides), then the matching spec_config entry's settings, the
    user's groups' settings, and the size the user picked; LaunchError for a bad size."""
    groups = [g.name for g in getattr(spawner.user, "groups", None) or []]
    return ResourcePolicy(parent=spawner).for_launch(base_resources(spawner), spec_settings, groups, size)


def quota_key(source):
    """What quotas count: the repository's one identity (however it was spelled), whatever ref
    each launch asks for."""
    return source.repository


async def make_launch(spawner, options, report, admit=None, priority=LAUNCH, prebuild=False):
    """Resolve and find-or-build; returns the Launch. Raises LaunchError for the user.

    ``report(message, progress=None)`` receives the progress. ``admit(quota_key)`` is given for a
    launch that starts a server: the quotas are checked and ``admit`` is called with no await in
    between, so concurrent launches in this hub all count each other. The build API passes none.
    ``prebuild``: a build nobody launched (binderspawner.prebuild): queued at ``priority``, not
    recorded as a launch (the image cache's order, 'launched recently') and its log granted to nobody.
    """
    request, provider, source = read_request(spawner, options)
    # Banned/allowed specs and per-spec settings (speccontrol.py); a ref in the spec counts.
    ref, _, spec_settings = SpecControl(parent=spawner).check(source, request.ref)
    resources = launch_resources(spawner, spec_settings, request.size)
    key = quota_key(source)
    if admit is not None:
        Quotas(parent=spawner).check(spawner, key, spec_settings or {}, source.display_name or key)
        admit(key)
    if request.size:
        report(f"Size {request.size!r}: {resources.cpu_limit:g} CPU, "
               f"{(resources.mem_limit or 0) / 1024**3:g} GiB memory")
    if request.fresh_home and not PersistentHome(parent=spawner).enabled:
        report(messages.HOME_OPTION_UNUSED)  # never silently: the option asks for what is off here
    what = f"ref {ref!r}" if ref else "the default branch"
    report(f"Resolving {what} of {source.display_name}", 5)
    credentials = spawner.credentials_for(provider, source)
    # Every launch asks the host (with this member's rights), also for a full sha whose image
    # exists: who may not read the repository gets the same 404 as for a missing one.
    resolved = await provider.resolve(source, ref, credentials=credentials)
    launch = Launch(request, resolved, images.image_reference(spawner.image_prefix, source.slug,
                                                              resolved.version),
                    resources=resources, quota_key=key)
    report(f"{resolved.resolved_from} is at {resolved.version[:12]}; image {launch.image}", 10)

    builder = spawner.builder_class(parent=spawner)
    lifecycle = spawner.lifecycle
    if not prebuild:
        await asyncio.get_running_loop().run_in_executor(
            None, record_launch, lifecycle.lifecycle_dir, launch.image, spawner.log)
    build = hub_queue(spawner.max_concurrent_builds).ensure(
        launch.image,
        exists=lambda: builder.image_exists(launch.image),
        build=lambda emit: run_build(builder, launch, emit, lifecycle, credentials),
        priority=priority,
    )
    buildlogs.STORE.record(launch.image, None if prebuild else spawner.user.name, build)
    async for event in build.follow():
        progress = None if event.fraction is None else 15 + int(70 * event.fraction)
        report(f"[{event.phase}] {event.message}", progress)
    built = await build.wait()  # True: this build ran (whoever asked first); False: it existed
    report(f"{'Built' if built else 'Found'} image {launch.image}; starting server", 90)
    return replace(launch, built=built)


def record_launch(lifecycle_dir, image, log):
    """Note the launch for the image cache's least-recently-launched order."""
    try:
        LaunchLog(lifecycle_dir).record(image)
    except Exception:  # noqa: BLE001 - the cache's bookkeeping must not fail a launch
        log.exception("Could not record the launch of %s", image)


async def run_build(builder, launch, emit, lifecycle, credentials=None):
    """One build: marked with this hub's id and pid (so a restarted hub can tell it is orphaned),
    in its own scratch directory, counted in the metrics."""
    root = build_tmp_root(lifecycle.lifecycle_dir)
    os.makedirs(root, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="build-", dir=root)
    record = os.path.join(build_records_dir(lifecycle.lifecycle_dir), os.path.basename(scratch) + ".json")
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
        if os.path.exists(record):  # the cleanup service's record of this build
            os.remove(record)
