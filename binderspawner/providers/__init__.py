"""Repository sources. Each provider is one small class behind the RepoProvider interface."""

from ..errors import LaunchError
from .base import RepoProvider, RepoSource, ResolvedRepo
from .git import GitProvider

__all__ = ["GitProvider", "RepoProvider", "RepoSource", "ResolvedRepo", "detect"]


def detect(repo, providers):
    """The first provider that recognises ``repo``, with its parsed source."""
    for provider in providers:
        source = provider.parse(repo)
        if source is not None:
            return provider, source
    raise LaunchError(f"No repository source on this hub recognises {repo!r}.", field="repo")
