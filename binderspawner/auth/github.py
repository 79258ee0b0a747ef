"""A lab on GitHub: members of allowed organisations or teams (oauthenticator's
``allowed_organizations``, e.g. {"my-lab", "my-lab:members"}) log in and launch the private
repositories their own token can read."""

from urllib.parse import urlsplit

from oauthenticator.github import GitHubOAuthenticator
from traitlets import default

from binderspawner.auth.base import LabAuthenticatorMixin


class LabGitHubAuthenticator(LabAuthenticatorMixin, GitHubOAuthenticator):
    @default("scope")
    def _default_scope(self):
        # read:org: private org and team membership. repo: reading private repositories (GitHub's
        # OAuth apps have no read-only scope for them).
        return ["read:user", "read:org", "repo"]

    @default("git_username")
    def _default_git_username(self):
        return "x-access-token"

    @default("credential_hosts")
    def _default_credential_hosts(self):
        return sorted({urlsplit(self.github_url).netloc, urlsplit(self.github_api).netloc})
