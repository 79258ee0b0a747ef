"""The interface every repository source implements, after repo2docker's content providers.

A provider turns what the user typed into a ``RepoSource`` (pure, no network), and resolves a ref of
that source into an immutable version (network, cached). The builder fetches ``source.fetch_url``
at that version; images are named from ``source.slug`` and the version.
"""

import asyncio
import time
from dataclasses import dataclass, field
from typing import Optional

from traitlets import Float, Unicode
from traitlets.config import LoggingConfigurable


@dataclass(frozen=True)
class RepoSource:
    provider: str  # the provider's name, e.g. "git"
    spec: str  # canonical form of what the user asked for
    fetch_url: str  # what the builder (repo2docker) fetches
    slug: str  # stable, human-readable identity used in image names
    display_name: str = ""


@dataclass(frozen=True)
class ResolvedRepo:
    source: RepoSource
    ref: Optional[str]  # as asked; None for the default branch
    version: str  # immutable: a full commit sha, a record version
    resolved_from: str = ""  # e.g. "branch main", "tag v1.0", "default branch main"
    labels: dict = field(default_factory=dict)


class ResolveCache:
    """Time-limited, single-flight cache of ref resolutions.

    Shared by all spawners of a hub process, so five users launching one branch at once cost one
    remote lookup, and repeated launches within the TTL cost none.
    """

    def __init__(self):
        self._values = {}
        self._inflight = {}

    def clear(self):
        self._values.clear()

    async def get(self, key, ttl, compute):
        hit = self._values.get(key)
        now = time.monotonic()
        if hit and hit[1] > now:
            return hit[0]
        if key in self._inflight:
            return await asyncio.shield(self._inflight[key])
        future = asyncio.ensure_future(compute())
        self._inflight[key] = future
        try:
            value = await asyncio.shield(future)
        finally:
            self._inflight.pop(key, None)
        if ttl > 0:
            self._values[key] = (value, time.monotonic() + ttl)
        return value


class RepoProvider(LoggingConfigurable):
    """One source of repositories. Subclasses set ``name`` and implement parse and resolve."""

    name = "base"
    cache = ResolveCache()

    display_name = Unicode(help="Name shown to users for this source.").tag(config=True)

    resolved_ref_ttl = Float(
        60,
        help="""Seconds a resolved branch or tag stays cached before it is looked up again.

        Within this time a push to the branch is not seen; 0 looks every launch up. A full commit
        sha is never looked up, so it needs no cache.""",
    ).tag(config=True)

    def parse(self, repo):
        """Return a RepoSource if this provider handles ``repo``, None if not ours.

        Raise LaunchError when it is ours but malformed. Pure: no network.
        """
        raise NotImplementedError

    async def resolve(self, source, ref):
        """Return a ResolvedRepo with an immutable version, or raise LaunchError."""
        raise NotImplementedError

    async def cached(self, key, compute):
        return await self.cache.get((self.name, *key), self.resolved_ref_ttl, compute)
