"""Quotas: how many servers may run at once, per repository, per user and on the whole hub.

The decision (``check_quota``) is a pure function of counts and limits. The counts come from the
hub's own in-process state (``count_servers``): every spawner JupyterHub holds, active (starting or
running) and launched from a repository, the way BinderHub's launcher counts through the hub API
but without a round trip, plus the build API's ``build_only`` builds in flight (``BUILD_ONLY``),
which count for their user and for the hub like a launch.
"""

from dataclasses import dataclass
from typing import Optional

from traitlets import Int
from traitlets.config import LoggingConfigurable

from binderspawner import messages
from binderspawner.errors import LaunchError


@dataclass(frozen=True)
class QuotaLimits:
    """None or 0: no limit."""

    per_repo: Optional[int] = 100  # mybinder.org's per-repository cap
    total: Optional[int] = None
    per_user: Optional[int] = None
    # Where per_repo came from, for the message ("c.Quotas.per_repo_quota" or a pattern's quota).
    per_repo_source: str = "c.Quotas.per_repo_quota"


@dataclass(frozen=True)
class Counts:
    repo: int  # active servers launched from this repository, not counting this launch
    total: int  # active Binder servers and build-only builds on the hub, not counting this launch
    user: int = 0  # this user's active Binder servers and build-only builds, not counting this one


def check_quota(counts, limits, repo):
    """Raise a LaunchError (HTTP 429) when one more server of ``repo`` would pass a limit."""
    if limits.per_user and counts.user >= limits.per_user:
        raise LaunchError(
            f"You have {counts.user} Binder servers and builds going, the most one user may have at "
            f"once on this hub (c.Quotas.per_user_quota = {limits.per_user}). Stop one of your servers "
            "(or wait for a build to end) and launch again.", status=429)
    if limits.total and counts.total >= limits.total:
        raise LaunchError(
            f"This hub is full: {counts.total} of {limits.total} servers and builds are running "
            "(the hub-wide limit, c.Quotas.total_quota). Try again later, or ask the hub admin to "
            "raise it.", status=429)
    if limits.per_repo and counts.repo >= limits.per_repo:
        raise LaunchError(
            f"Too many users are running this repository ({counts.repo} of {limits.per_repo}): "
            f"{repo} may run at most {limits.per_repo} servers at once (set by {limits.per_repo_source}). "
            "Try again later, or ask the hub admin to raise the limit.", status=429)


def limits_for(per_repo_quota, total_quota, repo_settings, per_user_quota=None):
    """The QuotaLimits for one repository: a matching pattern's ``quota`` replaces the default."""
    if "quota" in repo_settings:
        return QuotaLimits(per_repo=int(repo_settings["quota"] or 0), total=total_quota,
                           per_user=per_user_quota,
                           per_repo_source="the quota of a matching c.SpecControl.spec_config pattern")
    return QuotaLimits(per_repo=per_repo_quota, total=total_quota, per_user=per_user_quota)


def count_servers(spawners, repo, exclude=None, user=None, build_only=()):
    """Counts from an iterable of spawners: those active (starting, running or stopping) that are
    Binder launches; ``repo`` is compared with each one's ``binder_repo``, ``user`` with its
    user's name. ``build_only``: the user names of build-only builds in flight."""
    repo_count = total = user_count = 0
    for spawner in spawners:
        if spawner is exclude or not getattr(spawner, "active", False):
            continue
        their_repo = getattr(spawner, "binder_repo", None)
        if not their_repo:
            continue
        total += 1
        if their_repo == repo:
            repo_count += 1
        if user is not None and getattr(getattr(spawner, "user", None), "name", None) == user:
            user_count += 1
    builds = list(build_only)
    return Counts(repo=repo_count, total=total + len(builds),
                  user=user_count + sum(1 for name in builds if name == user))


class BuildOnlyLaunches:
    """The build API's build_only builds in flight: they hold a build slot and count for quotas."""

    def __init__(self):
        self._users = {}  # id(task) -> user name

    def track(self, user_name, task):
        self._users[id(task)] = user_name
        task.add_done_callback(lambda done: self._users.pop(id(done), None))

    def user_names(self):
        return list(self._users.values())


BUILD_ONLY = BuildOnlyLaunches()


def failed_named_servers(user):
    """The user's named servers whose last launch failed (and that were not started since)."""
    spawners = getattr(user, "spawners", None)
    names = [name for name in getattr(user, "orm_spawners", {}) if name]
    return [name for name in names if spawners is not None and getattr(spawners[name], "launch_failed", None)]


class NamedServerLimit:
    """For c.JupyterHub.named_server_limit_per_user: ``limit`` named servers per user, not counting
    those whose last launch failed (their failure message stays until they are launched again).

    JupyterHub counts every named server a user has; called by JupyterHub, this adds the failed
    ones back. It applies to the user making the request (an admin or service starting servers for
    someone else gets JupyterHub's plain count). Launch links and the build API refuse with
    ``refusal``'s message, which names the servers to delete."""

    def __init__(self, limit):
        self.limit = limit

    def __call__(self, handler):
        user = handler.current_user
        if user is None or getattr(user, "kind", "user") != "user":
            return self.limit
        return self.limit + len(failed_named_servers(user))

    def refusal(self, user):
        """Why ``user`` may not have another named server (None: they may)."""
        failed = set(failed_named_servers(user))
        counted = sorted(name for name in getattr(user, "orm_spawners", {}) if name and name not in failed)
        if not self.limit or len(counted) < self.limit:
            return None
        return (f"You have {len(counted)} servers, the most one user may keep on this hub "
                f"(named_server_limit_per_user = {self.limit}; failed launches do not count). Stop and "
                f"delete one of them ({', '.join(counted)}) on your home page, then launch again.")


def named_server_limit(limit):
    """``c.JupyterHub.named_server_limit_per_user = named_server_limit(10)``: see NamedServerLimit."""
    return NamedServerLimit(limit) if limit else 0


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
        help="""Most Binder servers (and build-only builds of the build API) that may run at once
        on this hub, whatever their repository; 0 for no limit. Size it to the host: each server
        may use its mem_limit.""",
    ).tag(config=True)

    per_user_quota = Int(
        0,
        help="""Most Binder servers (starting or running) plus build-only builds of the build API
        one user may have at once; 0 for no limit. A launch past it is refused (HTTP 429) with a
        message saying so. JupyterHub's named_server_limit_per_user caps the servers a user keeps
        (stopped ones too); use binderspawner.policy.quotas.named_server_limit(n) for it so that
        failed launches do not count.""",
    ).tag(config=True)

    def check(self, spawner, repo, repo_settings, display_name=None):
        """Count the hub's servers and refuse this launch (LaunchError) if it would pass a quota."""
        limits = limits_for(self.per_repo_quota, self.total_quota, repo_settings, self.per_user_quota)
        if not limits.per_repo and not limits.total and not limits.per_user:
            return
        user = getattr(getattr(spawner, "user", None), "name", None)
        counts = count_servers(hub_spawners(), repo, exclude=spawner, user=user,
                               build_only=BUILD_ONLY.user_names())
        self.log.debug("quota for %s: %s of %s (hub: %s of %s, %s: %s of %s)", repo, counts.repo,
                       limits.per_repo, counts.total, limits.total, user, counts.user, limits.per_user)
        check_quota(counts, limits, display_name or repo)

    def check_build_only(self, user_name):
        """Refuse (LaunchError) a build-only build past the per-user or hub-wide quota; the
        per-repository quota counts servers and does not apply to builds."""
        limits = QuotaLimits(per_repo=None, total=self.total_quota, per_user=self.per_user_quota)
        if not limits.total and not limits.per_user:
            return
        counts = count_servers(hub_spawners(), None, user=user_name, build_only=BUILD_ONLY.user_names())
        check_quota(counts, limits, "")


# Prebuilds (builds on push or from CI, nobody waiting): per repository and hub-wide per hour.

class HourlyRate:
    """How many prebuilds were admitted in the last ``window`` seconds, per repository and in
    total (pure bookkeeping: the caller passes the time). A prebuild past a limit is refused."""

    def __init__(self, per_repo, total, window=3600.0):
        self.per_repo = per_repo  # 0/None: no limit
        self.total = total
        self.window = window
        self._admitted = []  # (time, repository), oldest first

    def _expire(self, now):
        while self._admitted and self._admitted[0][0] <= now - self.window:
            self._admitted.pop(0)

    def counts(self, repo, now):
        self._expire(now)
        return sum(1 for _, r in self._admitted if r == repo), len(self._admitted)

    def refusal(self, repo, now):
        """Why one more prebuild of ``repo`` is refused (None: admitted), naming the setting."""
        repo_count, total = self.counts(repo, now)
        if self.total and total >= self.total:
            return messages.PREBUILD_QUOTA_TOTAL.format(count=total, limit=self.total)
        if self.per_repo and repo_count >= self.per_repo:
            return messages.PREBUILD_QUOTA_REPO.format(repository=repo, count=repo_count, limit=self.per_repo)
        return None

    def admit(self, repo, now):
        self._admitted.append((now, repo))

    def retry_after(self, now):
        """Seconds until the oldest admitted prebuild leaves the window."""
        self._expire(now)
        return int(self._admitted[0][0] + self.window - now) + 1 if self._admitted else 1
