"""Repository sources. Each provider is one small class behind the RepoProvider interface."""

from urllib.parse import unquote

from binderspawner.errors import LaunchError
from binderspawner.providers.base import LinkGrammar, RepoProvider, RepoSource, ResolvedRepo, TokenCredentials
from binderspawner.providers.ckan import CKANProvider
from binderspawner.providers.dataverse import DataverseProvider
from binderspawner.providers.records import doi_of
from binderspawner.providers.specparse import ref_or_none
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
           "GitHubProvider", "GitLabProvider", "GitProvider", "HydroshareProvider", "LinkGrammar",
           "RepoProvider",
           "RepoSource", "ResolvedRepo", "TokenCredentials", "ZenodoProvider", "detect", "link_providers"]


def detect(repo, providers):
    """The first provider that recognises ``repo``, with its parsed source.

    A plain Git URL (or 'git/…' spec) on a host another provider owns is that provider's
    repository (a GitHub URL is gh/org/repo), so every spelling of it has one identity."""
    claimed = _claimed_git_spec(repo, providers)
    if claimed is not None:
        return claimed
    doi = doi_of(repo)
    for provider in providers:
        if doi is not None and isinstance(provider, GitProvider):
            break  # a DOI no data provider took is no Git URL either
        source = provider.parse(repo)
        if source is not None:
            if isinstance(provider, GitProvider):
                return _owner_of(source.fetch_url, source.ref, providers) or (provider, source)
            return provider, source
    if doi is not None:
        raise LaunchError(f"The DOI {doi} is not from a data repository this hub launches from "
                          "(Zenodo, Figshare, HydroShare, Dataverse). Use a spec such as "
                          "zenodo/<DOI>, or ask the hub admin to add the DOI's prefix.", field="repo")
    raise LaunchError(f"No repository source on this hub recognises {repo!r}.", field="repo")


def _claimed_git_spec(repo, providers):
    """A 'git/<escaped URL>[/<ref>]' spec whose URL is on a host another provider owns."""
    if not repo.startswith("git/") or not any(isinstance(p, GitProvider) for p in providers):
        return None
    escaped, _, ref = repo[len("git/"):].partition("/")
    if "%" not in escaped:
        return None  # GitProvider explains what is wrong
    return _owner_of(unquote(escaped), ref_or_none(ref, repo), providers)


def _owner_of(url, ref, providers):
    """(provider, source) of the provider that owns the host of a Git URL, or None."""
    for provider in providers:
        if isinstance(provider, GitProvider):
            continue
        owned = provider.parse(url)
        if owned is not None:
            if ref and owned.ref and ref != owned.ref:
                raise LaunchError(f"{url} names the ref {owned.ref!r} and the spec asks for {ref!r}: "
                                  "give one of them.", field="repo")
            return provider, owned.with_ref(ref or owned.ref)
    return None


def link_providers(providers):
    """BinderHub prefix -> provider, for launch links (the first provider with a prefix wins)."""
    table = {}
    for provider in providers:
        if provider.prefix and provider.prefix not in table:
            table[provider.prefix] = provider
    return table
