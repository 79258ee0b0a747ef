"""GitHub (and GitHub Enterprise) repositories, resolved through GitHub's REST API.

Recognises ``gh/<owner>/<repo>[/<ref>]`` (BinderHub's spec) and ``https://github.com/<owner>/<repo>``
with optional ``.git``, ``/tree/<ref>`` or ``/commit/<sha>``. A ref is resolved with one request,
``GET /repos/{owner}/{repo}/commits/{ref}`` with ``Accept: application/vnd.github.sha`` (the answer
is just the sha), cached for ``resolved_ref_ttl`` and revalidated with its ETag afterwards. When the
API cannot be reached, ``git ls-remote`` on the clone URL answers instead (GitProvider's machinery).

Tests run against a local fixture server that follows GitHub's documented responses
(tests/test_providers_github.py); GitHub itself is not reachable from the test machines.
"""

import re
from urllib.parse import quote, unquote

from traitlets import default

from binderspawner.errors import LaunchError
from binderspawner.providers.api import GitHostProvider, Unreachable
from binderspawner.providers.base import LinkGrammar, RepoSource, ResolvedRepo
from binderspawner.providers.git import FULL_SHA
from binderspawner.providers.specparse import (OWNER, OWNER_PART, REPO, REPO_PART, after_prefix, host_pattern,
                                               invalid, link_ref, path_on, ref_or_none)


class GitHubProvider(GitHostProvider):
    """Repositories on GitHub or a GitHub Enterprise server."""

    name = "github"
    prefix = "gh"
    service = "GitHub"

    @default("api_base_url")
    def _default_api(self):
        return "https://api.github.com"

    @default("html_base_url")
    def _default_html(self):
        """GitHub Enterprise serves its API under <host>/api/v3."""
        api = self.api_base_url
        if api == "https://api.github.com":
            return "https://github.com"
        return api[: -len("/api/v3")] if api.endswith("/api/v3") else api

    @property
    def hint(self):
        return (f"Use {self.prefix}/<owner>/<repo>[/<ref>] or "
                f"{self.html_base_url}/<owner>/<repo>[/tree/<ref>].")

    def own_path(self, repo):
        """The path of ``repo`` when it is a URL on this provider's web or clone host, else None."""
        return path_on(repo, self.html_base_url, self.clone_base_url, schemes=("http", "https", "git"))

    # parsing (pure) --------------------------------------------------------------------------------

    def parse(self, repo):
        rest = after_prefix(repo, self.prefix)
        if rest is not None:
            owner, _, rest = rest.partition("/")
            name, _, ref = rest.partition("/")
            return self.source(repo, owner, name, ref_or_none(ref, repo))
        path = self.own_path(repo)
        if path is None:
            return None
        if "?" in path:
            raise invalid(repo, "it has a query ('?')", self.hint)
        found = re.fullmatch(r"/([^/]+)/([^/]+?)(?:\.git)?(?:/(?:tree/(.+)|commit/([0-9a-fA-F]{7,64})))?/?",
                             path)
        if not found:
            raise invalid(repo, "it is not the address of a repository, a branch or a commit", self.hint)
        owner, name, tree, commit = found.groups()
        return self.source(repo, owner, name, ref_or_none(tree or commit, repo))

    def source(self, repo, owner, name, ref):
        if not OWNER.match(owner):
            raise invalid(repo, f"the owner {owner!r} is not a GitHub user or organisation name", self.hint)
        name = name.removesuffix(".git")
        if not REPO.match(name):
            raise invalid(repo, f"the repository name {name!r} is not valid", self.hint)
        host = self.host_of(self.html_base_url)
        source = RepoSource(
            provider=self.name, spec=f"{self.prefix}/{owner}/{name}",
            fetch_url=f"{self.clone_base_url}/{owner}/{name}", slug=f"{host}/{owner}/{name}",
            display_name=f"{owner}/{name}", repo_url=f"{self.html_base_url}/{owner}/{name}",
            identity=f"{self.prefix}/{owner.lower()}/{name.lower()}")  # GitHub ignores case
        return source.with_ref(ref)

    # launch links (pure) ----------------------------------------------------------------------------

    def link_grammar(self):
        spec = rf"^{self.prefix}/{OWNER_PART}/{REPO_PART}(?:/\S+)?$"
        url = rf"^{host_pattern(self.html_base_url, self.clone_base_url)}/{OWNER_PART}/{REPO_PART}(?:/\S*)?$"
        return LinkGrammar(self.prefix, "<org>/<repo>/<ref>",
                           f"{self.prefix}/binder-examples/requirements/HEAD",
                           f"{spec}|{url}", self.service, {"owner": 39, "repo": 100})

    def parse_link(self, spec):
        parts = spec.split("/")
        if len(parts) < 3:
            more = " (add /HEAD for the default branch)" if len(parts) == 2 else ""
            raise self.link_error(f"it needs an organisation, a repository and a ref{more}")
        org, name = parts[0], unquote(parts[1]).removesuffix(".git")
        if not OWNER.match(org) or not REPO.match(name):
            raise self.link_error(f"the organisation or repository name has characters {self.service} "
                                  "does not allow")
        ref = link_ref("/".join(parts[2:]), self)
        canonical = f"{org}/{name}/{quote(ref, safe='/')}"
        return canonical, f"{self.prefix}/{canonical}", None

    def pinned_link(self, spec, version):
        org, name, _ = spec.split("/", 2)
        return f"{org}/{name}/{version}"

    def ref_url(self, source, version):
        return f"{self.repo_url(source)}/tree/{version}"

    # resolving (network) -----------------------------------------------------------------------------

    def owner_and_name(self, source):
        return source.spec.split("/")[1:3]

    async def resolve(self, source, ref, *, credentials=None):
        if self.trusts_commit(ref):
            return ResolvedRepo(source, ref, ref.lower(), f"commit {ref[:12]}")
        sha, description = await self.cached(
            (self.api_base_url, *self.owner_and_name(source), ref, credentials and credentials.cache_key),
            lambda: self._lookup(source, ref, credentials))
        return ResolvedRepo(source, ref, sha, description)

    async def _lookup(self, source, ref, credentials):
        owner, name = self.owner_and_name(source)
        url = f"{self.api_base_url}/repos/{owner}/{name}/commits/{quote(ref or 'HEAD', safe='/')}"
        try:
            status, body, _ = await self.api_get(url, credentials=credentials,
                                                 accept="application/vnd.github.sha")
        except Unreachable as e:
            return await self.fall_back_to_git(source, ref, credentials, e)
        sha = body.decode("utf-8", "replace").strip()
        if status == 200 and FULL_SHA.match(sha):
            if ref and FULL_SHA.match(ref.lower()):
                return sha, f"commit {ref[:12]}"
            return sha, (f"ref {ref}" if ref else "default branch")
        if status == 404:
            raise LaunchError(f"Repository {source.display_name} was not found on {self.service}, or "
                              "you do not have access to it.", field="repo", status=404)
        if status in (409, 422):  # 422: no commit for this ref; 409: the repository is empty
            what = f"no branch, tag or commit {ref!r}" if ref else "no commits"
            raise LaunchError(f"{source.display_name} has {what}. Check the spelling, or give a full "
                              "commit sha.", field="ref" if ref else "repo", status=404)
        self.raise_for_status(status, credentials)
        raise LaunchError(f"{self.service} gave no commit for {source.display_name}. Try again later.",
                          field="repo", status=502)
