"""Repository sources. Each provider is one small class behind the RepoProvider interface."""

from binderspawner.errors import LaunchError
from binderspawner.providers.base import LinkGrammar, RepoProvider, RepoSource, ResolvedRepo, TokenCredentials
from binderspawner.providers.ckan import CKANProvider
from binderspawner.providers.dataverse import DataverseProvider
from binderspawner.providers.records import doi_of
from binderspawner.providers.figshare import FigshareProvider
from binderspawner.providers.gist import GistProvider
from binderspawner.providers.git import GitProvider
from binderspawner.providers.github import GitHubProvider
from binderspawner.providers.gitlab import GitLabProvider
from binderspawner.providers.hydroshare import HydroshareProvider
from binderspawner.providers.zenodo import ZenodoProvider

# The order they are tried in: specific sources first, any Git URL last.
DEFAULT_PROVIDERS = [GitHubProvider, GitLabProvider, GistProvider, ZenodoProvider, FigshareProvider,
                     HydroshareProvider, DataverseProvider, CKANProvider, GitProvider]

__all__ = ["CKANProvider", "DEFAULT_PROVIDERS", "DataverseProvider", "FigshareProvider", "GistProvider",
           "GitHubProvider", "GitLabProvider", "GitProvider", "HydroshareProvider", "LinkGrammar", "RepoProvider",
           "RepoSource", "ResolvedRepo", "TokenCredentials", "ZenodoProvider", "detect", "link_providers"]


def detect(repo, providers):
    """The first provider that recognises ``repo``, with its parsed source.

    A plain Git URL (or 'git/…' spec) on a host another provider owns is that provider's
    repository (a GitHub URL is gh/org/repo), so every spelling of it has one identity."""
    doi = doi_of(repo)
    for provider in providers:
        if doi is not None and isinstance(provider, GitProvider):
            break  # a DOI no data provider took is no Git URL either
        source = provider.parse(repo)
        if source is not None:
            if isinstance(provider, GitProvider):
                return _owner_of(source, providers) or (provider, source)
            return provider, source
    if doi is not None:
        raise LaunchError(f"The DOI {doi} is not from a data repository this hub launches from "
                          "(Zenodo, Figshare, HydroShare, Dataverse). Use a spec such as "
                          "zenodo/<DOI>, or ask the hub admin to add the DOI's prefix.", field="repo")
    raise LaunchError(f"No repository source on this hub recognises {repo!r}.", field="repo")


def _owner_of(source, providers):
    """(provider, source) of the provider that owns the host of a Git source's URL, or None."""
    for provider in providers:
        if isinstance(provider, GitProvider):
            continue
        owned = provider.parse(source.fetch_url)
        if owned is not None:
            if source.ref and owned.ref and source.ref != owned.ref:
                raise LaunchError(f"{source.fetch_url} names the ref {owned.ref!r} and the spec asks for "
                                  f"{source.ref!r}: give one of them.", field="repo")
            return provider, owned.with_ref(source.ref or owned.ref)
    return None


def link_providers(providers):
    """BinderHub prefix -> provider, for launch links (the first provider with a prefix wins)."""
    table = {}
    for provider in providers:
        if provider.prefix and provider.prefix not in table:
            table[provider.prefix] = provider
    return table
