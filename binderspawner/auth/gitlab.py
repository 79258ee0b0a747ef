"""A lab on GitLab: members of allowed groups or projects (oauthenticator's
``allowed_gitlab_groups`` / ``allowed_project_ids``) log in and launch the private projects their
own token can read."""

from urllib.parse import urlsplit

from oauthenticator.gitlab import GitLabOAuthenticator
from traitlets import default

from binderspawner.auth.base import LabAuthenticatorMixin


class LabGitLabAuthenticator(LabAuthenticatorMixin, GitLabOAuthenticator):
    @default("scope")
    def _default_scope(self):
        # read_api: group/project membership and resolving refs; read_repository: git clone.
        return ["read_user", "read_api", "read_repository"]

    @default("credential_hosts")
    def _default_credential_hosts(self):
        return [urlsplit(self.gitlab_url).netloc]
