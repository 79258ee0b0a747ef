"""Quotas: how many servers may run at once, per repository and on the whole hub.

The decision (``check_quota``) is a pure function of counts and limits. The counts come from the
hub's own in-process state (``count_servers``): every spawner JupyterHub holds, active (starting or
running) and launched from a repository, the way BinderHub's launcher counts through the hub API
but without a round trip.
"""

from dataclasses import dataclass
from typing import Optional

from traitlets import Int
from traitlets.config import LoggingConfigurable

from binderspawner.errors import LaunchError


@dataclass(frozen=True)
class QuotaLimits:
    """None or 0: no limit."""

    per_repo: Optional[int] = 100  # mybinder.org's per-repository cap
    total: Optional[int] = None
    # Where per_repo came from, for the message ("c.Quotas.per_repo_quota" or a pattern's quota).
    per_repo_source: str = "c.Quotas.per_repo_quota"


@dataclass(frozen=True)
class Counts:
    repo: int  # active servers launched from this repository, not counting this launch
    total: int  # active Binder servers on the hub, not counting this launch


def check_quota(counts, limits, repo):
    """Raise a LaunchError (HTTP 429) when one more server of ``repo`` would pass a limit."""
    if limits.total and counts.total >= limits.total:
        raise LaunchError(
            f"This hub is full: {counts.total} of {limits.total} servers are running "
            "(the hub-wide limit, c.Quotas.total_quota). Try again later, or ask the hub admin to "
            "raise it.", status=429)
    if limits.per_repo and counts.repo >= limits.per_repo:
        raise LaunchError(
            f"Too many users are running this repository ({counts.repo} of {limits.per_repo}): "
            f"{repo} may run at most {limits.per_repo} servers at once (set by {limits.per_repo_source}). "
            "Try again later, or ask the hub admin to raise the limit.", status=429)


def limits_for(per_repo_quota, total_quota, repo_settings):
    """The QuotaLimits for one repository: a matching pattern's ``quota`` replaces the default."""
    if "quota" in repo_settings:
        return QuotaLimits(per_repo=int(repo_settings["quota"] or 0), total=total_quota,
                           per_repo_source="the quota of a matching c.SpecControl.spec_config pattern")
    return QuotaLimits(per_repo=per_repo_quota, total=total_quota)


def count_servers(spawners, repo, exclude=None):
    """Counts from an iterable of spawners: those active (starting, running or stopping) that are
    Binder launches; ``repo`` is compared with each one's ``binder_repo``."""
    repo_count = total = 0
    for spawner in spawners:
        if spawner is exclude or not getattr(spawner, "active", False):
            continue
        their_repo = getattr(spawner, "binder_repo", None)
        if not their_repo:
            continue
        total += 1
        if their_repo == repo:
            repo_count += 1
    return Counts(repo=repo_count, total=total)


def hub_spawners():
    """Every spawner of the JupyterHub process we run in (JupyterHub keeps one User object, with
    its spawners, for every user who has a server starting or running)."""
    from jupyterhub.app import JupyterHub

    if not JupyterHub.initialized():
        return []
    users = JupyterHub.instance().users
    return [spawner for user in list(users.values()) for spawner in list(user.spawners.values())]


class Quotas(LoggingConfigurable):
    """The admin's quota settings (per-pattern quotas: ``quota`` in c.SpecControl.spec_config)."""

    per_repo_quota = Int(
        100,
        help="""Most servers launched from one repository that may run at once (mybinder.org uses
        100). A launch past it is refused with a message saying so; 0 for no limit. A pattern in
        c.SpecControl.spec_config may set its own, e.g. {"pattern": "^gh/my-lab/", "config":
        {"quota": 10}}.""",
    ).tag(config=True)

    total_quota = Int(
        0,
        help="""Most Binder servers that may run at once on this hub, whatever their repository;
        0 for no limit. Size it to the host: each server may use its mem_limit.""",
    ).tag(config=True)

    def check(self, spawner, repo, repo_settings, display_name=None):
        """Count the hub's servers and refuse this launch (LaunchError) if it would pass a quota."""
        limits = limits_for(self.per_repo_quota, self.total_quota, repo_settings)
        if not limits.per_repo and not limits.total:
            return
        counts = count_servers(hub_spawners(), repo, exclude=spawner)
        self.log.debug("quota for %s: %s of %s (hub: %s of %s)", repo, counts.repo, limits.per_repo,
                       counts.total, limits.total)
        check_quota(counts, limits, display_name or repo)
