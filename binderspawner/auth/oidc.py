"""A lab behind any OpenID Connect provider: members are those whose groups claim holds one of
``allowed_groups`` (oauthenticator's GenericOAuthenticator with ``manage_groups``). Their access
token goes to the lab's git server(s) named in ``credential_hosts`` (e.g. Gitea or GitLab accepting
the provider's tokens)."""

from oauthenticator.generic import GenericOAuthenticator
from traitlets import default

from binderspawner.auth.base import LabAuthenticatorMixin


class LabOIDCAuthenticator(LabAuthenticatorMixin, GenericOAuthenticator):
    @default("scope")
    def _default_scope(self):
        # offline_access: a refresh token, so the token is renewed before each launch.
        return ["openid", "profile", "email", "groups", "offline_access"]

    @default("username_claim")
    def _default_username_claim(self):
        return "preferred_username"

    @default("auth_state_groups_key")
    def _default_groups_key(self):
        return f"{self.user_auth_state_key}.groups"

    @default("manage_groups")
    def _default_manage_groups(self):
        return True  # the groups claim decides who is admitted (allowed_groups)

    @default("credential_hosts")
    def _default_credential_hosts(self):
        return []  # nothing until the admin names the lab's git server(s)
