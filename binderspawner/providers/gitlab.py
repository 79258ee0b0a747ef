"""GitLab (gitlab.com or a self-hosted GitLab) projects, resolved through GitLab's REST API (v4).

Recognises ``gl/<url-escaped namespace/project>[/<ref>]`` (BinderHub's spec, e.g.
``gl/group%2Fsub%2Fproject/main``) and ``https://gitlab.com/<group>/.../<project>`` with optional
``.git``, ``/-/tree/<ref>`` or ``/-/commit/<sha>``. A ref is resolved with
``GET /projects/:id/repository/commits/:ref`` (the project's default branch first comes from
``GET /projects/:id``); answers are cached and revalidated with their ETag. When the API cannot be
reached, ``git ls-remote`` on the clone URL answers instead.

Tests run against a local fixture server that follows GitLab's documented responses
(tests/test_providers_gitlab.py); gitlab.com is not reachable from the test machines.
"""

import json
import re
from urllib.parse import quote, unquote

from traitlets import default

from binderspawner.errors import LaunchError
from binderspawner.providers.api import GitHostProvider, Unreachable
from binderspawner.providers.base import LinkGrammar, RepoSource, ResolvedRepo
from binderspawner.providers.git import FULL_SHA
from binderspawner.providers.specparse import (after_prefix, host_pattern, invalid, link_ref, path_on,
                                               ref_or_none)

# One part of a GitLab namespace path (group, subgroup, project): GitLab allows 255 characters.
MAX_PART_LENGTH = 255
PART = rf"(?!\.\.?(?:/|%2F|$))[A-Za-z0-9_.][A-Za-z0-9_.-]{{0,{MAX_PART_LENGTH - 1}}}"
COMPONENT = re.compile(f"^{PART}$")


class GitLabProvider(GitHostProvider):
    """Projects on gitlab.com or on the self-hosted GitLab at html_base_url."""

    name = "gitlab"
    prefix = "gl"
    service = "GitLab"

    @default("html_base_url")
    def _default_html(self):
        return "https://gitlab.com"

    @default("api_base_url")
    def _default_api(self):
        return f"{self.html_base_url}/api/v4"

    @property
    def hint(self):
        return (f"Use {self.prefix}/<url-escaped group/project>[/<ref>] "
                f"(e.g. {self.prefix}/group%2Fproject/main) "
                f"or {self.html_base_url}/<group>/<project>[/-/tree/<ref>].")

    def parse(self, repo):
        rest = after_prefix(repo, self.prefix)
        if rest is not None:
            escaped, _, ref = rest.partition("/")
            if "%" not in escaped:
                raise invalid(repo, "the project path must be URL-escaped ('/' as %2F)", self.hint)
            return self.source(repo, unquote(escaped), ref_or_none(ref, repo))
        path = path_on(repo, self.html_base_url, self.clone_base_url, schemes=("http", "https", "git"))
        if path is None:
            return None
        if "?" in path:
            raise invalid(repo, "it has a query ('?')", self.hint)
        found = re.fullmatch(r"/(.+?)(?:\.git)?(?:/-/(?:tree/(.+)|commit/([0-9a-fA-F]{7,64})))?/?", path)
        if not found or "/-/" in found.group(1):
            raise invalid(repo, "it is not the address of a project, a branch or a commit", self.hint)
        project, tree, commit = found.groups()
        return self.source(repo, project, ref_or_none(tree or commit, repo))

    def source(self, repo, project, ref):
        parts = project.removesuffix(".git").split("/")
        if len(parts) < 2 or not all(COMPONENT.match(p) for p in parts):
            raise invalid(repo, f"{project!r} is not a GitLab 'group/project' path", self.hint)
        project = "/".join(parts)
        host = self.host_of(self.html_base_url)
        source = RepoSource(
            provider=self.name, spec=f"{self.prefix}/{quote(project, safe='')}",
            fetch_url=f"{self.clone_base_url}/{project}.git", slug=f"{host}/{project}",
            display_name=project, repo_url=f"{self.html_base_url}/{project}",
            identity=f"{self.prefix}/{quote(project.lower(), safe='')}")  # GitLab paths ignore case
        return source.with_ref(ref)

    # launch links (pure) ----------------------------------------------------------------------------

    def link_grammar(self):
        spec = rf"^{self.prefix}/{PART}(?:%2F{PART})+(?:/\S+)?$"
        url = rf"^{host_pattern(self.html_base_url, self.clone_base_url)}/{PART}(?:/{PART})+(?:/\S*)?$"
        return LinkGrammar(self.prefix, "<url-escaped namespace>/<ref>",
                           f"{self.prefix}/group%2Fproject/main",
                           f"{spec}|{url}", self.service, {"namespace part": MAX_PART_LENGTH})

    def parse_link(self, spec):
        parts = spec.split("/")
        if len(parts) < 2:
            raise self.link_error("it needs the escaped namespace and a ref")
        namespace = unquote(parts[0])
        segments = namespace.split("/")
        if len(segments) < 2 or not all(COMPONENT.match(s) for s in segments):
            raise self.link_error("the namespace must be group/project (subgroups allowed), escaped as one "
                                  f"segment, each part at most {MAX_PART_LENGTH} characters")
        ref = link_ref("/".join(parts[1:]), self)
        canonical = f"{quote(namespace, safe='')}/{quote(ref, safe='/')}"
        return canonical, f"{self.prefix}/{canonical}", None

    def pinned_link(self, spec, version):
        return f"{spec.split('/', 1)[0]}/{version}"

    def ref_url(self, source, version):
        return f"{self.repo_url(source)}/-/tree/{version}"

    def project_of(self, source):
        return unquote(source.spec.split("/")[1])

    async def resolve(self, source, ref, *, credentials=None):
        if self.trusts_commit(ref):
            return ResolvedRepo(source, ref, ref.lower(), f"commit {ref[:12]}")
        sha, description = await self.cached(
            (self.api_base_url, self.project_of(source), ref, credentials and credentials.cache_key),
            lambda: self._lookup(source, ref, credentials))
        return ResolvedRepo(source, ref, sha, description)

    async def _lookup(self, source, ref, credentials):
        project = f"{self.api_base_url}/projects/{quote(self.project_of(source), safe='')}"
        missing = LaunchError(f"Project {source.display_name} was not found on {self.service}, or you "
                              "do not have access to it.", field="repo", status=404)
        try:
            branch = ref
            if branch is None:
                info = await self.api_json(project, credentials=credentials, not_found=missing)
                branch = info.get("default_branch")
                if not isinstance(branch, str) or not branch:
                    raise LaunchError(f"{source.display_name} has no commits yet.", field="repo",
                                      status=404)
            status, body, _ = await self.api_get(
                f"{project}/repository/commits/{quote(branch, safe='')}", credentials=credentials)
        except Unreachable as e:
            return await self.fall_back_to_git(source, ref, credentials, e)
        if status == 404:
            if ref is None:
                raise missing
            # GitLab answers 404 for a missing project and for a missing ref alike.
            raise LaunchError(f"{source.display_name} has no branch, tag or commit {ref!r}, or you do "
                              "not have access to it. Check the spelling, or give a full commit sha.",
                              field="ref", status=404)
        self.raise_for_status(status, credentials)
        sha = _json_field(body, "id")
        if not FULL_SHA.match(sha):
            raise LaunchError(f"{self.service} gave no commit for {source.display_name}. Try again "
                              "later.", field="repo", status=502)
        return sha, (f"ref {ref}" if ref else f"default branch {branch}")


def _json_field(body, name):
    try:
        value = json.loads(body).get(name)
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""
