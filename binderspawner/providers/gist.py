"""GitHub gists, resolved through GitHub's REST API (``GET /gists/{id}``).

Recognises ``gist/<user>/<id>[/<ref>]`` (BinderHub's spec) and ``https://gist.github.com/<user>/<id>``
(optionally followed by a revision). The default ref (or HEAD, main, master) is the newest revision
in the gist's ``history``; any other ref must be one of its revisions (full or abbreviated sha).
The gist must belong to <user>, and secret gists are refused unless ``allow_secret_gist``.

Tests run against a local fixture server that follows GitHub's documented gist responses
(tests/test_providers_gist.py); GitHub is not reachable from the test machines.
"""

import re
from urllib.parse import quote

from traitlets import Bool, Unicode, default, validate

from binderspawner.errors import LaunchError
from binderspawner.providers.api import Unreachable, clone_base
from binderspawner.providers.base import LinkGrammar, RepoSource, ResolvedRepo
from binderspawner.providers.git import FULL_SHA
from binderspawner.providers.github import GitHubProvider
from binderspawner.providers.specparse import (OWNER, OWNER_PART, after_prefix, host_pattern, invalid,
                                               link_ref, path_on, ref_or_none)

HINT = "Use gist/<user>/<gist id>[/<revision>] or https://gist.github.com/<user>/<gist id>."
GIST_ID_PART = r"[0-9A-Za-z]{1,64}"
GIST_ID = re.compile(f"^{GIST_ID_PART}$")
LATEST = {None, "HEAD", "main", "master"}


class GistProvider(GitHubProvider):
    """Gists. API settings default to GitHubProvider's (a c.GitHubProvider.access_token applies)."""

    name = "gist"
    prefix = "gist"
    service = "GitHub"

    gist_base_url = Unicode(
        help="Where gists are, for URLs and clones ('<gist_base_url>/<id>.git'). Defaults to "
             "https://gist.github.com, or <GitHub Enterprise host>/gist.",
    ).tag(config=True)

    @default("gist_base_url")
    def _default_gist(self):
        html = self.html_base_url
        return "https://gist.github.com" if html == "https://github.com" else f"{html}/gist"

    @validate("gist_base_url")
    def _valid_gist(self, proposal):
        return clone_base(proposal.value, "GistProvider.gist_base_url")

    allow_secret_gist = Bool(
        False,
        help="Allow launching secret (unlisted) gists. Off: a secret gist's link is its only "
             "protection, and launches make it visible in image names and logs.",
    ).tag(config=True)

    def parse(self, repo):
        rest = after_prefix(repo, self.prefix)
        if rest is None:
            path = path_on(repo, self.gist_base_url, schemes=("http", "https", "git"))
            if path is None:
                return None
            if "?" in path:
                raise invalid(repo, "it has a query ('?')", HINT)
            rest = path.strip("/")
        user, _, rest = rest.partition("/")
        gist_id, _, ref = rest.partition("/")
        if not OWNER.match(user):
            raise invalid(repo, f"{user!r} is not a GitHub user name", HINT)
        if not GIST_ID.match(gist_id):
            raise invalid(repo, f"{gist_id!r} is not a gist id", HINT)
        source = RepoSource(
            provider=self.name, spec=f"{self.prefix}/{user}/{gist_id}",
            fetch_url=f"{self.gist_base_url}/{gist_id}.git",
            slug=f"{self.host_of(self.gist_base_url)}/{user}/{gist_id}",
            display_name=f"gist {user}/{gist_id}", repo_url=f"{self.gist_base_url}/{user}/{gist_id}",
            identity=f"{self.prefix}/{user.lower()}/{gist_id.lower()}")
        return source.with_ref(ref_or_none(ref, repo))

    # launch links (pure) ----------------------------------------------------------------------------

    def link_grammar(self):
        spec = rf"^{self.prefix}/{OWNER_PART}/{GIST_ID_PART}(?:/\S+)?$"
        url = rf"^{host_pattern(self.gist_base_url)}/\S*{OWNER_PART}/{GIST_ID_PART}(?:/\S*)?$"
        return LinkGrammar(self.prefix, "<user>/<gist id>[/<ref>]", f"{self.prefix}/alice/8f0b4c3a2e1d/HEAD",
                           f"{spec}|{url}", "GitHub gists", {"user": 39, "gist id": 64})

    def parse_link(self, spec):
        parts = spec.split("/")
        if len(parts) not in (2, 3):
            raise self.link_error("it needs a user, a gist id and optionally a ref")
        user, gist = parts[0], parts[1]
        if not OWNER.match(user) or not GIST_ID.match(gist):
            raise self.link_error("the user or gist id is not valid")
        canonical = f"{user}/{gist}"
        if len(parts) == 3:
            canonical += "/" + quote(link_ref(parts[2], self), safe="")
        return canonical, f"{self.prefix}/{canonical}", None

    def pinned_link(self, spec, version):
        user, gist = spec.split("/")[:2]
        return f"{user}/{gist}/{version}"

    def ref_url(self, source, version):
        return f"{self.repo_url(source)}/{version}"

    async def resolve(self, source, ref, *, credentials=None):
        _, user, gist_id = source.spec.split("/")[:3]
        sha, description = await self.cached(
            (self.api_base_url, "gist", gist_id, ref, credentials and credentials.cache_key),
            lambda: self._lookup(source, user, gist_id, ref, credentials))
        return ResolvedRepo(source, ref, sha, description)

    async def _lookup(self, source, user, gist_id, ref, credentials):
        missing = LaunchError(f"{source.display_name} was not found, or you do not have access to it.",
                              field="repo", status=404)
        try:
            gist = await self.api_json(f"{self.api_base_url}/gists/{gist_id}", credentials=credentials,
                                       not_found=missing)
        except Unreachable as e:
            return await self.fall_back_to_git(source, ref, credentials, e)
        owner = ((gist.get("owner") or {}).get("login") or "") if isinstance(gist, dict) else ""
        if owner.lower() != user.lower():
            raise missing  # another user's gist: same answer as a missing one
        if not gist.get("public", False) and not self.allow_secret_gist:
            raise LaunchError(f"{source.display_name} is a secret gist; this hub launches public "
                              "gists only.", field="repo", status=403)
        versions = [h.get("version") for h in gist.get("history") or [] if isinstance(h, dict)]
        versions = [v for v in versions if isinstance(v, str) and FULL_SHA.match(v)]
        if not versions:
            raise LaunchError(f"{self.service} listed no revisions of {source.display_name}.",
                              field="repo", status=502)
        if ref in LATEST:
            return versions[0], "latest revision"
        matches = [v for v in versions if v.startswith(ref.lower())]
        if len(matches) != 1:
            raise LaunchError(f"{source.display_name} has no revision {ref!r}. Give a revision sha "
                              "from the gist's history, or leave the ref empty for the latest.",
                              field="ref", status=404)
        return matches[0], f"revision {ref[:12]}"
